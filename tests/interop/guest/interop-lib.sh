# shellcheck shell=sh
# interop-lib.sh — helpers for the guest side of the interop scenarios.
#
# Sourced by /scenario.sh inside the test guest (busybox ash, POSIX sh). It travels in
# the scenario's own cpio archive, next to /scenario.sh and /scenario.env.
#
# Variables (from /scenario.env, exported by /init):
#   SCENARIO     scenario name
#   TARGET_ADDR  target address (10.0.2.2 = the host's 127.0.0.1; reference: 127.0.0.1)
#   TARGET_PORT  target TCP port
#   NQN          subsystem NQN
#   NSID         namespace to use (default 1)
#   REFERENCE    1: set up the Linux in-kernel target (nvmet) inside this guest first
#   ALLOW_HOSTS  reference mode: host NQNs allowed to connect (space separated; empty =
#                any host)
#   ACTION_ADDR, ACTION_PORT  where host actions are requested (QEMU guestfwd)

: "${SCENARIO:=unknown}"
: "${TARGET_ADDR:=10.0.2.2}"
: "${TARGET_PORT:=4420}"
: "${NQN:=nqn.2026-11.io.edgeblock:default}"
: "${NSID:=1}"
: "${REFERENCE:=0}"
: "${ALLOW_HOSTS:=}"
: "${ACTION_ADDR:=10.0.2.100}"
: "${ACTION_PORT:=7777}"

# A failing command inside a pipeline (dd | sha256sum) must fail the pipeline.
set -o pipefail

# Real programs by absolute path. Debian's busybox ash runs its own applet for any name it
# knows (blkdiscard, blockdev, cmp, mke2fs, e2fsck...) before it looks at PATH, and the
# applets lack options the scenarios use (cmp -n, blkdiscard's full option set...).
blkdiscard() { /usr/sbin/blkdiscard "$@"; }
blockdev() { /usr/sbin/blockdev "$@"; }
cmp() { /usr/bin/cmp "$@"; }
e2fsck() { /usr/sbin/e2fsck "$@"; }
mkfs_ext4() { /usr/sbin/mkfs.ext4 "$@"; }

# Messages and steps -----------------------------------------------------------------------

uptime_s() { cut -d' ' -f1 /proc/uptime; }
log() { echo "[$SCENARIO +$(uptime_s)s] $*"; }
fail() {
    echo "[$SCENARIO] FAIL: $*" >&2
    exit 1
}
# step DESCRIPTION: announce a step; the failure report names the last one.
STEP="start"
step() {
    STEP=$*
    echo "[$SCENARIO +$(uptime_s)s] ==> $*"
}
# run CMD...: show a command, then run it (its status is the caller's to check).
run() {
    echo "+ $*" >&2
    "$@"
}

# On failure: name the step and show what the kernel said about NVMe.
_on_exit() {
    rc=$?
    if [ "$rc" -ne 0 ]; then
        echo "[$SCENARIO] failed in step: $STEP (rc=$rc)"
        echo "[$SCENARIO] --- controllers ---"
        for c in /sys/class/nvme/nvme*; do
            [ -e "$c/state" ] || continue
            echo "  ${c##*/}: state=$(cat "$c/state") transport=$(cat "$c/transport" 2>/dev/null) subsysnqn=$(cat "$c/subsysnqn" 2>/dev/null)"
        done
        echo "[$SCENARIO] --- dmesg (nvme, I/O, ext4; last 40) ---"
        dmesg | grep -iE 'nvme|blk_update|I/O error|ext4|null_blk' | tail -n 40 || true
    fi
    return "$rc"
}
trap _on_exit EXIT

# Data helpers ----------------------------------------------------------------------------

sha256() { sha256sum "$@" | cut -d' ' -f1; }

