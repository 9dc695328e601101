#!/usr/bin/env bash
# bench/noisy.sh — a noisy neighbour with `edgeblock bench` only (issue H): one daemon, a pool over one file,
# seven readers (4k randread QD1, --rate-iops each) and one writer (4k randwrite QD128, unpaced), each on its own
# volume and controller. The readers' p99 in five phases:
#   alone | noisy (writer unthrottled) | limit (writer --iops LIMIT) | weight (writer weight 1, readers 100) | alone2
# The interop entry noisy-neighbour is the test (with the Linux guest as one reader); this adds the weight phase.
#
#   bench/noisy.sh [seconds per phase, default 8] [reader IOPS, default 200] [writer limit, default 500]
# Prints one line per phase: each reader's p99 µs / IOPS, the readers' median p99, the writer's IOPS.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
secs=${1:-8}
rate=${2:-200}
limit=${3:-500}
eb="$repo/edgeblock"
nqn=nqn.2026-11.io.edgeblock:noisy
tmp=$(mktemp -d "${TMPDIR:-/var/tmp}/edgeblock-noisy-bench.XXXXXX")
port=$((20000 + RANDOM % 20000))
"$eb" --help >/dev/null # builds it when needed, before anything is timed
"$eb" serve --data-dir "$tmp/d" --listen "127.0.0.1:$port" >"$tmp/daemon.log" 2>&1 &
daemon=$!
trap 'kill "$daemon" 2>/dev/null; wait "$daemon" 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 100); do [ -S "$tmp/d/api.sock" ] && break; sleep 0.1; done
cli() { "$eb" "$@" --api-socket "$tmp/d/api.sock" >/dev/null; }
bench() { "$eb" bench --addr "127.0.0.1:$port" --nqn "$nqn" --json "$@"; }
p99() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["latency_us"]["p99"], int(d["iops"]))' "$1"; }

echo "== $(nproc) CPUs, $(git -C "$repo" rev-parse --short HEAD)$(git -C "$repo" diff --quiet HEAD || echo -dirty), load $(cut -d' ' -f1 /proc/loadavg), ${secs} s per phase, readers at $rate IOPS"
cli pool create tank "$tmp/d/drive.img:2G"
cli subsystem create "$nqn" --allow-any-host
for i in 1 2 3 4 5 6 7 8; do
  cli volume create "tank/v$i" --size 128M
  cli namespace add "$nqn" --nsid "$i" --volume "tank/v$i"
done
fills=()
for i in 1 2 3 4 5 6 7; do # written once, so reads reach the drive
  bench --nsid "$i" --rw write --bs 128k --qd 8 --size-limit 32M --io-limit 32M --time 60s >/dev/null & fills+=($!)
done
wait "${fills[@]}"

phase() {
  local name=$1 noisy=$2 readers=() writer= i p iops all=()
  if [ "$noisy" = 1 ]; then bench --nsid 8 --rw randwrite --qd 128 --time "$((secs + 5))s" >"$tmp/writer.json" & writer=$!; sleep 1; fi
  for i in 1 2 3 4 5 6 7; do
    bench --nsid "$i" --rw randread --qd 1 --rate-iops "$rate" --size-limit 32M --ramp 1s --time "${secs}s" >"$tmp/r$i.json" & readers+=($!)
  done
  wait "${readers[@]}"
  [ -z "$writer" ] || wait "$writer"
  printf '| %s |' "$name"
  for i in 1 2 3 4 5 6 7; do read -r p iops < <(p99 "$tmp/r$i.json"); all+=("$p"); printf ' %.0f/%d' "$p" "$iops"; done
  printf ' | %.0f |' "$(printf '%s\n' "${all[@]}" | sort -g | sed -n 4p)"
  if [ -n "$writer" ]; then read -r _ iops < <(p99 "$tmp/writer.json"); printf ' %d |' "$iops"; else printf ' - |'; fi
  echo " $(cut -d' ' -f1 /proc/loadavg) |"
}
echo "| phase | readers' p99 µs / IOPS | median p99 µs | writer IOPS | load |"
echo "|---|---|---:|---:|---:|"
phase alone 0
phase noisy 1
cli volume set tank/v8 --iops "$limit"
phase "limit ($limit IOPS)" 1
cli volume set tank/v8 --iops none --weight 1
for i in 1 2 3 4 5 6 7; do cli volume set "tank/v$i" --weight 100; done
phase "weight (1 vs 100)" 1
for i in 1 2 3 4 5 6 7 8; do cli volume set "tank/v$i" --weight none; done
phase alone2 0
