#!/usr/bin/env bash
# bench/rbd.sh — EdgeBlock as an NVMe/TCP gateway in front of Ceph RBD (issue J) against librbd's own client.
# Brings up the throwaway single-node cluster of tests/ceph/cluster.sh, makes two images (256 MiB by default) written
# once in full (reads then reach the OSD's data), and in alternating rounds runs each workload
#   fio --ioengine=rbd on image rbd/fio                          (librbd in fio's process: the gateway's ceiling)
#   edgeblock bench over NVMe/TCP to a namespace of volume site/eb (an RBD image of pool rbd, librbd in the daemon)
# 4 KiB randread and randwrite at QD32 (--seq adds 128 KiB sequential read at QD8). Prints IOPS, the client-side CPU per I/O
# (fio's process; the daemon's for EdgeBlock: librbd's work is in both) and the ratio EdgeBlock / fio (goal ≥ 0.9).
# The OSD is the same for both; it runs on this machine too, so neither side gets the CPUs alone.
# Both images fit the test cluster's 4 GiB BlueStore file many times over: two 2 GiB images (the first version of this
# script) filled it past Ceph's full ratio (0.95), the OSD then took no more writes and the second fill's commands
# waited for librbd's client timeout (30 s) and completed Namespace Not Ready: a full cluster, not a lost completion.
# About 1.5 min with the defaults (cluster start ~15 s, fills, 4 runs of 1+5 s).
#
#   bench/rbd.sh [--time SECONDS (default 5)] [--rounds N (default 1)] [--size SIZE (default 256M)] [--seq] [--dir DIR]
# Prints; records nothing (copy the result to BENCHMARKS.md with the command).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$repo/bench/lib.sh"
run_seconds=5 rounds=1 size=256M seq=0
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --size) size=$2; shift 2 ;;
    --seq) seq=1; shift ;;
    *) bench_option rbd "$@"; shift "$SHIFT" ;;
  esac