# dev_read DEV OFFSET_MIB COUNT_MIB: the bytes of a device range on stdout (O_DIRECT, so
# they come from the target, not from the guest's page cache).
dev_read() {
    dd if="$1" bs=1M skip="$2" count="$3" iflag=direct status=none
}
# dev_sha256 DEV OFFSET_MIB COUNT_MIB: SHA-256 of a device range; fails on a read error or
# a short read (a hash of nothing must never pass for data).
dev_sha256() {
    dev_read "$1" "$2" "$3" >/tmp/.readback || fail "reading ${3} MiB at ${2} MiB of $1 failed"
    [ "$(wc -c </tmp/.readback)" -eq $(($3 * 1048576)) ] || fail "short read of ${3} MiB at ${2} MiB of $1"
    sha256 /tmp/.readback
    rm -f /tmp/.readback
}
# dev_write FILE DEV OFFSET_MIB: write FILE (a multiple of 1 MiB) at OFFSET_MIB, O_DIRECT.
dev_write() {
    dd if="$1" of="$2" bs=1M seek="$3" oflag=direct conv=notrunc status=none
}
# random_file FILE MIB: MIB MiB of random data.
random_file() {
    dd if=/dev/urandom of="$1" bs=1M count="$2" status=none
}
# expect_zero DEV OFFSET_MIB COUNT_MIB: the range reads back as zeroes.
expect_zero() {
    dev_read "$1" "$2" "$3" >/tmp/.readback || fail "reading ${3} MiB at ${2} MiB of $1 failed"
    [ "$(wc -c </tmp/.readback)" -eq $(($3 * 1048576)) ] || fail "short read of ${3} MiB at ${2} MiB of $1"
    cmp -n $(($3 * 1048576)) /tmp/.readback /dev/zero ||
        fail "$1: ${3} MiB at ${2} MiB do not read back as zeroes"
    rm -f /tmp/.readback
}

