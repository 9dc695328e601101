#!/bin/sh
# ext4: a real file system on the namespace. mkfs.ext4, mount, write files of random data,
# record their SHA-256, sync, unmount, mount again, compare, unmount, and e2fsck -fn finds
# the file system clean.
set -eu
. /interop-lib.sh
scenario_begin

step "connect with 2 I/O queues"
connect -i 2

step "mkfs.ext4 $NS"
run mkfs_ext4 -F -q "$NS" || fail "mkfs.ext4 failed"

step "mount and write files"
mkdir -p /mnt/t
run mount -t ext4 "$NS" /mnt/t || fail "mount failed"
mkdir -p /mnt/t/dir/sub
for n in 1 2 4 8 16; do random_file "/mnt/t/file-${n}M" "$n"; done
# Some small files and an odd size (not a multiple of the block size).
i=0
while [ $i -lt 64 ]; do
    dd if=/dev/urandom of="/mnt/t/dir/sub/small-$i" bs=1 count=$((i * 97 + 1)) status=none
    i=$((i + 1))
done
(cd /mnt/t && find . -type f | sort | xargs sha256sum) >/tmp/sums
log "$(wc -l </tmp/sums) files, $(du -sm /mnt/t | cut -f1) MiB"
run sync

step "unmount, mount again, compare"
run umount /mnt/t || fail "umount failed"
run mount -t ext4 "$NS" /mnt/t || fail "second mount failed"
(cd /mnt/t && sha256sum -c -s /tmp/sums) || {
    (cd /mnt/t && sha256sum -c /tmp/sums | grep -v ': OK$') || true
    fail "file contents changed across unmount/mount"
}
log "all $(wc -l </tmp/sums) files intact"
run umount /mnt/t || fail "final umount failed"

step "e2fsck -fn"
run e2fsck -fn "$NS" || fail "e2fsck -fn reported problems (exit $?)"

step "disconnect"
disconnect
scenario_end
