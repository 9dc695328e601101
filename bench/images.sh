#!/usr/bin/env bash
# bench/images.sh — image import (issue F) against `qemu-img convert -O raw` on the same disk.
# Makes a SIZE raw image of which half is data (1 MiB of 2:1-compressible data, then a 1 MiB hole, repeated) and a
# deflate-compressed qcow2 of it, then, in alternating rounds, times:
#   qemu-img convert -O raw IMAGE OUT && sync OUT    (a thin file out: qemu-img skips holes and zero blocks)
#   edgeblock image import IMAGE tank/vN             (a thin volume; the job ends with the volume flushed)
# and prints the import time (qemu-img: the command's wall time; EdgeBlock: the job's, from accepted to flushed, as
# the daemon reports it — the CLI's own start, a .NET process, is shown apart), MB/s of the image's virtual size, the
# importer's CPU (the daemon's for EdgeBlock) and the ratio EdgeBlock / qemu-img per format (goal ≥ 1.0).
#
# --attach instead times instant boot: `image attach` of a qcow2 of SIZE (default 8G; 1 MiB of data every 256 MiB)
# and of a 1 GiB one (the goal: the time does not grow with the size), each until the first read is served: the
# attach API call (curl on the API socket), the namespace add, then one 4 KiB read with `edgeblock bench` over
# NVMe/TCP (its wall time includes the CLI's .NET start and the connect).
#
#   bench/images.sh [--attach] [--size 2G] [--rounds 2] [--dir DIR]
# Prints; records nothing (copy the result to BENCHMARKS.md with the command).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$repo/bench/lib.sh"
size="" rounds=2 attach=0
while [ $# -gt 0 ]; do
  case $1 in
    --attach) attach=1; shift ;;
    --size) size=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --dir) work_parent=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "images: unknown option '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
[ -n "$size" ] || { [ "$attach" = 1 ] && size=8G || size=2G; }
require qemu-img qemu-utils
install_required images
eb="$repo/edgeblock"
"$eb" --help >/dev/null # builds it when needed, before anything is timed
tmp=$(mktemp -d "$work_parent/edgeblock-images-bench.XXXXXX")
daemon=""
trap '[ -n "$daemon" ] && kill "$daemon" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"' EXIT
bytes=$(python3 -c "import sys; s='$size'; m={'K':1<<10,'M':1<<20,'G':1<<30}; print(int(s[:-1])*m[s[-1]] if s[-1] in m else int(s))")

echo "== $(nproc) CPUs, $(git -C "$repo" rev-parse --short HEAD)$(git -C "$repo" diff --quiet HEAD || echo -dirty), load $(cut -d' ' -f1 /proc/loadavg), image $size, $rounds rounds" >&2
port=$(pick_port $((20000 + RANDOM % 20000)))
"$eb" serve --data-dir "$tmp/d" --listen "127.0.0.1:$port" >"$tmp/daemon.log" 2>&1 &
daemon=$!
api=(--api-socket "$tmp/d/api.sock")
for _ in $(seq 200); do [ -S "$tmp/d/api.sock" ] && break; sleep 0.1; done
# The images lie in the data directory (the daemon opens only files there or under a storage root).
img="$tmp/d/images"
mkdir -p "$img"
# A pool on a file on the same disk as qemu-img's output, large enough for every round's volumes.
"$eb" pool create tank "$tmp/d/tank.img:$(( bytes * (rounds * 2 + 1) / (1 << 30) + 1 ))G" "${api[@]}" >/dev/null
now() { date +%s.%N; }
if [ "$attach" = 1 ]; then
  . "$repo/bench/images-attach.sh"
  exit 0
