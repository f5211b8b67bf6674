#!/usr/bin/env bash
# banger node benchmark: pods run as VMs against a real control plane,
# against creating and starting the same VMs directly. Runs
# BenchmarkNodePods (internal/node/bench_test.go) and prints its table.
set -euo pipefail

usage() {
	cat <<'USAGE'
Usage: scripts/bench-node.sh [--sequential N] [--burst N]

Starts etcd and kube-apiserver on 127.0.0.1 (internal/kubetest; the
apiserver is built once by scripts/build-control-plane.sh), makes the test
kernel and busybox+dropbear rootfs a banger image, warms it (1 CPU, 128M,
user networking) and runs a banger node (warm starts on) in the test's own
state directory. Then, timing each:

  pods:    N pods created one after another, each until the API shows it
           Running (median); then a burst of pods created at once, until
           each is Running (median and max from the burst's start)
  direct:  the same counts of VMs of the image created and started with
           the VM store (what "banger vm create" + "vm start" do)

and the VMM memory of each VM of both bursts: RSS and PSS of its QEMU
process from /proc/PID/smaps_rollup (mean). Every VM must have restored
the warm snapshot, so the difference is what the node adds: the API, the
virtual kubelet, the SSH session starting the main process.

Options:
  --sequential N  pods (and VMs) one after another (default 10)
  --burst N       pods (and VMs) at once (default 20)
Needs what the node tests need: go, QEMU, etcd, mkfs.ext4, busybox and
dropbear (scripts/install-deps.sh). The store's and virtual-kubelet's log
lines are left out.
USAGE
}

sequential=10
burst=20
while [[ $# -gt 0 ]]; do
	case "$1" in
	-h | --help)
		usage
		exit 0
		;;
	--sequential)
		sequential=${2:?--sequential needs a number}
		shift 2
		;;
	--burst)
		burst=${2:?--burst needs a number}
		shift 2
		;;
	*)
		echo "bench-node.sh: unknown argument $1 (see --help)" >&2
		exit 2
		;;
	esac
done

die() {
	echo "bench-node.sh: $*" >&2
	exit 1
}

[[ $sequential =~ ^[1-9][0-9]*$ ]] || die "--sequential needs a positive number, not $sequential"
[[ $burst =~ ^[1-9][0-9]*$ ]] || die "--burst needs a positive number, not $burst"
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
scripts/build-control-plane.sh >/dev/null

BANGER_BENCH_NODE="$sequential,$burst" go test -run '^$' -bench '^BenchmarkNodePods$' \
	-benchtime 1x -timeout 60m -v ./internal/node/ |
	grep -v -E '^(\s+pods_test\.go:[0-9]+: banger: |[IWE][0-9]{4} )' |
	sed -E 's/^\s+bench_test\.go:[0-9]+: //'
