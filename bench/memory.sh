#!/usr/bin/env bash
# bench/memory.sh — the memory budget (issue H): RSS of `edgeblock serve` under many hosts writing 128 KiB at
# QD128, and after they are gone. Starts the daemon (temp data dir, null namespaces so the drive is not what is
# measured: buffers are the transports'), runs HOSTS concurrent `edgeblock bench` processes (one namespace each,
# QUEUES queues, QD128, 128 KiB sequential writes) for TIME, and prints the daemon's RSS idle, its peak (VmHWM),
# its RSS 5 s after the load, the summed throughput, the load average and, when the daemon has it, `status`'s
# memory line.
#
#   bench/memory.sh [REPO] [-- SERVE-ARGS...]   REPO: the checkout to build and run (default: this one)
#   HOSTS=4 QUEUES=8 QD=128 BS=128k TIME=10s    environment knobs
# Example: bench/memory.sh . -- --memory-budget 16M
# Prints; records nothing (copy the result to BENCHMARKS.md).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ $# -gt 0 ] && [ "$1" != "--" ]; then repo=$(cd "$1" && pwd); shift; fi
[ "${1:-}" = "--" ] && shift
hosts=${HOSTS:-4} queues=${QUEUES:-8} qd=${QD:-128} bs=${BS:-128k} time=${TIME:-10s}
eb="$repo/edgeblock"
"$eb" --help >/dev/null
dir=$(mktemp -d /tmp/eb-mem-XXXXXX)
sock="$dir/api.sock"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
nqn=nqn.2026-11.io.edgeblock:default
"$eb" serve --data-dir "$dir" --listen "127.0.0.1:$port" --default-backend null --default-size 64G "$@" >"$dir/serve.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 200); do [ -S "$sock" ] && break; sleep 0.1; done
for n in $(seq 2 "$hosts"); do "$eb" --api-socket "$sock" namespace add "$nqn" --nsid "$n" --backend null:64G >/dev/null; done
kib() { awk -v k="$1" '$1 == k":" { printf "%.1f MiB", $2 / 1024 }' "/proc/$pid/status"; }
echo "== $(git -C "$repo" rev-parse --short HEAD)$(git -C "$repo" diff --quiet HEAD || echo -dirty), serve $*, $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
sleep 2
echo "idle:           RSS $(kib VmRSS)"
for n in $(seq "$hosts"); do
  "$eb" bench --addr "127.0.0.1:$port" --nqn "$nqn" --nsid "$n" --rw write --bs "$bs" --qd "$qd" --queues "$queues" --time "$time" --json >"$dir/bench$n.json" 2>"$dir/bench$n.err" &
done
wait $(jobs -p | grep -v "^$pid$") 2>/dev/null || true
echo "peak (VmHWM):   RSS $(kib VmHWM)   load $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$dir" "$hosts" <<'PY'
import json, sys
d, hosts = sys.argv[1], int(sys.argv[2])
total = 0.0
for n in range(1, hosts + 1):
    try:
        r = json.load(open(f"{d}/bench{n}.json"))
    except Exception as e:
        print(f"bench {n}: no result ({open(f'{d}/bench{n}.err').read().strip()[:200]})"); continue
    total += r.get("mib_per_sec") or 0
    errs = r.get("error_count") or 0
    if r.get("transport_error"): print(f"bench {n}: transport error {r['transport_error']}")
    if errs: print(f"bench {n}: {errs} errors")
print(f"throughput:     {total:.0f} MiB/s (sum of {hosts} hosts)")
PY
sleep 5
echo "5 s after:      RSS $(kib VmRSS)"
"$eb" --api-socket "$sock" status 2>/dev/null | grep -i "memory" || true
