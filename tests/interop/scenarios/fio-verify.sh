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

fio_verify "$NS" verify-4k 4k 0 "$FIO_SIZE" 16
fio_verify "$NS" verify-128k 128k 256M "$FIO_SIZE" 16

step "disconnect"
disconnect
scenario_end