# fio_verify DEV NAME BS OFFSET SIZE [IODEPTH [FIO-OPTION...]]: random writes with crc32c in
# every block over SIZE at OFFSET, then read everything back and verify (libaio, O_DIRECT,
# iodepth 8 unless given); fails unless both phases ran without an error. Any lost, misplaced
# or torn write fails.
fio_verify() {
    fv_dev=$1 fv_name=$2 fv_bs=$3 fv_offset=$4 fv_size=$5 fv_depth=${6:-8}
    shift 5
    [ $# -gt 0 ] && shift
    step "fio $fv_name: randwrite bs=$fv_bs iodepth=$fv_depth size=$fv_size offset=$fv_offset $* on $fv_dev, verify crc32c"
    if ! run fio --name="$fv_name" --filename="$fv_dev" --ioengine=libaio --direct=1 --rw=randwrite --bs="$fv_bs" \
        --iodepth="$fv_depth" --size="$fv_size" --offset="$fv_offset" --verify=crc32c --do_verify=1 --verify_fatal=1 \
        --verify_state_save=0 --randrepeat=0 --group_reporting "$@" >"/tmp/$fv_name.txt" 2>&1; then
        cat "/tmp/$fv_name.txt"
        fail "fio $fv_name failed"
    fi
    grep -q 'err= 0' "/tmp/$fv_name.txt" && grep -Eq '^ +write: IOPS=' "/tmp/$fv_name.txt" && grep -Eq '^ +read: IOPS=' "/tmp/$fv_name.txt" ||
        { cat "/tmp/$fv_name.txt"; fail "fio $fv_name: errors, or the write or verify phase did not run"; }
    log "fio $fv_name: 0 errors, verify passed ($(grep -Eo '^ +write: IOPS=[^,]*' "/tmp/$fv_name.txt" | tr -s ' '))"
}

# ext4_roundtrip DEV [FILL]: mkfs.ext4, files of random data (EXT4_RANDOM_MIB: their sizes,
# default 1-16 MiB; and 64 small ones of odd sizes in a subdirectory), then FILL (a function,
# given the mount point, that adds the scenario's own files), sync, unmount, drop caches,
# mount, every SHA-256 matches, unmount, and `e2fsck -fn` finds nothing. Leaves the sums in
# /tmp/ext4.sums (for checks of the same files later) and DEV unmounted.
ext4_roundtrip() {
    step "ext4 on $1: mkfs, files, remount, compare, e2fsck -fn"
    run mkfs_ext4 -F -q "$1" || fail "mkfs.ext4 $1 failed"
    mkdir -p /mnt/ext4
    run mount -t ext4 "$1" /mnt/ext4 || fail "mount $1 failed"
    mkdir -p /mnt/ext4/dir/sub
    for n in ${EXT4_RANDOM_MIB:-1 2 4 8 16}; do random_file "/mnt/ext4/file-${n}M" "$n"; done
    i=0
    while [ $i -lt 64 ]; do
        dd if=/dev/urandom of="/mnt/ext4/dir/sub/small-$i" bs=1 count=$((i * 97 + 1)) status=none
        i=$((i + 1))
    done
    if [ -n "${2:-}" ]; then "$2" /mnt/ext4 || fail "writing the files of $2 failed"; fi
    (cd /mnt/ext4 && find . -type f | sort | xargs sha256sum) >/tmp/ext4.sums
    run sync
    run umount /mnt/ext4 || fail "umount failed"
    echo 3 >/proc/sys/vm/drop_caches
    ext4_compare "$1"
    run e2fsck -fn "$1" || fail "e2fsck -fn $1 reported problems"
    log "ext4: $(wc -l </tmp/ext4.sums) files intact, e2fsck clean"
}

# ext4_compare DEV: mount, every file of /tmp/ext4.sums has its SHA-256, unmount.
ext4_compare() {
    run mount -t ext4 "$1" /mnt/ext4 || fail "mount $1 failed"
    (cd /mnt/ext4 && sha256sum -c -s /tmp/ext4.sums) || {
        (cd /mnt/ext4 && sha256sum -c /tmp/ext4.sums | grep -v ': OK$') || true
        fail "file contents on $1 changed"
    }
    run umount /mnt/ext4 || fail "umount $1 failed"
}

# NVMe host helpers -----------------------------------------------------------------------

# find_ctrl: name (nvmeN) of the live-or-connecting TCP controller for $NQN, or nothing.
find_ctrl() {
    for c in /sys/class/nvme/nvme*; do
        [ -e "$c/subsysnqn" ] || continue
        [ "$(cat "$c/subsysnqn")" = "$NQN" ] || continue
        [ "$(cat "$c/transport" 2>/dev/null)" = tcp ] || continue
        echo "${c##*/}"
        return 0
    done
    return 1
}

# find_ns: block device name (nvmeXnY) of namespace $NSID of subsystem $NQN, or nothing.
# With native multipath (Debian's default) the disk belongs to the nvme-subsystem; without
# it, to the controller.
find_ns() {
    for d in /sys/class/nvme-subsystem/nvme-subsys*/nvme*n* /sys/class/nvme/"${CTRL:-none}"/nvme*n*; do
        [ -e "$d/nsid" ] || continue
        case ${d##*/} in *c*n*) continue ;; esac # hidden per-path disks (nvmeXcYnZ)
        [ "$(cat "$d/nsid")" = "$NSID" ] || continue
        sub=${d%/*}
        if [ -e "$sub/subsysnqn" ] && [ "$(cat "$sub/subsysnqn")" != "$NQN" ]; then continue; fi
        echo "${d##*/}"
        return 0
    done
    return 1
}

# wait_ns PRESENT|ABSENT SECONDS: namespace $NSID of $NQN appears / disappears on the host.
wait_ns() {
    i=0
    while :; do
        if ns=$(find_ns) && [ -b "/dev/$ns" ]; then [ "$1" = PRESENT ] && return 0; else [ "$1" = ABSENT ] && return 0; fi
        [ $i -lt $(($2 * 10)) ] || return 1
        sleep 0.1
        i=$((i + 1))
    done
}

# ctrl_state: the state of $CTRL (live, connecting, resetting, deleting...).
ctrl_state() { cat "/sys/class/nvme/$CTRL/state" 2>/dev/null || echo gone; }

# wait_state STATE SECONDS: wait until $CTRL is in STATE.
wait_state() {
    i=0
    while [ "$(ctrl_state)" != "$1" ]; do
        [ "$i" -lt $(($2 * 10)) ] || return 1
        sleep 0.1
        i=$((i + 1))
    done
}

# connect [nvme connect options...]: connect to $NQN on the target and set
#   CTRL (nvmeN), CTRL_DEV (/dev/nvmeN), NS (/dev/nvmeXnY).
# shellcheck disable=SC2034 # CTRL_DEV is for the scenarios
connect() {
    run nvme connect -t tcp -a "$TARGET_ADDR" -s "$TARGET_PORT" -n "$NQN" "$@" ||
        fail "nvme connect to $NQN at $TARGET_ADDR:$TARGET_PORT failed"
    CTRL=$(find_ctrl) || fail "connected, but no controller for $NQN in /sys/class/nvme"
    CTRL_DEV=/dev/$CTRL
    wait_state live 10 || fail "$CTRL is $(ctrl_state), not live"
    # The namespace scan runs asynchronously after the connect.
    i=0
    until ns=$(find_ns) && [ -b "/dev/$ns" ]; do
        [ $i -lt 100 ] || fail "no block device for namespace $NSID of $NQN after 10 s"
        sleep 0.1
        i=$((i + 1))
    done
    NS=/dev/$ns
    log "connected: controller $CTRL, namespace $NSID = $NS ($(blockdev --getsize64 "$NS") bytes, $(blockdev --getss "$NS")-byte sectors)"
}

# disconnect: disconnect every controller of $NQN.
disconnect() {
    run nvme disconnect -n "$NQN" || fail "nvme disconnect -n $NQN failed"
    if find_ctrl >/dev/null; then fail "a controller for $NQN is still there after disconnect"; fi
}

# Host actions ----------------------------------------------------------------------------

# host_action WORD: ask the host to do something while the guest waits (kill and restart
# the daemon, measure its backing file...). The marker line goes to the console log; the
# request travels over TCP to QEMU's guestfwd, which runs the runner's dispatcher
# (host-action.sh) and returns its output, ending in EDGEBLOCK-HOST-ACTION-RESULT rc=N.
# The host's answer stays in HOST_OUT (a hook's verdict for the scenario to read).
host_action() {
    echo "EDGEBLOCK-HOST-ACTION $1"
    if [ "$REFERENCE" = 1 ]; then
        reference_host_action "$1"
        return
    fi
    out=$(echo "$1" | nc -w 10 "$ACTION_ADDR" "$ACTION_PORT") || true
    HOST_OUT=$out
    printf '%s\n' "$out" | sed 's/^/  host| /'
    action_rc=$(printf '%s\n' "$out" | sed -n 's/^EDGEBLOCK-HOST-ACTION-RESULT rc=\([0-9]*\).*/\1/p' | tail -n 1)
    [ -n "$action_rc" ] || fail "no answer from the host for action '$1' (guest not started by run-scenario.sh?)"
    [ "$action_rc" = 0 ] || fail "host action '$1' failed (rc=$action_rc)"
}

# Reference mode: the Linux in-kernel target inside this guest ------------------------------

NVMET=/sys/kernel/config/nvmet

# reference_target_start: export a block device as namespace $NSID of $NQN over TCP on
# $TARGET_ADDR:$TARGET_PORT with the in-kernel target. The device is REFERENCE_DEVICE if
# set, else a memory-backed null_blk with discard (REFERENCE_SIZE_GB, default 1). Any host
# may connect unless ALLOW_HOSTS names the ones that may.
reference_target_start() {
    dev=${REFERENCE_DEVICE:-/dev/nullb0}
    log "reference mode: starting the in-kernel target (nvmet-tcp, $dev) on $TARGET_ADDR:$TARGET_PORT"
    if [ -z "${REFERENCE_DEVICE:-}" ]; then
        modprobe null_blk nr_devices=1 gb="${REFERENCE_SIZE_GB:-1}" bs="${REFERENCE_BLOCK_SIZE:-512}" \
            memory_backed=1 discard=1 || fail "modprobe null_blk"
    fi
    modprobe nvmet_tcp || fail "modprobe nvmet_tcp"
    i=0
    while [ ! -b "$dev" ]; do
        [ $i -lt 50 ] || fail "no $dev"
        sleep 0.1
        i=$((i + 1))
    done
    sub=$NVMET/subsystems/$NQN
    mkdir "$sub"
    if [ -n "$ALLOW_HOSTS" ]; then
        echo 0 >"$sub/attr_allow_any_host"
        for h in $ALLOW_HOSTS; do
            mkdir -p "$NVMET/hosts/$h"
            ln -s "$NVMET/hosts/$h" "$sub/allowed_hosts/$h"
        done
    else
        echo 1 >"$sub/attr_allow_any_host"
    fi
    # Fixed identifiers when given (a target must keep them across restarts, or the host
    # drops the namespace on reconnect); nvmet makes up random ones otherwise.
    if [ -n "${REFERENCE_SERIAL:-}" ]; then echo "$REFERENCE_SERIAL" >"$sub/attr_serial"; fi
    mkdir "$sub/namespaces/$NSID"
    printf '%s' "$dev" >"$sub/namespaces/$NSID/device_path"
    if [ -n "${REFERENCE_NS_UUID:-}" ]; then
        echo "$REFERENCE_NS_UUID" >"$sub/namespaces/$NSID/device_uuid"
        echo "$REFERENCE_NS_UUID" >"$sub/namespaces/$NSID/device_nguid"
    fi
    echo 1 >"$sub/namespaces/$NSID/enable"
    port=$NVMET/ports/1
    mkdir "$port"
    echo tcp >"$port/addr_trtype"
    echo ipv4 >"$port/addr_adrfam"
    echo "$TARGET_ADDR" >"$port/addr_traddr"
    echo "$TARGET_PORT" >"$port/addr_trsvcid"
    ln -s "$sub" "$port/subsystems/$NQN"
}

# reference_host_action WORD: what a host action becomes without a daemon on the host.
reference_host_action() {
    case $1 in
        kill-restart)
            # No daemon to kill: take the target's port away (nvmet drops the
            # controllers and closes the listener), then bring it back. The host sees
            # the same thing as a daemon restart: connection lost, reconnects refused,
            # then a reconnect succeeds, with the data of the memory-backed null_blk kept.
            log "reference mode: simulating a target restart (port down 3 s, then up); no daemon is killed"
            rm "$NVMET/ports/1/subsystems/$NQN"
            sleep 3
            ln -s "$NVMET/subsystems/$NQN" "$NVMET/ports/1/subsystems/$NQN"
            ;;
        *)
            log "reference mode: host action '$1' SKIPPED (it checks the daemon's files on the host)"
            ;;
    esac
}

