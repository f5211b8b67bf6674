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
  base:   mmdebstrap --variant=minbase bookworm      (keyed by suite)
  golden: podman build of images/golden/Dockerfile  (keyed by base + Dockerfile)

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
for tool in mmdebstrap podman sha256sum flock; do
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

base=$cache/base-$suite.tar
if [[ $refresh -eq 1 || ! -s $base ]]; then
	step "mmdebstrap --variant=minbase $suite"
	mmdebstrap --quiet --variant=minbase --mode=root "$suite" "$tmp/base.tar"
	mv "$tmp/base.tar" "$base"
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
