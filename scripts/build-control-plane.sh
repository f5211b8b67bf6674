#!/usr/bin/env bash
# Build kube-apiserver from the Go module proxy into a cache keyed by version,
# for the `banger node` tests (internal/kubetest). Only a fresh machine pays.
set -euo pipefail

usage() {
	cat <<'USAGE'
Usage: scripts/build-control-plane.sh [--version vX.Y.Z] [--print-dir] [--help]

Builds kube-apiserver (default version v1.37.2) from the Go module proxy and
installs it as DIR/kube-apiserver, where DIR is

  $BANGER_CONTROL_PLANE_CACHE/VERSION   if that variable is set, else
  /var/cache/banger/control-plane/VERSION   when writable, else
  ${XDG_CACHE_HOME:-$HOME/.cache}/banger/control-plane/VERSION

A binary already there is reused: nothing is built. The build runs in a
scratch module outside the checkout that requires k8s.io/kubernetes VERSION
and replaces its staging modules (k8s.io/api, k8s.io/apiserver, ...) with
their published v0.Y.Z releases; the version is stamped into the binary
(kubectl refuses an unstamped server). Two callers at once build once: the
second waits on a lock (flock) and then finds the binary. The result is
built in a temporary directory beside DIR and renamed into place only when
complete.

Cold, on 2 cores, the build takes about 20 minutes and 2.7 GB of Go build
cache. The last line printed is DIR.

  --version vX.Y.Z  the Kubernetes release to build
  --print-dir       print DIR and exit without building
Needs: go, flock (util-linux).
USAGE
}

version=v1.37.2
print_dir=
while [[ $# -gt 0 ]]; do
	case "$1" in
	--version) version=$2; shift 2 ;;
	--print-dir) print_dir=1; shift ;;
	-h | --help) usage; exit 0 ;;
	*) echo "build-control-plane.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
done
if [[ ! $version =~ ^v1\.([0-9]+)\.([0-9]+)$ ]]; then
	echo "build-control-plane.sh: version $version is not of the form v1.Y.Z" >&2
	exit 2
fi
staging_version="v0.${BASH_REMATCH[1]}.${BASH_REMATCH[2]}"

cache_root() {
	if [[ -n ${BANGER_CONTROL_PLANE_CACHE:-} ]]; then
		echo "$BANGER_CONTROL_PLANE_CACHE"
		return
	fi
	local system=/var/cache/banger/control-plane
	if mkdir -p "$system" 2>/dev/null && [[ -w $system ]]; then
		echo "$system"
		return
	fi
	echo "${XDG_CACHE_HOME:-$HOME/.cache}/banger/control-plane"
}

root=$(cache_root)
dir=$root/$version
if [[ -n $print_dir ]]; then
	echo "$dir"
	exit 0
fi
if [[ -x $dir/kube-apiserver ]]; then
	echo "$dir"
	exit 0
fi

for tool in go flock; do
	command -v "$tool" >/dev/null || { echo "build-control-plane.sh: $tool is missing" >&2; exit 1; }
done
mkdir -p "$root"

exec 9>"$root/$version.lock"
flock 9
# Another caller may have built it while this one waited for the lock.
if [[ -x $dir/kube-apiserver ]]; then
	echo "$dir"
	exit 0
fi

scratch=$(mktemp -d "${TMPDIR:-/tmp}/banger-control-plane.XXXXXX")
staged=$(mktemp -d "$root/.tmp-$version.XXXXXX")
cleanup() { rm -rf "$scratch" "$staged"; }
trap cleanup EXIT

start=$SECONDS
echo "build-control-plane.sh: building kube-apiserver $version (about 20 minutes cold)" >&2
cd "$scratch"
go mod init banger.dev/control-plane-build >/dev/null 2>&1

# The staging modules kubernetes replaces with ./staging/src/... in its own
# go.mod. Two of them (sample-cli-plugin, sample-controller) are not served
# by the proxy and kube-apiserver does not need them.
k8s_gomod=$(go mod download -json "k8s.io/kubernetes@$version" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
[[ -f $k8s_gomod ]] || { echo "build-control-plane.sh: no go.mod for k8s.io/kubernetes@$version" >&2; exit 1; }
mapfile -t staging < <(sed -n 's|^[[:space:]]*\(k8s\.io/[a-z0-9-]*\) => \./staging/.*|\1|p' "$k8s_gomod" |
	grep -v -e '^k8s.io/sample-cli-plugin$' -e '^k8s.io/sample-controller$')
[[ ${#staging[@]} -gt 0 ]] || { echo "build-control-plane.sh: found no staging modules in $k8s_gomod" >&2; exit 1; }
args=(-require="k8s.io/kubernetes@$version")
for m in "${staging[@]}"; do
	args+=(-replace="$m=$m@$staging_version")
done
go mod edit "${args[@]}"
go get "k8s.io/kubernetes/cmd/kube-apiserver@$version"

CGO_ENABLED=0 go build -trimpath \
	-ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$version -X k8s.io/component-base/version.gitTreeState=clean" \
	-o "$staged/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
"$staged/kube-apiserver" --version >&2

chmod 0755 "$staged"
rm -rf "$dir"
mv "$staged" "$dir"
sync -f "$dir" 2>/dev/null || true
echo "build-control-plane.sh: built in $((SECONDS - start))s" >&2
echo "$dir"
