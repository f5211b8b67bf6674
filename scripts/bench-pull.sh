#!/usr/bin/env bash
# Benchmark `banger kernel pull` against the shell pipeline
#   curl -s URL | tee >(sha256sum) | zstd -dc | tar -x
# on two bundles served from 127.0.0.1, in alternating order each round:
#   - vmlinux: one ~100 MB vmlinux;
#   - modules: a vmlinux and a modules/ tree of thousands of real files,
#     as a distribution kernel's bundle has.
# banger flushes what it installs to disk before renaming it into place;
# the pipeline does not, so a third timing adds `sync -f` to the pipeline
# for a like-for-like comparison.
set -euo pipefail

usage() {
	cat <<'USAGE'
Usage: scripts/bench-pull.sh [--rounds N] [--size-mb M] [--modules-from DIR] [--bundle vmlinux|modules|both]

Builds two bundles, serves them on 127.0.0.1 with python3's http.server and
times N rounds (default 5) of banger kernel pull, of the pipeline and of the
pipeline followed by sync -f, rotating their order each round. Prints, per
bundle, the medians, the ratios banger/pipeline and banger/(pipeline+sync),
each run's time, the median CPU time (user+system of the processes timed,
sha256sum aside; a busy machine disturbs it less than the wall time) and
the load average before and after.

  vmlinux   a bundle holding a ~M MiB vmlinux (default 100) of real ELF code
            taken from this machine's binaries.
  modules   a 16 MiB vmlinux and a modules/ tree of at least 5,000 real files:
            DIR if given, else /usr/lib/modules/$(uname -r) when it has that
            many, else drivers/net of the kernel source tarball
            /usr/src/linux-source-*.tar.xz (installed by
            scripts/install-deps.sh; about 6,300 files and 150 MB).

Every run writes into a fresh directory and the trees are only removed at
the end: creating files where thousands were just deleted is slow on ext4
for minutes (it skips recently freed inodes), which would time the
deletions rather than the installs. A sync before each run (not timed)
keeps a run from paying for the previous one's writes. Needs about
3 x N x (size of both bundles unpacked) of space in $TMPDIR.
Needs: bin/banger (make build), curl, zstd, tar, xz, python3, sha256sum.
USAGE
}

rounds=5
size_mb=100
modules_from=
which=both
while [[ $# -gt 0 ]]; do
	case "$1" in
	--rounds) rounds=$2; shift 2 ;;
	--size-mb) size_mb=$2; shift 2 ;;
	--modules-from) modules_from=$2; shift 2 ;;
	--bundle) which=$2; shift 2 ;;
	-h | --help) usage; exit 0 ;;
	*) echo "bench-pull.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
done
case $which in vmlinux | modules | both) ;; *) echo "bench-pull.sh: --bundle must be vmlinux, modules or both" >&2; exit 2 ;; esac

