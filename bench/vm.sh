#!/usr/bin/env bash
# Issue G: host CPU per GiB of VM disk I/O on three storage paths, one guest, one fio job.
#
#   bench/vm.sh                      all paths, 20 s per fio job, table appended to BENCHMARKS.md
#   bench/vm.sh --time 10            10 s per fio job
#   bench/vm.sh --only a,b           some paths (a, a-uring, b, c); ratios need a
#   bench/vm.sh --no-record          print the table only
#   bench/vm.sh --vhost-server tool  (b) from tools/EdgeBlock.VhostServe instead of the daemon (prototyping)
#   bench/vm.sh --keep               keep the work directory (console logs, fio JSON, samples)
#   bench/vm.sh --build DIR          measure the edgeblock built in DIR instead of building ./edgeblock
#
# Paths (the same 1 GiB raw file on this disk, filled with random data first, so every read hits
# written blocks; the same guest: the interop kernel + initramfs + fio layer, -accel tcg -cpu max
# -smp 2 -m 1G, RAM in a shared memfd for all paths, a virtio-net NIC on slirp for all paths):
#   a        QEMU's own virtio-blk, num-queues=2, on the raw file: cache=none, aio=threads
#            (QEMU's default aio mode, and what libvirt passes when a domain sets no io=)
#   a-uring  the same with aio=io_uring (Proxmox VE's default): context, the leanest QEMU path
#   b        EdgeBlock vhost-user-blk: `edgeblock serve` exports the file over a vhost-user socket
#            (`edgeblock vhost add --socket S --backend file:F --queues 2`), QEMU vhost-user-blk-pci
#   c        EdgeBlock NVMe/TCP: the guest's nvme-tcp connects to the daemon at 10.0.2.2 (slirp),
#            a namespace with backend file:F
# In the guest: a 5 s unmeasured warm-up (4k randread; the daemon's JIT), then fio libaio direct
# 4k randread QD32, 4k randwrite QD32, 128k read QD8, each time-based for --time seconds.
# Window: fio's exec_prerun/exec_postrun print markers on the serial console; the host samples
# /proc when it reads them. Host CPU = utime+stime of the QEMU process (all threads, exited ones
# included) + the daemon's, split into QEMU vCPU threads ("CPU n/TCG", -name debug-threads=on),
# QEMU other threads (main loop, slirp, aio workers: QEMU total - vCPU) and the daemon.
# Storage-path CPU = QEMU other + daemon. GiB = fio's own io_bytes (read + write) from its JSON.
# Other load = busy CPU time of the machine in the window not charged to QEMU or the daemon
# (% of one CPU); a path where it tops 25% runs once more if the 9-minute budget allows, the quieter
# run is kept. Runs on Debian 12 as root or with sudo; about 30 s + 3 x --time per path (6-7 min in all).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
# shellcheck source=lib.sh
. "$here/lib.sh"

run_seconds=20
record=1
only="a,a-uring,b,c"
vhost_server=daemon
keep=0
eb_build=""
eb_build_given=""
warmup=5
work_parent="${EDGEBLOCK_BENCH_DIR:-/var/tmp}"
qemu=${EDGEBLOCK_QEMU:-qemu-system-x86_64}
while [ $# -gt 0 ]; do
  case "$1" in
    --time) run_seconds="${2%s}"; shift 2 ;;
    --time=*) run_seconds="${1#--time=}"; run_seconds="${run_seconds%s}"; shift ;;
    --no-record) record=0; shift ;;
    --only) only="$2"; shift 2 ;;
    --only=*) only="${1#--only=}"; shift ;;
    --vhost-server) vhost_server="$2"; shift 2 ;;
    --dir) work_parent="$2"; shift 2 ;;
    --keep) keep=1; shift ;;
    --build) eb_build="$2"; eb_build_given="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "bench/vm.sh: unknown option '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
[[ "$run_seconds" =~ ^[0-9]+$ ]] && [ "$run_seconds" -ge 3 ] && [ "$run_seconds" -le 60 ] \
  || { echo "bench/vm.sh: --time takes whole seconds, 3..60 (the run must stay under 10 minutes)" >&2; exit 2; }
