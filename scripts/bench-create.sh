#!/usr/bin/env bash
# VM creation benchmark: "banger vm create" of an image, several rounds,
# with the time and the bytes the command (and its helpers) wrote, against
# "banger version" (the cost of starting banger at all) run alongside.
set -euo pipefail

usage() {
	cat <<'USAGE'
Usage: scripts/bench-create.sh [--rounds N] [--image NAME] [--vmm V] [--disk-size SIZE]

Needs an existing image in the state directory in use (BANGER_STATE_DIR,
else banger's default). Each round, alternating which goes first, times
  create:   banger vm create bench-create-PID-N --image IMAGE --vmm V [--disk-size SIZE]
  baseline: banger version
and reads the bytes the create wrote to storage (write_bytes of
/proc/PID/io: the command and the helpers it ran). Prints each round, the
medians, the disk kind "vm show --json" reports and what the VM's
directory takes on disk; the VMs are removed at the end. The first round
may also look for an SSH server in the image (cached afterwards).

Options:
  --rounds N        rounds to run (default 5)
  --image NAME      image to create VMs from (default golden)
  --vmm V           qemu or firecracker (default qemu)
  --disk-size SIZE  pass --disk-size SIZE to vm create (default: none)

Environment:
  BANGER            banger binary (default: bin/banger in this checkout)
  BANGER_STATE_DIR  banger's state directory (default: banger's default)
USAGE
}

rounds=5
image=golden
vmm=qemu
size=()
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
	--image)
		image=${2:?--image needs a name}
		shift 2
		;;
	--vmm)
		vmm=${2:?--vmm needs qemu or firecracker}
		shift 2
		;;
	--disk-size)
		size=(--disk-size "${2:?--disk-size needs a size}")
		shift 2
		;;
	*)
		echo "bench-create.sh: unknown argument $1 (see --help)" >&2
		exit 2
		;;
	esac
done

die() {
	echo "bench-create.sh: $*" >&2
	exit 1
}

repo=$(cd "$(dirname "$0")/.." && pwd)
banger=${BANGER:-$repo/bin/banger}
[[ $rounds =~ ^[1-9][0-9]*$ ]] || die "--rounds needs a positive number, not $rounds"
[[ -x $banger ]] || die "no banger binary at $banger (hint: make build, or set BANGER)"
for tool in jq awk du; do
	command -v "$tool" >/dev/null || die "$tool not found (hint: scripts/install-deps.sh)"
done
"$banger" image show "$image" --json >/dev/null ||
	die "image $image not found (hint: --image NAME, or set BANGER_STATE_DIR; see banger image list)"

vms=()
cleanup() {
	for v in "${vms[@]}"; do
		"$banger" vm rm --force "$v" >/dev/null 2>&1 || true
	done
}
trap cleanup EXIT

now() { date +%s%N; }
# written PID: the bytes process PID and its reaped children wrote.
written() { awk '/^write_bytes/ {print $2}' "/proc/$1/io"; }

# create N: creates VM bench-create-PID-N; prints "ms bytes".
create() {
	local t0 t1 b0 b1 me=$BASHPID
	b0=$(written "$me")
	t0=$(now)
	"$banger" vm create "bench-create-$$-$1" --image "$image" --vmm "$vmm" "${size[@]}" >/dev/null </dev/null ||
		die "banger vm create failed"
	t1=$(now)
	b1=$(written "$me")
	echo "$(((t1 - t0) / 1000000)) $((b1 - b0))"
}

baseline() {
	local t0 t1
	t0=$(now)
	"$banger" version >/dev/null
	t1=$(now)
	echo $(((t1 - t0) / 1000000))
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2)}'; }

read -r image_size image_usage < <("$banger" image show "$image" --json | jq -r '[.rootfs_size, .disk_usage] | @tsv')
echo "image $image: $((image_size >> 20)) MiB rootfs, $((image_usage >> 20)) MiB on disk; vm create --vmm $vmm${size[*]:+ ${size[*]}} (host: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg))"
times=() bytes=() base=()
for ((i = 1; i <= rounds; i++)); do
	vms+=("bench-create-$$-$i")
	if ((i % 2)); then
		read -r ms b < <(create "$i")
		v=$(baseline)
	else
		v=$(baseline)
		read -r ms b < <(create "$i")
	fi
	times+=("$ms") bytes+=("$b") base+=("$v")
	printf 'round %d: vm create %d ms, %d bytes written; banger version %d ms\n' "$i" "$ms" "$b" "$v"
done
first=bench-create-$$-1
kind=$("$banger" vm show "$first" --json | jq -r '.disk_kind')
usage=$(du -sk "$("$banger" vm show "$first" --json | jq -r '.dir')" | cut -f1)
printf 'median over %d rounds: vm create %d ms, %d bytes written; banger version %d ms\n' \
	"$rounds" "$(printf '%s\n' "${times[@]}" | median)" "$(printf '%s\n' "${bytes[@]}" | median)" "$(printf '%s\n' "${base[@]}" | median)"
printf 'disk: %s; a VM directory takes %d KiB on disk\n' "$kind" "$usage"
