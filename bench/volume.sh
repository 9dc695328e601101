#!/usr/bin/env bash
# bench/volume.sh — the data path of chunk volumes per core (issue D), in one process and one run, against its
# anchors: `lz4 -b1` on the same 2:1 data and `openssl speed -evp aes-256-xts` (16 KiB units, a chunk's size).
# bench/VolumeBench writes each volume sequentially (128 KiB, QD 8), flushes, reads it back and compares; MB per
# CPU-second counts every thread of the process (caller, io_uring ring, thread pool, RocksDB). The thin volume is
# the same path with no data service: what a service costs per byte is its CPU-s/MB minus the thin volume's, and
# "service MB/CPU-s" is the inverse of that difference, the figure comparable with the anchors' own loops.
#
#   bench/volume.sh [MiB per volume, default 512] [QD, default 8]
# Prints; records nothing (copy the result to BENCHMARKS.md). Tiered compilation is off for the benchmark, so that
# a JIT compiling in the background does not count as the volume's CPU.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mib=${1:-512}
qd=${2:-8}
cd "$repo"
command -v lz4 >/dev/null || { echo "bench/volume.sh: lz4 is needed (apt-get install lz4)" >&2; exit 1; }
dotnet build bench/VolumeBench -c Release -v q -nologo >/dev/null
tmp=$(mktemp -d "${TMPDIR:-/var/tmp}/edgeblock-volume-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# The layout `edgeblock bench --compressible 2` writes: each 4 KiB is 2 KiB random, then text repeated. 32 MiB.
perl -e 'open(my $r, "<", "/dev/urandom") or die; my $t = substr("EdgeBlock compressible data " x 80, 0, 2048); for (1 .. 8192) { read($r, my $b, 2048) == 2048 or die; print $b, $t }' >"$tmp/data.bin"
echo "== $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(lz4 --version 2>&1 | head -1 | awk '{print $1, $NF}'), $(openssl version | awk '{print $1, $2}'), $(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo -dirty), load $(cut -d' ' -f1 /proc/loadavg)"
lz4_mb() { lz4 -b1 "$@" "$tmp/data.bin" 2>&1 | tr '\r' '\n' | grep 'MB/s ,' | tail -1 | sed -E 's/.*\), *([0-9.]+) MB\/s ,.*/\1/'; }
xts_mb() { openssl speed -evp aes-256-xts -bytes 16384 -seconds 3 2>/dev/null | awk '/^AES-256-XTS/ { printf "%.0f", $2 / 1000 }'; }
lz4_anchor=$(lz4_mb)
lz4_anchor16=$(lz4_mb -B16384)
xts_anchor=$(xts_mb)
echo "anchors: lz4 -b1 $lz4_anchor MB/s, lz4 -b1 -B16384 $lz4_anchor16 MB/s, openssl speed aes-256-xts (16 KiB) $xts_anchor MB/s (one thread, per CPU-s)"
DOTNET_TieredCompilation=0 dotnet bench/VolumeBench/bin/Release/net10.0/VolumeBench.dll "$tmp/run" "$tmp/data.bin" "$mib" "$qd" | tee "$tmp/out.txt"
# Columns: volume, write MB/CPU-s, write MB/s, read MB/CPU-s, read MB/s, stored MiB
awk -v lz4="$lz4_anchor" -v xts="$xts_anchor" '
  $1 == "thin" { tw = $2; tr = $4 }
  $1 == "lz4" { lw = $2 }
  $1 == "aes-xts" { xw = $2; xr = $4 }
  function service(vol, thin) { return (vol > 0 && thin > vol) ? 1 / (1 / vol - 1 / thin) : 0 }
  END {
    printf "\n| figure | volume | anchor | ratio |\n|---|---:|---:|---:|\n"
    printf "| lz4 volume sequential write, MB per CPU-s (whole data path) vs lz4 -b1 | %d | %d | %.2f |\n", lw, lz4, lw / lz4
    printf "| lz4 service alone (volume minus thin), MB per CPU-s vs lz4 -b1 | %d | %d | %.2f |\n", service(lw, tw), lz4, service(lw, tw) / lz4
    printf "| AES-XTS volume sequential write, MB per CPU-s (whole data path) vs openssl speed | %d | %d | %.2f |\n", xw, xts, xw / xts
    printf "| AES-XTS service alone on write, MB per CPU-s vs openssl speed | %d | %d | %.2f |\n", service(xw, tw), xts, service(xw, tw) / xts
    printf "| AES-XTS volume sequential read, MB per CPU-s (whole data path) vs openssl speed | %d | %d | %.2f |\n", xr, xts, xr / xts
    printf "| AES-XTS service alone on read, MB per CPU-s vs openssl speed | %d | %d | %.2f |\n", service(xr, tr), xts, service(xr, tr) / xts
  }' "$tmp/out.txt"
