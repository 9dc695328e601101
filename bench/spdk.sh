# bench/spdk.sh — the `spdk` group of bench/run.sh (sourced by it, not run; issue P).
#
# SPDK's nvmf_tgt (null bdev, CPU 0) and EdgeBlock (`serve --default-backend null`, CPU 0) side by side, both driven
# by SPDK's own client spdk_nvme_perf on CPU 1: same client, same run, rounds alternating SPDK, EdgeBlock, SPDK,
# EdgeBlock. SPDK comes from $SPDK_DIR (a built tree: build/bin/nvmf_tgt, build/bin/spdk_nvme_perf), else from
# ../shared/tools/build-spdk.sh next to the repository (builds v24.01 once, ~10 min, cached); else the group is
# skipped with a line saying how to provide it. Nothing in ./test.sh depends on SPDK.
#
# Server CPU per I/O, both servers: (utime + stime from when perf's workers start to when perf ends) / I/Os. SPDK polls,
# so on a quiet core its figure is 1e6 / IOPS (the anchors' convention); when it shares the core it is what it got.
# EdgeBlock runs a warm-up of each workload first (5 s, not recorded: tiered JIT).

spdk_rounds=${SPDK_ROUNDS:-2}
spdk_busy_poll=${SPDK_BUSY_POLL:-50us}
spdk_nqn="nqn.2016-06.io.spdk:bench"
declare -A SP_P50 SP_LAT    # p50 and mean latency (µs) per key

spdk_find_tree() { # prints the SPDK tree, or nothing (with the reason on stderr)
  local tree="" build="$repo/../shared/tools/build-spdk.sh"
  if [ -n "${SPDK_DIR:-}" ]; then
    tree=$SPDK_DIR
  elif [ -x "$build" ]; then
    echo "bench: building SPDK with $build if needed (cached; first time ~10 min)" >&2
    tree=$("$build" | tail -1) || { echo "bench: $build failed; skipping spdk" >&2; return 0; }
  else
    echo "bench: skipping spdk: set SPDK_DIR to a built SPDK v24.01 tree (build/bin/nvmf_tgt and build/bin/spdk_nvme_perf)" >&2
    return 0
  fi
  if [ ! -x "$tree/build/bin/nvmf_tgt" ] || [ ! -x "$tree/build/bin/spdk_nvme_perf" ]; then
    echo "bench: skipping spdk: $tree has no build/bin/nvmf_tgt and build/bin/spdk_nvme_perf" >&2
    return 0
  fi
  echo "$tree"
}

spdk_config() { # PORT -> nvmf_tgt JSON config: an 8 GiB null bdev as namespace 1 of one subsystem open to any host
  cat <<JSON
{"subsystems": [
  {"subsystem": "bdev", "config": [
    {"method": "bdev_null_create", "params": {"name": "Null0", "num_blocks": 2097152, "block_size": 4096}}]},
  {"subsystem": "nvmf", "config": [
    {"method": "nvmf_create_transport", "params": {"trtype": "TCP"}},
    {"method": "nvmf_create_subsystem", "params": {"nqn": "$spdk_nqn", "allow_any_host": true, "serial_number": "SPDK00000000000001"}},
    {"method": "nvmf_subsystem_add_ns", "params": {"nqn": "$spdk_nqn", "namespace": {"bdev_name": "Null0"}}},
    {"method": "nvmf_subsystem_add_listener", "params": {"nqn": "$spdk_nqn",
      "listen_address": {"trtype": "TCP", "adrfam": "IPv4", "traddr": "127.0.0.1", "trsvcid": "$1"}}}]}]}
JSON
}

