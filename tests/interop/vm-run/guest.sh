#!/bin/sh
# Guest side of vm-run (runs as /scenario.sh in a VM started by `edgeblock vm run`; see run.sh).
# The disk is /dev/vda (vhost-user), or the first NVMe/TCP disk /init connected (nvme-tcp).
# MODE (from /scenario.env):
#   full   fio --verify=crc32c at 4k and 64k (with RESTART=1 also a paced one while the host
#          restarts the daemon); ext4 + files + e2fsck -fn; the whole disk written,
#          then blkdiscard of all of it (DISCARD=all) or of its second half (DISCARD=half): the
#          discarded range reads back as zeroes, the first half keeps its data
#   short  one fio --verify=crc32c pass at 4k
#   fs     fio --verify=crc32c at 4k, then ext4 + files + e2fsck -fn
#   sleep  print EDGEBLOCK-VM-SLEEPING and sleep (the host interrupts `edgeblock vm run`)
set -eu
. /interop-lib.sh
: "${MODE:=full}" "${DISCARD:=all}" "${FIO_SIZE:=16M}"
DISK=/dev/vda
if [ -s /run/edgeblock-disks ]; then DISK=$(head -n 1 /run/edgeblock-disks); fi

step "the disk"
i=0
while [ ! -b "$DISK" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
[ -b "$DISK" ] || fail "$DISK did not appear"
mib=$(($(blockdev --getsize64 "$DISK") / 1048576))
log "$DISK: $mib MiB, mode $MODE"

case $MODE in
    sleep)
        echo "EDGEBLOCK-VM-SLEEPING"
        sleep 600
        ;;
    short)
        fio_verify "$DISK" verify-4k 4k 0 "$FIO_SIZE"
        ;;
    fs)
        fio_verify "$DISK" verify-4k 4k 0 "$FIO_SIZE"
        ext4_roundtrip "$DISK"
        ;;
    full)
        fio_verify "$DISK" verify-4k 4k 0 "$FIO_SIZE"
        if [ "${RESTART:-0}" = 1 ]; then
            # The host restarts the daemon when it sees this line: the disk stalls until QEMU
            # (chardev reconnect=1) reaches the new daemon, and this fio, paced to outlast the
            # restart, goes on and verifies what it wrote across it.
            echo "EDGEBLOCK-VM-RESTART-WINDOW"
            fio_verify "$DISK" across-restart 4k 16M 32M 8 --rate_iops=1000
        fi
        fio_verify "$DISK" verify-64k 64k $((mib / 2))M "$FIO_SIZE"
        ext4_roundtrip "$DISK"
        step "write the whole disk, then discard ($DISCARD)"
        run fio --name=fill --filename="$DISK" --ioengine=libaio --direct=1 --rw=write --bs=1M --iodepth=4 \
            --size="${mib}M" >/tmp/fill.txt 2>&1 || { cat /tmp/fill.txt; fail "filling $DISK failed"; }
        half=$((mib / 2))
        if [ "$DISCARD" = all ]; then
            run blkdiscard -f "$DISK" || fail "blkdiscard $DISK failed"
            expect_zero "$DISK" 0 "$mib"
        else
            first=$(dev_sha256 "$DISK" 0 "$half")
            run blkdiscard -f -o $((half * 1048576)) "$DISK" || fail "blkdiscard of the second half failed"
            expect_zero "$DISK" "$half" $((mib - half))
            [ "$(dev_sha256 "$DISK" 0 "$half")" = "$first" ] || fail "the first half changed by a discard of the second"
        fi
        log "discard ($DISCARD) reads back as zeroes"
        ;;
    *) fail "unknown MODE $MODE" ;;
esac
scenario_end