fi
# Each data MiB: 256 blocks of 2 KiB random bytes followed by 2 KiB of a repeated phrase (deflate: about 2:1).
python3 - "$img/image.raw" "$bytes" <<'PY'
import os, sys
path, size = sys.argv[1], int(sys.argv[2])
mib = 1 << 20
filler = (b"edge block image import benchmark " * 64)[:2048]
with open(path, "wb") as f:
    f.truncate(size)
    for off in range(0, size, 2 * mib):
        f.seek(off)
        f.write(b"".join(os.urandom(2048) + filler for _ in range(mib // 4096)))
PY
qemu-img convert -c -O qcow2 "$img/image.raw" "$img/image.qcow2"
echo "   raw: $(du -h --apparent-size "$img/image.raw" | cut -f1) virtual, $(du -h "$img/image.raw" | cut -f1) allocated; qcow2 (deflate): $(du -h "$img/image.qcow2" | cut -f1)" >&2

clk_tck=$(getconf CLK_TCK)

results=()
run_qemu() { # FORMAT ROUND
  local in="$img/image.$1" out="$tmp/out-$1-$2.raw" t0 t1
  t0=$(now)
  # The CPU of qemu-img and sync: the children's times of a shell that ran only them.
  bash -c 'qemu-img convert -O raw "$1" "$2" && sync -f "$2"; times' _ "$in" "$out" >"$tmp/cpu"
  t1=$(now)
  local wall; wall=$(echo "$t1 - $t0" | bc)
  results+=("qemu-img $1 $wall $(tail -1 "$tmp/cpu" | awk '{ gsub(/[ms]/, " "); print $1 * 60 + $2 + $3 * 60 + $4 }') $wall")
  rm -f "$out"
}
run_eb() { # FORMAT ROUND
  local t0 t1 c0 c1
  c0=$(cpu_ticks "$daemon")
  t0=$(now)
  "$eb" image import "$img/image.$1" "tank/v-$1-$2" "${api[@]}" --json >"$tmp/job.json"
  t1=$(now)
  c1=$(cpu_ticks "$daemon")
  # The job's own time (accepted to flushed), besides the command's: the CLI's start (.NET) is not the import.
  job=$(tail -1 "$tmp/job.json" | python3 -c 'import json, sys, datetime as d
j = json.load(sys.stdin); print((d.datetime.fromisoformat(j["ended"]) - d.datetime.fromisoformat(j["started"])).total_seconds())')
  results+=("edgeblock $1 $job $(echo "scale=2; ($c1 - $c0) / $clk_tck" | bc) $(echo "$t1 - $t0" | bc)")
  "$eb" volume delete "tank/v-$1-$2" "${api[@]}" >/dev/null
}
for r in $(seq "$rounds"); do
  for fmt in raw qcow2; do run_qemu "$fmt" "$r"; run_eb "$fmt" "$r"; done
done

printf '%s\n' "${results[@]}" | python3 -c '
import sys, statistics
size = int(sys.argv[1])
rows = {}
for line in sys.stdin:
    who, fmt, wall, cpu, command = line.split()
    rows.setdefault((who, fmt), []).append((float(wall), float(cpu), float(command)))
print("| importer | image | import s (median) | MB/s of virtual size | CPU s | runs (s) | command wall s (median) |")
print("|---|---|---:|---:|---:|---|---:|")
med = {}
for (who, fmt), v in sorted(rows.items()):
    wall = statistics.median(w for w, _, _ in v); cpu = statistics.median(c for _, c, _ in v)
    command = statistics.median(c for _, _, c in v)
    med[(who, fmt)] = wall
    runs = ", ".join("%.2f" % w for w, _, _ in v)
    print(f"| {who} | {fmt} | {wall:.2f} | {size / wall / 1e6:.0f} | {cpu:.2f} | {runs} | {command:.2f} |")
print()
for fmt in ("raw", "qcow2"):
    q, e = med[("qemu-img", fmt)], med[("edgeblock", fmt)]
    verdict = "met" if q / e >= 1.0 else "NOT met"
    print(f"| import {fmt} image, speed vs qemu-img convert -O raw | {q / e:.2f} | goal >= 1.0 | {verdict} |")
' "$bytes"
