#!/usr/bin/env bash
# Benchmark "banger image build" against the pipeline
#   crane export REF - | tar -x -C dir && mkfs.ext4 -d dir
# on the same ~200 MB image served by a local registry, in the same run.
set -euo pipefail

usage() {
	cat <<'USAGE'
Usage: scripts/bench-image.sh [--rounds N] [--help]

Builds crane (go-containerregistry) from the Go module proxy, serves a
registry on 127.0.0.1, pushes a ~200 MB three-layer image made from host
directories, then times, round after round (alternating which goes
first), a cold "banger image build" (empty state and cache) and
  crane export REF - | tar -x -C dir && mkfs.ext4 -d dir IMG
with the same image size. Prints each round, the medians and the ratio
banger/crane (target: <= 1.0). banger also fsyncs the image and hashes
it; the "crane+fsync" column adds an fsync to the pipeline for reference.

Options:
  --rounds N   rounds to run (default 5)

Environment:
  BANGER      banger binary (default: bin/banger in this checkout)
  BENCH_DIRS  host directories that become the layers
              (default: "usr/lib/gcc usr/lib/python3.11 usr/share/perl")
  BENCH_WORK  scratch directory on a disk (default: mktemp under /var/tmp)
USAGE
}

rounds=5
while [[ $# -gt 0 ]]; do
	case "$1" in
	-h | --help)
		usage
		exit 0
		;;
	--rounds)
		rounds=${2:?--rounds needs a value}
		shift 2
		;;
	*)
		echo "bench-image.sh: unknown argument $1 (see --help)" >&2
		exit 2
		;;
	esac
done

die() {
	echo "bench-image.sh: $*" >&2
	exit 1
}

repo=$(cd "$(dirname "$0")/.." && pwd)
banger=${BANGER:-$repo/bin/banger}
read -r -a dirs <<<"${BENCH_DIRS:-usr/lib/gcc usr/lib/python3.11 usr/share/perl}"
[[ -x $banger ]] || die "no banger binary at $banger (hint: make build, or set BANGER)"
for tool in go curl jq python3 mkfs.ext4 awk; do
	command -v "$tool" >/dev/null || die "$tool not found (hint: scripts/install-deps.sh)"
done
[[ $(id -u) -eq 0 ]] || die "needs root: image builds keep file owners (hint: sudo -E scripts/bench-image.sh)"

work=${BENCH_WORK:-$(mktemp -d /var/tmp/banger-bench-XXXXXX)}
mkdir -p "$work"
registry_pid=
cleanup() {
	if [[ -n $registry_pid ]]; then
		kill "$registry_pid" 2>/dev/null || true
		wait "$registry_pid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT

step() { echo "==> $*" >&2; }

ggcr=$(cd "$repo" && go list -m -f '{{.Version}}' github.com/google/go-containerregistry)
step "building crane $ggcr from the module proxy"
GOBIN=$work/bin GOFLAGS='' go install "github.com/google/go-containerregistry/cmd/crane@$ggcr"
crane=$work/bin/crane

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$crane" registry serve --address "127.0.0.1:$port" >"$work/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 50); do
	curl -sf "http://127.0.0.1:$port/v2/" >/dev/null && break
	sleep 0.1
done
curl -sf "http://127.0.0.1:$port/v2/" >/dev/null || die "the registry did not start: $(cat "$work/registry.log")"

ref=127.0.0.1:$port/bench/image:v1
layers=()
for i in "${!dirs[@]}"; do
	[[ -d /${dirs[$i]} ]] || die "/${dirs[$i]} does not exist (hint: set BENCH_DIRS)"
	tar -C / -cf "$work/layer$i.tar" "${dirs[$i]}"
	layers+=(-f "$work/layer$i.tar")
done
step "pushing $ref: ${dirs[*]} ($(du -shc "$work"/layer*.tar | tail -1 | cut -f1) uncompressed)"
"$crane" append "${layers[@]}" -t "$ref" 2>/dev/null >/dev/null
"$crane" mutate --set-platform linux/amd64 -t "$ref" "$ref" 2>/dev/null >/dev/null
rm -f "$work"/layer*.tar
compressed=$("$crane" manifest "$ref" | jq '[.layers[].size] | add')

