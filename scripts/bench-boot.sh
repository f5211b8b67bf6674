#!/usr/bin/env bash
# Boot benchmark: the same kernel and rootfs booted to the ready marker
# with "banger vm run --rm" and with the bare QEMU command line banger
# generates (taken from "banger vm show --json"), alternating, several
# rounds. Prints both medians and the ratio (target: banger <= 1.1x bare).
set -euo pipefail

usage() {
	cat <<'USAGE'
Usage: scripts/bench-boot.sh [--rounds N] [--arch x86_64|arm64]

Each round boots the shared test kernel of the arch (default x86_64:
kernels/test-6.12-x86_64.tar.zst; arm64: kernels/test-6.12-arm64.tar.zst
on qemu-system-aarch64 -M virt, under TCG on an x86_64 host) with a
busybox ext4 root whose init prints a marker and reboots, which ends
QEMU:
  bare:   the exact QEMU argv banger ran for a VM of that kernel and rootfs,
          run in the foreground until QEMU exits
  banger: banger vm run --rm --kernel K --rootfs R --ready-marker MARK,
          i.e. create (disk copy), start, wait for the marker, attach the
          console until the guest reboots, remove
Both use user-mode networking (banger's default for QEMU) and the same
accelerator (KVM when usable, else TCG; BANGER_QEMU_ACCEL forces it).

Environment:
  BANGER             banger binary (default: bin/banger, built if missing)
  BANGER_SHARED_DIR  directory holding kernels/ (default: <repo>/../shared)
  BANGER_GUEST_DEBS  arm64: directory holding Debian's busybox-static arm64
                     package (default: /var/cache/banger/guest-arm64, where
                     scripts/install-deps.sh downloads it)
USAGE
}

rounds=7
arch=x86_64
while [[ $# -gt 0 ]]; do
	case "$1" in
	-h | --help)
		usage
		exit 0
		;;
	--rounds)
		rounds=${2:?--rounds needs a number}
		shift 2
		;;
	--arch)
		arch=${2:?--arch needs x86_64 or arm64}
		shift 2
		;;
	*)
		echo "bench-boot.sh: unknown argument $1 (see --help)" >&2
		exit 2
		;;
	esac
done

case $arch in
x86_64 | amd64) arch=x86_64 qemu=qemu-system-x86_64 ;;
arm64 | aarch64) arch=arm64 qemu=qemu-system-aarch64 ;;
*)
	echo "bench-boot.sh: unknown arch $arch (want x86_64 or arm64)" >&2
	exit 2
	;;
esac

repo=$(cd "$(dirname "$0")/.." && pwd)
shared=${BANGER_SHARED_DIR:-$repo/../shared}
bundle=$shared/kernels/test-6.12-$arch.tar.zst
banger=${BANGER:-$repo/bin/banger}
[[ -f $bundle ]] || {
	echo "bench-boot.sh: test kernel bundle $bundle not found (hint: set BANGER_SHARED_DIR)" >&2
	exit 1
}
for tool in "$qemu" mkfs.ext4 busybox jq zstd tar; do
	command -v "$tool" >/dev/null || {
		echo "bench-boot.sh: $tool not found (hint: scripts/install-deps.sh)" >&2
		exit 1
	}
done
if [[ ! -x $banger ]]; then
	(cd "$repo" && go build -o "$banger" ./cmd/banger)
fi

# A short state directory keeps unix socket paths short.
work=$(mktemp -d /tmp/bgbench.XXXXXX)
export BANGER_STATE_DIR=$work/state
cleanup() {
	"$banger" vm rm --force bench-argv >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

marker="bench-ready-$RANDOM"
mkdir -p "$work/kernel" "$work/root"/{bin,sbin,proc,sys,dev}
zstd -dc "$bundle" | tar -x -C "$work/kernel"
"$banger" kernel import bench --from "$work/kernel" --distro test --arch "$arch" >/dev/null
if [[ $arch == arm64 ]]; then
	debs=${BANGER_GUEST_DEBS:-/var/cache/banger/guest-arm64}
	deb=$(compgen -G "$debs/busybox-static_*_arm64.deb" | head -n1) || true
	[[ -n $deb ]] || {
		echo "bench-boot.sh: no busybox-static arm64 package in $debs (hint: scripts/install-deps.sh downloads it)" >&2
		exit 1
	}
	dpkg-deb -x "$deb" "$work/busybox-arm64"
	cp "$work/busybox-arm64/bin/busybox" "$work/root/bin/busybox"
else
	cp "$(command -v busybox)" "$work/root/bin/busybox"
fi
for applet in sh mount echo reboot; do ln -s busybox "$work/root/bin/$applet"; done
cat >"$work/root/sbin/init" <<EOF
#!/bin/sh
mount -t proc proc /proc
echo $marker
reboot -f
EOF
chmod +x "$work/root/sbin/init"
mkfs.ext4 -q -d "$work/root" "$work/rootfs.ext4" 32M

# One banger run, kept, to record the QEMU command line it generates.
"$banger" vm run --name bench-argv --kernel bench --rootfs "$work/rootfs.ext4" \
	--ready-marker "$marker" >/dev/null 2>"$work/argv.err" || {
	cat "$work/argv.err" >&2
	exit 1
}
mapfile -t argv < <("$banger" vm show bench-argv --json | jq -r '.vmm_argv[]')
accel=$("$banger" vm show bench-argv --json | jq -r '.accel')
console=$("$banger" vm show bench-argv --json | jq -r '.console_log')
[[ ${#argv[@]} -gt 0 ]] || {
	echo "bench-boot.sh: banger recorded no QEMU command line" >&2
	exit 1
}

now() { date +%s%N; }

bare_run() {
	: >"$console"
	local t0 t1
	t0=$(now)
	"${argv[@]}" </dev/null >/dev/null 2>&1
	t1=$(now)
	grep -q "$marker" "$console" || {
		echo "bench-boot.sh: bare QEMU run did not print the marker" >&2
		exit 1
	}
	echo $(((t1 - t0) / 1000000))
}

banger_run() {
	local t0 t1 out
	t0=$(now)
	out=$("$banger" vm run --rm --kernel bench --rootfs "$work/rootfs.ext4" \
		--ready-marker "$marker" </dev/null 2>"$work/run.err") || {
		cat "$work/run.err" >&2
		exit 1
	}
	t1=$(now)
	grep -q "$marker" <<<"$out" || {
		echo "bench-boot.sh: banger run did not show the marker" >&2
		exit 1
	}
	echo $(((t1 - t0) / 1000000))
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2)}'; }

echo "guest: $arch, accelerator: $accel ($(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg))"
echo "QEMU command line: ${argv[*]}"
bare=() ours=()
for ((i = 1; i <= rounds; i++)); do
	# Alternate which goes first, so drift in machine load hits both alike.
	if ((i % 2)); then
		b=$(bare_run)
		o=$(banger_run)
	else
		o=$(banger_run)
		b=$(bare_run)
	fi
	bare+=("$b") ours+=("$o")
	printf 'round %d: bare %d ms, banger %d ms\n' "$i" "$b" "$o"
done
mb=$(printf '%s\n' "${bare[@]}" | median)
mo=$(printf '%s\n' "${ours[@]}" | median)
printf 'median over %d rounds: bare QEMU %d ms, banger vm run --rm %d ms, ratio %s (target <= 1.10)\n' \
	"$rounds" "$mb" "$mo" "$(awk -v a="$mo" -v b="$mb" 'BEGIN {printf "%.2f", a / b}')"