repo=$(cd "$(dirname "$0")/.." && pwd)
banger=${BANGER:-$repo/bin/banger}
[[ -x $banger ]] || { echo "bench-pull.sh: $banger not found (hint: run make build)" >&2; exit 1; }
for tool in curl zstd tar xz python3 sha256sum; do
	command -v "$tool" >/dev/null || { echo "bench-pull.sh: $tool is missing (hint: run scripts/install-deps.sh)" >&2; exit 1; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/banger-bench-pull.XXXXXX")
server_pid=
cleanup() {
	[[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/srv" "$work/runs"

# vmlinux_of SIZE_MIB OUT: a vmlinux-sized blob of real machine code,
# concatenated ELF files.
vmlinux_of() {
	local want=$(($1 * 1024 * 1024)) have=0 f
	: >"$2"
	while read -r f && ((have < want)); do
		cat "$f" >>"$2"
		have=$(stat -c %s "$2")
	done < <(find /usr/lib/x86_64-linux-gnu /usr/bin /usr/libexec -type f -size +200k 2>/dev/null | sort)
	truncate -s "$want" "$2"
}

# modules_tree OUT: a modules/ tree of at least 5,000 real files.
modules_tree() {
	local out=$1 src=$modules_from n
	if [[ -z $src && -d /usr/lib/modules/$(uname -r) ]] &&
		(($(find "/usr/lib/modules/$(uname -r)" -type f | wc -l) >= 5000)); then
		src=/usr/lib/modules/$(uname -r)
	fi
	mkdir -p "$out/6.12.0/kernel"
	if [[ -n $src ]]; then
		cp -a "$src/." "$out/6.12.0/"
		find "$out" -type l -delete # build, source: absolute links, which a bundle may not hold
	else
		local tarball
		tarball=$(compgen -G '/usr/src/linux-source-*.tar.xz' | sort | tail -n 1) || true
		[[ -n $tarball ]] || { echo "bench-pull.sh: no tree of 5,000 files found (hint: install linux-source-6.12 with scripts/install-deps.sh, or pass --modules-from DIR)" >&2; exit 1; }
		echo "extracting drivers/net from $tarball..." >&2
		tar -xJf "$tarball" -C "$out/6.12.0/kernel" --strip-components=1 "$(basename "$tarball" .tar.xz)/drivers/net"
	fi
	n=$(find "$out" -type f | wc -l)
	((n >= 5000)) || { echo "bench-pull.sh: the modules tree has only $n files, want at least 5,000 (hint: pass --modules-from DIR)" >&2; exit 1; }
}

# pack NAME SRC_DIR: the bundle NAME-1.0-x86_64.tar.zst of SRC_DIR's
# vmlinux and modules/ (if any), as publish-kernel.sh packs them.
pack() {
	local roots=(vmlinux)
	[[ -d $2/modules ]] && roots+=(modules)
	tar -C "$2" --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -cf - "${roots[@]}" |
		zstd -q -12 -T0 -o "$work/srv/$1-1.0-x86_64.tar.zst"
}

bundles=()
if [[ $which != modules ]]; then
	mkdir -p "$work/src/vmlinux"
	vmlinux_of "$size_mb" "$work/src/vmlinux/vmlinux"
	pack vmlinux "$work/src/vmlinux"
	bundles+=(vmlinux)
fi
if [[ $which != vmlinux ]]; then
	mkdir -p "$work/src/modules"
	vmlinux_of 16 "$work/src/modules/vmlinux"
	modules_tree "$work/src/modules/modules"
	pack modules "$work/src/modules"
	bundles+=(modules)
fi

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 -m http.server --bind 127.0.0.1 --directory "$work/srv" "$port" >/dev/null 2>&1 &
server_pid=$!
base="http://127.0.0.1:$port"
for _ in $(seq 50); do curl -sfI "$base/${bundles[0]}-1.0-x86_64.tar.zst" >/dev/null && break; sleep 0.1; done

{
	echo '{"version": 1, "entries": ['
	sep=
	for b in "${bundles[@]}"; do
		f=$work/srv/$b-1.0-x86_64.tar.zst
		printf '%s{"name": "%s-1.0", "distro": "bench", "arch": "x86_64", "kernel_version": "1.0.0", "url": "%s", "sha256": "%s", "size": %d, "description": "bench"}\n' \
			"$sep" "$b" "$base/$b-1.0-x86_64.tar.zst" "$(sha256sum "$f" | cut -d' ' -f1)" "$(stat -c %s "$f")"
		sep=,
	done
	echo ']}'
} >"$work/catalog.json"

now() { date +%s%N; }
# cpu: the CPU time (user+system, ms) of this shell's waited-for children.
cpu() { awk -v hz="$(getconf CLK_TCK)" '{print int(($16 + $17) * 1000 / hz)}' "/proc/$$/stat"; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
ms() { echo $((($2 - $1) / 1000000)); }

# run KIND BUNDLE ROUND: one timed install of BUNDLE into a fresh
# directory; appends the time in ms to $work/BUNDLE.KIND and the CPU time
# it used to $work/BUNDLE.KIND.cpu.
run() {
	local kind=$1 b=$2 i=$3 out t0 t1 c0
	out=$(mktemp -d "$work/runs/$b-$kind-$i.XXXXXX")
	sync
	c0=$(cpu)
	case $kind in
	banger)
		t0=$(now)
		BANGER_CATALOG=$work/catalog.json BANGER_STATE_DIR=$out "$banger" kernel pull "$b-1.0" >/dev/null 2>&1 ||
			{ echo "bench-pull.sh: banger kernel pull $b-1.0 failed" >&2; exit 1; }
		t1=$(now)
		out=$out/kernels/$b-1.0
		;;
	pipe | pipesync)
		t0=$(now)
		curl -s "$base/$b-1.0-x86_64.tar.zst" | tee >(sha256sum >"$out.sum") | zstd -dc | tar -x -C "$out"
		[[ $kind == pipesync ]] && sync -f "$out/vmlinux"
		t1=$(now)
		;;
	esac
	ms "$t0" "$t1" >>"$work/$b.$kind"
	echo $(($(cpu) - c0)) >>"$work/$b.$kind.cpu"
	if ((i == 1)); then # the first round checks what each one installed
		cmp -s "$out/vmlinux" "$work/src/$b/vmlinux" || { echo "bench-pull.sh: $kind installed a different $b vmlinux" >&2; exit 1; }
		if [[ -d $work/src/$b/modules ]]; then
			diff -r "$out/modules" "$work/src/$b/modules" >/dev/null || { echo "bench-pull.sh: $kind installed a different $b modules tree" >&2; exit 1; }
		fi
	fi
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
kinds=(banger pipe pipesync)
for i in $(seq "$rounds"); do
	for b in "${bundles[@]}"; do
		for j in 0 1 2; do # banger first, then second, then third
			run "${kinds[(j + i - 1) % 3]}" "$b" "$i"
		done
	done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

echo "$rounds rounds, order rotated each round; load average $load_before before, $load_after after ($(nproc) CPUs)"
for b in "${bundles[@]}"; do
	size=$(stat -c %s "$work/srv/$b-1.0-x86_64.tar.zst")
	raw=$(du -sb "$work/src/$b" | cut -f1)
	files=$(find "$work/src/$b" -type f | wc -l)
	bm=$(median <"$work/$b.banger")
	pm=$(median <"$work/$b.pipe")
	sm=$(median <"$work/$b.pipesync")
	echo
	awk -v b="$b" -v size="$size" -v raw="$raw" -v files="$files" -v bm="$bm" -v pm="$pm" -v sm="$sm" 'BEGIN {
		printf "bundle %s: %.1f MiB compressed, %.1f MiB in %d files\n", b, size/1048576, raw/1048576, files
		printf "  banger kernel pull                      median %6.3f s (%4.0f MiB/s)\n", bm/1e3, raw/1048576/(bm/1e3)
		printf "  curl|tee>(sha256sum)|zstd -dc|tar -x    median %6.3f s (%4.0f MiB/s)\n", pm/1e3, raw/1048576/(pm/1e3)
		printf "  same pipeline, then sync -f             median %6.3f s (%4.0f MiB/s)\n", sm/1e3, raw/1048576/(sm/1e3)
		printf "  banger/pipeline %.2fx; banger/(pipeline+sync) %.2fx\n", bm/pm, bm/sm
	}'
	for k in "${kinds[@]}"; do
		printf '  %-9s runs (ms): %s; CPU median %s ms\n' "$k" "$(tr '\n' ' ' <"$work/$b.$k")" "$(median <"$work/$b.$k.cpu")"
	done
done
