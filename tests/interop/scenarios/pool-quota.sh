#!/bin/sh
# pool-quota: thin volumes of one pool (two file drives) exported as three namespaces; a
# group quota stops a runaway writer on its own volume only. The host hook creates pool q,
# volumes a, b (64M) and c (128M, group t, quota 32M) and exports them as namespaces 1-3.
#  - fio verify (crc32c, libaio, O_DIRECT, 4k) on a and b while dd fills c: dd gets a write
#    error (Capacity Exceeded, which the kernel reports as ENOSPC) after ~32 MiB, far before
#    c's end, and the kernel logs the error;
#  - fio verify (64k) on a and b still passes afterwards: the other volumes keep working;
#  - blkdiscard of c gives the space back: the host sees `pool show` report it (host hook),
#    and c takes writes again.
set -eu
. /interop-lib.sh
if [ "$REFERENCE" = 1 ]; then
    log "reference mode: pool-quota checks our daemon's pools and quotas; nothing to check against nvmet: SKIPPED"
    scenario_end
    exit 0
fi
scenario_begin
: "${POOL_NQN:?POOL_NQN is not set (see pool-quota.conf)}"
: "${FIO_SIZE:=16M}"

step "host: edgeblock pool create + volume create a, b, c + group set t --quota 32M + namespace add x3"
host_action setup
NQN=$POOL_NQN

step "connect to $NQN"
connect -i 2
# ns_dev NSID: the block device of namespace NSID (waits for the scan).
ns_dev() {
    NSID=$1
    i=0
    until n=$(find_ns) && [ -b "/dev/$n" ]; do
        [ $i -lt 100 ] || fail "no block device for namespace $1 of $NQN after 10 s"
        sleep 0.1
        i=$((i + 1))
    done
    echo "/dev/$n"
}
A=$(ns_dev 1)
B=$(ns_dev 2)
C=$(ns_dev 3)
NSID=1
[ "$(blockdev --getsize64 "$A")" = 67108864 ] || fail "a ($A) is $(blockdev --getsize64 "$A") bytes, created 64M"
[ "$(blockdev --getsize64 "$C")" = 134217728 ] || fail "c ($C) is $(blockdev --getsize64 "$C") bytes, created 128M"
log "a = $A, b = $B, c = $C ($(blockdev --getss "$C")-byte sectors)"

step "dd /dev/urandom into c until it fails, while fio verify runs on a and b"
kmsg_before=$(dmesg | wc -l)
(
    rc=0
    dd if=/dev/urandom of="$C" bs=1M oflag=direct 2>/tmp/dd.err || rc=$?
    echo "$rc" >/tmp/dd.rc
) &
dd_pid=$!
fio_verify "$A" a-4k 4k 0 "$FIO_SIZE" 16
fio_verify "$B" b-4k 4k 0 "$FIO_SIZE" 16
wait "$dd_pid" || true
dd_rc=$(cat /tmp/dd.rc)
cat /tmp/dd.err
[ "$dd_rc" != 0 ] || fail "dd into c ended without an error (exit 0): the quota did not stop it"
written=$(sed -n 's/^\([0-9]*\)+[0-9]* records out$/\1/p' /tmp/dd.err | tail -n 1)
[ -n "$written" ] || fail "cannot read how much dd wrote from its output"
[ "$written" -ge 24 ] && [ "$written" -le 32 ] ||
    fail "dd wrote $written MiB into c before failing; the quota of group t is 32 MiB (c is 128 MiB)"
grep -qi 'space\|error' /tmp/dd.err || fail "dd's failure is not a write error: $(cat /tmp/dd.err)"
dmesg | tail -n +$((kmsg_before + 1)) >/tmp/kmsg.new
grep -iE 'nvme|blk_update|I/O error|space allocation' /tmp/kmsg.new | tail -n 5 || true
grep -qiE 'critical space allocation error|I/O error|Cmd\(0x1\)' /tmp/kmsg.new ||
    fail "the kernel logged no write error for c"
log "dd into c stopped after $written MiB with exit $dd_rc (write error from the target), the kernel logged it"

step "fio verify on a and b still passes (64k)"
fio_verify "$A" a-64k 64k 32M "$FIO_SIZE" 16
fio_verify "$B" b-64k 64k 32M "$FIO_SIZE" 16
[ "$(dev_sha256 "$A" 0 1)" != "$(dd if=/dev/zero bs=1M count=1 status=none | sha256)" ] || fail "a lost its data"

host_action measure-full

step "blkdiscard c: the space returns to the pool"
run blkdiscard "$C" || fail "blkdiscard of c failed"
run nvme flush "$C" || fail "nvme flush of c failed"
expect_zero "$C" 0 32
host_action check-freed
random_file /tmp/again 4
dev_write /tmp/again "$C" 0 || fail "c does not take writes again after the discard"
[ "$(dev_sha256 "$C" 0 4)" = "$(sha256 /tmp/again)" ] || fail "c: what was written after the discard does not read back"
log "c takes writes again after the discard"

step "disconnect"
disconnect
scenario_end
