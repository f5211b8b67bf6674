#!/usr/bin/env bash
# Build banger's golden image (images/golden/Dockerfile) without a Docker
# engine: mmdebstrap a Debian base, build the Dockerfile on it with podman
# (chroot isolation), save it as a docker archive, and turn that into the
# banger image with "banger image build".
set -euo pipefail

usage() {
	cat <<'USAGE'
Usage: scripts/build-golden.sh [--name NAME] [--kernel-ref KERNEL] [--force] [--refresh]

Builds the golden Debian bookworm image and adds it to banger as NAME
(default: golden), paired with KERNEL (default: generic-6.12, which must be
installed: banger kernel pull generic-6.12).

Needs root (mmdebstrap --mode=root, rootful podman). Intermediate results
are cached by input hash outside the checkout, so a second run only redoes
the banger step:
  base:   mmdebstrap --variant=minbase bookworm      (keyed by suite and
          point release: the Version and Date of the suite's InRelease on
          deb.debian.org, checked with gpgv against Debian's archive keyring;
          a new point release rebuilds it)
  golden: podman build of images/golden/Dockerfile  (keyed by base + Dockerfile)
Security updates published between point releases need --refresh.

Options:
  --name NAME         image name (default golden)
  --kernel-ref K      kernel to pair it with (default generic-6.12)
  --force             replace an existing image called NAME
  --refresh           rebuild the cached base and golden archives

Environment:
  BANGER               banger binary (default: bin/banger in this checkout)
  BANGER_GOLDEN_CACHE  cache directory (default /var/cache/banger/golden)
  GOLDEN_SUITE         Debian suite (default bookworm)
USAGE
}

die() {
	echo "build-golden.sh: $*" >&2
	exit 1
}

repo=$(cd "$(dirname "$0")/.." && pwd)
name=golden
kernel=generic-6.12
force=()
refresh=0
while [[ $# -gt 0 ]]; do
	case "$1" in
	-h | --help)
		usage
		exit 0
		;;
	--name)
		name=${2:?--name needs a value}
		shift 2
		;;
	--kernel-ref)
		kernel=${2:?--kernel-ref needs a value}
		shift 2
		;;
	--force)
		force=(--force)
		shift
		;;
	--refresh)
		refresh=1
		shift
		;;
	*)
		echo "build-golden.sh: unknown argument $1 (see --help)" >&2
		exit 2
		;;
	esac
done

banger=${BANGER:-$repo/bin/banger}
cache=${BANGER_GOLDEN_CACHE:-/var/cache/banger/golden}
suite=${GOLDEN_SUITE:-bookworm}
dockerfile=$repo/images/golden/Dockerfile

[[ $(id -u) -eq 0 ]] || die "needs root for mmdebstrap --mode=root and podman (hint: sudo -E scripts/build-golden.sh)"
for tool in mmdebstrap podman sha256sum flock curl gpgv; do
	command -v "$tool" >/dev/null || die "$tool not found (hint: scripts/install-deps.sh)"
done
[[ -x $banger ]] || die "no banger binary at $banger (hint: make build, or set BANGER)"
"$banger" kernel show "$kernel" >/dev/null ||
	die "kernel $kernel is not installed (hint: run \"$banger kernel pull $kernel\")"

mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9

tmp=$(mktemp -d "$cache/.tmp-XXXXXX")
images=()
cleanup() {
	rm -rf "$tmp"
	if [[ ${#images[@]} -gt 0 ]]; then
		podman rmi --force "${images[@]}" >/dev/null 2>&1 || true
	fi
}
trap cleanup EXIT

step() { echo "==> $*" >&2; }

# point_release: the suite's release on the mirror mmdebstrap uses, as
# "Version Date" from its InRelease, whose signature must check out against
# Debian's archive keyring. Prints nothing when the mirror cannot be reached.
point_release() {
	local url=http://deb.debian.org/debian/dists/$suite/InRelease
	curl -fsSL --retry 2 --max-time 60 -o "$tmp/InRelease" "$url" 2>"$tmp/curl.err" || return 0
	[[ -r $archive_keyring ]] || die "no Debian archive keyring at $archive_keyring to check $url (hint: apt-get install debian-archive-keyring)"
	gpgv --keyring "$archive_keyring" --output "$tmp/Release" "$tmp/InRelease" 2>"$tmp/gpgv.err" ||
		die "$url has no good signature by Debian's archive keys: $(tail -n 2 "$tmp/gpgv.err" | tr '\n' ' ')"
	local version date
	version=$(sed -n 's/^Version: *//p' "$tmp/Release")
	date=$(sed -n 's/^Date: *//p' "$tmp/Release")
	[[ -n $date ]] || die "$url has no Date field"
	echo "${version:-none} $date"
}

archive_keyring=/usr/share/keyrings/debian-archive-keyring.gpg
base=$cache/base-$suite.tar
base_release=$base.release # the point release the base was built from
release=$(point_release)
built_from=
if [[ -s $base && -s $base_release ]]; then built_from=$(<"$base_release"); fi
if [[ -z $release && -s $base && $refresh -eq 0 ]]; then
	echo "build-golden.sh: cannot reach deb.debian.org to check for a new Debian point release: $(tr '\n' ' ' <"$tmp/curl.err")" >&2
	echo "build-golden.sh: using the cached base (${built_from:-of unknown release})" >&2
elif [[ $refresh -eq 1 || ! -s $base || $release != "$built_from" ]]; then
	if [[ -s $base && $refresh -eq 0 ]]; then
		step "$suite is now at ${release} (the cached base: ${built_from:-unknown}): rebuilding it"
	fi
	step "mmdebstrap --variant=minbase $suite"
	mmdebstrap --quiet --variant=minbase --mode=root "$suite" "$tmp/base.tar"
	mv "$tmp/base.tar" "$base"
	if [[ -n $release ]]; then echo "$release" >"$base_release"; else rm -f "$base_release"; fi
fi
base_sum=$(sha256sum "$base" | cut -d' ' -f1)
key=$( (
	echo "golden-v1 $suite $base_sum"
	cat "$dockerfile"
) | sha256sum | cut -d' ' -f1)
archive=$cache/golden-$key.tar

if [[ $refresh -eq 1 || ! -s $archive ]]; then
	base_tag=localhost/banger-debian:$suite-${base_sum:0:12}
	golden_tag=localhost/banger-golden:${key:0:12}
	images=("$golden_tag" "$base_tag")
	step "podman import $base as $base_tag"
	podman import --quiet "$base" "$base_tag" >/dev/null
	step "podman build --isolation chroot images/golden"
	# Plain podman build fails on hosts where crun rejects the cgroup
	# setup; chroot isolation needs neither cgroups nor a daemon.
	podman build --quiet --isolation chroot --build-arg "BASE=$base_tag" -t "$golden_tag" "$repo/images/golden" >/dev/null
	step "podman save --format docker-archive"
	podman save --quiet --format docker-archive -o "$tmp/golden.tar" "$golden_tag"
	mv "$tmp/golden.tar" "$archive"
	# Older archives of other inputs are no longer needed.
	find "$cache" -maxdepth 1 -name 'golden-*.tar' ! -name "golden-$key.tar" -delete
fi

step "banger image build --from-image docker-archive:$archive --name $name"
"$banger" image build --from-image "docker-archive:$archive" --name "$name" --kernel-ref "$kernel" "${force[@]}"
