#!/usr/bin/env bash
# Install the Debian/Ubuntu packages banger's build, tests and pipelines use.
set -euo pipefail

usage() {
	cat <<'USAGE'
Usage: scripts/install-deps.sh [--help]

Installs, with apt-get, everything banger needs to build, to run its test
suite (QEMU, busybox, e2fsprogs, rclone, ...) and to build kernels and the
golden image. Run as root (or with sudo available).

It also enables Debian's arm64 architecture (dpkg --add-architecture) and
downloads, without installing them, the arm64 packages the arm64 test
guests are made of (busybox-static, dropbear-bin and the libraries
dropbear links) into $BANGER_GUEST_DEBS (default
/var/cache/banger/guest-arm64), mounts binfmt_misc when it is not, and
enables qemu-user-static's aarch64 handler, which lets image build run an
arm64 image's apt on an x86_64 host.
USAGE
}

case "${1:-}" in
-h | --help)
	usage
	exit 0
	;;
"") ;;
*)
	echo "install-deps.sh: unknown argument ${1} (see --help)" >&2
	exit 2
	;;
esac

packages=(
	# VMMs (x86_64 and arm64 guests) and guest-side tools used by tests
	qemu-system-x86 qemu-system-arm busybox-static dropbear-bin openssh-sftp-server e2fsprogs xfsprogs openssh-client iproute2 iptables
	# system call counts of the bundle extractor (internal/archive)
	strace
	# qcow2 overlay disks: qemu-img (the tests check banger's overlays with
	# it), fusermount3 (growing an overlay without root; qemu-storage-daemon
	# comes with qemu-system-x86)
	qemu-utils fuse3
	# bundles and publishing
	zstd tar curl jq rclone shellcheck
	# kernel builds (scripts/make-generic-kernel.sh); the arm64 cross compiler
	# for its arm64 builds (the pipeline test cross-builds a small one)
	linux-source-6.12 build-essential flex bison bc libelf-dev libssl-dev dwarves python3 cpio kmod gpgv
	gcc-aarch64-linux-gnu
	# arm64 images on an x86_64 host: apt runs in the image's chroot through
	# QEMU's user-mode emulation (binfmt_misc, registered below)
	qemu-user-static binfmt-support
	# image build's apt sandbox (capsh; unshare is util-linux)
	libcap2-bin
	# golden image (scripts/build-golden.sh)
	mmdebstrap podman buildah debian-archive-keyring
	# kube-apiserver's store in the `banger node` tests (internal/kubetest)
	etcd-server
	# benchmarks
	hyperfine
)

sudo=()
if [[ $(id -u) -ne 0 ]]; then
	command -v sudo >/dev/null || {
		echo "install-deps.sh: run as root or install sudo" >&2
		exit 1
	}
	sudo=(sudo)
fi

# The arm64 test guests' packages (internal/guesttest.ARM64Packages).
guest_debs=${BANGER_GUEST_DEBS:-/var/cache/banger/guest-arm64}
guest_packages=(busybox-static dropbear-bin libc6 libcrypt1 libtomcrypt1 libtommath1 libgmp10 zlib1g)

export DEBIAN_FRONTEND=noninteractive
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
	"${sudo[@]}" dpkg --add-architecture arm64
fi
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq "${packages[@]}"

"${sudo[@]}" mkdir -p "$guest_debs"
"${sudo[@]}" find "$guest_debs" -maxdepth 1 -name '*_arm64.deb' -delete
# As root, apt's _apt sandbox user could not write there; root downloads.
(cd "$guest_debs" && "${sudo[@]}" apt-get download -qq -o APT::Sandbox::User=root "${guest_packages[@]/%/:arm64}")

# arm64 programs on an x86_64 host (image build's apt step for arm64 images).
binfmt=/proc/sys/fs/binfmt_misc
if [[ $(uname -m) == x86_64 ]]; then
	if [[ ! -e $binfmt/status ]]; then
		"${sudo[@]}" mount -t binfmt_misc binfmt_misc "$binfmt" ||
			{
				echo "install-deps.sh: cannot mount binfmt_misc on $binfmt (in a container, the host must mount it)" >&2
				exit 1
			}
	fi
	"${sudo[@]}" update-binfmts --enable qemu-aarch64
	grep -q '^flags: .*F' "$binfmt/qemu-aarch64" || {
		echo "install-deps.sh: the qemu-aarch64 binfmt handler lacks the F flag (check /usr/share/binfmts/qemu-aarch64)" >&2
		exit 1
	}
fi