# scenario_begin: common start of every scenario.
scenario_begin() {
    log "target $TARGET_ADDR:$TARGET_PORT nqn $NQN nsid $NSID; host $(cat /etc/nvme/hostnqn)$([ "$REFERENCE" = 1 ] && echo '; REFERENCE MODE (in-guest Linux nvmet)')"
    if [ "$REFERENCE" = 1 ]; then reference_target_start; fi
}

# scenario_end: common end of every scenario.
scenario_end() {
    STEP="done"
    log "PASS"
}

# ---- our own daemon inside the guest (kernel-engine, host-attach): EB, DATA set by the scenario ----

# eb ARGS...: the CLI, shown and timed.
eb() {
    t0=$(uptime_s)
    echo "+ edgeblock $*" >&2
    rc=0
    "$EB" "$@" || rc=$?
    echo "  (exit $rc, $(awk -v a="$t0" -v b="$(uptime_s)" 'BEGIN { printf "%.1f", b - a }') s)" >&2
    return "$rc"
}

# daemon_start [SERVE OPTIONS...]: `$EB serve --data-dir $DATA ...` in the background; ready when its API socket appears.
daemon_start() {
    "$EB" serve --data-dir "$DATA" "$@" >>/tmp/daemon.log 2>&1 &
    DAEMON_PID=$!
    i=0
    # The API socket appears once the desired state is applied (Kestrel starts after the daemon's hosted service).
    until [ -S "$DATA/api.sock" ]; do
        if ! kill -0 "$DAEMON_PID" 2>/dev/null; then
            cat /tmp/daemon.log
            fail "the daemon exited during start"
        fi
        [ $i -lt 180 ] || { cat /tmp/daemon.log; fail "the daemon's API did not answer within 180 s"; }
        sleep 1
        i=$((i + 1))
    done
    log "daemon pid $DAEMON_PID ready after ${i}s"
}

