#!/usr/bin/env bash
# Benchmark `banger kernel pull` against the shell pipeline
#   curl -s URL | tee >(sha256sum) | zstd -dc | tar -x
# on the same ~100 MB bundle served from 127.0.0.1, alternating rounds.
# banger flushes what it installs to disk before renaming it into place;
# the pipeline does not, so a third timing adds `sync -f` to the pipeline
# for a like-for-like comparison.
set -euo pipefail

usage() {
	cat <<'USAGE'
Usage: scripts/bench-pull.sh [--rounds N] [--size-mb M]

Builds a bundle whose vmlinux is ~M MiB (default 100) of real ELF code taken
from this machine's binaries, serves it on 127.0.0.1 with python3's
http.server, and times N rounds (default 5) of banger and of the pipeline.
Prints both medians, the ratio banger/pipeline and throughput.
Needs: bin/banger (make build), curl, zstd, tar, python3, sha256sum.
USAGE
}

rounds=5
size_mb=100
while [[ $# -gt 0 ]]; do
	case "$1" in
	--rounds) rounds=$2; shift 2 ;;
	--size-mb) size_mb=$2; shift 2 ;;
	-h | --help) usage; exit 0 ;;
	*) echo "bench-pull.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
done

repo=$(cd "$(dirname "$0")/.." && pwd)
banger=${BANGER:-$repo/bin/banger}
[[ -x $banger ]] || { echo "bench-pull.sh: $banger not found (hint: run make build)" >&2; exit 1; }
for tool in curl zstd tar python3 sha256sum; do
	command -v "$tool" >/dev/null || { echo "bench-pull.sh: $tool is missing (hint: run scripts/install-deps.sh)" >&2; exit 1; }
done

work=$(mktemp -d /tmp/banger-bench-pull.XXXXXX)
server_pid=
cleanup() {
	[[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

# A vmlinux-sized blob of real machine code: concatenated ELF files.
mkdir -p "$work/src" "$work/srv"
want=$((size_mb * 1024 * 1024))
have=0
while read -r f && ((have < want)); do
	cat "$f" >>"$work/src/vmlinux"
	have=$(stat -c %s "$work/src/vmlinux")
done < <(find /usr/lib/x86_64-linux-gnu /usr/bin /usr/libexec -type f -size +200k 2>/dev/null | sort)
truncate -s "$want" "$work/src/vmlinux"
tar -C "$work/src" --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -cf - vmlinux |
	zstd -q -12 -T0 -o "$work/srv/bench-1.0-x86_64.tar.zst"
tarball=$work/srv/bench-1.0-x86_64.tar.zst
size=$(stat -c %s "$tarball")
sha=$(sha256sum "$tarball" | cut -d' ' -f1)
raw=$(stat -c %s "$work/src/vmlinux")

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 -m http.server --bind 127.0.0.1 --directory "$work/srv" "$port" >/dev/null 2>&1 &
server_pid=$!
url="http://127.0.0.1:$port/bench-1.0-x86_64.tar.zst"
for _ in $(seq 50); do curl -sfI "$url" >/dev/null && break; sleep 0.1; done

cat >"$work/catalog.json" <<JSON
{"version": 1, "entries": [{"name": "bench-1.0", "distro": "bench", "arch": "x86_64",
  "kernel_version": "1.0.0", "url": "$url", "sha256": "$sha", "size": $size, "description": "bench"}]}
JSON

now() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

: >"$work/banger.times"
: >"$work/pipe.times"
: >"$work/pipesync.times"
for i in $(seq "$rounds"); do
	state=$work/state-$i
	t0=$(now)
	BANGER_CATALOG=$work/catalog.json BANGER_STATE_DIR=$state "$banger" kernel pull bench-1.0 >/dev/null 2>&1
	t1=$(now)
	echo $(((t1 - t0) / 1000)) >>"$work/banger.times"
	cmp -s "$state/kernels/bench-1.0/vmlinux" "$work/src/vmlinux" || { echo "banger's vmlinux differs" >&2; exit 1; }
	rm -rf "$state"

	out=$work/pipe-$i
	mkdir -p "$out"
	t0=$(now)
	curl -s "$url" | tee >(sha256sum >"$work/pipe.sum") | zstd -dc | tar -x -C "$out"
	t1=$(now)
	echo $(((t1 - t0) / 1000)) >>"$work/pipe.times"
	cmp -s "$out/vmlinux" "$work/src/vmlinux" || { echo "pipeline's vmlinux differs" >&2; exit 1; }
	rm -rf "$out"

	mkdir -p "$out"
	t0=$(now)
	curl -s "$url" | tee >(sha256sum >"$work/pipe.sum") | zstd -dc | tar -x -C "$out"
	sync -f "$out/vmlinux"
	t1=$(now)
	echo $(((t1 - t0) / 1000)) >>"$work/pipesync.times"
	rm -rf "$out"
done

b=$(median <"$work/banger.times")
p=$(median <"$work/pipe.times")
ps=$(median <"$work/pipesync.times")
awk -v b="$b" -v p="$p" -v ps="$ps" -v raw="$raw" -v size="$size" -v n="$rounds" 'BEGIN {
	printf "bundle: %.1f MiB compressed, %.1f MiB vmlinux; %d rounds each, alternating\n", size/1048576, raw/1048576, n
	printf "banger kernel pull: median %.3f s (%.0f MiB/s uncompressed)\n", b/1e6, raw/1048576/(b/1e6)
	printf "curl|tee>(sha256sum)|zstd -dc|tar -x: median %.3f s (%.0f MiB/s uncompressed)\n", p/1e6, raw/1048576/(p/1e6)
	printf "same pipeline, then sync -f: median %.3f s (%.0f MiB/s uncompressed)\n", ps/1e6, raw/1048576/(ps/1e6)
	printf "ratio banger/pipeline: %.2fx; banger/(pipeline+sync): %.2fx\n", b/p, b/ps
}'