# A stand-in kernel: the benchmark never boots.
mkdir -p "$work/kdir"
echo "not a kernel" >"$work/kdir/vmlinux"
export BANGER_KERNELS_DIR=$work/kernels
BANGER_STATE_DIR=$work/state "$banger" kernel import bench --from "$work/kdir" --distro bench --arch x86_64 --kernel-version 0.0.0 >/dev/null

build_banger() {
	BANGER_STATE_DIR=$work/state "$banger" image build --from-image "$ref" --name bench --kernel-ref bench ${size:+--size "$size"} >/dev/null 2>"$work/banger.log"
}
build_crane() {
	mkdir "$work/tree"
	"$crane" export "$ref" - | tar -x -C "$work/tree"
	truncate -s "$size" "$work/out.img"
	mkfs.ext4 -q -F -b 4096 -d "$work/tree" "$work/out.img"
}
build_crane_fsync() {
	build_crane
	sync "$work/out.img"
}
reset() {
	rm -rf "$work/state/images" "$work/state/cache" "$work/tree" "$work/out.img"
	sync
}
# timed CMD...: runs CMD and sets wall and cpu (user+sys of everything CMD
# runs) in seconds.
timed() {
	local TIMEFORMAT='%R %U %S' t
	t=$({ time "$@" >/dev/null 2>&1; } 2>&1) || die "$1 failed (hint: rerun with BENCH_WORK set and look at $work/banger.log)"
	read -r wall cpu < <(awk '{printf "%.2f %.2f\n", $1, $2 + $3}' <<<"$t")
}

step "warm-up build (sets the image size both sides use)"
size=
build_banger || die "banger image build failed: $(tail -3 "$work/banger.log")"
size=$(BANGER_STATE_DIR=$work/state "$banger" image show bench --json | jq .rootfs_size)
content=$(du -sm "$work/state/cache/images" | cut -f1)

printf '\n%-7s %18s %18s %18s\n' "" "banger" "crane pipeline" "crane+fsync"
printf '%-7s %9s %8s %9s %8s %9s %8s\n' round wall cpu wall cpu wall cpu
bw=() bc=() cw=() cc=() sw=() sc=()
for r in $(seq "$rounds"); do
	if ((r % 2)); then
		reset && timed build_banger && tbw=$wall tbc=$cpu
		reset && timed build_crane && tcw=$wall tcc=$cpu
	else
		reset && timed build_crane && tcw=$wall tcc=$cpu
		reset && timed build_banger && tbw=$wall tbc=$cpu
	fi
	reset && timed build_crane_fsync && tsw=$wall tsc=$cpu
	bw+=("$tbw") bc+=("$tbc") cw+=("$tcw") cc+=("$tcc") sw+=("$tsw") sc+=("$tsc")
	printf '%-7s %8ss %7ss %8ss %7ss %8ss %7ss\n' "$r" "$tbw" "$tbc" "$tcw" "$tcc" "$tsw" "$tsc"
done

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {printf "%.2f", (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
m_bw=$(median "${bw[@]}") m_bc=$(median "${bc[@]}")
m_cw=$(median "${cw[@]}") m_cc=$(median "${cc[@]}")
m_sw=$(median "${sw[@]}") m_sc=$(median "${sc[@]}")
printf '%-7s %8ss %7ss %8ss %7ss %8ss %7ss\n' median "$m_bw" "$m_bc" "$m_cw" "$m_cc" "$m_sw" "$m_sc"
echo
echo "image: ${content} MiB of files, $((compressed / 1048576)) MiB compressed in ${#dirs[@]} layers, $((size / 1048576)) MiB ext4; load average $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2fx", a / b}'; }
echo "banger / crane pipeline:       wall $(ratio "$m_bw" "$m_cw") (target <= 1.0), cpu $(ratio "$m_bc" "$m_cc")"
echo "banger / crane pipeline+fsync: wall $(ratio "$m_bw" "$m_sw"), cpu $(ratio "$m_bc" "$m_sc")"
