#!/usr/bin/env bash
# bench/qos.sh — QoS (issue H) with `edgeblock bench` against one daemon and one pool over a file:
#   1. weights 1:2:4 on three volumes read at once at QD past the pool's in-flight cap (saturated): IOPS split;
#   2. an IOPS limit on one volume read at QD 32: IOPS held against the limit (after a 1 s ramp spends the burst);
#   3. a burst: after 2 s idle a volume limited to 1000 IOPS with --burst-iops 500 runs 1 s: about 1500 I/Os.
#
#   bench/qos.sh [seconds per run, default 10] [QD per volume, default 64]
# Prints the figures; records nothing (copy the result to BENCHMARKS.md).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
secs=${1:-10}
qd=${2:-64}
eb="$repo/edgeblock"
nqn=nqn.2026-11.io.edgeblock:default
tmp=$(mktemp -d "${TMPDIR:-/var/tmp}/edgeblock-qos-bench.XXXXXX")
port=$((20000 + RANDOM % 20000))
"$eb" --help >/dev/null # builds it when needed, before anything is timed
"$eb" serve --data-dir "$tmp/d" --listen "127.0.0.1:$port" >"$tmp/daemon.log" 2>&1 &
daemon=$!
trap 'kill "$daemon" 2>/dev/null; wait "$daemon" 2>/dev/null; rm -rf "$tmp"' EXIT
api=(--api-socket "$tmp/d/api.sock")
for _ in $(seq 100); do [ -S "$tmp/d/api.sock" ] && break; sleep 0.1; done
cli() { "$eb" "$@" "${api[@]}" >/dev/null; }
bench() { "$eb" bench --addr "127.0.0.1:$port" --nqn "$nqn" --json "$@" 2>/dev/null; }
iops() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(int(d["iops"]), d["ios"], d["error_count"])'; }

echo "== $(nproc) CPUs, $(git -C "$repo" rev-parse --short HEAD)$(git -C "$repo" diff --quiet HEAD || echo -dirty), load $(cut -d' ' -f1 /proc/loadavg), ${secs} s per run"
cli pool create tank "$tmp/d/drive.img:2G"
weights=(1 2 4)
for i in 0 1 2; do
  cli volume create "tank/w${weights[$i]}" --size 256M
  cli namespace add "$nqn" --nsid $((i + 2)) --volume "tank/w${weights[$i]}"
  # Written once, so reads reach the drive (an unwritten block reads as zeroes without I/O).
  bench --nsid $((i + 2)) --rw write --bs 128k --qd 8 --io-limit 256M --time 60s >/dev/null
done

echo "-- weights: three volumes, randread 4k QD $qd each, at once (in-flight cap 32 while weights apply)"
for w in "${weights[@]}"; do cli volume set "tank/w$w" --weight "$w"; done
runs=()
for i in 0 1 2; do bench --nsid $((i + 2)) --rw randread --qd "$qd" --time "${secs}s" --ramp 1s >"$tmp/w$i.json" & runs+=($!); done
wait "${runs[@]}"
total=0
declare -a got
for i in 0 1 2; do read -r n _ _ < <(iops <"$tmp/w$i.json"); got[$i]=$n; total=$((total + n)); done
printf '| volume | weight | IOPS | share | expected share |\n|---|---:|---:|---:|---:|\n'
for i in 0 1 2; do
  awk -v v="tank/w${weights[$i]}" -v w="${weights[$i]}" -v n="${got[$i]}" -v t="$total" \
    'BEGIN { printf "| %s | %d | %d | %.3f | %.3f |\n", v, w, n, n / t, w / 7 }'
done
awk -v a="${got[0]}" -v b="${got[1]}" -v c="${got[2]}" 'BEGIN { printf "ratio w2/w1 %.2f (2), w4/w1 %.2f (4)\n", b / a, c / a }'
for w in "${weights[@]}"; do cli volume set "tank/w$w" --weight none; done

limit=$(( (total / 4 / 100) * 100 ))
[ "$limit" -ge 100 ] || limit=100
echo "-- limit: tank/w1 --iops $limit, randread 4k QD 32 alone (1 s ramp spends the burst)"
cli volume set tank/w1 --iops "$limit"
read -r n ios errors < <(bench --nsid 2 --rw randread --qd 32 --time "${secs}s" --ramp 1s | iops)
awk -v n="$n" -v l="$limit" -v e="$errors" 'BEGIN { printf "IOPS %d against %d: %+.1f%%, errors %d\n", n, l, (n - l) * 100 / l, e }'

echo "-- burst: --iops 1000 --burst-iops 500, idle 2 s, then 1 s at QD 32"
cli volume set tank/w1 --iops 1000 --burst-iops 500
sleep 2
read -r n ios errors < <(bench --nsid 2 --rw randread --qd 32 --time 1s | iops)
echo "I/Os in the first second $ios (expected about 1500: the burst of 500, then 1000/s), errors $errors"
"$eb" stats "${api[@]}" | tail -5