# spdk_perf KEY SYSTEM NQN PORT RW BS QD [warm]: one spdk_nvme_perf run; with "warm" a short unrecorded run first.
spdk_perf() {
  local key=$1 system=$2 nqn=$3 port=$4 rw=$5 bs=$6 qd=$7 warm=${8:-}
  local out="$tmp/$key.txt"
  : >"$out"
  local cmd=(env LD_LIBRARY_PATH="$spdk_tree/build/lib" stdbuf -oL "$spdk_tree/build/bin/spdk_nvme_perf" --no-huge -s 1024 -c 0x2
             -q "$qd" -o "$bs" -w "$rw" -L -r "trtype:TCP adrfam:IPv4 traddr:127.0.0.1 trsvcid:$port subnqn:$nqn")
  if [ "$warm" = warm ]; then
    taskset -c "$client_cpu" "${cmd[@]}" -t 5 >/dev/null 2>&1 || true
  fi
  note_cmd "taskset -c $client_cpu ${cmd[*]:4} -t $T"
  # The server's CPU is read when perf says its workers start (after DPDK's start-up and the connect, during which
  # SPDK's poller already spins) and when perf ends.
  local before="" after line
  measure_begin
  while IFS= read -r line; do
    echo "$line" >>"$out"
    [[ -z "$before" && "$line" == *"Initialization complete"* ]] && before=$(cpu_ticks "$server_pid")
  done < <(taskset -c "$client_cpu" "${cmd[@]}" -t "$T" 2>&1; echo "exit $?")
  after=$(cpu_ticks "$server_pid")
  measure_end
  [ "$(tail -1 "$out")" = "exit 0" ] && [ -n "$before" ] || { echo "bench: spdk_nvme_perf failed:" >&2; tail -5 "$out" >&2; return 1; }
  # "Total : IOPS MiB/s average min max", then the percentile lines "99.00000% :   57.123us".
  local iops mibs avg p50 p99 cpu
  read -r iops mibs avg < <(awk -F: '/^Total/ { split($2, f, " "); print f[1], f[2], f[3] }' "$out")
  [ -n "${iops:-}" ] || { echo "bench: no Total line from spdk_nvme_perf:" >&2; tail -5 "$out" >&2; return 1; }
  p50=$(awk '/^ *50\.00000% :/ { sub(/us/, "", $3); print $3; exit }' "$out")
  p99=$(awk '/^ *99\.00000% :/ { sub(/us/, "", $3); print $3; exit }' "$out")
  cpu=$(awk -v t=$((after - before)) -v hz="$clk_tck" -v i="$iops" -v s="$T" 'BEGIN { n = i * s; printf "%.2f", (n > 0 ? t / hz * 1e6 / n : 0) }')
  SP_P50[$key]=$(printf '%.0f' "${p50:-0}")
  SP_LAT[$key]=$(printf '%.1f' "$avg")
  add_row "$key" "$system (spdk_nvme_perf)" "$rw $bs QD$qd" "$(printf '%.0f' "$iops")" \
    "$(awk -v m="$mibs" 'BEGIN { printf "%.1f", m * 1.048576 }')" "$(printf '%.0f' "${p99:-0}")" "$cpu"
}

spdk_idle() { # KEY: the running server's CPU over 5 s with no host connected, % of one core
  local before after
  before=$(cpu_ticks "$server_pid"); sleep 5; after=$(cpu_ticks "$server_pid")
  SP_IDLE[$1]=$(awk -v t=$((after - before)) -v hz="$clk_tck" 'BEGIN { printf "%.1f", 100 * t / hz / 5 }')
  echo "  idle, no host connected: ${SP_IDLE[$1]}% of a core" >&2
}
declare -A SP_IDLE

spdk_workloads() { # PREFIX SYSTEM NQN PORT [warm]
  local p=$1 s=$2 n=$3 port=$4 w=${5:-}
  measure spdk_perf "${p}_rr" "$s" "$n" "$port" randread 4096 32 "$w"
  measure spdk_perf "${p}_rw" "$s" "$n" "$port" randwrite 4096 32 "$w"
  measure spdk_perf "${p}_seq" "$s" "$n" "$port" read 131072 8 "$w"
  measure spdk_perf "${p}_qd1" "$s" "$n" "$port" randread 4096 1 "$w"
}

spdk_group() {
  spdk_tree=$(spdk_find_tree)
  [ -n "$spdk_tree" ] || return 0
  local port round
  port=$(pick_port 24520)
  spdk_config "$port" >"$tmp/spdk.json"
  for round in $(seq "$spdk_rounds"); do
    echo "== SPDK nvmf_tgt, null bdev (round $round)" >&2
    start_server "spdk-$round" env LD_LIBRARY_PATH="$spdk_tree/build/lib" "$spdk_tree/build/bin/nvmf_tgt" \
      -m 0x1 --no-huge -s 1024 --json "$tmp/spdk.json"
    note_cmd "taskset -c $server_cpu $spdk_tree/build/bin/nvmf_tgt -m 0x1 --no-huge -s 1024 --json spdk.json   # spdk.json: bench/spdk.sh spdk_config"
    wait_port "$port"
    spdk_idle "spdk_$round"
    spdk_workloads "spdk_$round" SPDK "$spdk_nqn" "$port"
    stop_server

    echo "== EdgeBlock, null backend (round $round)" >&2
    start_server "eb-spdk-$round" "$eb" serve --data-dir "$tmp/eb-spdk-$round" --listen "127.0.0.1:$port" --default-backend null --default-size 8G
    note_cmd "taskset -c $server_cpu ./edgeblock serve --data-dir DIR --listen 127.0.0.1:$port --default-backend null --default-size 8G"
    wait_port "$port"
    spdk_idle "eb_$round"
    spdk_workloads "ebsp_$round" EdgeBlock "nqn.2026-11.io.edgeblock:default" "$port" warm
    stop_server

    # QD1 again with busy polling (serve --busy-poll): what a sleep in epoll and its wake-up cost at QD1.
    echo "== EdgeBlock, null backend, --busy-poll $spdk_busy_poll (round $round)" >&2
    start_server "eb-spdk-bp-$round" "$eb" serve --data-dir "$tmp/eb-spdk-bp-$round" --listen "127.0.0.1:$port" --default-backend null --default-size 8G --busy-poll "$spdk_busy_poll"
    note_cmd "taskset -c $server_cpu ./edgeblock serve --data-dir DIR --listen 127.0.0.1:$port --default-backend null --default-size 8G --busy-poll $spdk_busy_poll"
    wait_port "$port"
    measure spdk_perf "ebbp_${round}_qd1" "EdgeBlock --busy-poll $spdk_busy_poll" "nqn.2026-11.io.edgeblock:default" "$port" randread 4096 1 warm
    stop_server
  done
}

