#!/usr/bin/env bash
# Build banger's generic-<major.minor> guest kernel for x86_64 or arm64: upstream
# source, Firecracker's guest config for that arch, every essential driver built in,
# no modules, reproducible bytes.
set -euo pipefail

# Pinned inputs of the default (networked) build. LINUX_SRC and FC_CONFIG replace them.
LINUX_VERSION=6.12.117
LINUX_MIRROR=${LINUX_MIRROR:-https://cdn.kernel.org/pub/linux/kernel/v6.x}
LINUX_URL="${LINUX_MIRROR}/linux-${LINUX_VERSION}.tar.xz"
# kernel.org signs the uncompressed tarball (linux-<version>.tar.sign). A
# download must carry a good signature by one of these keys (the stable
# maintainers'), kept in kernel-signers.asc beside this script.
LINUX_SIGN_URL="${LINUX_MIRROR}/linux-${LINUX_VERSION}.tar.sign"
LINUX_SIGNERS=(
	647F28654894E3BD457199BE38DBBDC86092693E # Greg Kroah-Hartman
	57AB7D308C6C3472B80615F19ECABE406425237A # Sasha Levin
)
FC_CONFIG_REF=v1.16.1
FC_CONFIG_BASE="https://raw.githubusercontent.com/firecracker-microvm/firecracker/${FC_CONFIG_REF}/resources/guest_configs"

# Fixed build identity: the same inputs give the same vmlinux bytes.
BUILD_TIMESTAMP="Thu Jan  1 00:00:00 UTC 1970"
BUILD_USER=banger
BUILD_HOST=banger

# Options that must end up =y (built in) on every arch, and options that must
# be off. 9p over virtio is for `vm create --mount` on QEMU (Firecracker has no
# 9p device; the drivers are inert there).
ESSENTIAL_COMMON=(
	VIRTIO VIRTIO_MMIO VIRTIO_BLK VIRTIO_NET
	VSOCKETS VIRTIO_VSOCKETS EXT4_FS
	SERIAL_8250 SERIAL_8250_CONSOLE PRINTK
	BLK_DEV_INITRD DEVTMPFS
	NET_9P NET_9P_VIRTIO 9P_FS 9P_FS_POSIX_ACL
)
# x86_64: devices given on the command line (Firecracker, QEMU microvm), PVH
# boot of the ELF vmlinux, MP tables, and the AT keyboard that carries
# Ctrl-Alt-Del from the VMM.
ESSENTIAL_X86_64=(
	VIRTIO_MMIO_CMDLINE_DEVICES
	HYPERVISOR_GUEST PARAVIRT KVM_GUEST PVH X86_MPPARSE
	SERIO SERIO_I8042 INPUT_KEYBOARD KEYBOARD_ATKBD
)
# arm64: devices come from the device tree; Firecracker's console is an 8250
# described there, QEMU virt's a PL011; GICv2/v3, PSCI and the PL031 clock.
ESSENTIAL_ARM64=(
	OF SERIAL_OF_PLATFORM SERIAL_AMBA_PL011 SERIAL_AMBA_PL011_CONSOLE
	ARM_GIC ARM_GIC_V3 ARM_PSCI_FW RTC_DRV_PL031
)
ESSENTIAL_OFF=(MODULES)

usage() {
	cat <<'USAGE'
Usage: scripts/make-generic-kernel.sh [--arch x86_64|arm64] [--help]

Builds banger's generic guest kernel (generic-<major.minor>) from upstream
Linux source with Firecracker's guest config for the arch (default x86_64;
aarch64 is accepted for arm64; ARCH in the environment does the same). After
`olddefconfig` the essentials are forced built in with CONFIG_MODULES off, and
the build fails if any ends up =m or unset:
  all          virtio-mmio, virtio-blk, virtio-net, vsock, ext4, 8250 serial
               console, initrd, devtmpfs, 9p over virtio (vm create --mount)
  x86_64       command-line virtio-mmio devices, PVH boot, KVM guest, MP
               tables, the i8042 AT keyboard that carries Ctrl-Alt-Del
  arm64        device tree, PL011 console (QEMU virt), GICv2/v3, PSCI, PL031
arm64 is cross-compiled with aarch64-linux-gnu-gcc on other hosts.

Output (replaced atomically), in build/manual/generic-kernel/ of the repo
(generic-kernel-arm64/ for arm64):
  vmlinux      x86_64: the uncompressed ELF kernel, symbol table stripped
               (PVH note kept); arm64: the uncompressed boot Image, which is
               what Firecracker and QEMU's virt machine load on arm64
  config       the final .config
  provenance   source, config and compiler versions and sha256s

Builds are reproducible (fixed KBUILD_BUILD_TIMESTAMP/USER/HOST/VERSION, in-tree
relative paths, no debug info) and cached by the sha256 of every input: source
tarball, config, this script, gcc and ld versions. A cache hit takes seconds.

Environment:
  LINUX_SRC           linux-*.tar.xz or an unpacked source directory
                      (default: download linux-6.12.117 from kernel.org and
                      check its signature, linux-6.12.117.tar.sign, with gpgv
                      against the stable maintainers' keys pinned in
                      scripts/kernel-signers.asc)
  LINUX_SHA256        expected sha256 of the downloaded or given tarball; a
                      download matching it needs no signature check
  LINUX_MIRROR        where to download linux-*.tar.xz and .tar.sign from
                      (default https://cdn.kernel.org/pub/linux/kernel/v6.x);
                      the signature is checked all the same
  FC_CONFIG           Firecracker guest config to start from (default: fetch
                      microvm-kernel-ci-<x86_64|aarch64>-6.1.config at a pinned
                      ref and check its pinned sha256)
  BANGER_BUILD_CACHE  build cache (default /var/cache/banger/kernel-build, or
                      ~/.cache/banger/kernel-build if that is not writable)
  OUT_DIR             output directory (default <repo>/build/manual/generic-kernel,
                      generic-kernel-arm64 for arm64)
  JOBS                parallel jobs (default: nproc)
  KEEP_BUILD_TREE=1   keep the object tree in the cache after a build

Toolchain (Debian/Ubuntu): apt-get install build-essential flex bison bc
libelf-dev libssl-dev xz-utils curl gpgv; for arm64 on another host also
gcc-aarch64-linux-gnu
USAGE
}

log() { printf 'make-generic-kernel: %s\n' "$*" >&2; }
die() {
	printf 'make-generic-kernel: error: %s\n' "$*" >&2
	exit 1
}

arch=${ARCH:-x86_64}
while [[ $# -gt 0 ]]; do
	case "$1" in
	-h | --help)
		usage
		exit 0
		;;
	--arch)
		[[ $# -ge 2 ]] || die "--arch needs a value: x86_64 or arm64"
		arch=$2
		shift 2
		;;
	--arch=*)
		arch=${1#--arch=}
		shift
		;;
	*) die "unknown argument ${1} (see --help)" ;;
	esac
done

# Per arch: the kernel's ARCH, Firecracker's config, the make target and the
# file it produces, the cross compiler when the host is another arch.
host_arch=$(uname -m)
cross=
case $arch in
x86_64 | amd64)
	arch=x86_64 karch=x86_64 srcarch=x86 fc_arch=x86_64 target=vmlinux image=vmlinux
	FC_CONFIG_SHA256=adbc70ab5e89213ba00594b12d25e09bdf8bb1ed3c252d7449326bb14c22963b
	ESSENTIAL_Y=("${ESSENTIAL_COMMON[@]}" "${ESSENTIAL_X86_64[@]}")
	if [[ $host_arch != x86_64 ]]; then cross=x86_64-linux-gnu-; fi
	;;
arm64 | aarch64)
	arch=arm64 karch=arm64 srcarch=arm64 fc_arch=aarch64 target=Image image=arch/arm64/boot/Image
	FC_CONFIG_SHA256=1df6e14391ef65eceac0f65cac4e431fefd8e04e4584d261184059320ad492b7
	ESSENTIAL_Y=("${ESSENTIAL_COMMON[@]}" "${ESSENTIAL_ARM64[@]}")
	if [[ $host_arch != aarch64 ]]; then cross=aarch64-linux-gnu-; fi
	;;