done
require fio fio
require ceph-mon ceph-mon
require ceph-osd ceph-osd
require rbd ceph-common
install_required rbd
fio --enghelp 2>/dev/null | grep -qx '[[:space:]]*rbd' || { echo "rbd: this fio has no rbd engine" >&2; exit 1; }
eb="$repo/edgeblock"
"$eb" --help >/dev/null # builds it when needed, before anything is timed
tmp=$(mktemp -d "$work_parent/edgeblock-rbd-bench.XXXXXX")
daemon=""
cleanup() {
  [ -n "$daemon" ] && kill "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null
  "$repo/tests/ceph/cluster.sh" stop "$tmp/ceph" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT

echo "== $(nproc) CPUs, $(git -C "$repo" rev-parse --short HEAD)$(git -C "$repo" diff --quiet HEAD || echo -dirty), load $(cut -d' ' -f1 /proc/loadavg), $rounds rounds of ${run_seconds} s" >&2
"$repo/tests/ceph/cluster.sh" start "$tmp/ceph" >&2
conf="$tmp/ceph/ceph.conf"
# The daemon runs librbd with its cache off (a completed write is in the cluster); fio's librbd the same, so that
# both complete a write when the OSD has it (write-around would complete it at once).
sed -i 's/^\[client\]$/[client]\nrbd cache = false/' "$conf"
export CEPH_CONF="$conf"
rbd create rbd/fio --size "$size"
fio_rbd() { # fio options...: runs fio on rbd/fio as client.admin (the conf's keyring), JSON out
  fio --name=rbd --ioengine=rbd --clientname=admin --pool=rbd --rbdname=fio --output-format=json "$@"
}
fio_rbd --rw=write --bs=1M --iodepth=8 --size="$size" >/dev/null

# The daemon may open the cluster's conf and keyring only under a storage root.
mkdir -p "$tmp/d"
printf '{"storage_roots": ["%s"]}\n' "$tmp/ceph" >"$tmp/d/edgeblock.json"
port=$(pick_port $((20000 + RANDOM % 20000)))
nqn=nqn.2026-12.io.edgeblock:rbd-bench
"$eb" serve --data-dir "$tmp/d" --listen "127.0.0.1:$port" >"$tmp/daemon.log" 2>&1 &
daemon=$!
api=(--api-socket "$tmp/d/api.sock")
for _ in $(seq 200); do [ -S "$tmp/d/api.sock" ] && break; sleep 0.1; done
cli() { "$eb" "$@" "${api[@]}" >/dev/null; }
cli pool create site --ceph "$conf" --ceph-user edgeblock --keyring "$tmp/ceph/edgeblock.keyring"
cli volume create site/eb --size "$size"
cli subsystem create "$nqn" --allow-any-host
cli namespace add "$nqn" --nsid 1 --volume site/eb
bench() { "$eb" bench --addr "127.0.0.1:$port" --nqn "$nqn" --nsid 1 --json --server-pid "$daemon" "$@" 2>>"$tmp/bench.err" || { echo "rbd: edgeblock bench $*: $(tail -3 "$tmp/bench.err")" >&2; return 1; }; }
bench --rw write --bs 128k --qd 16 --io-limit "$size" --time 120s >/dev/null

results=()
run_fio() { # NAME RW BS QD
  local c0 c1 out
  out=$(fio_rbd --rw="$2" --bs="$3" --iodepth="$4" --time_based --runtime="$run_seconds" --ramp_time=1 --size="$size")
  echo "$out" | python3 -c '
import json, sys
j = json.load(sys.stdin)["jobs"][0]
side = j["read"] if j["read"]["io_bytes"] else j["write"]
ios = side["total_ios"]
# fio reports its CPU in percent of the job runtime: usr + sys, over runtime (ms).
cpu_us = (j["usr_cpu"] + j["sys_cpu"]) / 100 * side["runtime"] * 1000
print(sys.argv[1], "fio-librbd", int(side["iops"]), round(cpu_us / max(ios, 1), 2))' "$1"
}
run_eb() { # NAME RW BS QD
  bench --rw "$2" --bs "$3" --qd "$4" --time "${run_seconds}s" --ramp 1s | python3 -c '
import json, sys
d = json.load(sys.stdin)
print(sys.argv[1], "edgeblock", int(d["iops"]), round(d["server_cpu"]["us_per_io"], 2))' "$1"
}
workloads=("randread-4k randread 4k 32" "randwrite-4k randwrite 4k 32")
[ "$seq" = 1 ] && workloads+=("read-128k read 128k 8")
for r in $(seq "$rounds"); do
  for w in "${workloads[@]}"; do
    # shellcheck disable=SC2086
    results+=("$(run_fio $w)") ; results+=("$(run_eb $w)")
  done
done

printf '%s\n' "${results[@]}" | python3 -c '
import sys, statistics
rows = {}
for line in sys.stdin:
    name, who, iops, cpu = line.split()
    rows.setdefault((name, who), []).append((int(iops), float(cpu)))
print("| workload | client | IOPS (median) | client-side CPU µs/IO | runs (IOPS) |")
print("|---|---|---:|---:|---|")
for (name, who), v in rows.items():
    runs = ", ".join(str(i) for i, _ in v)
    print(f"| {name} | {who} | {statistics.median(i for i, _ in v):.0f} | {statistics.median(c for _, c in v):.2f} | {runs} |")
print()
for name in dict.fromkeys(n for n, _ in rows):
    f = statistics.median(i for i, _ in rows[(name, "fio-librbd")]); e = statistics.median(i for i, _ in rows[(name, "edgeblock")])
    verdict = "met" if e / f >= 0.9 else "NOT met"
    print(f"| {name}: EdgeBlock (NVMe/TCP) IOPS vs librbd (fio rbd engine) | {e / f:.2f} | goal >= 0.9 | {verdict} |")
'
