#!/usr/bin/env bash
# bench/thinmap-rss.sh — what creating a 100 TiB thin volume costs the daemon (issue I): RSS of
# `edgeblock serve` (temp data dir, memory default namespace, no listener traffic) and its managed heap
# (dotnet_total_memory_bytes from its /metrics: GC.GetTotalMemory) after `pool create` (64 MiB), then
# after `volume create --size 100T`, then after a second one with `--checksum on` (a chunk volume),
# each 3 s after the command returned; and the map_bytes `volume show` reports. RSS alone hides an
# untouched array (the kernel maps its pages on first touch; a full GC's mark touches them).
#
#   bench/thinmap-rss.sh [REPO]   REPO: the checkout to build and run (default: this one), e.g. a worktree of main
# Prints; records nothing (copy the result to BENCHMARKS.md).
set -euo pipefail
repo=$(cd "${1:-$(dirname "${BASH_SOURCE[0]}")/..}" && pwd)
eb="$repo/edgeblock"
"$eb" --help >/dev/null
dir=$(mktemp -d /tmp/eb-rss-XXXXXX)
sock="$dir/api.sock"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$eb" serve --data-dir "$dir" --listen 127.0.0.1:0 --default-backend memory --default-size 1M --metrics "127.0.0.1:$port" >"$dir/serve.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
rss() {
  sleep 3
  awk '/^VmRSS/ { printf "RSS %.1f MiB", $2 / 1024 }' "/proc/$pid/status"
  curl -s "http://127.0.0.1:$port/metrics" | awk '/^dotnet_total_memory_bytes / { printf ", managed heap %.1f MiB", $2 / 1048576 }'
}
map() { "$eb" --api-socket "$sock" volume show "$1" --json | tr -d ' \n' | grep -o '"map_bytes":[0-9]*' | cut -d: -f2 || echo "n/a (main has none)"; }
echo "== $(git -C "$repo" rev-parse --short HEAD)$(git -C "$repo" diff --quiet HEAD || echo -dirty), $(nproc) CPUs"
"$eb" --api-socket "$sock" pool create p "$dir/d0.img:64M" >/dev/null
echo "after pool create (64 MiB):                 $(rss)"
"$eb" --api-socket "$sock" volume create p/thin --size 100T >/dev/null
echo "after volume create --size 100T:            $(rss)   map_bytes $(map p/thin)"
"$eb" --api-socket "$sock" volume create p/chunks --size 100T --checksum on >/dev/null
echo "after volume create --size 100T --checksum: $(rss)   map_bytes $(map p/chunks)"
