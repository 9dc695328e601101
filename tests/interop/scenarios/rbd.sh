#!/bin/sh
# rbd: a volume of a Ceph pool (an RBD image in a real single-node cluster) under the kernel's
# host over NVMe/TCP. The host hook creates pool site (--ceph) and volume site/<run> (256M) and
# exports it as namespace 1.
#  - fio verify (crc32c, libaio, O_DIRECT) at 4k and 128k;
#  - 4 MiB of random data at 200 MiB, written O_DIRECT and flushed (nvme flush): the host's
#    `rbd export` (a librbd client of its own) has the same bytes there;
#  - ext4: mkfs, files, remount, every SHA-256 matches, e2fsck -fn clean;
#  - the host hook: the pool is online, the daemon logged no errors; the volume is deleted.
# Daemon-only (Ceph behind our daemon): skipped in reference mode.
set -eu
. /interop-lib.sh
if [ "$REFERENCE" = 1 ]; then
    log "reference mode: rbd checks our daemon's Ceph pools; nothing to check against nvmet: SKIPPED"
    scenario_end
    exit 0
fi
scenario_begin
: "${RBD_NQN:?RBD_NQN is not set (see rbd.conf)}"
: "${FIO_SIZE:=16M}"

step "host: edgeblock pool create site --ceph + volume create (256M) + namespace add"
host_action setup
NQN=$RBD_NQN

step "connect to $NQN"
connect -i 2
[ "$(blockdev --getsize64 "$NS")" = 268435456 ] || fail "the RBD volume ($NS) is $(blockdev --getsize64 "$NS") bytes, created 256M"

fio_verify "$NS" rbd-4k 4k 0 "$FIO_SIZE" 16
fio_verify "$NS" rbd-128k 128k 64M "$FIO_SIZE" 16

step "4 MiB at 200 MiB, O_DIRECT, nvme flush; the host's rbd export has it"
random_file /tmp/flushed 4
run dd if=/tmp/flushed of="$NS" bs=1M seek=200 oflag=direct conv=notrunc status=none || fail "writing 4 MiB at 200 MiB failed"
run nvme flush "$NS" || fail "nvme flush $NS failed"
host_action "flushed-$(sha256sum </tmp/flushed | cut -d' ' -f1)"

ext4_roundtrip "$NS"

step "host: pool show online, daemon log clean"
host_action check

step "disconnect"
disconnect
step "host: namespace remove, volume delete"
host_action cleanup
scenario_end
