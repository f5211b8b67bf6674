#!/usr/bin/env bash
# Install the Debian/Ubuntu packages banger's build, tests and pipelines use.
set -euo pipefail

usage() {
	cat <<'USAGE'
Usage: scripts/install-deps.sh [--help]

Installs, with apt-get, everything banger needs to build, to run its test
suite (QEMU, busybox, e2fsprogs, rclone, ...) and to build kernels and the
golden image. Run as root (or with sudo available).
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
	# VMM and guest-side tools used by tests
	qemu-system-x86 busybox-static dropbear-bin e2fsprogs xfsprogs openssh-client iproute2 iptables
	# qcow2 overlay disks: qemu-img (the tests check banger's overlays with
	# it), fusermount3 (growing an overlay without root; qemu-storage-daemon
	# comes with qemu-system-x86)
	qemu-utils fuse3
	# bundles and publishing
	zstd tar curl jq rclone shellcheck
	# kernel builds (scripts/make-generic-kernel.sh)
	linux-source-6.12 build-essential flex bison bc libelf-dev libssl-dev dwarves python3 cpio kmod gpgv
	# image build's apt sandbox (capsh; unshare is util-linux)
	libcap2-bin
	# golden image (scripts/build-golden.sh)
	mmdebstrap podman buildah debian-archive-keyring
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

export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq "${packages[@]}"
