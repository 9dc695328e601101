#!/bin/sh
# Guest side of image-boot (runs as /scenario.sh in a VM started by `edgeblock vm run`; see run.sh). /dev/vda is a
# volume `image attach`ed from a qcow2 holding an ext4 root file system, its background copy throttled so that it
# runs during all of this. The root is mounted and its own /sbin/init (with the root's busybox) runs chrooted in it;
# the host restarts the daemon when it sees EDGEBLOCK-IMAGE-BOOT-RESTART.
set -eu
. /interop-lib.sh
DISK=/dev/vda ROOT=/newroot

mount_root() {
    run mount -t ext4 "$DISK" "$ROOT" || fail "mounting the attached root $DISK failed"
    mount -t devtmpfs devtmpfs "$ROOT/dev"
    mount -t proc proc "$ROOT/proc"
}
umount_root() {
    umount "$ROOT/proc" "$ROOT/dev"
    run umount "$ROOT" || fail "unmounting the root failed"
}
in_root() {
    step "the root's /sbin/init $1"
    chroot "$ROOT" /sbin/init "$1" || fail "the root's /sbin/init $1 failed"
}

step "the attached disk"
i=0
while [ ! -b "$DISK" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
[ -b "$DISK" ] || fail "$DISK did not appear"
log "$DISK: $(($(blockdev --getsize64 "$DISK") / 1048576)) MiB"
mkdir -p "$ROOT"
mount_root
cmp /expected.sums "$ROOT/etc/image.sums" || fail "the root's /etc/image.sums is not the one the host made"
in_root check
in_root write
echo "EDGEBLOCK-IMAGE-BOOT-RESTART"
in_root window
# Mounted again, so that what follows reads from the (restarted) daemon, not the page cache.
umount_root
mount_root
in_root after
umount_root
step "e2fsck -fn $DISK"
run e2fsck -fn "$DISK" >/tmp/fsck.txt 2>&1 || { cat /tmp/fsck.txt; fail "e2fsck -fn $DISK is not clean"; }
log "e2fsck -fn clean"
scenario_end
