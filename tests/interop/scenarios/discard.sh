#!/bin/sh
# discard: Dataset Management / Deallocate from the kernel host (blkdiscard).
#  - a discarded range reads back as zeroes and its neighbours are untouched;
#  - after discarding the whole namespace everything written reads back as zeroes;
#  - on the host, the daemon's backing file shrinks (the host hook measures its allocated
#    blocks between the two host actions below).
set -eu
. /interop-lib.sh
scenario_begin

step "connect with 2 I/O queues"
connect -i 2
run nvme id-ns "$CTRL_DEV" -n "$NSID" >/tmp/id-ns.txt || fail "nvme id-ns failed"
grep -E '^(nsfeat|dlfeat) ' /tmp/id-ns.txt || true

step "write 32 MiB at 0 and 8 MiB at 256 MiB (random data)"
random_file /tmp/a 32
random_file /tmp/b 8
dev_write /tmp/a "$NS" 0
dev_write /tmp/b "$NS" 256
run blockdev --flushbufs "$NS"
run nvme flush "$NS" || fail "nvme flush failed"
[ "$(dev_sha256 "$NS" 0 32)" = "$(sha256 /tmp/a)" ] || fail "region A did not read back"
[ "$(dev_sha256 "$NS" 256 8)" = "$(sha256 /tmp/b)" ] || fail "region B did not read back"
host_action measure-before

step "discard 2 MiB in the middle of region B (258..260 MiB)"
run blkdiscard -o $((258 * 1048576)) -l $((2 * 1048576)) "$NS" || fail "blkdiscard of a range failed"
expect_zero "$NS" 258 2
# The neighbours keep their data.
[ "$(dev_sha256 "$NS" 256 2)" = "$(dd if=/tmp/b bs=1M count=2 status=none | sha256)" ] ||
    fail "256..258 MiB changed by a discard of 258..260 MiB"
[ "$(dev_sha256 "$NS" 260 4)" = "$(dd if=/tmp/b bs=1M skip=4 count=4 status=none | sha256)" ] ||
    fail "260..264 MiB changed by a discard of 258..260 MiB"
log "range discard: zeroes inside, data intact around it"

step "discard the whole namespace"
run blkdiscard "$NS" || fail "blkdiscard of the whole namespace failed"
expect_zero "$NS" 0 32
expect_zero "$NS" 256 8
log "whole-namespace discard: everything written reads back as zeroes"
run nvme flush "$NS" || fail "nvme flush failed"
host_action measure-after

step "disconnect"
disconnect
scenario_end
