#!/usr/bin/env bash
# Pack an imported kernel into a reproducible <name>-<arch>.tar.zst, check that
# banger itself can pull it, upload it with rclone and record it in catalog.json.
set -euo pipefail

usage() {
	cat <<'USAGE'
Usage: scripts/publish-kernel.sh NAME --description "TEXT" [--dry-run]

Publishes the kernel NAME, as installed by `banger kernel import`, to the
kernel catalog:

  1. packs vmlinux, initrd.img and modules/ (whichever exist; manifest.json is
     left out) into <name>-<arch>.tar.zst with sorted entries, uid/gid 0,
     mtime 0 and zstd level 19, so the same kernel always gives the same sha256;
  2. pulls that file with the real `banger kernel pull` into a throwaway state
     directory and refuses to go on if banger rejects it;
  3. uploads it with rclone to $RCLONE_REMOTE:$RCLONE_BUCKET/;
  4. checks that $BASE_URL/<file> answers a HEAD request with status 200 and
     the right Content-Length;
  5. adds or replaces the NAME/arch entry of the catalog with jq (entries
     sorted by name then arch, 2-space indentation; an unchanged entry leaves
     the file byte-for-byte the same).

--dry-run packs and checks, prints the sha256, size and the catalog change,
and uploads and writes nothing.

Environment:
  BANGER_KERNELS_DIR  installed kernels (default: $BANGER_STATE_DIR/kernels,
                      else $XDG_STATE_HOME/banger/kernels, else
                      ~/.local/state/banger/kernels)
  RCLONE_REMOTE       rclone remote to upload to (default r2)
  RCLONE_BUCKET       bucket (or directory) on that remote (default banger-kernels)
  BASE_URL            public URL of the bucket (default https://kernels.thaloco.com)
  CATALOG             catalog file to patch (default internal/kernelcat/catalog.json
                      of this repo; it must have no uncommitted changes)
  PUBLISH_DIR         where the tarball is written (default <repo>/build/publish)
  BANGER              banger binary (default <repo>/bin/banger, else banger on PATH)

Tools: GNU tar, zstd, jq, curl, rclone (apt-get install tar zstd jq curl rclone).
USAGE
}

# last N lines of a log, joined into one line for an error message.
lastlines() { tail -n "$1" "$2" | tr -s '\n\t' '  '; }
log() { printf 'publish-kernel: %s\n' "$*" >&2; }
die() {
	printf 'publish-kernel: error: %s\n' "$*" >&2
	exit 1
}

name="" description="" have_description=0 dry_run=0
while (($#)); do
	case $1 in
	-h | --help)
		usage
		exit 0
		;;
	--dry-run) dry_run=1 ;;
	--description)
		(($# >= 2)) || die "--description needs a value (see --help)"
		description=$2 have_description=1
		shift
		;;
	--description=*) description=${1#--description=} have_description=1 ;;
	-*) die "unknown option $1 (see --help)" ;;
	*)
		[[ -z $name ]] || die "only one NAME may be given, got $name and $1 (see --help)"
		name=$1
		;;
	esac
	shift
done
[[ -n $name ]] || die "missing NAME (usage: publish-kernel.sh NAME --description \"TEXT\" [--dry-run])"
if ((!have_description)) || [[ -z $description ]]; then
	die "missing --description \"TEXT\" for the catalog entry (see --help)"
fi
[[ $name =~ ^[a-z0-9][a-z0-9._-]*$ ]] || die "kernel name $name is not valid (lower-case letters, digits, '.', '_', '-')"

