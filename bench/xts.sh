#!/usr/bin/env bash
# bench/xts.sh — the AES-256-XTS primitive (issue D) against its anchor, in one run:
# `openssl speed -evp aes-256-xts -bytes 4096` (one process, then -multi 2), then
# bench/XtsBench: XtsAes (OpenSSL's XTS through its provider functions), the same through EVP,
# and the managed XTS over .NET's AES-ECB, 4 KiB and 128 KiB calls in place, single thread,
# taking turns with an in-process copy of openssl speed's loop, plus XtsAes from two threads. MB/s = 10^6 bytes/s. openssl speed divides by its CPU
# (user) time unless given -elapsed; XtsBench prints rates per CPU-second of the measuring thread
# and per wall second. On a shared VM compare per CPU-s, and the in-process ratio most of all.
#
#   bench/xts.sh [SECONDS] [ROUNDS]   openssl speed seconds (default 3); XtsBench rounds of 0.25 s turns (default 25)
# Prints; records nothing (copy the result to BENCHMARKS.md).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
seconds=${1:-3}
rounds=${2:-25}
cd "$repo"
dotnet build bench/XtsBench -c Release -v q -nologo >/dev/null
echo "== $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(openssl version), $(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo -dirty)"
speed() { openssl speed "$@" -evp aes-256-xts -bytes 4096 -seconds "$seconds" 2>/dev/null | awk '/^AES-256-XTS/ { printf "%.0f MB/s\n", $2 / 1000 }'; }
echo "openssl speed, 1 process:           $(speed) per CPU-s, $(speed -elapsed) wall"
echo "openssl speed, -multi 2 (aggregate): $(speed -multi 2) per CPU-s"
dotnet bench/XtsBench/bin/Release/net10.0/XtsBench.dll 0.25 "$rounds"
echo "openssl speed, 1 process, after:    $(speed) per CPU-s, $(speed -elapsed) wall"
