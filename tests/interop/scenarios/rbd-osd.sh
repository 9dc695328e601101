#!/bin/sh
# rbd-osd: the OSD of the Ceph cluster killed under the kernel host's I/O to an RBD volume over NVMe/TCP,
# while a local pool's volume (its own subsystem and controller) goes on serving.
#  - 16 MiB written sequentially with crc32c headers and flushed (fsync + nvme flush): the flushed data;
#  - fio (randwrite + verify, crc32c, paced) runs on the RBD volume; the host kills the OSD;
#  - meanwhile fio verify on the local volume completes, and `pool show` says site degraded, loc online;
#  - OSD_DOWN s after the kill the host restarts the OSD; the fio under the outage finishes: stalled (no error,
#    verify passed) or failed with I/O errors, never with a verify mismatch; how long it stalled is logged;
#  - every flushed write is there (fio verify-only of the 16 MiB), and new I/O works (fio verify).
# Daemon-only (Ceph behind our daemon): skipped in reference mode.
set -eu
. /interop-lib.sh
if [ "$REFERENCE" = 1 ]; then
    log "reference mode: rbd-osd checks our daemon's Ceph pools; nothing to check against nvmet: SKIPPED"
    scenario_end
    exit 0
fi
scenario_begin
: "${RBD_NQN:?RBD_NQN is not set (see rbd-osd.conf)}"
: "${LOCAL_NQN:?LOCAL_NQN is not set (see rbd-osd.conf)}"
: "${OSD_DOWN:=45}"

step "host: pool site --ceph (volume 128M) + pool loc (local, volume 64M), each in its own subsystem"
host_action setup
NQN=$LOCAL_NQN
connect -i 2
LOCAL_NS=$NS
NQN=$RBD_NQN
connect -i 2
RBD_NS=$NS RBD_CTRL=$CTRL

# The flushed data: sequential, so that fio's verify-only pass later finds the same blocks.
flushed() {
    fio --name=flushed --filename="$RBD_NS" --ioengine=libaio --direct=1 --rw=write --bs=64k --iodepth=8 \
        --size=16M --offset=0 --verify=crc32c --verify_state_save=0 "$@" >/tmp/flushed.txt 2>&1
}
step "16 MiB with crc32c headers on $RBD_NS, fsync, nvme flush"
flushed --do_verify=0 --end_fsync=1 || { cat /tmp/flushed.txt; fail "writing the flushed data failed"; }
run nvme flush "$RBD_NS" || fail "nvme flush $RBD_NS failed"

step "fio on the RBD volume (randwrite 4k, 100 IOPS, 8 MiB at 64 MiB, then verify) under the OSD's kill"
t_fio=$(uptime_s)
fio --name=outage --filename="$RBD_NS" --ioengine=libaio --direct=1 --rw=randwrite --bs=4k --iodepth=8 \
    --size=8M --offset=64M --rate_iops=100 --verify=crc32c --do_verify=1 --verify_state_save=0 --randrepeat=0 \
    >/tmp/outage.txt 2>&1 && echo 0 >/tmp/outage.rc || echo $? >/tmp/outage.rc &
sleep 3
host_action kill-osd
t_kill=$(uptime_s)

fio_verify "$LOCAL_NS" local-4k 4k 0 8M 16
step "host: pool show: site degraded, loc online"
host_action degraded

left=$(awk -v k="$t_kill" -v n="$(uptime_s)" -v d="$OSD_DOWN" 'BEGIN { l = d - (n - k); print (l > 0 ? int(l) : 0) }')
log "the OSD stays down ${OSD_DOWN}s: ${left}s more; controller $RBD_CTRL is $(ctrl_state)"
sleep "$left"
log "after ${OSD_DOWN}s: controller $RBD_CTRL is $(ctrl_state); fio $([ -f /tmp/outage.rc ] && echo ended || echo 'still running')"
step "host: restart the OSD"
host_action start-osd
t_up=$(uptime_s)

step "the fio under the outage finishes"
i=0
while [ ! -s /tmp/outage.rc ]; do
    [ $i -lt 1800 ] || { cat /tmp/outage.txt; fail "fio still running 180 s after the OSD came back"; }
    sleep 0.1
    i=$((i + 1))
done
rc=$(cat /tmp/outage.rc)
t_end=$(uptime_s)
cat /tmp/outage.txt
log "fio under the outage: exit $rc, $(awk -v a="$t_fio" -v b="$t_end" 'BEGIN { printf "%.0f", b - a }')s (OSD killed at +$(awk -v a="$t_fio" -v b="$t_kill" 'BEGIN { printf "%.0f", b - a }')s, back at +$(awk -v a="$t_fio" -v b="$t_up" 'BEGIN { printf "%.0f", b - a }')s, finished $(awk -v a="$t_up" -v b="$t_end" 'BEGIN { printf "%.0f", b - a }')s after that); controller $RBD_CTRL is $(ctrl_state)"
dmesg | grep -i nvme | tail -n 20
if grep -Eqi 'verify: bad|crc32c: verify failed|bad magic|bad header' /tmp/outage.txt; then
    fail "fio under the outage read back data other than it wrote (above)"
fi
if [ "$rc" = 0 ]; then
    grep -q 'err= 0' /tmp/outage.txt || fail "fio exited 0 but reported errors"
    log "outage: I/O stalled, no error reached fio, its verify passed"
else
    grep -Eqi 'Input/output error|err=' /tmp/outage.txt || fail "fio failed (exit $rc), but not with an I/O error"
    log "outage: I/O failed with I/O errors (exit $rc), no mismatched data"
fi

step "every flushed write is there: fio verify-only of the 16 MiB"
wait_state live 60 || fail "$CTRL is $(ctrl_state), not live, 60 s after the OSD came back"
flushed --verify_only || { cat /tmp/flushed.txt; fail "the flushed 16 MiB do not verify after the outage"; }
grep -Eq '^ +read: IOPS=' /tmp/flushed.txt || { cat /tmp/flushed.txt; fail "the verify-only pass read nothing"; }
log "the flushed 16 MiB verify"
fio_verify "$RBD_NS" after-4k 4k 32M 8M 16

step "host: pool site online again, the daemon's log"
host_action check

step "disconnect"
disconnect
NQN=$LOCAL_NQN
disconnect
step "host: namespaces removed, volume deleted"
host_action cleanup
scenario_end
