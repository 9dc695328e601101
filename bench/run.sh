#!/usr/bin/env bash
# EdgeBlock benchmark suite: the anchors and EdgeBlock measured side by side in one run.
#
#   bench/run.sh                   everything, 10 s per run, table appended to BENCHMARKS.md
#   bench/run.sh --time 5          5 s per run
#   bench/run.sh --no-record       print the table only
#   bench/run.sh --only edgeblock,volume  some groups (iperf3, qsd, nbdkit, fio, edgeblock, volume, dataservices);
#                                  ratios need the others (dataservices compares with volume)
#   bench/run.sh --only spdk       SPDK nvmf_tgt and EdgeBlock side by side under spdk_nvme_perf (issue P; bench/spdk.sh:
#                                  SPDK_DIR or ../shared/tools/build-spdk.sh, else skipped); runs only when named
#   bench/run.sh --only vm         bench/vm.sh (issue G: host CPU per GiB of a guest's disk I/O, ~7 min, its own table and
#                                  section); runs only when named, after the other groups named with it
#
# Every server is pinned to CPU 0 and every client to CPU 1 (taskset), traffic stays on 127.0.0.1.
# Server CPU per I/O = (utime + stime of the server process from /proc/PID/stat, after - before)
# / CLK_TCK / I/Os the client completed; for EdgeBlock `edgeblock bench --server-pid` takes the same
# figure over its measured window, after a 5 s ramp: on a pinned, saturated core .NET's tiered JIT
# takes about that long to replace the first, unoptimized code of the hot path (both ends).
# Runs on Debian 12 as root or with sudo; installs what it needs with apt-get. Under 10 minutes.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
# shellcheck source=lib.sh
. "$here/lib.sh"
# shellcheck source=spdk.sh
. "$here/spdk.sh"

run_seconds=10
only=""
server_cpu=0
client_cpu=1
while [ $# -gt 0 ]; do
  case "$1" in
    --only) only="$2"; shift 2 ;;
    *) bench_option bench/run.sh "$@"; shift "$SHIFT" ;;
  esac
done
[[ "$run_seconds" =~ ^[0-9]+$ ]] && [ "$run_seconds" -ge 1 ] && [ "$run_seconds" -le 60 ] \
  || { echo "bench/run.sh: --time takes whole seconds, 1..60 (the suite must stay under 10 minutes)" >&2; exit 2; }
if [ "$(nproc)" -lt 2 ]; then echo "bench/run.sh: needs 2 CPUs (server on CPU 0, client on CPU 1)" >&2; exit 2; fi
want() { [ -z "$only" ] || [[ ",$only," == *",$1,"* ]]; }
named() { [[ ",$only," == *",$1,"* ]]; }   # groups that run only when named
run_vm=0
if [[ ",$only," == *",vm,"* ]]; then
  run_vm=1; only=$(echo ",$only," | sed 's/,vm,/,/; s/^,//; s/,$//')
  vm_args=(--dir "$work_parent"); [ "$record" = 1 ] || vm_args+=(--no-record)
  [ -n "$only" ] || exec "$here/vm.sh" "${vm_args[@]}"
fi

# ---- dependencies -------------------------------------------------------------------
# qemu-storage-daemon ships in qemu-system-common on Debian 12; taskset in util-linux.
require fio fio
require iperf3 iperf3
require nbdkit nbdkit
require qemu-storage-daemon qemu-system-common
require qemu-img qemu-utils
require taskset util-linux
require jq jq
require getconf libc-bin
require lz4 lz4
require perl perl-base
install_required bench
if ! have_cmd dotnet; then echo "bench/run.sh: the .NET 10 SDK (dotnet) is needed to build edgeblock" >&2; exit 2; fi

clk_tck=$(getconf CLK_TCK)
T=$run_seconds