script_dir=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
repo=$(cd "$script_dir/.." && pwd)
remote=${RCLONE_REMOTE:-r2}
bucket=${RCLONE_BUCKET:-banger-kernels}
base_url=${BASE_URL:-https://kernels.thaloco.com}
base_url=${base_url%/}
catalog=${CATALOG:-$repo/internal/kernelcat/catalog.json}
publish_dir=${PUBLISH_DIR:-$repo/build/publish}
kernels_dir=${BANGER_KERNELS_DIR:-${BANGER_STATE_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/banger}/kernels}

for t in tar zstd jq sha256sum; do
	command -v "$t" >/dev/null || die "$t is not installed (hint: apt-get install tar zstd jq coreutils)"
done
tar --version 2>/dev/null | grep -q 'GNU tar' || die "tar is not GNU tar: deterministic packing needs GNU tar's --sort (hint: apt-get install tar)"


# --- the imported kernel ------------------------------------------------------
kdir=$kernels_dir/$name
manifest=$kdir/manifest.json
[[ -f $manifest && -f $kdir/vmlinux ]] ||
	die "kernel $name is not imported in $kernels_dir (hint: banger kernel import $name --from build/manual/generic-kernel --distro generic --arch x86_64)"
field() { jq -er --arg f "$1" '.[$f] // empty | tostring' "$manifest" 2>/dev/null || true; }
distro=$(field distro)
arch=$(field arch)
kernel_version=$(field kernel_version)
[[ -n $distro ]] || die "$manifest has no distro (hint: re-import with --distro)"
[[ -n $arch ]] || die "$manifest has no arch (hint: re-import with --arch)"
[[ -n $kernel_version ]] || die "$manifest has no kernel_version (hint: re-import with --kernel-version)"
[[ $kernel_version =~ ^([0-9]+\.[0-9]+) ]] || die "$manifest: kernel_version $kernel_version is not a version number"
[[ $name == "$distro-${BASH_REMATCH[1]}" ]] ||
	die "catalog names are <distro>-<major.minor>: $name does not match distro $distro and kernel $kernel_version (hint: import it as $distro-${BASH_REMATCH[1]})"

members=()
for m in initrd.img modules vmlinux; do # sorted, as tar --sort=name would
	[[ -e $kdir/$m || -L $kdir/$m ]] && members+=("$m")
done
for f in "$kdir"/* "$kdir"/.[!.]*; do
	[[ -e $f || -L $f ]] || continue
	case ${f##*/} in initrd.img | modules | vmlinux | manifest.json) ;; *) log "leaving out ${f##*/}: not part of a kernel bundle" ;; esac
done

# --- the catalog --------------------------------------------------------------
[[ -f $catalog ]] || die "catalog $catalog does not exist (hint: set CATALOG to a catalog.json)"
jq -e '.version == 1 and (.entries | type == "array")' "$catalog" >/dev/null 2>&1 ||
	die "catalog $catalog is not a version-1 catalog (a JSON object with \"version\": 1 and \"entries\")"
if ((!dry_run)) && git -C "$(dirname "$catalog")" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	if [[ -n $(git -C "$(dirname "$catalog")" status --porcelain -- "$(basename "$catalog")") ]]; then
		die "catalog $catalog has uncommitted changes (hint: commit or revert them first, so the publish diff is reviewable on its own)"
	fi
fi

