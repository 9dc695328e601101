#!/bin/sh
# Guest side of the vhost-user-blk interop test (runs as /scenario.sh; see run.sh).
# The disk is /dev/vda: a virtio-blk device whose requests EdgeBlock serves over vhost-user.
#  1. the device looks right: size, 2 queues, serial (GET_ID), discard and write-zeroes limits;
#  2. fio --verify=crc32c, direct, libaio, iodepth 8, at 4 KiB and 64 KiB;
#  3. mkfs.ext4, mount, write files, remount and compare, e2fsck -fn clean;
#  4. the host restarts the server: QEMU reconnects (chardev reconnect=1), the file system is
#     still clean with the same files, and fio runs again;
#  5. the host kills the server (SIGKILL) while fio runs and starts a new one: requests that
#     were in flight are resubmitted from the in-flight area QEMU kept, fio's verify passes;
#  6. blkdiscard: a discarded range reads back as zeroes, its neighbours keep their data, and
#     the host file's allocated blocks shrink (host action measure-before / measure-after).
set -eu
. /interop-lib.sh
: "${DISK:=/dev/vda}"
: "${DISK_MIB:=256}"
: "${FIO_SIZE:=32M}"
: "${QUEUES:=2}"
log "vhost-user-blk disk $DISK (expect ${DISK_MIB} MiB, $QUEUES queues)"

step "the virtio-blk device"
i=0
while [ ! -b "$DISK" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
[ -b "$DISK" ] || { dmesg | tail -n 20; fail "$DISK did not appear"; }
dev=${DISK#/dev/}
bytes=$(blockdev --getsize64 "$DISK")
[ "$bytes" -eq $((DISK_MIB * 1048576)) ] || fail "$DISK has $bytes bytes, expected $((DISK_MIB * 1048576))"
queues=$(ls /sys/block/"$dev"/mq | wc -l)
[ "$queues" -eq "$QUEUES" ] || fail "$DISK has $queues hardware queues, expected $QUEUES"
serial=$(cat /sys/block/"$dev"/serial 2>/dev/null || true)
[ "$serial" = edgeblock ] || fail "serial (GET_ID) is '$serial', expected 'edgeblock'"
q=/sys/block/$dev/queue
log "size $bytes, queues $queues, serial $serial, logical block $(cat $q/logical_block_size), max segments $(cat $q/max_segments)," \
    "discard max $(cat $q/discard_max_bytes) granularity $(cat $q/discard_granularity), write zeroes max $(cat $q/write_zeroes_max_bytes), cache $(cat $q/write_cache)"
[ "$(cat $q/discard_max_bytes)" -gt 0 ] || fail "the device offers no discard"
[ "$(cat $q/write_zeroes_max_bytes)" -gt 0 ] || fail "the device offers no write zeroes"
[ "$(cat $q/write_cache)" = "write back" ] || fail "the device does not report a volatile write cache (VIRTIO_BLK_F_FLUSH)"

fio_verify "$DISK" verify-4k 4k 0 "$FIO_SIZE"
fio_verify "$DISK" verify-64k 64k 64M "$FIO_SIZE"
ext4_roundtrip "$DISK"

step "server restart while the guest runs (QEMU reconnects)"
host_action restart-server
run e2fsck -fn "$DISK" || fail "e2fsck -fn after the server restart reported problems (exit $?)"
ext4_compare "$DISK"
log "after the restart: file system clean, all $(wc -l </tmp/ext4.sums) files intact"
fio_verify "$DISK" after-restart 4k 192M 8M

step "server killed (SIGKILL) during fio, then restarted: QEMU reconnects, requests in flight are resubmitted"
fio --name=crash --filename="$DISK" --ioengine=libaio --direct=1 --rw=randwrite --bs=4k --iodepth=8 \
    --size=32M --offset=208M --verify=crc32c --do_verify=1 --verify_fatal=1 --verify_state_save=0 \
    --randrepeat=0 --group_reporting >/tmp/crash.txt 2>&1 &
fio_pid=$!
sleep 2
host_action crash-server
wait $fio_pid || { cat /tmp/crash.txt; fail "fio across the server crash failed"; }
cat /tmp/crash.txt
grep -q 'err= 0' /tmp/crash.txt || fail "fio across the server crash reported errors"
grep -Eq '^ +read: IOPS=' /tmp/crash.txt || fail "fio across the server crash did not verify"
log "fio across the server crash: 0 errors, verify passed"

step "blkdiscard"
random_file /tmp/a 16
dev_write /tmp/a "$DISK" 128
run blockdev --flushbufs "$DISK"
[ "$(dev_sha256 "$DISK" 128 16)" = "$(sha256 /tmp/a)" ] || fail "16 MiB at 128 MiB did not read back"
host_action measure-before
run blkdiscard -f -o $((132 * 1048576)) -l $((4 * 1048576)) "$DISK" || fail "blkdiscard of a range failed"
expect_zero "$DISK" 132 4
[ "$(dev_sha256 "$DISK" 128 4)" = "$(dd if=/tmp/a bs=1M count=4 status=none | sha256)" ] ||
    fail "128..132 MiB changed by a discard of 132..136 MiB"
[ "$(dev_sha256 "$DISK" 136 8)" = "$(dd if=/tmp/a bs=1M skip=8 count=8 status=none | sha256)" ] ||
    fail "136..144 MiB changed by a discard of 132..136 MiB"
log "range discard: zeroes inside, data intact around it"
run blkdiscard -f "$DISK" || fail "blkdiscard of the whole disk failed"
expect_zero "$DISK" 0 16
expect_zero "$DISK" 128 16
run blockdev --flushbufs "$DISK"
host_action measure-after
scenario_end