for p in ${only//,/ }; do
  case "$p" in a|a-uring|b|c) ;; *) echo "bench/vm.sh: unknown path '$p' in --only (a, a-uring, b, c)" >&2; exit 2 ;; esac
done
case "$vhost_server" in daemon|tool) ;; *) echo "bench/vm.sh: --vhost-server daemon|tool" >&2; exit 2 ;; esac
want() { [[ ",$only," == *",$1,"* ]]; }
T=$run_seconds

# ---- dependencies ------------------------------------------------------------------------------
require "$qemu" qemu-system-x86
require cpio cpio
require fio fio
require jq jq
require getconf libc-bin
install_required bench/vm --no-install-recommends
clk_tck=$(getconf CLK_TCK)
ncpu=$(nproc)

# ---- work directory, cleanup ------------------------------------------------------------------
mkdir -p "$work_parent"
tmp=$(mktemp -d "$work_parent/ebvm.XXXXXX") # short: the vhost-user socket path is limited to 107 bytes
daemon_pid=""
stop_daemon() {
  if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then
    kill -INT "$daemon_pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$daemon_pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$daemon_pid" 2>/dev/null || true
    wait "$daemon_pid" 2>/dev/null || true
  fi
  daemon_pid=""
}
cleanup() {
  stop_daemon
  local q; q=$(cat "$tmp/qemu.pid" 2>/dev/null || true)
  if [ -n "$q" ] && [[ "$(cat "/proc/$q/comm" 2>/dev/null)" == qemu* ]]; then kill -9 "$q" 2>/dev/null || true; fi
  if [ "$keep" = 1 ]; then echo "bench/vm: work directory kept: $tmp" >&2; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- the guest and the daemon ------------------------------------------------------------------
echo "bench/vm: checking the interop guest (tests/interop/build-guest.sh)" >&2
"$repo/tests/interop/build-guest.sh" >&2
guest_dir=${EDGEBLOCK_CACHE:-$HOME/.cache/edgeblock}/guest
kernel=$guest_dir/vmlinux
[ -f "$kernel" ] || kernel=$guest_dir/vmlinuz
[ -f "$guest_dir/fio.cpio" ] || { echo "bench/vm: build-guest.sh made no fio layer" >&2; exit 1; }

eb=""
if want b || want c; then
  if [ -z "$eb_build" ]; then
    echo "bench/vm: building edgeblock (Release) if needed" >&2
    if ! "$repo/edgeblock" --help >/dev/null; then
      echo "bench/vm: the build failed; measuring the last build in artifacts/edgeblock" >&2
    fi
    eb_build=$repo/artifacts/edgeblock
  fi
  [ -x "$eb_build/edgeblock" ] || { echo "bench/vm: no edgeblock in $eb_build" >&2; exit 1; }
  # A private copy: a rebuild by someone else in this tree must not replace the daemon's files while it runs.
  cp -a "$eb_build" "$tmp/eb"
  eb=$tmp/eb/edgeblock
fi
vhost_tool_dll=$repo/tools/EdgeBlock.VhostServe/bin/Release/net10.0/EdgeBlock.VhostServe.dll
if want b && [ "$vhost_server" = tool ]; then
  dotnet build "$repo/tools/EdgeBlock.VhostServe" -c Release -nologo -v q >"$tmp/vhost-tool-build.log" 2>&1 \
    || echo "bench/vm: building tools/EdgeBlock.VhostServe failed; using its last build" >&2
  cp -a "$(dirname "$vhost_tool_dll")" "$tmp/vhost-tool"
  vhost_tool_dll=$tmp/vhost-tool/EdgeBlock.VhostServe.dll
fi

commands=()
note_cmd() { # records a command for BENCHMARKS.md, with the work directory and the repository left out
  local line="$*"
  line=${line//"$tmp/"/}
  line=${line//"$repo/"/./}
  commands+=("$line")
}

# ---- the data file: 1 GiB of random data on this disk, shared by every path ---------------------
disk=$tmp/disk.img
disk_size=1G
echo "bench/vm: filling a $disk_size raw file with random data" >&2
fill=(fio --name=fill --filename="$disk" --size="$disk_size" --rw=write --bs=1m --ioengine=psync --direct=1
      --refill_buffers --output="$tmp/fill.txt")
note_cmd "${fill[*]}"
note_cmd "# in the guest (bench/vm-guest.sh; DISK = /dev/vda, or the NVMe/TCP namespace for (c)), after a ${warmup} s randread warm-up:"
note_cmd "#   fio --name=JOB --filename=DISK --ioengine=libaio --direct=1 --rw=randread|randwrite|read --bs=4k|4k|128k --iodepth=32|32|8 --time_based --runtime=$T --norandommap --randrepeat=0 --output-format=json"
"${fill[@]}" >/dev/null
sync

# ---- sampling ------------------------------------------------------------------------------------
# sample QEMU_PID DAEMON_PID: "qemu_ticks vcpu_ticks daemon_ticks busy_ticks total_ticks epoch_seconds"
# QEMU's process stat holds all its threads, exited ones included; vCPU threads are named "CPU n/TCG".
sample() {
  local q=$1 d=${2:-} qt vt dt
  read -r qt vt < <(awk '
    { i = index($0, "("); j = 0; for (k = length($0); k > 0; k--) if (substr($0, k, 1) == ")") { j = k; break }
      name = substr($0, i + 1, j - i - 1); split(substr($0, j + 2), f, " "); t = f[12] + f[13] }
    FNR == NR { total = t; next }
    name ~ /^CPU [0-9]+\/TCG$/ { vcpu += t }
    END { print total + 0, vcpu + 0 }' "/proc/$q/stat" /proc/"$q"/task/*/stat 2>/dev/null)
  dt=0
  if [ -n "$d" ] && [ -r "/proc/$d/stat" ]; then
    dt=$(awk '{ i = index($0, ") "); split(substr($0, i + 2), f, " "); print f[12] + f[13] }' "/proc/$d/stat")
  fi
  echo "$qt $vt $dt $(awk '/^cpu / { b = $2 + $3 + $4 + $7 + $8 + $9; t = b + $5 + $6; print b, t }' /proc/stat) ${EPOCHREALTIME}"
}

# ---- one guest run ---------------------------------------------------------------------------------

declare -A ROW
order=()
failures=()
# run_guest PATH DAEMON_PID ENV_LINES QEMU_DISK_ARGS...: boots the guest, runs the jobs, samples at the markers,
# then adds the rows for PATH.
run_guest() {
  local path=$1 dpid=$2 envs=$3; shift 3
  local dir=$tmp/$path
  mkdir -p "$dir/stage"
  printf "SCENARIO=vm-%s\nJOBS='rr rw seq'\nRUNTIME=%s\nWARMUP=%s\nQD_RAND=32\nQD_SEQ=8\n%s\n" \
    "$path" "$T" "$warmup" "$envs" >"$dir/stage/scenario.env"
  install -m 0755 "$here/vm-guest.sh" "$dir/stage/scenario.sh"
  install -m 0644 "$repo/tests/interop/guest/interop-lib.sh" "$dir/stage/interop-lib.sh"
  (cd "$dir/stage" && find . -mindepth 1 | LC_ALL=C sort | cpio --create --format=newc --owner=0:0 --quiet) >"$dir/scenario.cpio"
  cat "$guest_dir/base.cpio" "$guest_dir/fio.cpio" "$dir/scenario.cpio" >"$dir/initrd"
  # shellcheck disable=SC2054 # the commas are QEMU's
  local args=(
    -name "ebvm-$path,debug-threads=on"
    -accel tcg -cpu max -smp 2 -m 1G
    -object memory-backend-memfd,id=mem,size=1G,share=on -numa node,memdev=mem
    -nographic -no-reboot -pidfile "$tmp/qemu.pid"
    -kernel "$kernel" -initrd "$dir/initrd" -append "console=ttyS0 quiet panic=-1"
    -netdev user,id=n0 -device virtio-net-pci,netdev=n0,romfile=
    "$@"
  )
  [ "${retrying:-0}" = 1 ] || note_cmd "$qemu ${args[*]}"
  rm -f "$tmp/qemu.pid"
  : >"$dir/console.log"
  rm -f "$dir"/*.BEGIN "$dir"/*.END
  local budget=$((90 + 4 * T + warmup))
  echo "== ($path) booting the guest; 3 fio jobs of ${T} s; console log $dir/console.log" >&2
  local t_start=$SECONDS
  {
    local rc=0
    timeout -k 5 "$budget" "$qemu" "${args[@]}" </dev/null 2>&1 || rc=$?
    echo "$rc" >"$dir/qemu.rc"
  } | while IFS= read -r line || [ -n "$line" ]; do
    line=${line//$'\r'/}
    case "$line" in
      EBVM-BEGIN\ *|EBVM-END\ *)
        set -- $line
        sample "$(cat "$tmp/qemu.pid")" "$dpid" >"$dir/${2}.${1#EBVM-}"
        ;;
    esac
    printf '%s\n' "$line" >>"$dir/console.log"
  done
  local qrc guest_rc
  qrc=$(cat "$dir/qemu.rc" 2>/dev/null || echo 1)
  guest_rc=$(grep -ao 'EDGEBLOCK-SCENARIO-RESULT rc=[0-9]*' "$dir/console.log" | tail -n 1 | sed 's/.*rc=//' || true)
  echo "  guest ran $((SECONDS - t_start)) s (qemu exit $qrc, scenario rc ${guest_rc:-none})" >&2
  if [ "${guest_rc:-1}" != 0 ]; then
    echo "bench/vm: ($path) the guest run failed; the end of its console:" >&2
    grep -av '^\s*$' "$dir/console.log" | tail -n 25 | sed 's/^/    | /' >&2
    return 1
  fi
  local job
  for job in rr rw seq; do
    awk -v j="$job" '$0 == "EBVM-JSON-BEGIN " j { on = 1; next } $0 == "EBVM-JSON-END " j { on = 0 } on' \
      "$dir/console.log" >"$dir/$job.json"
    add_row "$path" "$job" "$dir"
  done
}

# add_row PATH JOB DIR: one table row from the job's fio JSON and the two samples
add_row() {
  local path=$1 job=$2 dir=$3
  [ -s "$dir/$job.BEGIN" ] && [ -s "$dir/$job.END" ] || { echo "bench/vm: ($path) no samples for $job" >&2; return 1; }
  local dirn=read workload
  case $job in
    rr) workload="randread 4k QD32" ;;
    rw) workload="randwrite 4k QD32"; dirn=write ;;
    seq) workload="read 128k QD8" ;;
  esac
  local iops mbps bytes
  iops=$(jq -r ".jobs[0].$dirn.iops | floor" "$dir/$job.json")
  mbps=$(jq -r ".jobs[0].$dirn.bw_bytes / 1e6 | . * 10 | round / 10" "$dir/$job.json")
  bytes=$(jq -r '.jobs[0].read.io_bytes + .jobs[0].write.io_bytes' "$dir/$job.json")
  local irqs
  irqs=$(awk -v j="$job" '$1 == "EBVM-IRQ" && $2 == j { n = $3 } END { print n + 0 }' "$dir/console.log")
  # fields: gib secs total_s vcpu_s qother_s daemon_s | per GiB: total vcpu qother daemon storage | us/IO storage | other%
  ROW[$path.$job]=$(awk -v hz="$clk_tck" -v n="$ncpu" -v bytes="$bytes" -v bs="$([ "$job" = seq ] && echo 131072 || echo 4096)" \
      -v iops="$iops" -v mbps="$mbps" -v w="$workload" -v irqs="$irqs" '
    NR == 1 { split($0, a, " ") } NR == 2 { split($0, b, " ") }
    END {
      q = (b[1] - a[1]) / hz; v = (b[2] - a[2]) / hz; d = (b[3] - a[3]) / hz; o = q - v
      busy = (b[4] - a[4]) / hz; secs = b[6] - a[6]; gib = bytes / 1073741824; ios = bytes / bs
      other = secs > 0 ? 100 * (busy - q - d) / secs : 0; if (other < 0) other = 0
      printf "%s|%s|%s|%.3f|%.1f|%.2f|%.2f|%.2f|%.2f|%.2f|%.2f|%.2f|%.2f|%.2f|%.0f|%.0f|%.2f\n",
        w, iops, mbps, gib, secs, q + d, v, o, d, (q + d) / gib, v / gib, o / gib, d / gib, (o + d) / gib,
        1e6 * (o + d) / ios, other, irqs / ios
    }' "$dir/$job.BEGIN" "$dir/$job.END")
  [[ " ${order[*]} " == *" $path.$job "* ]] || order+=("$path.$job")
  IFS='|' read -r w i m g s tot v o d tpg vpg opg dpg spg sus oth irq <<<"${ROW[$path.$job]}"
  printf '  (%s) %-18s %6s IOPS %7s MB/s  %.3f GiB in %s s: host CPU %s s/GiB = vCPU %s + QEMU other %s + daemon %s; storage path %s s/GiB (%s us/IO); guest IRQs/IO %s; other load %s%%\n' \
    "$path" "$w" "$i" "$m" "$g" "$s" "$tpg" "$vpg" "$opg" "$dpg" "$spg" "$sus" "$irq" "$oth" >&2
}

field() { # KEY N: field N (1-based) of a row, or -
  local r=${ROW[$1]:-}
  [ -n "$r" ] || { echo -; return; }
  echo "$r" | cut -d'|' -f"$2"
}

# ---- the daemon ---------------------------------------------------------------------------------
wait_for() { # SECONDS TEST...: until TEST succeeds, the daemon still alive
  local n=$(($1 * 10)); shift
  for _ in $(seq "$n"); do
    "$@" && return 0
    [ -z "$daemon_pid" ] || kill -0 "$daemon_pid" 2>/dev/null || { echo "bench/vm: the daemon exited:" >&2; tail -n 20 "$tmp"/*.log >&2; return 1; }
    sleep 0.1
  done
  echo "bench/vm: timed out waiting for: $*" >&2
  return 1
}
listening() { awk -v p="$(printf '%04X' "$1")" '$4 == "0A" && substr($2, index($2, ":") + 1) == p { f = 1 } END { exit !f }' /proc/net/tcp; }
pick_port() { local p=$1; while listening "$p"; do p=$((p + 1)); done; echo "$p"; }
start_daemon() { # NAME: edgeblock serve with a data directory of its own; sets daemon_pid, eb_port, EDGEBLOCK_API_SOCKET
  eb_port=$(pick_port 24460)
  mkdir -p "$tmp/$1-data"
  # disk.img and vhost.sock are in $tmp, outside the data directory: a storage root (the storage policy).
  "$eb" serve --data-dir "$tmp/$1-data" --storage-root "$tmp" --listen "127.0.0.1:$eb_port" --default-backend null --default-size 1G \
    >"$tmp/$1.log" 2>&1 &
  daemon_pid=$!
  note_cmd "./edgeblock serve --data-dir TMP/DATA --storage-root TMP --listen 127.0.0.1:$eb_port --default-backend null --default-size 1G"
  export EDGEBLOCK_API_SOCKET=$tmp/$1-data/api.sock
  wait_for 30 listening "$eb_port"
  wait_for 10 test -S "$EDGEBLOCK_API_SOCKET"
}
eb_cli() { note_cmd "./edgeblock $*"; "$eb" "$@" >>"$tmp/cli.log" 2>&1 || { echo "bench/vm: edgeblock $* failed:" >&2; tail -n 5 "$tmp/cli.log" >&2; return 1; }; }

busy() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat; }
b0=$(busy); sleep 2; b1=$(busy)
background_busy=$(awk -v a="$b0" -v b="$b1" -v n="$ncpu" 'BEGIN { split(a, x, " "); split(b, y, " "); dt = y[2] - x[2]; printf "%.0f", (dt > 0 ? 100 * n * (y[1] - x[1]) / dt : 0) }')
if [ "$background_busy" -gt 25 ]; then
  echo "bench/vm: WARNING: the machine was ${background_busy}% busy (of one CPU) before the first run; other load skews the figures" >&2
fi
started=$(date -u '+%Y-%m-%d %H:%M UTC')
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
echo "bench/vm: $ncpu CPUs, load average $load_before, ${T} s per fio job, paths $only, work dir $tmp" >&2
t0=$SECONDS
vhost_label="EdgeBlock vhost-user-blk (daemon)"

# measure PATH DAEMON_PID ENV QEMU_ARGS...: run_guest, and once more when something else used more than 25% of a CPU
# during one of the jobs and the time budget (9 minutes for the whole run) allows; the quieter run is kept.
paths_left=0
for p in ${only//,/ }; do paths_left=$((paths_left + 1)); done
path_estimate=$((3 * T + warmup + 30))
max_other() { local j m=0 o; for j in rr rw seq; do o=$(field "$1.$j" 16); [[ $o =~ ^[0-9]+$ ]] && [ "$o" -gt "$m" ] && m=$o; done; echo "$m"; }
measure() {
  local path=$1 other j
  paths_left=$((paths_left - 1))
  run_guest "$@" || { failures+=("($path) the guest run failed: see the console above"); return 0; }
  other=$(max_other "$path")
  if [ "$other" -gt 25 ] && [ $((SECONDS - t0 + path_estimate * (paths_left + 1) + 30)) -le 540 ]; then
    declare -A saved=()
    for j in rr rw seq; do saved[$j]=${ROW[$path.$j]:-}; done
    echo "  (other load up to ${other}% of a CPU: once more)" >&2
    if ! retrying=1 run_guest "$@" || [ "$(max_other "$path")" -ge "$other" ]; then
      for j in rr rw seq; do ROW[$path.$j]=${saved[$j]}; done
      echo "  (kept the first run)" >&2
    fi
  fi
}

if want a; then
  measure a "" "DISK_KIND=virtio" \
    -drive "file=$disk,format=raw,if=none,id=d0,cache=none,aio=threads" -device virtio-blk-pci,drive=d0,num-queues=2
fi
if want a-uring; then
  measure a-uring "" "DISK_KIND=virtio" \
    -drive "file=$disk,format=raw,if=none,id=d0,cache=none,aio=io_uring" -device virtio-blk-pci,drive=d0,num-queues=2
fi
if want b; then
  sock=$tmp/vhost.sock
  if [ "$vhost_server" = daemon ]; then
    start_daemon vhost
    eb_cli vhost add --socket "$sock" --backend "file:$disk" --queues 2
  else
    vhost_label="EdgeBlock vhost-user-blk (tools/EdgeBlock.VhostServe)"
    dotnet "$vhost_tool_dll" --socket "$sock" --file "$disk" --size "$disk_size" --queues 2 >"$tmp/vhost-tool.log" 2>&1 &
    daemon_pid=$!
    note_cmd "dotnet tools/EdgeBlock.VhostServe/bin/Release/net10.0/EdgeBlock.VhostServe.dll --socket vhost.sock --file disk.img --size $disk_size --queues 2"
    wait_for 30 grep -q 'vhost-serve: listening' "$tmp/vhost-tool.log"
  fi
  wait_for 10 test -S "$sock"
  measure b "$daemon_pid" "DISK_KIND=virtio" \
    -chardev "socket,id=c0,path=$sock" -device vhost-user-blk-pci,chardev=c0,num-queues=2
  stop_daemon
fi
if want c; then
  nqn=nqn.2026-12.io.edgeblock:bench-vm
  start_daemon nvme
  eb_cli subsystem create "$nqn" --allow-any-host
  eb_cli namespace add "$nqn" --backend "file:$disk"
  measure c "$daemon_pid" "DISK_KIND=nvme
TARGET_ADDR=10.0.2.2
TARGET_PORT=$eb_port
NQN=$nqn"
  stop_daemon
fi
elapsed=$((SECONDS - t0))
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- the table and the ratios -------------------------------------------------------------------------
label() {
  case $1 in
    a) echo "(a) QEMU virtio-blk, aio=threads" ;;
    a-uring) echo "(a') QEMU virtio-blk, aio=io_uring" ;;
    b) echo "(b) $vhost_label" ;;
    c) echo "(c) EdgeBlock NVMe/TCP (guest nvme-tcp, slirp)" ;;
  esac
}
table() {
  echo "| path | workload | IOPS | MB/s | GiB | window s | host CPU s/GiB | vCPU s/GiB | QEMU other s/GiB | daemon s/GiB | storage path s/GiB | storage path µs/IO | guest IRQs/IO | other load |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  local k
  for k in "${order[@]}"; do
    IFS='|' read -r w i m g s tot v o d tpg vpg opg dpg spg sus oth irq <<<"${ROW[$k]}"
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s%% |\n' \
      "$(label "${k%.*}")" "$w" "$i" "$m" "$g" "$s" "$tpg" "$vpg" "$opg" "$dpg" "$spg" "$sus" "$irq" "$oth"
  done
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'; }
verdict() { awk -v r="$1" 'BEGIN { if (r == "n/a") print "n/a"; else if (r < 1) print "met"; else print "NOT met" }'; }
workload_of() { case $1 in rr) echo "randread 4k QD32" ;; rw) echo "randwrite 4k QD32" ;; seq) echo "read 128k QD8" ;; esac; }
ratios() {
  echo "| workload | metric | (a) | (b) | (b)/(a) | goal (b) < (a) | (c) | (c)/(a) | (a') | (b)/(a') |"
  echo "|---|---|---:|---:|---:|---|---:|---:|---:|---:|"
  local job metric n rb rc
  for job in rr rw seq; do
    for metric in "host CPU s/GiB:10" "storage path s/GiB:14" "vCPU s/GiB:11"; do
      n=${metric##*:}
      rb=$(ratio "$(field "b.$job" "$n")" "$(field "a.$job" "$n")")
      rc=$(ratio "$(field "c.$job" "$n")" "$(field "a.$job" "$n")")
      printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$(workload_of "$job")" \
        "${metric%%:*}" "$(field "a.$job" "$n")" "$(field "b.$job" "$n")" "$rb" \
        "$([ "$n" = 11 ] && echo "(context)" || verdict "$rb")" "$(field "c.$job" "$n")" "$rc" \
        "$(field "a-uring.$job" "$n")" "$(ratio "$(field "b.$job" "$n")" "$(field "a-uring.$job" "$n")")"
    done
  done
}

echo
table
echo
ratios
echo
echo "load average before/after: $load_before / $load_after; run time ${elapsed} s"
for f in "${failures[@]}"; do echo "FAILED: $f"; done

if [ "$record" = 1 ]; then
  md="$repo/BENCHMARKS.md"
  revision=$(git -C "$repo" describe --always --dirty 2>/dev/null || echo unknown)
  cmdline="bench/vm.sh --time $T --only $only$([ "$vhost_server" = tool ] && echo " --vhost-server tool")$([ -n "$eb_build_given" ] && echo " --build $eb_build_given")"
  {
    echo
    echo "## VM disk I/O, host CPU per GiB (issue G): $started — $revision"
    echo
    echo "\`$cmdline\`: $ncpu CPUs, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), kernel $(uname -r), CLK_TCK $clk_tck;"
    echo "$($qemu --version | head -1 | sed 's/ (.*//'), guest kernel $(cat "$guest_dir/kernel-version"), guest fio $(fio --version);"
    echo "load average before/after: $load_before / $load_after (CPU busy before the run: ${background_busy}% of one CPU); run time ${elapsed} s. One guest (TCG, -smp 2, -m 1G, memfd RAM),"
    echo "one 1 GiB raw file of random data shared by all paths, fio libaio direct, ${T} s per job after a ${warmup} s warm-up."
    echo "Host CPU = QEMU (all threads) + daemon over the fio window; storage path = QEMU non-vCPU threads + daemon."
    echo
    table
    echo
    ratios
    echo
    for f in "${failures[@]}"; do echo "**FAILED: $f**"; echo; done
    commands_details
  } >>"$md"
  echo "bench/vm: appended to $md" >&2
fi