# ---- work directory, servers, cleanup --------------------------------------------------
tmp=$(mktemp -d "$work_parent/edgeblock-bench.XXXXXX")
server_pid=""
cleanup() {
  stop_server
  rm -rf "$tmp"
}
stop_server() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  server_pid=""
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_port() { # PORT: until the server listens, at most 15 s
  for _ in $(seq 150); do
    listening "$1" && return 0
    kill -0 "$server_pid" 2>/dev/null || { echo "bench: the server exited before listening on port $1:" >&2; tail -5 "$tmp"/*.log >&2; return 1; }
    sleep 0.1
  done
  echo "bench: nothing listens on 127.0.0.1:$1 after 15 s" >&2
  return 1
}
# Other load on the two CPUs during a run, in % of one CPU: busy time of CPUs 0-1 (/proc/stat) less the server's and
# the client's own CPU time (the client is a child of this shell: bash's `times`). Interrupt work that no process is
# charged for stays in it, so a quiet machine shows a few %; a build running next to us shows 50+.
stat_busy() { awk '/^cpu[01] / { b += $2 + $3 + $4 + $7 + $8 + $9; t += $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 } END { print b, t }' /proc/stat; }
children_ticks() { # `times` must run in this shell (a subshell would report its own, empty, children)
  times >"$tmp/times"
  awk -v hz="$clk_tck" 'NR == 2 { t = 0; for (i = 1; i <= 2; i++) { split($i, p, "m"); t += p[1] * 60 + p[2] } printf "%d", t * hz }' "$tmp/times"
}
measure_begin() {
  m_stat=$(stat_busy); children_ticks >"$tmp/ticks"; m_child=$(<"$tmp/ticks")
  m_server=$( [ -n "$server_pid" ] && cpu_ticks "$server_pid" || echo 0)
}
measure_end() { # sets OTHER
  local stat child server
  stat=$(stat_busy); children_ticks >"$tmp/ticks"; child=$(<"$tmp/ticks")
  server=$( [ -n "$server_pid" ] && cpu_ticks "$server_pid" || echo 0)
  OTHER=$(awk -v a="$m_stat" -v b="$stat" -v c=$((child - m_child)) -v s=$((server - m_server)) \
    'BEGIN { split(a, x, " "); split(b, y, " "); dt = (y[2] - x[2]) / 2; o = dt > 0 ? 100 * (y[1] - x[1] - c - s) / dt : 0; printf "%.0f", (o < 0 ? 0 : o) }')
}
start_server() { # LOGNAME COMMAND...: pinned to the server CPU, in the background
  local log="$tmp/$1.log"; shift
  taskset -c "$server_cpu" "$@" >"$log" 2>&1 &
  server_pid=$!
}


# ---- results --------------------------------------------------------------------------------
declare -A ROW R_IOPS R_MBPS R_CPU CLIENT_CPU CLIENT_UTIL   # ROW: system|workload|iops|mbps|p99_us|server_us_per_io|other_load
declare -A R_META R_WRITES   # metadata bytes a write run committed, and the writes of that run (eb_bench_meta)
order=()
OTHER="-"
add_row() { # KEY SYSTEM WORKLOAD IOPS MBPS P99 CPU (and $OTHER of the run)
  [ -n "${ROW[$1]:-}" ] || order+=("$1")
  ROW[$1]="$2|$3|$4|$5|$6|$7|$OTHER"
  R_IOPS[$1]=$4; R_MBPS[$1]=$5; R_CPU[$1]=$7
  printf '  %-34s %-22s %10s IOPS %9s MB/s  p99 %8s us  server %6s us/IO  other load %s%%\n' "$2" "$3" "$4" "$5" "$6" "$7" "$OTHER" >&2
}

# FUNC KEY ARGS...: one run. When something else used the CPUs meanwhile (other load above 25%) and the suite
# is still young, the run is repeated once and the quieter of the two is kept: on a shared machine that saves
# most figures from a neighbour's build without letting the suite run long.
retry_until=$((T * 42))
measure() {
  local key=$2
  "$@"
  local other=$OTHER
  if [[ "$other" =~ ^[0-9]+$ ]] && [ "$other" -gt 25 ] && [ $((SECONDS - t0)) -lt "$retry_until" ]; then
    local row=${ROW[$key]} iops=${R_IOPS[$key]} mbps=${R_MBPS[$key]} cpu=${R_CPU[$key]}
    local ccpu=${CLIENT_CPU[$key]:-} cutil=${CLIENT_UTIL[$key]:-} meta=${R_META[$key]:-} writes=${R_WRITES[$key]:-}
    echo "  (other load ${other}%: once more)" >&2
    "$@"
    if [ "$OTHER" -ge "$other" ]; then
      ROW[$key]=$row; R_IOPS[$key]=$iops; R_MBPS[$key]=$mbps; R_CPU[$key]=$cpu
      CLIENT_CPU[$key]=$ccpu; CLIENT_UTIL[$key]=$cutil; R_META[$key]=$meta; R_WRITES[$key]=$writes
    fi
  fi
}

# fio against an NBD server: KEY SYSTEM URI RW BS QD
fio_nbd() {
  local key=$1 system=$2 uri=$3 rw=$4 bs=$5 qd=$6
  local out="$tmp/$key.json"
  local cmd=(fio --name="$key" --ioengine=nbd --uri="$uri" --rw="$rw" --bs="$bs" --iodepth="$qd"
             --time_based --runtime="$T" --lat_percentiles=1 --output-format=json --output="$out")
  note_cmd "taskset -c $client_cpu ${cmd[*]}"
  local before after
  measure_begin
  before=$(cpu_ticks "$server_pid")
  taskset -c "$client_cpu" "${cmd[@]}" >/dev/null 2>"$tmp/$key.err" || { echo "bench: fio failed:" >&2; cat "$tmp/$key.err" >&2; return 1; }
  after=$(cpu_ticks "$server_pid")
  measure_end
  fio_row "$key" "$system" "$rw $bs QD$qd" "$out" $((after - before))
}

fio_row() { # KEY SYSTEM WORKLOAD JSON SERVER_TICKS(or -)
  local key=$1 system=$2 workload=$3 json=$4 ticks=$5
  local dir=read; case "$workload" in *write*) dir=write ;; esac
  local iops mbps p99 ios cpu
  iops=$(jq -r ".jobs[0].$dir.iops | floor" "$json")
  mbps=$(jq -r ".jobs[0].$dir.bw_bytes / 1e6 | . * 10 | round / 10" "$json")
  p99=$(jq -r ".jobs[0].$dir.lat_ns.percentile[\"99.000000\"] / 1000 | round" "$json")
  ios=$(jq -r ".jobs[0].$dir.total_ios" "$json")
  if [ "$ticks" = "-" ]; then cpu="-"
  else cpu=$(awk -v t="$ticks" -v hz="$clk_tck" -v n="$ios" 'BEGIN { printf "%.2f", (n > 0 ? t / hz * 1e6 / n : 0) }'); fi
  add_row "$key" "$system" "$workload" "$iops" "$mbps" "$p99" "$cpu"
}

# edgeblock bench against the running edgeblock server: KEY SYSTEM RW BS QD [more bench options]
eb_bench() {
  local key=$1 system=$2 rw=$3 bs=$4 qd=$5; shift 5
  local out="$tmp/$key.json"
  local cmd=("$eb" bench --addr "127.0.0.1:$eb_port" --nqn "$eb_nqn" --rw "$rw" --bs "$bs" --qd "$qd"
             --time "${T}s" --ramp 5s --json --server-pid "$server_pid" "$@")
  note_cmd "taskset -c $client_cpu ${cmd[*]}"
  measure_begin
  taskset -c "$client_cpu" "${cmd[@]}" >"$out" 2>"$tmp/$key.err" || { echo "bench: edgeblock bench failed:" >&2; cat "$tmp/$key.err" "$out" >&2; return 1; }
  measure_end
  local iops mbps p99 cpu
  iops=$(jq -r '.iops | floor' "$out")
  mbps=$(jq -r '.mb_per_sec * 10 | round / 10' "$out")
  p99=$(jq -r '.latency_us.p99 | round' "$out")
  cpu=$(jq -r '.server_cpu.us_per_io * 100 | round / 100' "$out")
  local workload="$rw $bs QD$qd"
  case " $* " in *" --queues "*) workload="$workload x$(jq -r .queues "$out")q" ;; esac
  case " $* " in *" --compressible "*) workload="$workload, $(jq -r .compressible "$out"):1 data" ;; esac
  add_row "$key" "$system" "$workload" "$iops" "$mbps" "$p99" "$cpu"
  CLIENT_CPU[$key]=$(jq -r '.client_cpu.us_per_io * 100 | round / 100' "$out")
  CLIENT_UTIL[$key]=$(jq -r '.client_cpu.core_utilization * 100 | round' "$out")
}

# eb_bench with the metadata the pool "bench" committed for the run: R_META (bytes) and R_WRITES (every write the
# target saw, ramp included). Waits for the background commit (every 2 s) that carries the run's last writes.
meta_bytes() { "$eb" pool show bench --json | jq -r '.counters.metadata_bytes_written'; }
eb_bench_meta() {
  local key=$1 before after
  before=$(meta_bytes)
  eb_bench "$@"
  sleep 3
  after=$(meta_bytes)
  R_META[$key]=$((after - before))
  R_WRITES[$key]=$(jq -r '.run_ios' "$tmp/$key.json")
}
meta_per_write() { # KEY -> bytes per write, or -
  awk -v m="${R_META[$1]:--}" -v w="${R_WRITES[$1]:--}" 'BEGIN { if (m == "-" || w + 0 == 0) print "-"; else printf "%.1f", m / w }'
}

# ---- build edgeblock first (not inside any measurement) ---------------------------------------
if want edgeblock || want volume || want dataservices || named spdk; then
  echo "bench: building edgeblock (Release) if needed" >&2
  "$repo/edgeblock" --help >/dev/null
fi
eb="$repo/artifacts/edgeblock/edgeblock"

# ---- the machine ---------------------------------------------------------------------------
cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
busy_before=$(awk '/^cpu[01] / { idle += $5 + $6; total = 0; for (i = 2; i <= NF; i++) total += $i; t += total } END { print idle, t }' /proc/stat)
sleep 1
busy_after=$(awk '/^cpu[01] / { idle += $5 + $6; total = 0; for (i = 2; i <= NF; i++) total += $i; t += total } END { print idle, t }' /proc/stat)
background_busy=$(awk -v a="$busy_before" -v b="$busy_after" 'BEGIN { split(a, x, " "); split(b, y, " "); dt = y[2] - x[2]; printf "%.0f", (dt > 0 ? 100 * (1 - (y[1] - x[1]) / dt) : 0) }')
echo "bench: $(nproc) CPUs ($cpu_model), kernel $(uname -r), ${T} s per run, work dir $tmp" >&2
if [ "$background_busy" -gt 15 ]; then
  echo "bench: WARNING: CPUs 0-1 were ${background_busy}% busy before the first run; other load skews every figure" >&2
fi
started=$(date -u '+%Y-%m-%d %H:%M UTC')
t0=$SECONDS

# ---- 1. iperf3: the transport's physical limit ---------------------------------------------------
if want iperf3; then
  echo "== iperf3 loopback, one stream" >&2
  port=$(pick_port 25201)
  start_server iperf3 iperf3 -s -B 127.0.0.1 -p "$port"
  note_cmd "taskset -c $server_cpu iperf3 -s -B 127.0.0.1 -p $port"
  wait_port "$port"
  run_iperf3() {
    note_cmd "taskset -c $client_cpu iperf3 -c 127.0.0.1 -p $port -t $T -J"
    measure_begin
    taskset -c "$client_cpu" iperf3 -c 127.0.0.1 -p "$port" -t "$T" -J >"$tmp/iperf3.json"
    measure_end
    add_row iperf3 "iperf3 (TCP, 1 stream)" "stream" "-" "$(jq -r '.end.sum_received.bits_per_second / 8e6 | round' "$tmp/iperf3.json")" "-" "-"
  }
  measure run_iperf3 iperf3
  stop_server
fi

# ---- a data file on this disk for the file-backed runs (filled, not sparse) ------------------------
data="$tmp/data.img"
if want qsd || want fio; then
  echo "== preparing a 1 GiB data file" >&2
  fio --name=fill --filename="$data" --size=1g --rw=write --bs=1m --ioengine=psync --direct=1 \
      --refill_buffers --output="$tmp/fill.txt" >/dev/null
  sync
fi

# ---- 2. qemu-storage-daemon over NBD ---------------------------------------------------------
if want qsd; then
  echo "== qemu-storage-daemon, null-co over NBD" >&2
  port=$(pick_port 20809)
  # read-zeroes=off: null-co then reports no zero blocks, so the NBD server sends the data (as we do) instead of holes.
  start_server qsd-null qemu-storage-daemon \
    --blockdev driver=null-co,node-name=null0,size=8589934592,read-zeroes=off \
    --nbd-server addr.type=inet,addr.host=127.0.0.1,addr.port="$port" \
    --export type=nbd,id=exp0,node-name=null0,name=null0,writable=on
  note_cmd "taskset -c $server_cpu qemu-storage-daemon --blockdev driver=null-co,node-name=null0,size=8589934592,read-zeroes=off --nbd-server addr.type=inet,addr.host=127.0.0.1,addr.port=$port --export type=nbd,id=exp0,node-name=null0,name=null0,writable=on"
  wait_port "$port"
  measure fio_nbd qsd_null_rr "qemu-storage-daemon null-co" "nbd://127.0.0.1:$port/null0" randread 4k 32
  measure fio_nbd qsd_null_rw "qemu-storage-daemon null-co" "nbd://127.0.0.1:$port/null0" randwrite 4k 32
  measure fio_nbd qsd_null_seq "qemu-storage-daemon null-co" "nbd://127.0.0.1:$port/null0" read 128k 8
  stop_server

  echo "== qemu-storage-daemon, raw file over NBD" >&2
  cat "$data" >/dev/null # into the page cache, where qemu's default cache mode serves it from
  start_server qsd-file qemu-storage-daemon \
    --blockdev driver=file,node-name=file0,filename="$data" \
    --nbd-server addr.type=inet,addr.host=127.0.0.1,addr.port="$port" \
    --export type=nbd,id=exp0,node-name=file0,name=file0,writable=on
  note_cmd "taskset -c $server_cpu qemu-storage-daemon --blockdev driver=file,node-name=file0,filename=data.img --nbd-server addr.type=inet,addr.host=127.0.0.1,addr.port=$port --export type=nbd,id=exp0,node-name=file0,name=file0,writable=on"
  wait_port "$port"
  measure fio_nbd qsd_file_rr "qemu-storage-daemon raw file" "nbd://127.0.0.1:$port/file0" randread 4k 32
  measure fio_nbd qsd_file_seq "qemu-storage-daemon raw file" "nbd://127.0.0.1:$port/file0" read 128k 8
  stop_server
fi

# ---- 3. nbdkit: a lean C server -------------------------------------------------------------
if want nbdkit; then
  port=$(pick_port 20810)
  for plugin in null memory; do
    echo "== nbdkit $plugin" >&2
    start_server "nbdkit-$plugin" nbdkit --foreground --exit-with-parent --ipaddr 127.0.0.1 --port "$port" "$plugin" size=8G
    note_cmd "taskset -c $server_cpu nbdkit --foreground --ipaddr 127.0.0.1 --port $port $plugin size=8G"
    wait_port "$port"
    measure fio_nbd "nbdkit_${plugin}_rr" "nbdkit $plugin" "nbd://127.0.0.1:$port" randread 4k 32
    [ "$plugin" = null ] && measure fio_nbd "nbdkit_${plugin}_rw" "nbdkit $plugin" "nbd://127.0.0.1:$port" randwrite 4k 32
    measure fio_nbd "nbdkit_${plugin}_seq" "nbdkit $plugin" "nbd://127.0.0.1:$port" read 128k 8
    stop_server
  done
fi

# ---- 4. fio io_uring O_DIRECT on the data file: the disk's limit ------------------------------------
if want fio; then
  echo "== fio io_uring O_DIRECT on a local file" >&2
  run_fio_uring() {
    local cmd=(fio --name=local --filename="$data" --size=1g --ioengine=io_uring --direct=1 --rw=randread --bs=4k --iodepth=32
         --time_based --runtime="$T" --lat_percentiles=1 --output-format=json --output="$tmp/fio_uring.json")
    note_cmd "taskset -c $client_cpu ${cmd[*]}"
    measure_begin
    taskset -c "$client_cpu" "${cmd[@]}" >/dev/null
    measure_end
    fio_row fio_uring "fio io_uring O_DIRECT (local)" "randread 4k QD32" "$tmp/fio_uring.json" -
  }
  measure run_fio_uring fio_uring
fi

# ---- 5. EdgeBlock, driven by edgeblock bench ----------------------------------------------------------
if want edgeblock; then
  eb_nqn="nqn.2026-11.io.edgeblock:default"
  eb_port=$(pick_port 24420)

  echo "== EdgeBlock, null backend" >&2
  start_server eb-null "$eb" serve --data-dir "$tmp/eb-null" --listen "127.0.0.1:$eb_port" --default-backend null --default-size 8G
  note_cmd "taskset -c $server_cpu ./edgeblock serve --data-dir DIR --listen 127.0.0.1:$eb_port --default-backend null --default-size 8G"
  wait_port "$eb_port"
  measure eb_bench eb_null_rr "EdgeBlock null" randread 4k 32
  measure eb_bench eb_null_rw "EdgeBlock null" randwrite 4k 32
  measure eb_bench eb_null_seq "EdgeBlock null" read 128k 8
  measure eb_bench eb_null_rr2 "EdgeBlock null" randread 4k 32 --queues 2
  stop_server

  echo "== EdgeBlock, file backend (1 GiB, filled first)" >&2
  start_server eb-file "$eb" serve --data-dir "$tmp/eb-file" --listen "127.0.0.1:$eb_port" --default-backend file --default-size 1G
  note_cmd "taskset -c $server_cpu ./edgeblock serve --data-dir DIR --listen 127.0.0.1:$eb_port --default-backend file --default-size 1G"
  wait_port "$eb_port"
  fill=("$eb" bench --addr "127.0.0.1:$eb_port" --nqn "$eb_nqn" --rw write --bs 128k --qd 8 --io-limit 1G --time 120s --json)
  note_cmd "taskset -c $client_cpu ${fill[*]}   # fill the namespace: no reads of holes"
  taskset -c "$client_cpu" "${fill[@]}" >"$tmp/eb_fill.json"
  echo "  filled 1 GiB at $(jq -r '.mb_per_sec | round' "$tmp/eb_fill.json") MB/s" >&2
  measure eb_bench eb_file_rr "EdgeBlock file (O_DIRECT)" randread 4k 32
  measure eb_bench eb_file_rw "EdgeBlock file (O_DIRECT)" randwrite 4k 32
  # Correctness check of the whole path: pattern writes and reads with per-block CRC32C, then a full read-back.
  verify=("$eb" bench --addr "127.0.0.1:$eb_port" --nqn "$eb_nqn" --rw randrw --bs 4k --qd 32 --time 3s --verify --size-limit 64M --json)
  note_cmd "taskset -c $client_cpu ${verify[*]}"
  if taskset -c "$client_cpu" "${verify[@]}" >"$tmp/eb_verify.json" 2>"$tmp/eb_verify.err"; then
    verify_result="ok: $(jq -r '.verify.blocks_checked' "$tmp/eb_verify.json") blocks checked, 0 mismatches"
  else
    verify_result="FAILED: $(jq -r '(.verify.mismatches // "?" | tostring) + " mismatches; " + ((.verify.first_mismatches // []) | join("; "))' "$tmp/eb_verify.json" 2>/dev/null || cat "$tmp/eb_verify.err")"
  fi
  echo "  verify: $verify_result" >&2
  stop_server
fi

# eb_pool_server KEY NQN COMMAND...: a daemon of its own in $tmp/KEY (default namespace on null), its pool and
# volumes made by the given CLI commands (DIR stands for its data directory), each volume added in order as a
# namespace of subsystem NQN (open to any host). eb_pool_server_stop ends it and restores eb_nqn.
eb_pool_server() {
  local key=$1 nqn=$2 dir="$tmp/$1" c
  shift 2
  eb_port=${eb_port:-$(pick_port 24420)}
  saved_nqn=${eb_nqn:-}
  eb_nqn=$nqn
  start_server "$key" "$eb" serve --data-dir "$dir" --listen "127.0.0.1:$eb_port" --default-backend null --default-size 1G
  note_cmd "taskset -c $server_cpu ./edgeblock serve --data-dir DIR --listen 127.0.0.1:$eb_port --default-backend null --default-size 1G"
  wait_port "$eb_port"
  export EDGEBLOCK_API_SOCKET="$dir/api.sock"
  local commands=("$@" "subsystem create $eb_nqn --allow-any-host")
  for c in "$@"; do
    [[ "$c" == "volume create "* ]] && { read -r _ _ name _ <<<"$c"; commands+=("namespace add $eb_nqn --volume $name"); }
  done
  for c in "${commands[@]}"; do
    # shellcheck disable=SC2086
    "$eb" ${c//DIR/$dir} >/dev/null
    note_cmd "./edgeblock $c"
  done
}
eb_pool_server_stop() {
  unset EDGEBLOCK_API_SOCKET
  stop_server
  eb_nqn=$saved_nqn
}
# eb_fill KEY NSID WHY [bench options]: writes all of namespace NSID once (128 KiB, QD 8), the result in $tmp/KEY.json.
eb_fill() {
  local key=$1 nsid=$2 why=$3
  shift 3
  local fill=("$eb" bench --addr "127.0.0.1:$eb_port" --nqn "$eb_nqn" --nsid "$nsid" --rw write --bs 128k --qd 8 --io-limit 1G --time 120s --json "$@")
  note_cmd "taskset -c $client_cpu ${fill[*]}   # $why"
  taskset -c "$client_cpu" "${fill[@]}" >"$tmp/$key.json"
}

# ---- 6. EdgeBlock thin volume: a pool on one file drive of this disk, vs the file backend above ----------
if want volume; then
  echo "== EdgeBlock, thin volume (pool on a 1.1 GiB file drive, volume filled first)" >&2
  eb_pool_server eb-vol "nqn.2026-11.io.edgeblock:bench-volume" "pool create bench DIR/drive0.img:1100M" "volume create bench/vol --size 1G"
  eb_fill eb_vol_fill 1 "allocate the whole volume: the runs below measure allocated space"
  echo "  filled 1 GiB (thin allocation) at $(jq -r '.mb_per_sec | round' "$tmp/eb_vol_fill.json") MB/s" >&2
  measure eb_bench eb_vol_rr "EdgeBlock thin volume" randread 4k 32
  measure eb_bench_meta eb_vol_rw "EdgeBlock thin volume" randwrite 4k 32
  metadata_line="thin volume, 4k randwrite to allocated space: ${R_META[eb_vol_rw]} bytes of metadata written to RocksDB for ${R_WRITES[eb_vol_rw]} writes (ramp included), $(meta_per_write eb_vol_rw) B per write"
  echo "  $metadata_line" >&2
  eb_pool_server_stop
fi

# ---- 7. EdgeBlock volumes with data services (issue D): 16 KiB chunks, checksummed and/or lz4, vs the thin volume ------
# Every write to these volumes carries `edgeblock bench --compressible 2` data: zeroes would be stored as unmapped
# chunks and measure nothing. The checksum-off figures are the thin volume of section 6 (no data services).
if want dataservices; then
  echo "== lz4 -b1 on the same 2:1 data, one core" >&2
  # The layout --compressible 2 writes (src/EdgeBlock.Cli/BenchData.cs): each 4 KiB is 2 KiB random, then the text
  # repeated. 32 MiB: more than the CPU's caches, as a volume's write stream is.
  ds_data="$tmp/compressible2.bin"
  ds_gen='open(my $r, "<", "/dev/urandom") or die; my $t = substr("EdgeBlock compressible data " x 80, 0, 2048); for (1 .. 8192) { read($r, my $b, 2048) == 2048 or die; print $b, $t }'
  perl -e "$ds_gen" >"$ds_data"
  note_cmd "perl -e '$ds_gen' > compressible2.bin   # 32 MiB as edgeblock bench --compressible 2 writes it"
  run_lz4() { # KEY SYSTEM [lz4 options]: lz4's own benchmark (compression MB/s of one thread) on the server's CPU
    local key=$1 system=$2; shift 2
    local cmd=(lz4 -b1 "$@" "$ds_data")
    note_cmd "taskset -c $server_cpu ${cmd[*]}"
    measure_begin
    taskset -c "$server_cpu" "${cmd[@]}" >"$tmp/$key.txt" 2>&1
    measure_end
    # The last progress line: " 1#compressible2.bin :  33554432 ->  16966423 (1.978), 937.8 MB/s ,6346.4 MB/s"
    local line ratio_mb
    line=$(tr '\r' '\n' <"$tmp/$key.txt" | grep 'MB/s ,' | tail -1)
    ratio_mb=$(echo "$line" | sed -E 's/.*\(([0-9.]+)\), *([0-9.]+) MB\/s ,.*/\1 \2/')
    add_row "$key" "$system" "compress 2:1 data (ratio ${ratio_mb% *})" "-" "${ratio_mb#* }" "-" "-"
  }
  measure run_lz4 lz4_b1 "lz4 -b1 (1 thread)"
  # The volume compresses 16 KiB chunks: lz4 then takes its faster path for inputs under 64 KiB.
  measure run_lz4 lz4_b1_16k "lz4 -b1 -B16384 (1 thread)" -B16384

  echo "== EdgeBlock, volumes with data services (pool on a 4 GiB file drive, each volume filled first)" >&2
  # Namespaces 1, 2, 3 in this order. 4 GiB: the three fills take ~2.5 GiB, redirect-on-write needs room to move.
  eb_pool_server eb-ds "nqn.2026-11.io.edgeblock:bench-dataservices" "pool create bench DIR/drive0.img:4G" \
    "volume create bench/ck --size 1G --checksum on" "volume create bench/lz4 --size 1G --compress lz4" \
    "volume create bench/lz4ck --size 1G --compress lz4 --checksum on"
  for nsid in 1 2 3; do
    eb_fill "eb_ds_fill$nsid" "$nsid" "allocate the whole volume" --compressible 2
    echo "  namespace $nsid: filled 1 GiB at $(jq -r '.mb_per_sec | round' "$tmp/eb_ds_fill$nsid.json") MB/s" >&2
  done
  ds_stored=$("$eb" volume show bench/lz4 --json | jq -r '"\(.physical_bytes / 1048576 | round) MiB stored for \(.logical_bytes / 1048576 | round) MiB written, ratio \(.compression_ratio)"')
  echo "  lz4 volume after the fill: $ds_stored" >&2

  measure eb_bench ds_ck_rr "EdgeBlock volume, checksum" randread 4k 32 --nsid 1
  measure eb_bench ds_lz4_rr "EdgeBlock volume, lz4" randread 4k 32 --nsid 2
  measure eb_bench ds_lz4ck_rr "EdgeBlock volume, lz4 + checksum" randread 4k 32 --nsid 3
  measure eb_bench_meta ds_ck_rw "EdgeBlock volume, checksum" randwrite 4k 32 --nsid 1 --compressible 2
  measure eb_bench_meta ds_lz4_rw "EdgeBlock volume, lz4" randwrite 4k 32 --nsid 2 --compressible 2
  measure eb_bench_meta ds_lz4ck_rw "EdgeBlock volume, lz4 + checksum" randwrite 4k 32 --nsid 3 --compressible 2
  # Whole chunks (no read-merge): the per-core figure of compression. The checksum volume shows the path without it.
  measure eb_bench ds_lz4_seqw "EdgeBlock volume, lz4" write 128k 8 --nsid 2 --compressible 2
  measure eb_bench ds_ck_seqw "EdgeBlock volume, checksum" write 128k 8 --nsid 1 --compressible 2
  for k in ds_ck_rw ds_lz4_rw ds_lz4ck_rw; do
    echo "  $k: ${R_META[$k]} bytes of metadata for ${R_WRITES[$k]} writes, $(meta_per_write "$k") B per write" >&2
  done
  eb_pool_server_stop
fi

# ---- 8. SPDK nvmf_tgt side by side (issue P), only when named: bench/spdk.sh ----------------------------------
if named spdk; then
  spdk_group
fi

elapsed=$((SECONDS - t0))

# ---- the table and the ratios ----------------------------------------------------------------
ratio() { # A B -> A/B with 2 decimals, or n/a
  awk -v a="${1:--}" -v b="${2:--}" 'BEGIN { if (a == "-" || b == "-" || b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'
}
verdict() { # RATIO OP GOAL
  awk -v r="$1" -v op="$2" -v g="$3" 'BEGIN { if (r == "n/a" || r == "-") print "n/a"; else if ((op == "<=" && r <= g) || (op == ">=" && r >= g)) print "met"; else print "NOT met" }'
}
get() { local -n m=$1; echo "${m[$2]:--}"; }

table() {
  echo "| system | workload | IOPS | MB/s | p99 µs | server CPU µs/IO | other load |"
  echo "|---|---|---:|---:|---:|---:|---:|"
  for k in "${order[@]}"; do
    IFS='|' read -r s w i m p c o <<<"${ROW[$k]}"
    printf '| %s | %s | %s | %s | %s | %s | %s%% |\n' "$s" "$w" "$i" "$m" "$p" "$c" "$o"
  done
}

r_cpu=$(ratio "$(get R_CPU eb_null_rr)" "$(get R_CPU qsd_null_rr)")
r_iops=$(ratio "$(get R_IOPS eb_null_rr)" "$(get R_IOPS qsd_null_rr)")
r_seq=$(ratio "$(get R_MBPS eb_null_seq)" "$(get R_MBPS iperf3)")
r_file=$(ratio "$(get R_IOPS eb_file_rr)" "$(get R_IOPS fio_uring)")
r_vol_rr=$(ratio "$(get R_IOPS eb_vol_rr)" "$(get R_IOPS eb_file_rr)")
r_vol_rw=$(ratio "$(get R_IOPS eb_vol_rw)" "$(get R_IOPS eb_file_rw)")
ratios() {
  echo "| goal | ours | anchor | ratio | goal | verdict |"
  echo "|---|---:|---:|---:|---|---|"
  echo "| server CPU per 4k randread QD32 (null) vs qemu-storage-daemon null-co | $(get R_CPU eb_null_rr) µs | $(get R_CPU qsd_null_rr) µs | $r_cpu | ≤ 0.5 | $(verdict "$r_cpu" "<=" 0.5) |"
  echo "| 4k randread QD32 IOPS (null) vs qemu-storage-daemon null-co | $(get R_IOPS eb_null_rr) | $(get R_IOPS qsd_null_rr) | $r_iops | ≥ 1.5 | $(verdict "$r_iops" ">=" 1.5) |"
  echo "| 128k seq read QD8 MB/s (null) vs iperf3 one stream | $(get R_MBPS eb_null_seq) | $(get R_MBPS iperf3) | $r_seq | ≥ 0.70 | $(verdict "$r_seq" ">=" 0.70) |"
  echo "| file 4k randread QD32 IOPS vs fio io_uring O_DIRECT | $(get R_IOPS eb_file_rr) | $(get R_IOPS fio_uring) | $r_file | ≥ 0.90 | $(verdict "$r_file" ">=" 0.90) |"
  echo "| thin volume 4k randread QD32 IOPS vs EdgeBlock file backend (issue C) | $(get R_IOPS eb_vol_rr) | $(get R_IOPS eb_file_rr) | $r_vol_rr | ≥ 0.90 | $(verdict "$r_vol_rr" ">=" 0.90) |"
  echo "| thin volume 4k randwrite QD32 IOPS (allocated space) vs file backend (issue C) | $(get R_IOPS eb_vol_rw) | $(get R_IOPS eb_file_rw) | $r_vol_rw | ≥ 0.70 | $(verdict "$r_vol_rw" ">=" 0.70) |"
  local r
  r=$(ratio "$(get R_CPU eb_null_rr)" "$(get R_CPU nbdkit_null_rr)")
  echo "| (context) server CPU per 4k randread vs nbdkit null | $(get R_CPU eb_null_rr) µs | $(get R_CPU nbdkit_null_rr) µs | $r | | |"
  r=$(ratio "$(get R_CPU eb_null_rw)" "$(get R_CPU qsd_null_rw)")
  echo "| (context) server CPU per 4k randwrite vs qemu-storage-daemon null-co | $(get R_CPU eb_null_rw) µs | $(get R_CPU qsd_null_rw) µs | $r | | |"
  r=$(ratio "$(get R_CPU eb_null_seq)" "$(get R_CPU qsd_null_seq)")
  echo "| (context) server CPU per 128k read vs qemu-storage-daemon null-co | $(get R_CPU eb_null_seq) µs | $(get R_CPU qsd_null_seq) µs | $r | | |"
  r=$(ratio "$(get R_CPU eb_file_rr)" "$(get R_CPU qsd_file_rr)")
  echo "| (context) server CPU per file 4k randread vs qemu-storage-daemon raw file | $(get R_CPU eb_file_rr) µs | $(get R_CPU qsd_file_rr) µs | $r | | |"
  [ -n "${ROW[ds_ck_rr]:-}${ROW[lz4_b1]:-}" ] && ratios_dataservices
  [ -n "${ROW[spdk_1_rr]:-}" ] && ratios_spdk
  return 0
}

# Issue D. "Checksums off" is the thin volume of section 6 (no data services). Per core: bytes a 128 KiB write moves
# per µs of server CPU (= MB per CPU second) against lz4's single-thread compression speed on the same kind of data.
# The AES-XTS per-core figures come from bench/volume.sh (the volume data path in one process) and bench/xts.sh (the primitive).
per_core() { awk -v c="${1:--}" 'BEGIN { if (c == "-" || c + 0 == 0) print "-"; else printf "%.0f", 131072 / c }'; }
ratios_dataservices() {
  local r lz4_core ck_core
  lz4_core=$(per_core "$(get R_CPU ds_lz4_seqw)")
  ck_core=$(per_core "$(get R_CPU ds_ck_seqw)")
  r=$(ratio "$lz4_core" "$(get R_MBPS lz4_b1)")
  echo "| lz4 volume 128k seq write, 2:1 data: MB per server CPU second vs \`lz4 -b1\` MB/s (one thread, same data) | $lz4_core | $(get R_MBPS lz4_b1) | $r | ≥ 0.80 | $(verdict "$r" ">=" 0.80) |"
  r=$(ratio "$(get R_IOPS ds_ck_rr)" "$(get R_IOPS eb_vol_rr)")
  echo "| checksum volume 4k randread QD32 IOPS vs thin volume (checksums off) | $(get R_IOPS ds_ck_rr) | $(get R_IOPS eb_vol_rr) | $r | ≥ 0.90 | $(verdict "$r" ">=" 0.90) |"
  r=$(ratio "$(get R_IOPS ds_ck_rw)" "$(get R_IOPS eb_vol_rw)")
  echo "| checksum volume 4k randwrite QD32 IOPS vs thin volume (checksums off) | $(get R_IOPS ds_ck_rw) | $(get R_IOPS eb_vol_rw) | $r | ≥ 0.70 | $(verdict "$r" ">=" 0.70) |"
  r=$(ratio "$(get R_IOPS ds_lz4_rw)" "$(get R_IOPS eb_vol_rw)")
  echo "| lz4 volume 4k randwrite QD32 IOPS vs thin volume (uncompressed) | $(get R_IOPS ds_lz4_rw) | $(get R_IOPS eb_vol_rw) | $r | ≥ 0.50 | $(verdict "$r" ">=" 0.50) |"
  local k name
  for k in ds_ck_rw ds_lz4_rw ds_lz4ck_rw; do
    case $k in ds_ck_rw) name="checksum" ;; ds_lz4_rw) name="lz4" ;; *) name="lz4 + checksum" ;; esac
    r=$(meta_per_write "$k")
    echo "| metadata committed to RocksDB per 4k randwrite, $name volume (measured, amortised) | $r B | | | ≤ 64 B | $(verdict "$r" "<=" 64) |"
  done
  r=$(ratio "$lz4_core" "$(get R_MBPS lz4_b1_16k)")
  echo "| (context) lz4 volume per core vs \`lz4 -b1 -B16384\` (16 KiB blocks, the volume's chunk size) | $lz4_core | $(get R_MBPS lz4_b1_16k) | $r | | |"
  r=$(ratio "$ck_core" "$(get R_MBPS lz4_b1)")
  echo "| (context) checksum volume (no compression) 128k seq write per core vs \`lz4 -b1\` | $ck_core | $(get R_MBPS lz4_b1) | $r | | |"
  r=$(ratio "$(get R_IOPS ds_lz4ck_rr)" "$(get R_IOPS eb_vol_rr)")
  echo "| (context) lz4 + checksum volume 4k randread IOPS vs thin volume | $(get R_IOPS ds_lz4ck_rr) | $(get R_IOPS eb_vol_rr) | $r | | |"
  r=$(ratio "$(get R_IOPS ds_lz4ck_rw)" "$(get R_IOPS eb_vol_rw)")
  echo "| (context) lz4 + checksum volume 4k randwrite IOPS vs thin volume | $(get R_IOPS ds_lz4ck_rw) | $(get R_IOPS eb_vol_rw) | $r | | |"
  r=$(ratio "$(get R_IOPS ds_lz4_rr)" "$(get R_IOPS eb_vol_rr)")
  echo "| (context) lz4 volume 4k randread IOPS vs thin volume | $(get R_IOPS ds_lz4_rr) | $(get R_IOPS eb_vol_rr) | $r | | |"
  for k in ck lz4 lz4ck; do
    case $k in ck) name="checksum" ;; lz4) name="lz4" ;; *) name="lz4 + checksum" ;; esac
    r=$(ratio "$(get R_CPU ds_${k}_rr)" "$(get R_CPU eb_vol_rr)")
    echo "| (context) server CPU per 4k randread, $name volume vs thin volume | $(get R_CPU ds_${k}_rr) µs | $(get R_CPU eb_vol_rr) µs | $r | | |"
    r=$(ratio "$(get R_CPU ds_${k}_rw)" "$(get R_CPU eb_vol_rw)")
    echo "| (context) server CPU per 4k randwrite, $name volume vs thin volume | $(get R_CPU ds_${k}_rw) µs | $(get R_CPU eb_vol_rw) µs | $r | | |"
  done
}

