#!/usr/bin/env bash
# run.sh — `edgeblock vm run` end to end: VMs whose disks all come from a real daemon.
#
# Starts `./edgeblock serve` on a fresh data dir, creates a pool on a sparse file and four
# volumes with the CLI, then, with the interop guest (kernel + initramfs + fio layer + a
# scenario archive running guest.sh):
#  1. two `vm run --accel tcg` at once (vhost-user) on vm1 and vm2: fio --verify=crc32c (4k, 64k),
#     ext4 + e2fsck -fn, the whole disk written, then blkdiscard of all of vm1 / the second half
#     of vm2. Afterwards (past the pool's 2 s commit) `volume show --json` reports ~0 allocated
#     for vm1 and half the disk for vm2, `pool check` is clean, and the exports `vm run`
#     created are gone (GET /v1/vhost is empty). While they run, the daemon is restarted (SIGINT,
#     same command): QEMU reconnects (chardev reconnect=1), a paced fio verify in vm1 goes on
#     across the restart and passes;
#  2. one `vm run --transport nvme-tcp` on vm3: the guest's /init connects from the kernel
#     arguments, fio verify passes, the VM's subsystem is gone afterwards;
#  3. Ctrl-C: a VM whose guest sleeps gets SIGINT on `edgeblock vm run` (--stop-timeout 3; the
#     guest has no ACPI handling, so QMP quit follows): it exits within 18 s, exports removed.
# The daemon must log no errors and stop cleanly on SIGINT.
#
# Prints `vm-run: PASS|FAIL (<seconds>s)` last; exit status 0 on PASS.
# Usage: run.sh [--keep] [--timeout SEC]
#   --keep     keep the work directory (data dir, initrds)
#   --timeout  seconds each `vm run` may take before it gets SIGTERM (default 240; run-all passes
#              its remaining budget). An idle 2-CPU machine runs it all in about 3.5 min.
# Environment: EDGEBLOCK_CACHE, EDGEBLOCK_INTEROP_LOGS, EDGEBLOCK_QEMU.
set -euo pipefail

INTEROP_PROG=vm-run
# shellcheck source-path=SCRIPTDIR source=../lib/host-common.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/host-common.sh"
HERE=$INTEROP_DIR/vm-run

KEEP=0 TIMEOUT=240
while [[ $# -gt 0 ]]; do
    case $1 in
        --keep) KEEP=1 ;;
        --timeout) TIMEOUT=${2:?--timeout needs seconds}; shift ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument $1 (see --help)" ;;
    esac
    shift
done
START=$SECONDS
QEMU=${EDGEBLOCK_QEMU:-qemu-system-x86_64}
ensure_commands "$QEMU:qemu-system-x86" cpio:cpio timeout:coreutils curl:curl jq:jq dotnet:dotnet-sdk-10.0
"$INTEROP_DIR/build-guest.sh"
KERNEL=$INTEROP_GUEST_DIR/vmlinux
[[ -f $KERNEL ]] || KERNEL=$INTEROP_GUEST_DIR/vmlinuz
[[ -f $INTEROP_GUEST_DIR/fio.cpio ]] || die "build-guest.sh made no fio layer"
mkdir -p "$INTEROP_LOG_DIR"
LOGS=$INTEROP_LOG_DIR/vm-run
rm -rf "$LOGS" && mkdir -p "$LOGS"

# A short directory: socket paths are limited to 107 bytes.
WORK=$(mktemp -d /tmp/ebvm.XXXXXX)
DATA=$WORK/data
export EDGEBLOCK_DAEMON_ARGV=$WORK/daemon.argv EDGEBLOCK_DAEMON_PIDFILE=$WORK/daemon.pid \
    EDGEBLOCK_DAEMON_LOG=$LOGS/daemon.log EDGEBLOCK_DAEMON_PORT EDGEBLOCK_DAEMON_CWD=$INTEROP_REPO_ROOT
