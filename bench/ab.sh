#!/usr/bin/env bash
# bench/ab.sh — same-run A/B of the hot path: two builds of EdgeBlock, one null-backend server each,
# measured in alternation (A B A B ...) so that both see the same machine load.
#
#   bench/ab.sh REV                 A = git revision REV, B = the working tree
#   bench/ab.sh REV --rounds 5 --time 5 --rw randread --bs 4k --qd 32
#
# For each round and side: server pinned to CPU 0, `edgeblock bench` pinned to CPU 1, 5 s ramp, then
# --time seconds measured; server CPU µs/IO from /proc/PID/stat (as bench/run.sh), peak RSS (VmHWM). Allocation per I/O
# is proved by the tests (HotPathAllocationTests), not here. Prints one line per run and the medians; nothing is recorded (copy the result to BENCHMARKS.md).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[ $# -ge 1 ] || { sed -n '2,10p' "$0"; exit 1; }
rev=$1; shift
rounds=5 time=5 rw=randread bs=4k qd=32
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --time) time=$2; shift 2 ;;
    --rw) rw=$2; shift 2 ;;
    --bs) bs=$2; shift 2 ;;
    --qd) qd=$2; shift 2 ;;
    *) echo "ab: unknown option $1" >&2; exit 1 ;;
  esac
done
command -v jq >/dev/null || { apt-get install -y -qq jq >/dev/null; }

work=$(mktemp -d "${EDGEBLOCK_BENCH_DIR:-/var/tmp}/eb-ab.XXXXXX")
server_pid=""
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; git -C "$repo" worktree remove --force "$work/src-a" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

echo "ab: building A ($rev) and B (working tree)" >&2
git -C "$repo" worktree add -q --detach "$work/src-a" "$rev"
dotnet build "$work/src-a/src/EdgeBlock.Cli/EdgeBlock.Cli.csproj" -c Release -o "$work/a" --nologo -v q -clp:ErrorsOnly >&2
dotnet build "$repo/src/EdgeBlock.Cli/EdgeBlock.Cli.csproj" -c Release -o "$work/b" --nologo -v q -clp:ErrorsOnly >&2

port=$((24500 + RANDOM % 1000))
run() { # SIDE ROUND
  local side=$1 round=$2 dir="$work/data-$1-$2"
  taskset -c 0 "$work/$side/edgeblock" serve --data-dir "$dir" --listen "127.0.0.1:$port" --default-backend null --default-size 8G \
    >"$work/serve-$side-$round.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
  taskset -c 1 "$work/$side/edgeblock" bench --addr "127.0.0.1:$port" --nqn nqn.2026-11.io.edgeblock:default \
    --rw "$rw" --bs "$bs" --qd "$qd" --time "${time}s" --ramp 5s --json --server-pid "$server_pid" >"$work/$side-$round.json"
  # Peak RSS of the server over its life (VmHWM), read before it exits.
  awk '/^VmHWM:/ { print $2 }' "/proc/$server_pid/status" >"$work/$side-$round.rss"
  kill -TERM "$server_pid"; wait "$server_pid" || true; server_pid=""
  printf '%s round %d: %s IOPS, server %s µs/IO, peak RSS %s MiB\n' "$side" "$round" \
    "$(jq -r '.iops | floor' "$work/$side-$round.json")" "$(jq -r '.server_cpu.us_per_io * 100 | round / 100' "$work/$side-$round.json")" \
    "$(awk '{ printf "%.0f", $1 / 1024 }' "$work/$side-$round.rss")"
}
for r in $(seq "$rounds"); do run a "$r"; run b "$r"; done

median() { jq -s "map(.server_cpu.us_per_io) | sort | .[length / 2 | floor] * 100 | round / 100" "$work"/"$1"-*.json; }
median_iops() { jq -s "map(.iops) | sort | .[length / 2 | floor] | floor" "$work"/"$1"-*.json; }
echo "ab: $rw $bs QD$qd, $rounds rounds of ${time} s, null backend"
max_rss() { sort -n "$work"/"$1"-*.rss | tail -1 | awk '{ printf "%.0f", $1 / 1024 }'; }
echo "ab: A ($rev): median server $(median a) µs/IO, $(median_iops a) IOPS, peak RSS $(max_rss a) MiB"
echo "ab: B (working tree): median server $(median b) µs/IO, $(median_iops b) IOPS, peak RSS $(max_rss b) MiB"
