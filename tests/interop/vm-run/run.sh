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
#  4. with the Ceph test cluster of EDGEBLOCK_CEPH_DIR (./test.sh starts one; skipped, saying so,
#     without): a vhost-user VM on a volume of pool site (--ceph, an RBD image): fio verify 4k,
#     ext4 + e2fsck -fn; the volume is deleted afterwards
# The daemon must log no errors and stop cleanly on SIGINT.
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
# shellcheck source-path=SCRIPTDIR source=../lib/vm-common.sh
. "$INTEROP_DIR/lib/vm-common.sh"
HERE=$INTEROP_DIR/vm-run

vm_scenario_begin "$@"

allocated() { eb volume show "$1" --json | jq '.allocated_bytes'; }

# The daemon, a pool and the volumes ------------------------------------------------------------
log "building the CLI (if stale)"
(cd "$INTEROP_REPO_ROOT" && ./edgeblock --help >/dev/null) || verdict FAIL
mkdir -p "$DATA"
# The pool's drive is in $WORK, outside the data directory: a storage root (the storage policy).
CEPH=
if [[ -z ${EDGEBLOCK_SKIP_CEPH:-} && -f ${EDGEBLOCK_CEPH_DIR:-/nonexistent}/ceph.conf ]]; then CEPH=$EDGEBLOCK_CEPH_DIR; fi
# The Ceph cluster's conf and keyring: a storage root too, as an operator's /etc/ceph would be.
printf '%s\0' ./edgeblock serve --data-dir "$DATA" --storage-root "$WORK" ${CEPH:+--storage-root "$CEPH"} \
    --listen "127.0.0.1:$EDGEBLOCK_DAEMON_PORT" --default-size 64M >"$EDGEBLOCK_DAEMON_ARGV"
daemon_start || verdict FAIL
{
    eb pool create tank "$WORK/drive0.img:1G"
    for v in vm1 vm2 vm3; do eb volume create "tank/$v" --size 128M; done
    eb volume create tank/vm4 --size 64M
} >"$LOGS/setup.log" 2>&1 || { cat "$LOGS/setup.log" >&2; verdict FAIL; }

exports_gone() {
    local left
    left=$(api_get /v1/vhost | jq -r '.[].socket') || { check "GET /v1/vhost failed"; return; }
    [[ -z $left ]] || check "exports left behind after $1: $left"
}

# 1. Two vhost-user VMs at once -------------------------------------------------------------------
SUMMARY='fio [a-z0-9-]+: 0 errors|ext4:|discard \('
vm_initrd vm1 "$HERE/guest.sh" MODE=full DISCARD=all RESTART=1
vm_initrd vm2 "$HERE/guest.sh" MODE=full DISCARD=half
log "booting vm1 and vm2 (vhost-user, tcg) at once"
t=$SECONDS
vm vm1 tank/vm1
pid1=$VM_PID
vm vm2 tank/vm2
pid2=$VM_PID

# The daemon restarts under both VMs when vm1's guest says so (it then runs a paced fio verify):
# QEMU reconnects to the new daemon, which serves the exports again from its config.
if vm_wait_console vm1 EDGEBLOCK-VM-RESTART-WINDOW "$pid1"; then
    r=$SECONDS
    daemon_stop || check "the daemon did not stop cleanly on SIGINT for the restart (rc $?)"
    daemon_start || verdict FAIL
    log "daemon restarted in $((SECONDS - r))s under vm1 and vm2"
    ok=0
    vm_reconnected volume:tank/vm1 && ok=1
    ((ok)) || check "vm1's QEMU did not reconnect to the restarted daemon and send I/O within 60 s"
    ((ok)) && log "vm1 reconnected to the restarted daemon: $(api_get /v1/vhost | jq -c '[.[] | {backend, state, connections, requests}]')"
else
    check "vm1's guest never reached the daemon restart"
fi
rc1=0 rc2=0
wait "$pid1" || rc1=$?
wait "$pid2" || rc2=$?
log "both VMs done in $((SECONDS - t))s"
vm_result vm1 $rc1 "$SUMMARY"
vm_result vm2 $rc2 "$SUMMARY"
sleep 3 # freed extents return at the pool's next commit (2 s)
a1=$(allocated tank/vm1) a2=$(allocated tank/vm2)
log "allocated after discard: vm1 $a1 bytes (whole disk discarded), vm2 $a2 bytes (second half discarded)"
((a1 <= 1 << 20)) || check "vm1 still has $a1 bytes allocated after a whole-disk discard"
((a2 >= 63 << 20 && a2 <= 65 << 20)) || check "vm2 has $a2 bytes allocated, expected about 64 MiB (half of 128 MiB)"
eb pool check tank >"$LOGS/pool-check.log" 2>&1 || { check "pool check tank: $(cat "$LOGS/pool-check.log")"; }
exports_gone "vm1 and vm2"

# 2. NVMe/TCP --------------------------------------------------------------------------------------
vm_initrd vm3 "$HERE/guest.sh" MODE=short
log "booting vm3 (nvme-tcp)"
vm vm3 tank/vm3 --transport nvme-tcp
rc3=0
wait "$VM_PID" || rc3=$?
vm_result vm3 $rc3 "$SUMMARY"
grep -aq 'init: nvme-tcp: nqn.2014-08.io.edgeblock:vm:vm3' "$LOGS/vm3.console.log" || check "the guest's /init did not connect the NVMe/TCP disk"
if api_get /v1/subsystems | jq -e '.[] | select(.nqn | endswith(":vm:vm3"))' >/dev/null; then check "subsystem of vm3 left behind"; fi

# 3. Ctrl-C ----------------------------------------------------------------------------------------
vm_initrd vm4 "$HERE/guest.sh" MODE=sleep
log "booting vm4 (its guest sleeps) to interrupt it"
vm vm4 tank/vm4 --stop-timeout 3
pid4=$VM_PID
if vm_wait_console vm4 EDGEBLOCK-VM-SLEEPING "$pid4" 240; then
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

# 4. An RBD volume -------------------------------------------------------------------------------
if [[ -n $CEPH ]]; then
    # One image per run in the shared cluster, named after the work directory.
    rbd_volume=vmr-$(basename "$WORK" | tr -c 'a-zA-Z0-9\n' '-')
    {
        eb pool create site --ceph "$CEPH/ceph.conf" --ceph-user edgeblock --keyring "$CEPH/edgeblock.keyring"
        eb volume create "site/$rbd_volume" --size 128M
    } >>"$LOGS/setup.log" 2>&1 || { tail -n 5 "$LOGS/setup.log" >&2; check "the Ceph pool or its volume could not be made"; }
    vm_initrd vm5 "$HERE/guest.sh" MODE=fs
    log "booting vm5 (vhost-user) on RBD volume site/$rbd_volume"
    vm vm5 "site/$rbd_volume"
    rc5=0
    wait "$VM_PID" || rc5=$?
    vm_result vm5 $rc5 "$SUMMARY"
    exports_gone vm5
    eb volume delete "site/$rbd_volume" >>"$LOGS/setup.log" 2>&1 || check "volume delete site/$rbd_volume failed"
else
    log "vm5 (an RBD volume): SKIPPED: no Ceph test cluster (EDGEBLOCK_CEPH_DIR; ./test.sh starts one)"
fi

# The daemon ------------------------------------------------------------------------------------
daemon_stop || check "the daemon did not stop cleanly on SIGINT (rc $?)"
daemon_errors
log "logs: $LOGS"
if [[ $FAILED -eq 0 ]]; then verdict PASS; else verdict FAIL; fi
