#!/usr/bin/env bash
# Density (issue H): eight disks served by eight qemu-storage-daemon processes (one QEMU block layer per VM) against one
# EdgeBlock daemon with eight volumes in one pool, and what idle hosts and a 100-volume pool cost EdgeBlock.
#
#   bench/density.sh               everything (~4 minutes), figures appended to BENCHMARKS.md
#   bench/density.sh --time 20     20 s of measured load (default 10, after a 5 s ramp)
#   bench/density.sh --no-record   print the figures only
#   bench/density.sh --dir DIR     work directory parent (default /var/tmp; the disks' files go there)
#
# Load: eight initiators at once, one per disk, 4 KiB random I/O (70% reads) at QD4 over the first 256 MiB of each disk,
# all of it written before. qemu-storage-daemon 7.2 (Debian 12) exports NBD, vhost-user-blk and FUSE but not NVMe/TCP,
# so each qsd serves its raw file (cache.direct=on, aio=native: O_DIRECT as EdgeBlock's pool) over NBD to fio's nbd
# engine; EdgeBlock serves its volumes over NVMe/TCP to `edgeblock bench`. Servers run on CPU 0, initiators on CPU 1.
# CPU per I/O is the storage processes' own (utime + stime from /proc/PID/stat over the measured window / I/Os
# completed), so the initiators' cost does not count on either side. RSS is VmRSS summed over the storage processes:
# idle (started, nothing connected) and the highest sample (every 0.5 s) under the load.
# Idle controllers: `edgeblock bench --idle --controllers 64 --queues 4` (each its own host NQN; keep alives only);
# CPU while they are idle is `perf stat -e task-clock` on the daemon when perf works, else /proc/PID/stat.
# Start: daemon start to serving (NVMe/TCP listener up and the API answering) with 100 thin volumes, 10 exported.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
# shellcheck source=lib.sh
. "$here/lib.sh"

