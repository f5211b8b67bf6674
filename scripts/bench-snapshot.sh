#!/usr/bin/env bash
# Warm-snapshot benchmark: "banger vm run --rm IMAGE -- true" booting the
# image (--cold) against restoring its warm snapshot (IMAGE.warm),
# alternating, several rounds. Prints both medians, the ratio warm/cold,
# the restore step alone, and the snapshot's size and save time.
set -euo pipefail

usage() {
	cat <<'USAGE'
Usage: scripts/bench-snapshot.sh [--rounds N] [--image NAME]

Needs an existing image with an SSH server (sshd or dropbear) in the state
directory in use (BANGER_STATE_DIR, else banger's default). Warms it once
with "banger image warm IMAGE --cpus 1 --memory 512M" (timed; this replaces
any warm snapshot it had, and the new one is kept afterwards), then times
each round, alternating which goes first:
  cold:  banger vm run --rm --cold IMAGE -- true   (full boot until SSH)
  warm:  banger vm run --rm IMAGE -- true          (restore of IMAGE.warm)
and, once per round, a kept warm run ("vm run --name X IMAGE -- true")
whose "vm show X --json" gives the restore step alone (.boot.vmm_ms: VMM
start until the restored guest runs) and must say .path "restore"; it is
then removed with "vm rm --force". Prints the medians, the ratio
warm/cold, and the warm snapshot's size (state_size, state_disk_usage,
disk_usage) and
save_ms (time the guest was paused) from "banger snapshot show IMAGE.warm".

Options:
  --rounds N    rounds to run (default 5)
  --image NAME  image to benchmark (default golden)

Environment:
  BANGER            banger binary (default: bin/banger in this checkout)
  BANGER_STATE_DIR  banger's state directory (default: banger's default)
USAGE
}

rounds=5
image=golden
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
	*)
		echo "bench-snapshot.sh: unknown argument $1 (see --help)" >&2
		exit 2
		;;
	esac
done

die() {
	echo "bench-snapshot.sh: $*" >&2
	exit 1
}

repo=$(cd "$(dirname "$0")/.." && pwd)
banger=${BANGER:-$repo/bin/banger}
[[ $rounds =~ ^[1-9][0-9]*$ ]] || die "--rounds needs a positive number, not $rounds"
[[ -x $banger ]] || die "no banger binary at $banger (hint: make build, or set BANGER)"
for tool in jq awk; do
	command -v "$tool" >/dev/null || die "$tool not found (hint: scripts/install-deps.sh)"
done

work=$(mktemp -d /tmp/bgsnap.XXXXXX)
vm=
cleanup() {
	if [[ -n $vm ]]; then
		"$banger" vm rm --force "$vm" >/dev/null 2>&1 || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT

state=${BANGER_STATE_DIR:-the default state directory}
if ! "$banger" image show "$image" --json >/dev/null 2>"$work/show.err"; then
	grep -q 'not found' "$work/show.err" || die "$(cat "$work/show.err")"
	die "image $image not found in $state (hint: --image NAME, or set BANGER_STATE_DIR; see banger image list)"
fi

now() { date +%s%N; }

# run LOG CMD...: runs banger CMD, stdin closed, output in LOG; on failure
# shows the end of LOG and exits.
run() {
	local log=$1
	shift
	"$banger" "$@" </dev/null >"$log" 2>&1 || {
		tail -5 "$log" >&2
		die "banger $* failed"
	}
}

# timed_run CMD...: runs banger CMD and prints its wall-clock time in ms.
timed_run() {
	local t0 t1
	t0=$(now)
	run "$work/run.log" "$@"
	t1=$(now)
	echo $(((t1 - t0) / 1000000))
}

# restore_step N: a kept warm run; sets step to its .boot.vmm_ms.
restore_step() {
	local path
	vm=bench-restore-$$-$1
	run "$work/restore.log" vm run --name "$vm" "$image" -- true
	"$banger" vm show "$vm" --json >"$work/show.json"
	path=$(jq -r '.path' "$work/show.json")
	[[ $path == restore ]] ||
		die "round $1: the warm run took path \"$path\", not \"restore\" (its CPUs, memory, VMM or network differ from the warm snapshot's, or the image or kernel changed since)"
	step=$(jq -r '.boot.vmm_ms' "$work/show.json")
	"$banger" vm rm --force "$vm" >/dev/null
	vm=
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2)}'; }

warm_ms=$(timed_run image warm "$image" --cpus 1 --memory 512M)
"$banger" snapshot show "$image.warm" --json >"$work/snap.json" ||
	die "image warm left no snapshot $image.warm"
read -r vmm accel cpus mem state_size state_usage disk_usage save_ms < <(jq -r '[.vmm, .accel, .cpus, .memory_mib, .state_size, .state_disk_usage, .disk_usage, .save_ms] | @tsv' "$work/snap.json")

echo "image $image, $vmm ($accel; host: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)), warm snapshot for $cpus CPU(s), ${mem}M"
cold=() warm=() steps=()
for ((i = 1; i <= rounds; i++)); do
	# Alternate which goes first, so drift in machine load hits both alike.
	if ((i % 2)); then
		c=$(timed_run vm run --rm --cold "$image" -- true)
		w=$(timed_run vm run --rm "$image" -- true)
	else
		w=$(timed_run vm run --rm "$image" -- true)
		c=$(timed_run vm run --rm --cold "$image" -- true)
	fi
	restore_step "$i"
	cold+=("$c") warm+=("$w") steps+=("$step")
	printf 'round %d: cold %d ms, warm %d ms, restore step %d ms\n' "$i" "$c" "$w" "$step"
done
mc=$(printf '%s\n' "${cold[@]}" | median)
mw=$(printf '%s\n' "${warm[@]}" | median)
ms=$(printf '%s\n' "${steps[@]}" | median)
mib() { awk -v b="$1" 'BEGIN {printf "%.1f MiB", b / 1048576}'; }
printf 'median over %d rounds: cold %d ms, warm %d ms, ratio warm/cold %s, restore step %d ms\n' \
	"$rounds" "$mc" "$mw" "$(awk -v a="$mw" -v b="$mc" 'BEGIN {printf "%.2f", a / b}')" "$ms"
printf 'warm snapshot %s: memory and device state %s (%s on disk, zero pages as holes), whole snapshot with its disk %s on disk; image warm %d ms, guest paused %d ms to save\n' \
	"$image.warm" "$(mib "$state_size")" "$(mib "$state_usage")" "$(mib "$disk_usage")" "$warm_ms" "$save_ms"