client_line="edgeblock bench's own cost (client CPU on CPU 1): $(get CLIENT_CPU eb_null_rr) µs/IO for 4k randread QD32 on 1 queue ($(get CLIENT_UTIL eb_null_rr)% of its core), $(get CLIENT_CPU eb_null_rr2) µs/IO on 2 queues ($(get CLIENT_UTIL eb_null_rr2)%), $(get CLIENT_CPU eb_null_seq) µs/IO for 128k reads ($(get CLIENT_UTIL eb_null_seq)%)"

echo
table
echo
ratios
echo
[ -n "${CLIENT_CPU[eb_null_rr]:-}" ] && echo "$client_line"
[ -n "${verify_result:-}" ] && echo "edgeblock bench --verify (file backend, randrw): $verify_result"
[ -n "${metadata_line:-}" ] && echo "$metadata_line"
[ -n "${ds_stored:-}" ] && echo "lz4 volume after its fill with 2:1 data: $ds_stored"
echo "suite time: ${elapsed} s"

if [ "$record" = 1 ]; then
  md="$repo/BENCHMARKS.md"
  if [ ! -f "$md" ]; then
    cat >"$md" <<'HEAD'
# Benchmarks

Each section is one run of `bench/run.sh` (newest last): EdgeBlock and its anchors measured in the
same invocation on the same machine, server pinned to CPU 0 and client to CPU 1, loopback TCP.
**Server CPU µs/IO** = (utime + stime of the server process from `/proc/PID/stat`, after − before) /
CLK_TCK / I/Os completed; it does not depend on how fast the client is and is the figure to compare.
Throughput on shared VMs swings ±40% between runs; compare ratios within one section, not across sections.
`-` means not applicable (iperf3 moves a stream, not I/Os; fio io_uring has no server process).
**Other load** is CPU time on CPUs 0-1 that neither the server nor the client used during the run (% of one
CPU; interrupt work charged to no process keeps it at a few % on a quiet machine): a high value marks a run
that shared the CPUs with something else. Such a run is repeated once while the suite is young, and the
quieter of the two is kept.
HEAD
  fi
  revision=$(git -C "$repo" describe --always --dirty 2>/dev/null || echo unknown) # before this file changes
  {
    echo
    echo "## $started — $revision"
    echo
    echo "Machine: $(nproc) CPUs, $cpu_model, kernel $(uname -r), CLK_TCK $clk_tck; ${T} s per run; suite took ${elapsed} s."
    echo "Versions: $(qemu-storage-daemon --version | head -1 | sed 's/ (.*//'), $(nbdkit --version), $(fio --version), $(iperf3 --version | head -1 | cut -d' ' -f1-2), lz4 $(lz4 -V 2>&1 | grep -o 'v[0-9.]*' | head -1), .NET $(dotnet --version)."
    [ "$background_busy" -gt 15 ] && echo "**Other load: CPUs 0-1 were ${background_busy}% busy just before the run; figures are skewed.**"
    echo
    table
    echo
    ratios
    echo
    [ -n "${CLIENT_CPU[eb_null_rr]:-}" ] && echo "$client_line."
    [ -n "${verify_result:-}" ] && echo "\`edgeblock bench --verify\` (file backend, randrw 4k, 64 MiB, per-block CRC32C and full read-back): $verify_result."
    [ -n "${metadata_line:-}" ] && echo "Metadata: $metadata_line."
    [ -n "${ds_stored:-}" ] && echo "Data services: the lz4 volume after its fill with \`--compressible 2\` data: $ds_stored (\`volume show\`: 4 KiB sectors per chunk). AES-XTS rows: TODO, encryption is not implemented yet."
    echo
    commands_details
  } >>"$md"
  echo "bench: appended to $md" >&2
fi
[ "$run_vm" = 0 ] || "$here/vm.sh" "${vm_args[@]}"
