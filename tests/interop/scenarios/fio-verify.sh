#!/bin/sh
# fio-verify: random writes with crc32c checksums in every block, then a verify pass that
# reads everything back (fio --verify=crc32c, --verify_fatal=1), at 4 KiB and at 128 KiB,
# queue depth 16, libaio, O_DIRECT. Any lost, misplaced or torn write fails the run.
#
# FIO_SIZE (default 64M) is the region each pass covers; under TCG the guest does about
# 2-3k IOPS at 4 KiB, so 64 MiB (16k writes + 16k reads) stays well under a minute.
set -eu
. /interop-lib.sh
scenario_begin
: "${FIO_SIZE:=64M}"

step "connect with 2 I/O queues"
connect -i 2

# fio_pass NAME BS OFFSET: one write+verify pass over FIO_SIZE at OFFSET.
fio_pass() {
    step "fio $1: randwrite bs=$2 iodepth=16 size=$FIO_SIZE offset=$3, verify crc32c"
    if ! run fio --name="$1" --filename="$NS" --ioengine=libaio --direct=1 \
        --rw=randwrite --bs="$2" --iodepth=16 --size="$FIO_SIZE" --offset="$3" \
        --verify=crc32c --do_verify=1 --verify_fatal=1 --verify_state_save=0 \
        --randrepeat=0 --norandommap=0 --group_reporting >"/tmp/$1.txt" 2>&1; then
        cat "/tmp/$1.txt"
        fail "fio $1 failed"
    fi
    cat "/tmp/$1.txt"
    # The job must have run both phases without errors: the write, then the verify reads.
    grep -q 'err= 0' "/tmp/$1.txt" || fail "fio $1 reported errors"
    grep -Eq '^ +write: IOPS=' "/tmp/$1.txt" || fail "fio $1 did not write"
    grep -Eq '^ +read: IOPS=' "/tmp/$1.txt" || fail "fio $1 did not run the verify reads"
    if grep -qi 'verify:.*bad\|crc32c: verify failed' "/tmp/$1.txt"; then fail "fio $1: verify failed"; fi
    log "fio $1: 0 errors, verify passed"
}

fio_pass verify-4k 4k 0
fio_pass verify-128k 128k 256M

step "disconnect"
disconnect
scenario_end