spdk_mean() { # ARRAY PREFIX SUFFIX [DECIMALS]: mean over the rounds, or -
  local -n arr=$1
  local d=${4:-2}
  local r v s=""
  for r in $(seq "$spdk_rounds"); do v=${arr[${2}_${r}${3}]:-}; [ -n "$v" ] && s="$s $v"; done
  awk -v s="$s" -v d="$d" 'BEGIN { n = split(s, a, " "); if (n == 0) { print "-"; exit } t = 0; for (i = 1; i <= n; i++) t += a[i]; printf "%.*f", d, t / n }'
}

ratios_spdk() {
  local w k name r ours theirs op goal
  for w in rr:"4k randread QD32 IOPS":">=":1.0 rw:"4k randwrite QD32 IOPS":">=":1.2 seq:"128k read QD8 MB/s":">=":1.0; do
    IFS=: read -r k name op goal <<<"$w"
    if [ "$k" = seq ]; then ours=$(spdk_mean R_MBPS ebsp "_$k" 0); theirs=$(spdk_mean R_MBPS spdk "_$k" 0)
    else ours=$(spdk_mean R_IOPS ebsp "_$k" 0); theirs=$(spdk_mean R_IOPS spdk "_$k" 0); fi
    r=$(ratio "$ours" "$theirs")
    echo "| EdgeBlock vs SPDK nvmf_tgt, null, $name (spdk_nvme_perf, mean of $spdk_rounds rounds) | $ours | $theirs | $r | $op $goal | $(verdict "$r" "$op" "$goal") |"
  done
  ours=$(spdk_mean R_CPU ebsp _rr); theirs=$(spdk_mean R_CPU spdk _rr); r=$(ratio "$ours" "$theirs")
  echo "| server CPU µs per 4k randread QD32 vs SPDK (SPDK polls: its core's time / I/Os) | $ours µs | $theirs µs | $r | ≤ 1.0 | $(verdict "$r" "<=" 1.0) |"
  ours=$(spdk_mean SP_LAT ebsp _qd1); theirs=$(spdk_mean SP_LAT spdk _qd1); r=$(ratio "$ours" "$theirs")
  echo "| 4k randread QD1 mean latency vs SPDK | $ours µs | $theirs µs | $r | ≤ 1.0 | $(verdict "$r" "<=" 1.0) |"
  ours=$(spdk_mean SP_P50 ebsp _qd1); theirs=$(spdk_mean SP_P50 spdk _qd1); r=$(ratio "$ours" "$theirs")
  echo "| (context) 4k randread QD1 p50 latency vs SPDK | $ours µs | $theirs µs | $r | | |"
  ours=$(spdk_mean SP_LAT ebbp _qd1); theirs=$(spdk_mean SP_LAT spdk _qd1); r=$(ratio "$ours" "$theirs")
  echo "| 4k randread QD1 mean latency, EdgeBlock --busy-poll $spdk_busy_poll vs SPDK | $ours µs | $theirs µs | $r | ≤ 1.0 | $(verdict "$r" "<=" 1.0) |"
  ours=$(spdk_mean R_CPU ebbp _qd1); theirs=$(spdk_mean R_CPU ebsp _qd1); r=$(ratio "$ours" "$theirs")
  echo "| (context) server CPU per 4k randread QD1, --busy-poll $spdk_busy_poll vs without | $ours µs | $theirs µs | $r | | |"
  for k in rr rw seq; do
    ours=$(awk -v c="$(spdk_mean R_CPU ebsp "_$k")" 'BEGIN { if (c == "-" || c + 0 == 0) print "-"; else printf "%.0f", 1e6 / c }')
    theirs=$(awk -v c="$(spdk_mean R_CPU spdk "_$k")" 'BEGIN { if (c == "-" || c + 0 == 0) print "-"; else printf "%.0f", 1e6 / c }')
    echo "| (context) I/Os per second per server core, $k | $ours | $theirs | $(ratio "$ours" "$theirs") | | |"
  done
  echo "| (context) idle server CPU, no host connected, % of a core | $(spdk_mean SP_IDLE eb "" 1) | $(spdk_mean SP_IDLE spdk "" 1) | | | |"
}