# daemon_stop: SIGTERM (graceful stop), then wait for it.
daemon_stop() {
    kill -TERM "$DAEMON_PID"
    i=0
    while kill -0 "$DAEMON_PID" 2>/dev/null; do
        [ $i -lt 300 ] || fail "the daemon did not stop within 30 s of SIGTERM"
        sleep 0.1
        i=$((i + 1))
    done
    wait "$DAEMON_PID" || true
    DAEMON_PID=
}

# ublk_daemon_on_failure: EXIT trap of the scenarios whose daemon runs in the guest (host-attach, host-fs): on
# failure the daemon's log and the kernel's ublk lines, then the usual report.
ublk_daemon_on_failure() {
    rc=$?
    if [ "$rc" -ne 0 ]; then
        echo "[$SCENARIO] --- daemon log (last 40) ---"
        tail -n 40 /tmp/daemon.log 2>/dev/null || true
        dmesg | grep -iE 'ublk|ext4' | tail -n 20 || true
    fi
    (exit "$rc")
    _on_exit
}

# pool_create_waiting NAME DRIVE:SIZE: `pool create`; under TCG the daemon's first pool create (RocksDB, JIT) can
# outlast the CLI's 60 s API timeout: then wait for the pool to appear.
pool_create_waiting() {
    if ! eb pool create "$1" "$2"; then
        log "pool create did not answer in time; waiting for the pool"
        i=0
        until eb pool list --json 2>/dev/null | grep -q "\"name\": *\"$1\""; do
            [ $i -lt 10 ] || fail "pool $1 was not created"
            sleep 5
            i=$((i + 1))
        done
    fi
}