*) die "unknown arch $arch (want x86_64 or arm64; aarch64 is the same as arm64)" ;;
esac
FC_CONFIG_URL="${FC_CONFIG_BASE}/microvm-kernel-ci-${fc_arch}-6.1.config"

start=$(date +%s)
script_path=$(readlink -f "${BASH_SOURCE[0]}")
repo=$(cd "$(dirname "$script_path")/.." && pwd)
default_out=$repo/build/manual/generic-kernel
if [[ $arch != x86_64 ]]; then default_out+=-$arch; fi
out_dir=${OUT_DIR:-$default_out}
jobs=${JOBS:-$(nproc)}

check_toolchain() {
	local missing=() c
	for c in gcc make flex bison bc perl tar xz sha256sum "${cross}gcc" "${cross}objcopy" readelf flock; do
		command -v "$c" >/dev/null || missing+=("$c")
	done
	if command -v gcc >/dev/null; then
		echo '#include <gelf.h>' | gcc -E -x c - >/dev/null 2>&1 || missing+=("libelf headers (gelf.h)")
		echo '#include <openssl/opensslv.h>' | gcc -E -x c - >/dev/null 2>&1 || missing+=("openssl headers")
	fi
	if ((${#missing[@]})); then
		die "missing kernel build tools: ${missing[*]} (hint: apt-get install build-essential flex bison bc libelf-dev libssl-dev xz-utils util-linux${cross:+ gcc-${cross%-}})"
	fi
}

# fetch URL DEST: download with curl to DEST atomically.
fetch() {
	command -v curl >/dev/null || die "curl is needed to download $1 (hint: apt-get install curl, or set LINUX_SRC/FC_CONFIG to local files)"
	curl -fsSL --retry 3 -o "$2.part" "$1" || die "downloading $1 failed (hint: no network? set LINUX_SRC and FC_CONFIG to local files)"
	mv -f "$2.part" "$2"
}

sha_of() { sha256sum "$1" | cut -d' ' -f1; }

# last N lines of a log, joined into one line for an error message.
lastlines() { tail -n "$1" "$2" | tr -s '\n\t' '  '; }

# dearmor ASC OUT: the binary keyring gpgv reads, from the armored public key
# blocks in ASC (the checksum lines are dropped: the fingerprints are pinned).
dearmor() {
	awk '/^-----BEGIN PGP PUBLIC KEY BLOCK-----$/ { b = 1; h = 1; next }
		/^-----END PGP PUBLIC KEY BLOCK-----$/ { b = 0; next }
		!b { next }
		h { if ($0 == "") h = 0; next }
		/^=/ { next }
		{ print }' "$1" | base64 -d >"$2"
}

# verify_signature TARBALL SHA: check kernel.org's signature of the
# uncompressed TARBALL (whose sha256 is SHA) against the pinned signers and
# set $source_signer. A tarball that fails is deleted. A success is
# recorded beside the tarball, so the next run with the same bytes skips
# the decompression.
verify_signature() {
	local tarball=$1 sha=$2 sig=$1.sign ok=$1.verified keyring status fpr s
	if [[ -f $ok ]] && read -r fpr source_signer <"$ok" && [[ $fpr == "$sha" && -n $source_signer ]]; then
		return
	fi
	command -v gpgv >/dev/null || die "gpgv is needed to check the signature of $tarball (hint: apt-get install gpgv, or set LINUX_SHA256 to its published sha256)"
	[[ -f $sig ]] || fetch "$LINUX_SIGN_URL" "$sig"
	keyring=$tarball.signers.gpg status=$tarball.gpgv
	dearmor "$signers_asc" "$keyring"
	log "checking the signature of $(basename "$tarball")"
	source_signer=
	if xz -dc "$tarball" | gpgv --status-fd 3 --keyring "$keyring" "$sig" - 3>"$status" 2>"$status.err"; then
		fpr=$(awk '$2 == "VALIDSIG" { print $NF }' "$status")
		for s in "${LINUX_SIGNERS[@]}"; do
			if [[ $fpr == "$s" ]]; then source_signer=$s; fi
		done
	fi
	if [[ -z $source_signer ]]; then
		local said
		said=$(lastlines 3 "$status.err")
		rm -f "$tarball" "$sig" "$keyring" "$status" "$status.err"
		die "$(basename "$tarball") from $LINUX_MIRROR has no good signature by a pinned kernel.org signer (${LINUX_SIGNERS[*]}); gpgv said: ${said:-nothing}(hint: it was deleted, run again to download it again; if kernel.org's signer changed, check the new key and add it to scripts/kernel-signers.asc and LINUX_SIGNERS, or set LINUX_SHA256 to the published sha256)"
	fi
	rm -f "$keyring" "$status" "$status.err"
	echo "$sha $source_signer" >"$ok"
}

# sha of a source directory: every regular file's path and hash, sorted.
sha_of_dir() {
	(cd "$1" && find . -type f ! -path './.git/*' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
}

check_toolchain

cache=${BANGER_BUILD_CACHE:-}
if [[ -z $cache ]]; then
	cache=/var/cache/banger/kernel-build
	if ! mkdir -p "$cache" 2>/dev/null || [[ ! -w $cache ]]; then
		cache=${XDG_CACHE_HOME:-$HOME/.cache}/banger/kernel-build
	fi
fi
mkdir -p "$cache" || die "cannot create build cache $cache (hint: set BANGER_BUILD_CACHE to a writable directory)"
cache=$(cd "$cache" && pwd)
signers_asc=$(dirname "$script_path")/kernel-signers.asc

# --- inputs -------------------------------------------------------------------
src_kind=tarball
source_signer=
if [[ -z ${LINUX_SRC:-} ]]; then
	src=$cache/downloads/linux-${LINUX_VERSION}.tar.xz
	mkdir -p "$cache/downloads"
	if [[ ! -f $src ]]; then
		log "downloading $LINUX_URL"
		fetch "$LINUX_URL" "$src"
	fi
	src_origin=$LINUX_URL
elif [[ -d $LINUX_SRC ]]; then
	src=$(cd "$LINUX_SRC" && pwd)
	src_kind=directory
	src_origin="directory $(basename "$src")"
elif [[ -f $LINUX_SRC ]]; then
	src=$(readlink -f "$LINUX_SRC")
	src_origin=$(basename "$src")
	# Name the distro package too when the tarball came from one (Debian's linux-source-*).
	if pkg=$(dpkg-query -S "$src" 2>/dev/null | cut -d: -f1) && [[ -n $pkg ]]; then
		src_origin="$src_origin (package $pkg $(dpkg-query -W -f '${Version}' "$pkg" 2>/dev/null))"
	fi
else
	die "LINUX_SRC=$LINUX_SRC is neither a linux-*.tar.xz file nor a source directory"
fi

if [[ $src_kind == tarball ]]; then
	log "hashing $src"
	src_sha=$(sha_of "$src")
	if [[ -n ${LINUX_SHA256:-} && $src_sha != "$LINUX_SHA256" ]]; then
		[[ -n ${LINUX_SRC:-} ]] || rm -f "$src" "$src.sign" "$src.verified" # a bad download is not kept
		die "source tarball $src has sha256 $src_sha, expected $LINUX_SHA256 (hint: download it again, or fix LINUX_SHA256)"
	fi
	if [[ -z ${LINUX_SRC:-} && -z ${LINUX_SHA256:-} ]]; then
		verify_signature "$src" "$src_sha"
		log "signed by $source_signer"
	fi
else
	[[ -f $src/Makefile && -f $src/Kconfig ]] || die "LINUX_SRC=$src does not look like a Linux source tree (no Makefile/Kconfig)"
	log "hashing source directory $src"
	src_sha=$(sha_of_dir "$src")
fi

if [[ -n ${FC_CONFIG:-} ]]; then
	[[ -f $FC_CONFIG && -r $FC_CONFIG ]] || die "FC_CONFIG=$FC_CONFIG is not a readable file"
	fc_config=$(readlink -f "$FC_CONFIG")
	config_origin=$(basename "$fc_config")
else
	fc_config=$cache/downloads/firecracker-${FC_CONFIG_REF}-${fc_arch}-6.1.config
	mkdir -p "$cache/downloads"
	[[ -f $fc_config ]] || fetch "$FC_CONFIG_URL" "$fc_config"
	if [[ $(sha_of "$fc_config") != "$FC_CONFIG_SHA256" ]]; then
		rm -f "$fc_config"
		die "Firecracker config $FC_CONFIG_URL does not match its pinned sha256 $FC_CONFIG_SHA256 (hint: update FC_CONFIG_REF/FC_CONFIG_SHA256 together, or pass FC_CONFIG=/path)"
	fi
	config_origin=$FC_CONFIG_URL
fi
grep -q '^CONFIG_' "$fc_config" || die "FC_CONFIG $fc_config has no CONFIG_ lines: not a kernel config"
config_sha=$(sha_of "$fc_config")

gcc_version=$("${cross}gcc" --version | head -n1)
ld_version=$("${cross}ld" --version | head -n1)
script_sha=$(sha_of "$script_path")
key=$(printf 'arch=%s\nsource=%s\nconfig=%s\nscript=%s\ngcc=%s\nld=%s\n' \
	"$arch" "$src_sha" "$config_sha" "$script_sha" "$gcc_version" "$ld_version" | sha256sum | cut -d' ' -f1)
result=$cache/$key

finish() {
	local tmp
	tmp=$(mktemp -d "$(dirname "$out_dir")/.generic-kernel.XXXXXX")
	cp "$result/vmlinux" "$result/config" "$result/provenance" "$tmp/"
	chmod 0755 "$tmp"
	rm -rf "$out_dir"
	mv "$tmp" "$out_dir"
	log "$1: $(grep '^kernel_version=' "$result/provenance" | cut -d= -f2) in $out_dir"
	log "vmlinux sha256 $(sha_of "$out_dir/vmlinux"), $(stat -c %s "$out_dir/vmlinux") bytes"
	log "elapsed $(($(date +%s) - start))s"
}

mkdir -p "$(dirname "$out_dir")"
if [[ -f $result/provenance ]]; then
	finish "cache hit ($result)"
	exit 0
fi

# One builder per key; a second caller waits and then takes the cache hit.
exec 9>"$result.lock"
if ! flock -n 9; then
	log "another build of these inputs is running; waiting for $result.lock"
	flock 9
fi
if [[ -f $result/provenance ]]; then
	finish "cache hit ($result)"
	exit 0
fi

# --- build --------------------------------------------------------------------
work=$result.work
staging=$result.tmp
cleanup() {
	if [[ ${KEEP_BUILD_TREE:-} != 1 ]]; then rm -rf "$work"; fi
	rm -rf "$staging"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
rm -rf "$work" "$staging"
mkdir -p "$work/linux"
tree=$work/linux
buildlog=$work/build.log

log "build key $key"
if [[ $src_kind == tarball ]]; then
	log "unpacking $src"
	tar -xf "$src" -C "$tree" --strip-components=1 --no-same-owner 2>"$work/tar.err" ||
		die "unpacking $src failed: $(lastlines 3 "$work/tar.err")(hint: the tarball is corrupt or not a linux-*.tar.xz; download it again)"
else
	(cd "$src" && tar -cf - --exclude=./.git .) | tar -xf - -C "$tree"
fi
[[ -f $tree/Makefile && -f $tree/Kconfig && -d $tree/arch/$srcarch ]] ||
	die "$src does not contain a Linux source tree (no Makefile/Kconfig/arch/$srcarch at its top level)"

# Everything the kernel build reads from the environment is pinned here.
kmake() {
	env -i PATH="$PATH" HOME="$work" LC_ALL=C TZ=UTC \
		KBUILD_BUILD_TIMESTAMP="$BUILD_TIMESTAMP" KBUILD_BUILD_USER="$BUILD_USER" \
		KBUILD_BUILD_HOST="$BUILD_HOST" KBUILD_BUILD_VERSION=1 SOURCE_DATE_EPOCH=0 \
		make --no-print-directory -C "$tree" ARCH="$karch" CROSS_COMPILE="$cross" LOCALVERSION= KCFLAGS="-ffile-prefix-map=$tree/=" "$@"
}

kernel_version=$(kmake -s kernelversion)
[[ $kernel_version =~ ^([0-9]+)\.([0-9]+) ]] || die "cannot read the kernel version from $src (make kernelversion said: $kernel_version)"
name=generic-${BASH_REMATCH[1]}.${BASH_REMATCH[2]}
log "building $name ($kernel_version) for $arch, $jobs jobs; log in $buildlog"

cp "$fc_config" "$tree/.config"
kmake olddefconfig >>"$buildlog" 2>&1 || die "make olddefconfig failed: $(lastlines 5 "$buildlog")"
cfg=("$tree/scripts/config" --file "$tree/.config")
for o in "${ESSENTIAL_Y[@]}"; do "${cfg[@]}" --enable "$o"; done
for o in "${ESSENTIAL_OFF[@]}"; do "${cfg[@]}" --disable "$o"; done
kmake olddefconfig >>"$buildlog" 2>&1 || die "make olddefconfig failed: $(lastlines 5 "$buildlog")"

bad=()
for o in "${ESSENTIAL_Y[@]}"; do
	v=$(grep -E "^(# )?CONFIG_${o}[= ]" "$tree/.config" || true)
	[[ $v == "CONFIG_${o}=y" ]] || bad+=("CONFIG_${o} is ${v:-absent} (want =y)")
done
for o in "${ESSENTIAL_OFF[@]}"; do
	! grep -qE "^CONFIG_${o}=" "$tree/.config" || bad+=("CONFIG_${o} is on (want off)")
done
if ((${#bad[@]})); then
	die "the config cannot satisfy the essentials: $(printf '%s; ' "${bad[@]}")(hint: a dependency of these options is off in $config_origin; enable it in FC_CONFIG)"
fi

log "compiling (make -j$jobs $target)"
if ! kmake -j"$jobs" "$target" >>"$buildlog" 2>&1; then
	cp "$buildlog" "$cache/last-failure.log"
	tail -n 30 "$buildlog" >&2
	die "kernel build failed (full log: $cache/last-failure.log)"
fi

mkdir -p "$staging"
if [[ $arch == x86_64 ]]; then
	"${cross}objcopy" --strip-all "$tree/vmlinux" "$staging/vmlinux"
	readelf -n "$staging/vmlinux" | grep -q 'Xen' || die "built vmlinux has no PVH (Xen ELF) note: it cannot be booted by Firecracker"
	image_note="stripped with objcopy --strip-all (ELF, PVH note kept)"
else
	# The arm64 boot Image carries its magic "ARM\x64" at byte 56.
	cp "$tree/$image" "$staging/vmlinux"
	[[ $(dd if="$staging/vmlinux" bs=1 skip=56 count=4 status=none | od -An -tx1 | tr -d ' \n') == 41524d64 ]] ||
		die "built $image has no arm64 Image header: it cannot be booted"
	image_note="the arm64 boot Image (arch/arm64/boot/Image, uncompressed)"
fi
cp "$tree/.config" "$staging/config"
{
	echo "name=$name"
	echo "kernel_version=$kernel_version"
	echo "arch=$arch"
	echo "source=$src_origin"
	echo "source_sha256=$src_sha"
	if [[ -n $source_signer ]]; then echo "source_signed_by=$source_signer"; fi
	echo "config_origin=$config_origin"
	echo "config_sha256=$config_sha"
	echo "final_config_sha256=$(sha_of "$staging/config")"
	echo "essentials=$(printf 'CONFIG_%s=y ' "${ESSENTIAL_Y[@]}")$(printf '# CONFIG_%s is not set ' "${ESSENTIAL_OFF[@]}")"
	echo "compiler=$gcc_version"
	echo "linker=$ld_version"
	echo "kbuild_build_timestamp=$BUILD_TIMESTAMP"
	echo "kbuild_build_user=$BUILD_USER"
	echo "kbuild_build_host=$BUILD_HOST"
	echo "script_sha256=$script_sha"
	echo "build_key=$key"
	echo "vmlinux=$image_note"
	echo "vmlinux_sha256=$(sha_of "$staging/vmlinux")"
	echo "vmlinux_size=$(stat -c %s "$staging/vmlinux")"
} >"$staging/provenance"
rm -rf "$result"
mv "$staging" "$result"
finish "built in $(($(date +%s) - start))s"