EDGEBLOCK_DAEMON_PORT=$(free_port)
cleanup() {
    if pid_alive "$(daemon_pid)"; then daemon_stop || true; fi
    if [[ $KEEP -eq 1 ]]; then log "work directory kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

FAILED=0
check() { log "FAIL: $*"; FAILED=1; }
verdict() {
    echo "vm-run: $1 ($((SECONDS - START))s)"
    [[ $1 == PASS ]] && exit 0
    exit 1
}

eb() { (cd "$INTEROP_REPO_ROOT" && ./edgeblock --api-socket "$DATA/api.sock" "$@"); }
api_get() { curl -sf --unix-socket "$DATA/api.sock" "http://edgeblock$1"; }
allocated() { eb volume show "$1" --json | jq '.allocated_bytes'; }

# The daemon, a pool and the volumes ------------------------------------------------------------
log "building the CLI (if stale)"
(cd "$INTEROP_REPO_ROOT" && ./edgeblock --help >/dev/null) || verdict FAIL
mkdir -p "$DATA"
# The pool's drive is in $WORK, outside the data directory: a storage root (the storage policy).
printf '%s\0' ./edgeblock serve --data-dir "$DATA" --storage-root "$WORK" --listen "127.0.0.1:$EDGEBLOCK_DAEMON_PORT" --default-size 64M >"$EDGEBLOCK_DAEMON_ARGV"
daemon_start || verdict FAIL
{
    eb pool create tank "$WORK/drive0.img:1G"
    for v in vm1 vm2 vm3; do eb volume create "tank/$v" --size 128M; done
    eb volume create tank/vm4 --size 64M
} >"$LOGS/setup.log" 2>&1 || { cat "$LOGS/setup.log" >&2; verdict FAIL; }

# initrd NAME ENV...: the guest's initramfs with guest.sh and these scenario variables.
initrd() {
    local name=$1 stage=$WORK/stage-$1
    shift
    mkdir -p "$stage"
    printf '%s\n' "SCENARIO=vm-run-$name" "$@" >"$stage/scenario.env"
    install -m 0755 "$HERE/guest.sh" "$stage/scenario.sh"
    install -m 0644 "$INTEROP_DIR/guest/interop-lib.sh" "$stage/interop-lib.sh"
    (cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | cpio --create --format=newc --owner=0:0 --quiet) >"$WORK/$name.cpio"
    cat "$INTEROP_GUEST_DIR/base.cpio" "$INTEROP_GUEST_DIR/fio.cpio" "$WORK/$name.cpio" >"$WORK/$name.initrd"
}

# vm NAME VOLUME [vm run options]: runs `edgeblock vm run` in the background (pid in VM_PID);
# job control gives it default signal dispositions (bash starts background jobs with SIGINT
# ignored, and .NET keeps that). SIGTERM from timeout is its clean stop.
vm() {
    local name=$1 volume=$2
    shift 2
    set -m
    (cd "$INTEROP_REPO_ROOT" && exec timeout -k 20 -s TERM "$TIMEOUT" ./edgeblock --api-socket "$DATA/api.sock" vm run --accel tcg \
        --kernel "$KERNEL" --initrd "$WORK/$name.initrd" --disk "$volume" --name "$name" --mem 512M --cpus 2 --append quiet \
        --console "$LOGS/$name.console.log" --qemu "$QEMU" "$@") >"$LOGS/$name.out" 2>&1 &
    VM_PID=$!
    set +m
}

# vm_result NAME RC: the CLI's exit code and the guest's scenario result.
vm_result() {
    local guest_rc
    guest_rc=$(grep -ao 'EDGEBLOCK-SCENARIO-RESULT rc=[0-9]*' "$LOGS/$1.console.log" 2>/dev/null | tail -n 1 | sed 's/.*rc=//' || true)
    log "$1: vm run exit $2, guest scenario rc ${guest_rc:-none}"
    if [[ $2 -ne 0 || $guest_rc != 0 ]]; then
        check "$1 failed"
        sed 's/^/    | /' "$LOGS/$1.out" >&2
        grep -aE '\] (FAIL|failed in step|==>)|^\+ |init:' "$LOGS/$1.console.log" | tail -n 12 | sed 's/^/    | /' >&2 || true
    fi
    grep -aE 'fio [a-z0-9-]+: 0 errors|ext4:|discard \(' "$LOGS/$1.console.log" | sed 's/^/    | /' >&2 || true
}

exports_gone() {
    local left
    left=$(api_get /v1/vhost | jq -r '.[].socket') || { check "GET /v1/vhost failed"; return; }
    [[ -z $left ]] || check "exports left behind after $1: $left"
}

# 1. Two vhost-user VMs at once -------------------------------------------------------------------
initrd vm1 MODE=full DISCARD=all RESTART=1
initrd vm2 MODE=full DISCARD=half
log "booting vm1 and vm2 (vhost-user, tcg) at once"
t=$SECONDS
vm vm1 tank/vm1
pid1=$VM_PID
vm vm2 tank/vm2
pid2=$VM_PID

# The daemon restarts under both VMs when vm1's guest says so (it then runs a paced fio verify):
# QEMU reconnects to the new daemon, which serves the exports again from its config.
for _ in $(seq 1 480); do
    grep -aq EDGEBLOCK-VM-RESTART-WINDOW "$LOGS/vm1.console.log" 2>/dev/null && break
    pid_alive "$pid1" || break
    sleep 0.5
done
if grep -aq EDGEBLOCK-VM-RESTART-WINDOW "$LOGS/vm1.console.log" 2>/dev/null; then
    r=$SECONDS
    daemon_stop || check "the daemon did not stop cleanly on SIGINT for the restart (rc $?)"
    daemon_start || verdict FAIL
    log "daemon restarted in $((SECONDS - r))s under vm1 and vm2"
    ok=0
    for _ in $(seq 1 120); do
        if api_get /v1/vhost | jq -e 'any(.[]; .backend == "volume:tank/vm1" and .state == "connected" and .requests > 0)' >/dev/null; then
            ok=1
            break
        fi
        sleep 0.5
    done
    ((ok)) || check "vm1's QEMU did not reconnect to the restarted daemon and send I/O within 60 s"
    ((ok)) && log "vm1 reconnected to the restarted daemon: $(api_get /v1/vhost | jq -c '[.[] | {backend, state, connections, requests}]')"
else
    check "vm1's guest never reached the daemon restart"
fi
rc1=0 rc2=0
wait "$pid1" || rc1=$?
wait "$pid2" || rc2=$?
log "both VMs done in $((SECONDS - t))s"
vm_result vm1 $rc1
vm_result vm2 $rc2
sleep 3 # freed extents return at the pool's next commit (2 s)
a1=$(allocated tank/vm1) a2=$(allocated tank/vm2)
log "allocated after discard: vm1 $a1 bytes (whole disk discarded), vm2 $a2 bytes (second half discarded)"
((a1 <= 1 << 20)) || check "vm1 still has $a1 bytes allocated after a whole-disk discard"
((a2 >= 63 << 20 && a2 <= 65 << 20)) || check "vm2 has $a2 bytes allocated, expected about 64 MiB (half of 128 MiB)"
eb pool check tank >"$LOGS/pool-check.log" 2>&1 || { check "pool check tank: $(cat "$LOGS/pool-check.log")"; }
exports_gone "vm1 and vm2"

# 2. NVMe/TCP --------------------------------------------------------------------------------------
initrd vm3 MODE=short
log "booting vm3 (nvme-tcp)"
vm vm3 tank/vm3 --transport nvme-tcp
rc3=0
wait "$VM_PID" || rc3=$?
vm_result vm3 $rc3
grep -aq 'init: nvme-tcp: nqn.2014-08.io.edgeblock:vm:vm3' "$LOGS/vm3.console.log" || check "the guest's /init did not connect the NVMe/TCP disk"
if api_get /v1/subsystems | jq -e '.[] | select(.nqn | endswith(":vm:vm3"))' >/dev/null; then check "subsystem of vm3 left behind"; fi

# 3. Ctrl-C ----------------------------------------------------------------------------------------
initrd vm4 MODE=sleep
log "booting vm4 (its guest sleeps) to interrupt it"
vm vm4 tank/vm4 --stop-timeout 3
pid4=$VM_PID
for _ in $(seq 1 240); do
    grep -aq EDGEBLOCK-VM-SLEEPING "$LOGS/vm4.console.log" 2>/dev/null && break
    pid_alive "$pid4" || break
    sleep 0.5
done
if grep -aq EDGEBLOCK-VM-SLEEPING "$LOGS/vm4.console.log" 2>/dev/null; then
    # timeout(1) is vm4's pid; SIGINT goes to `edgeblock vm run` itself, its child.
    cli=$(pgrep -P "$pid4" | head -n 1)
    t=$SECONDS
    kill -INT "$cli"
    rc4=0
    wait "$pid4" || rc4=$?
    log "vm4: vm run exited $rc4, $((SECONDS - t))s after SIGINT"
    sed 's/^/    | /' "$LOGS/vm4.out" >&2
    ((SECONDS - t <= 18)) || check "vm run took $((SECONDS - t))s to stop (stop timeout 3 s + 15)"
    [[ $rc4 -eq 0 ]] || check "vm run exited $rc4 after SIGINT, expected 0 (QEMU quit)"
    grep -q 'system_powerdown' "$LOGS/vm4.out" || check "vm run did not ask the guest to power off first"
    exports_gone vm4
else
    check "vm4's guest never reached its sleep"
    sed 's/^/    | /' "$LOGS/vm4.out" >&2
fi

# The daemon ------------------------------------------------------------------------------------
daemon_stop || check "the daemon did not stop cleanly on SIGINT (rc $?)"
if grep -qE '^(fail|crit):|\b(fail|crit): ' "$EDGEBLOCK_DAEMON_LOG"; then
    check "the daemon logged errors:"
    grep -E '^(fail|crit):|\b(fail|crit): ' "$EDGEBLOCK_DAEMON_LOG" -A2 | head -n 20 | sed 's/^/    | /' >&2
fi
log "logs: $LOGS"
if [[ $FAILED -eq 0 ]]; then verdict PASS; else verdict FAIL; fi