# Uploading needs rclone, a configured remote and curl: check before the slow pack.
if ((!dry_run)); then
	command -v rclone >/dev/null || die "rclone is not installed (hint: apt-get install rclone)"
	rclone listremotes 2>/dev/null | grep -qxF "$remote:" ||
		die "rclone remote \"$remote\" is not configured (hint: run \"rclone config\" to add it, or set RCLONE_REMOTE)"
	command -v curl >/dev/null || die "curl is not installed (hint: apt-get install curl)"
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/publish-kernel.XXXXXX")
cleanup() {
	chmod -R u+w "$tmp" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- pack ---------------------------------------------------------------------
file=$name-$arch.tar.zst
mkdir -p "$publish_dir"
out=$publish_dir/$file
log "packing ${members[*]} from $kdir into $file"
tar --create --file=- --directory="$kdir" --sort=name --format=gnu \
	--owner=0 --group=0 --numeric-owner --mtime=@0 --mode='a=rX,u+w' \
	--hard-dereference --no-acls --no-selinux --no-xattrs -- "${members[@]}" |
	zstd -q -19 -T1 --no-progress -c >"$tmp/$file"
sha=$(sha256sum "$tmp/$file" | cut -d' ' -f1)
size=$(stat -c %s "$tmp/$file")

# --- does banger accept it? ---------------------------------------------------
banger=${BANGER:-}
if [[ -z $banger ]]; then
	if [[ -x $repo/bin/banger ]]; then
		banger=$repo/bin/banger
	else
		banger=$(command -v banger) || die "no banger binary to check the bundle with (hint: run \"make build\" or set BANGER=/path/to/banger)"
	fi
fi
[[ -x $banger ]] || die "BANGER=$banger is not an executable file"
log "checking the bundle with $banger kernel pull"
mkdir -p "$tmp/state"
jq -n --arg name "$name" --arg distro "$distro" --arg arch "$arch" --arg kv "$kernel_version" \
	--arg url "file://$tmp/$file" --arg sha "$sha" --argjson size "$size" --arg desc "$description" \
	'{version: 1, entries: [{name: $name, distro: $distro, arch: $arch, kernel_version: $kv, url: $url, sha256: $sha, size: $size, description: $desc}]}' >"$tmp/check-catalog.json"
if ! env -u BANGER_KERNELS_DIR -u BANGER_KERNEL_MIRROR -u XDG_STATE_HOME \
	BANGER_CATALOG="$tmp/check-catalog.json" BANGER_STATE_DIR="$tmp/state" \
	"$banger" kernel pull "$name" --arch "$arch" >"$tmp/pull.log" 2>&1; then
	die "banger refuses the packed bundle, so it would refuse the published one too: $(lastlines 3 "$tmp/pull.log")"
fi
cmp -s "$kdir/vmlinux" "$tmp/state/kernels/$name/vmlinux" ||
	die "banger kernel pull of the packed bundle did not install a vmlinux identical to $kdir/vmlinux"
cp "$tmp/$file" "$publish_dir/.$file.part"
mv -f "$publish_dir/.$file.part" "$out"

# --- the new catalog ----------------------------------------------------------
url=$base_url/$file
jq --indent 2 --arg name "$name" --arg distro "$distro" --arg arch "$arch" --arg kv "$kernel_version" \
	--arg url "$url" --arg sha "$sha" --argjson size "$size" --arg desc "$description" '
	.entries = ([.entries[] | select(.name != $name or .arch != $arch)]
		+ [{name: $name, distro: $distro, arch: $arch, kernel_version: $kv,
		    url: $url, sha256: $sha, size: $size, description: $desc}]
		| sort_by(.name, .arch))' "$catalog" >"$tmp/catalog.json"

echo "file    $out"
echo "sha256  $sha"
echo "size    $size"
echo "url     $url"
if cmp -s "$catalog" "$tmp/catalog.json"; then
	echo "catalog $catalog: unchanged"
else
	echo "catalog $catalog:"
	diff -u --label "a/$(basename "$catalog")" --label "b/$(basename "$catalog")" "$catalog" "$tmp/catalog.json" || true
fi
if ((dry_run)); then
	log "dry run: nothing uploaded, catalog not written"
	exit 0
fi

# --- upload and check ---------------------------------------------------------
log "uploading to $remote:$bucket/$file"
rclone copyto --retries 3 "$out" "$remote:$bucket/$file" 2>"$tmp/rclone.log" ||
	die "uploading $file to $remote:$bucket failed: $(lastlines 3 "$tmp/rclone.log")"

status="" length=""
for attempt in 1 2 3 4 5; do
	if headers=$(curl -sS -I -L --max-time 15 "$url" 2>"$tmp/curl.log"); then
		headers=$(printf '%s\n' "$headers" | tr -d '\r')
		status=$(awk '$1 ~ /^HTTP\// {s = $2} END {print s}' <<<"$headers")
		length=$(awk -F': *' 'tolower($1) == "content-length" {l = $2} END {print l}' <<<"$headers")
		[[ $status == 200 && $length == "$size" ]] && break
	else
		status="no answer ($(lastlines 1 "$tmp/curl.log"))"
	fi
	((attempt == 5)) || sleep 2
done
[[ $status == 200 && $length == "$size" ]] ||
	die "HEAD $url: got status ${status:-none}, Content-Length ${length:-none}; want 200 and $size (hint: check BASE_URL points at the bucket's public URL); catalog not changed"

if cmp -s "$catalog" "$tmp/catalog.json"; then
	log "catalog already lists $name $arch with this bundle: nothing to write"
else
	cp -p "$catalog" "$tmp/catalog.new" # keep the file's mode
	cat "$tmp/catalog.json" >"$tmp/catalog.new"
	mv -f "$tmp/catalog.new" "$(dirname "$catalog")/.$(basename "$catalog").tmp"
	mv -f "$(dirname "$catalog")/.$(basename "$catalog").tmp" "$catalog"
	log "catalog $catalog updated; review it with: git diff -- $catalog"
fi