run_seconds=10
while [ $# -gt 0 ]; do bench_option bench/density.sh "$@"; shift "$SHIFT"; done
[[ "$run_seconds" =~ ^[0-9]+$ ]] && [ "$run_seconds" -ge 1 ] && [ "$run_seconds" -le 120 ] \
  || { echo "bench/density.sh: --time takes whole seconds, 1..120" >&2; exit 2; }
if [ "$(nproc)" -lt 2 ]; then echo "bench/density.sh: needs 2 CPUs (servers on CPU 0, initiators on CPU 1)" >&2; exit 2; fi

require fio fio
require qemu-storage-daemon qemu-system-common
require taskset util-linux
require jq jq
require curl curl
install_required density
if ! have_cmd dotnet; then echo "bench/density.sh: the .NET 10 SDK (dotnet) is needed to build edgeblock" >&2; exit 2; fi
echo "density: building edgeblock (Release) if needed" >&2
"$repo/edgeblock" --help >/dev/null
eb="$repo/artifacts/edgeblock/edgeblock"

T=$run_seconds
ramp=5
disks=8
span=256M            # each disk's part the load touches (written first)
disk_size=1G         # each disk (thin volume / raw file)
idle_controllers=64
idle_queues=4
idle_cpu_seconds=30
start_volumes=100
clk_tck=$(getconf CLK_TCK)
server_cpu=0
client_cpu=1

tmp=$(mktemp -d "$work_parent/edgeblock-density.XXXXXX")
servers=()   # PIDs of the storage processes running now
cleanup() {
  stop_servers
  rm -rf "$tmp"
}
stop_servers() {
  local p
  for p in "${servers[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${servers[@]}"; do wait "$p" 2>/dev/null || true; done
  servers=()
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_listening() { # PORT PID: until PORT listens, at most 30 s
  for _ in $(seq 300); do
    listening "$1" && return 0
    kill -0 "$2" 2>/dev/null || { echo "density: the server (pid $2) exited before listening on port $1" >&2; tail -5 "$tmp"/*.log >&2; return 1; }
    sleep 0.1
  done
  echo "density: nothing listens on 127.0.0.1:$1 after 30 s" >&2; return 1
}
rss_kib() { # PID... -> sum of VmRSS in KiB
  local p sum=0 v
  for p in "$@"; do v=$(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status"); sum=$((sum + v)); done
  echo "$sum"
}
ticks_of() { # PID... -> sum of utime + stime
  local p sum=0
  for p in "$@"; do sum=$((sum + $(cpu_ticks "$p"))); done
  echo "$sum"
}
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
load_average() { cut -d' ' -f1-3 /proc/loadavg; }

# run_load NAME COMMAND-FILE: starts every initiator command (one per line) on the client CPU at once, samples the
# servers' RSS every 0.5 s, takes their CPU over the measured window (after the ramp) and waits for all. Sets
# PEAK_KIB and TICKS. Each initiator's output goes to $tmp/NAME.N.out.
run_load() {
  local name=$1 file=$2 pids=() n=0 line peak=0 r t0 t1 begin
  while IFS= read -r line; do
    n=$((n + 1))
    # shellcheck disable=SC2086
    taskset -c "$client_cpu" $line >"$tmp/$name.$n.out" 2>"$tmp/$name.$n.err" &
    pids+=($!)
  done <"$file"
  begin=$SECONDS
  sleep "$ramp"
  t0=$(ticks_of "${servers[@]}")
  local t_end=$((begin + ramp + T))
  while [ "$SECONDS" -lt "$t_end" ]; do
    r=$(rss_kib "${servers[@]}"); [ "$r" -gt "$peak" ] && peak=$r
    sleep 0.5
  done
  t1=$(ticks_of "${servers[@]}")
  local p failed=0
  for p in "${pids[@]}"; do wait "$p" || failed=1; done
  if [ "$failed" = 1 ]; then echo "density: an initiator failed:" >&2; cat "$tmp/$name".*.err >&2; return 1; fi
  PEAK_KIB=$peak
  TICKS=$((t1 - t0))
}

# run_disks NAME INITIATOR IOS SED: the servers' idle RSS (IDLE_KIB) once they have settled, then one initiator per disk
# at once (INITIATOR N prints disk N's command line, collected in $tmp/NAME.load; SED makes the first one the recorded
# command) through run_load; IOS prints the I/Os they completed (IOS).
run_disks() {
  local name=$1 i
  sleep 2
  IDLE_KIB=$(rss_kib "${servers[@]}")
  : >"$tmp/$name.load"
  for i in $(seq "$disks"); do "$2" "$i" >>"$tmp/$name.load"; done
  note_cmd "taskset -c $client_cpu $(head -1 "$tmp/$name.load" | sed "$4")   # $disks at once"
  run_load "$name" "$tmp/$name.load"
  IOS=$("$3")
  echo "  idle RSS $(mib "$IDLE_KIB") MiB, peak under load $(mib "$PEAK_KIB") MiB, $IOS I/Os, $TICKS ticks" >&2
}

echo "density: $(nproc) CPUs, load average $(load_average), work dir $tmp" >&2
started=$(date -u '+%Y-%m-%d %H:%M UTC')
load_before=$(load_average)
t_suite=$SECONDS

# ---- (a) eight qemu-storage-daemon, one raw file each, over NBD ------------------------------------------
echo "== 8 x qemu-storage-daemon (raw file, O_DIRECT) over NBD" >&2
qsd_ports=()
for i in $(seq "$disks"); do
  f="$tmp/qsd$i.img"
  truncate -s "$disk_size" "$f"
  fio --name=fill --filename="$f" --size="$span" --rw=write --bs=1m --ioengine=psync --direct=1 --refill_buffers \
      --output="$tmp/fill$i.txt" >/dev/null
  port=$(pick_port $((20900 + i)))
  cmd=(qemu-storage-daemon --blockdev "driver=file,node-name=d$i,filename=$f,cache.direct=on,aio=native"
       --nbd-server "addr.type=inet,addr.host=127.0.0.1,addr.port=$port"
       --export "type=nbd,id=e$i,node-name=d$i,name=d$i,writable=on")
  taskset -c "$server_cpu" "${cmd[@]}" >"$tmp/qsd$i.log" 2>&1 &
  servers+=($!)
  wait_listening "$port" "$!"
  qsd_ports+=("$port")
done
note_cmd "fio --name=fill --filename=qsdN.img --size=$span --rw=write --bs=1m --ioengine=psync --direct=1 --refill_buffers   # each of the $disks files"
note_cmd "taskset -c $server_cpu qemu-storage-daemon --blockdev driver=file,node-name=dN,filename=qsdN.img,cache.direct=on,aio=native --nbd-server addr.type=inet,addr.host=127.0.0.1,addr.port=PORT --export type=nbd,id=eN,node-name=dN,name=dN,writable=on   # $disks of them"
qsd_initiator() { echo "fio --name=q$1 --ioengine=nbd --uri=nbd://127.0.0.1:${qsd_ports[$(($1 - 1))]}/d$1 --rw=randrw --rwmixread=70 --bs=4k --iodepth=4 --size=$span --time_based --ramp_time=$ramp --runtime=$T --output-format=json --output=$tmp/qsd.$1.json"; }
qsd_ios() { cat "$tmp"/qsd.*.json | jq -s '[.[] | .jobs[0].read.total_ios + .jobs[0].write.total_ios] | add'; }
run_disks qsd qsd_initiator qsd_ios 's/q1/qN/; s/:[0-9]*\/d1/:PORT\/dN/; s/qsd\.1\.json/qsd.N.json/'
qsd_idle=$IDLE_KIB; qsd_peak=$PEAK_KIB; qsd_ticks=$TICKS; qsd_ios=$IOS
stop_servers

# ---- (b) one EdgeBlock daemon, eight volumes in one pool ---------------------------------------------------
echo "== EdgeBlock, one daemon, $disks volumes in one pool (file drive on the same disk)" >&2
nqn="nqn.2026-11.io.edgeblock:density"
eb_port=$(pick_port 24520)
dir="$tmp/eb"
export EDGEBLOCK_API_SOCKET="$dir/api.sock"
start_eb() { # the daemon on the server CPU; sets eb_pid
  taskset -c "$server_cpu" "$eb" serve --data-dir "$dir" --listen "127.0.0.1:$eb_port" >>"$tmp/eb.log" 2>&1 &
  eb_pid=$!
  servers=("$eb_pid")
  wait_listening "$eb_port" "$eb_pid"
  for _ in $(seq 300); do curl -sf -m 2 --unix-socket "$dir/api.sock" http://localhost/v1/status >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "density: the daemon's API does not answer on $dir/api.sock after 30 s" >&2; return 1
}
start_eb
note_cmd "taskset -c $server_cpu ./edgeblock serve --data-dir DIR --listen 127.0.0.1:$eb_port"
setup=("pool create density $dir/drive0.img:$((disks + 1))G" "subsystem create $nqn --allow-any-host")
for i in $(seq "$disks"); do setup+=("volume create density/v$i --size $disk_size" "namespace add $nqn --volume density/v$i"); done
for c in "${setup[@]}"; do
  # shellcheck disable=SC2086
  "$eb" $c >/dev/null
  note_cmd "./edgeblock ${c//"$dir/"/DIR/}"
done
for i in $(seq "$disks"); do
  fill=("$eb" bench --addr "127.0.0.1:$eb_port" --nqn "$nqn" --nsid "$i" --rw write --bs 128k --qd 8 --io-limit "$span" --time 120s --json)
  taskset -c "$client_cpu" "${fill[@]}" >"$tmp/ebfill$i.json"
done
note_cmd "taskset -c $client_cpu ./edgeblock bench --addr 127.0.0.1:$eb_port --nqn $nqn --nsid N --rw write --bs 128k --qd 8 --io-limit $span --time 120s --json   # fill each volume's first $span"
# A fresh daemon for the figures: the fills above are set-up, not part of what an idle daemon holds.
stop_servers
start_eb
eb_initiator() { echo "$eb bench --addr 127.0.0.1:$eb_port --nqn $nqn --nsid $1 --rw randrw --rwmix-read 70 --bs 4k --qd 4 --size-limit $span --time ${T}s --ramp ${ramp}s --json"; }
eb_ios() { cat "$tmp"/eb.*.out | jq -s '[.[] | .ios] | add'; }
run_disks eb eb_initiator eb_ios 's/--nsid 1/--nsid N/'
eb_idle=$IDLE_KIB; eb_peak=$PEAK_KIB; eb_ticks=$TICKS; eb_ios=$IOS

# ---- idle controllers: RSS per controller and CPU while they are idle ----------------------------------------
echo "== $idle_controllers idle controllers x $idle_queues I/O queues" >&2
stop_servers
start_eb
sleep 2
rss0=$(rss_kib "$eb_pid")
hold_time=$((idle_cpu_seconds + 30))
hold=("$eb" bench --addr "127.0.0.1:$eb_port" --nqn "$nqn" --idle --controllers "$idle_controllers" --queues "$idle_queues" --qd 32 --time "${hold_time}s")
note_cmd "taskset -c $client_cpu ${hold[*]}"
taskset -c "$client_cpu" "${hold[@]}" >"$tmp/hold.out" 2>&1 &
hold_pid=$!
for _ in $(seq 600); do grep -q '^connected' "$tmp/hold.out" && break; kill -0 "$hold_pid" 2>/dev/null || break; sleep 0.1; done
grep -q '^connected' "$tmp/hold.out" || { echo "density: the idle controllers did not connect:" >&2; cat "$tmp/hold.out" >&2; exit 1; }
# Connect-time work settles: Identify, AERs, and the JIT's tier-up of the keep-alive path (a fresh daemon spent 0.36 s
# of CPU in the first 10 s after 64 connects, 0.04-0.08 s in each 10 s after).
sleep 15
rss64=$(rss_kib "$eb_pid")
per_ctrl_kib=$(awk -v a="$rss0" -v b="$rss64" -v n="$idle_controllers" 'BEGIN { printf "%.0f", (b - a) / n }')
if perf stat -e task-clock -p "$eb_pid" true >/dev/null 2>&1; then
  idle_how="perf stat -e task-clock,context-switches"
  perf stat -x, -e task-clock,context-switches -p "$eb_pid" sleep "$idle_cpu_seconds" 2>"$tmp/perf.csv"
  idle_ms=$(awk -F, '$3 == "task-clock" { print $1 }' "$tmp/perf.csv")
  idle_wakeups=$(awk -F, '$3 == "context-switches" { print $1 }' "$tmp/perf.csv")
else
  idle_how="/proc/PID/stat"
  t0=$(cpu_ticks "$eb_pid"); sleep "$idle_cpu_seconds"; t1=$(cpu_ticks "$eb_pid")
  idle_ms=$(( (t1 - t0) * 1000 / clk_tck )); idle_wakeups="-"
fi
note_cmd "$idle_how on the daemon for $idle_cpu_seconds s while they are connected"
idle_pct=$(awk -v ms="$idle_ms" -v s="$idle_cpu_seconds" 'BEGIN { printf "%.2f", ms / 10 / s }')
kill "$hold_pid" 2>/dev/null || true; wait "$hold_pid" 2>/dev/null || true
echo "  RSS $(mib "$rss0") -> $(mib "$rss64") MiB ($per_ctrl_kib KiB per controller), idle CPU $idle_pct% of a core ($idle_how)" >&2
stop_servers

# ---- start to serving with 100 volumes ------------------------------------------------------------------------
echo "== start to serving, $start_volumes thin volumes (10 exported)" >&2
start_eb
api() { curl -sf --unix-socket "$dir/api.sock" -H 'Content-Type: application/json' "$@" >/dev/null; }
for i in $(seq $((disks + 1)) "$start_volumes"); do
  api -X POST "http://localhost/v1/pools/density/volumes" -d "{\"name\":\"v$i\",\"size\":\"8G\"}"
done
for i in $(seq $((disks + 1)) 10); do
  api -X POST "http://localhost/v1/subsystems/$nqn/namespaces" -d "{\"backend\":\"volume:density/v$i\"}"
done
note_cmd "curl --unix-socket DIR/api.sock -X POST http://localhost/v1/pools/density/volumes -d '{\"name\":\"vN\",\"size\":\"8G\"}'   # up to $start_volumes volumes; v9, v10 exported too"
stop_servers
starts=()
for _ in 1 2 3; do
  t0=$(date +%s%N)
  taskset -c "$server_cpu" "$eb" serve --data-dir "$dir" --listen "127.0.0.1:$eb_port" >>"$tmp/eb.log" 2>&1 &
  eb_pid=$!; servers=("$eb_pid")
  until listening "$eb_port" && curl -sf -m 2 --unix-socket "$dir/api.sock" http://localhost/v1/status >/dev/null 2>&1; do
    kill -0 "$eb_pid" 2>/dev/null || { echo "density: the daemon exited during start" >&2; tail -5 "$tmp/eb.log" >&2; exit 1; }
    sleep 0.005
  done
  t1=$(date +%s%N)
  starts+=("$(( (t1 - t0) / 1000000 )) $(( $(cpu_ticks "$eb_pid") * 1000 / clk_tck ))")
  stop_servers
done
note_cmd "taskset -c $server_cpu ./edgeblock serve --data-dir DIR --listen 127.0.0.1:$eb_port   # 3 times: until it listens and GET /v1/status answers"
start_ms=$(printf '%s\n' "${starts[@]}" | sort -n | sed -n 2p | cut -d' ' -f1)        # the median of three
start_cpu_ms=$(printf '%s\n' "${starts[@]}" | sort -n | sed -n 2p | cut -d' ' -f2)
echo "  start to serving: $(printf '%s ms; ' "${starts[@]}" | sed 's/ \([0-9]*\) ms/ ms (cpu \1 ms)/g')" >&2
unset EDGEBLOCK_API_SOCKET
load_after=$(load_average)
elapsed=$((SECONDS - t_suite))

# ---- figures ------------------------------------------------------------------------------------------------
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'; }
verdict() { awk -v r="$1" -v op="$2" -v g="$3" 'BEGIN { if (r == "n/a") print "n/a"; else if ((op == "<=" && r <= g) || (op == ">=" && r >= g)) print "met"; else print "NOT met" }'; }
us_per_io() { awk -v t="$1" -v hz="$clk_tck" -v n="$2" 'BEGIN { printf "%.1f", (n > 0 ? t / hz * 1e6 / n : 0) }'; }
eb_us=$(us_per_io "$eb_ticks" "$eb_ios"); qsd_us=$(us_per_io "$qsd_ticks" "$qsd_ios")
r_idle=$(ratio "$eb_idle" "$qsd_idle"); r_peak=$(ratio "$eb_peak" "$qsd_peak"); r_cpu=$(ratio "$eb_us" "$qsd_us")
per_ctrl_mib=$(awk -v k="$per_ctrl_kib" 'BEGIN { printf "%.2f", k / 1024 }')
start_s=$(awk -v ms="$start_ms" 'BEGIN { printf "%.2f", ms / 1000 }')
figures() {
  echo "| figure | EdgeBlock | 8 × qemu-storage-daemon | ratio | goal | verdict |"
  echo "|---|---:|---:|---:|---|---|"
  echo "| total RSS of the storage processes, 8 disks, idle | $(mib "$eb_idle") MiB | $(mib "$qsd_idle") MiB | $r_idle | ≤ 0.25× | $(verdict "$r_idle" "<=" 0.25) |"
  echo "| total RSS, 8 disks under load (highest 0.5 s sample) | $(mib "$eb_peak") MiB | $(mib "$qsd_peak") MiB | $r_peak | ≤ 0.25× | $(verdict "$r_peak" "<=" 0.25) |"
  echo "| host CPU per I/O (storage processes), 8 disks, 4k randrw 70/30 QD4 each | $eb_us µs ($eb_ios I/Os) | $qsd_us µs ($qsd_ios I/Os) | $r_cpu | ≤ 0.5× | $(verdict "$r_cpu" "<=" 0.5) |"
  echo "| RSS per additional connected controller ($idle_queues I/O queues), idle, 0 → $idle_controllers | $per_ctrl_mib MiB ($(mib "$rss0") → $(mib "$rss64") MiB) | | | ≤ 1 MiB | $(verdict "$per_ctrl_mib" "<=" 1) |"
  echo "| idle CPU with $idle_controllers controllers connected ($idle_cpu_seconds s, $idle_how) | $idle_pct% of a core ($idle_wakeups context switches) | | | ≤ 1% | $(verdict "$idle_pct" "<=" 1) |"
  echo "| daemon start to serving, $start_volumes volumes in the pool (median of 3) | $start_s s (CPU $start_cpu_ms ms) | | | ≤ 1 s | $(verdict "$start_s" "<=" 1) |"
}
echo
figures
echo
echo "load average $load_before before, $load_after after; took $elapsed s"

if [ "$record" = 1 ]; then
  md="$repo/BENCHMARKS.md"
  revision=$(git -C "$repo" describe --always --dirty 2>/dev/null || echo unknown)
  {
    echo
    echo "## Density (issue H): $started — $revision"
    echo
    echo "Machine: $(nproc) CPUs, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), kernel $(uname -r); load average $load_before before the run, $load_after after; ${T} s of load after a ${ramp} s ramp; took ${elapsed} s."
    echo "Versions: $(qemu-storage-daemon --version | head -1 | sed 's/ (.*//'), $(fio --version), .NET $(dotnet --version). qsd serves NBD (no NVMe/TCP export in 7.2) to fio; EdgeBlock serves NVMe/TCP to \`edgeblock bench\`; CPU counts the storage processes only."
    echo
    figures
    echo
    commands_details
  } >>"$md"
  echo "density: appended to $md" >&2
fi
