#!/bin/sh
# host-attach: a pool volume as a block device of the host itself (ublk). Everything runs in this guest
# (6.12 kernel with ublk_drv): our daemon (published by host-attach.payload.sh) with a pool on a tmpfs file,
# `edgeblock host attach` prints /dev/ublkbN; mkfs.ext4, mount, fio verify=crc32c on a file in it; detaching
# while mounted is refused naming the mount point (exit 2); umount, e2fsck -fn clean; `host devices --json`
# counts the requests; detach removes the device. Then the same attach after a daemon restart (desired state).
set -eu
. /interop-lib.sh
: "${FIO_SIZE:=24M}"
if [ "$REFERENCE" = 1 ]; then
    log "reference mode: this scenario has no reference target (ublk is served by our daemon only); running it as is"
fi

EB=/usr/local/bin/edgeblock
DATA=/tmp/eb
MNT=/mnt/v
export EDGEBLOCK_API_SOCKET=$DATA/api.sock
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_TieredPGO=0
DAEMON_PID=

trap ublk_daemon_on_failure EXIT

step "load ublk_drv"
modprobe ublk_drv || fail "modprobe ublk_drv"
[ -c /dev/ublk-control ] || fail "/dev/ublk-control is missing after modprobe ublk_drv"

step "daemon, pool on a tmpfs file, volume"
mkdir -p "$DATA" "$MNT"
daemon_start --listen 127.0.0.1:4420
pool_create_waiting p "$DATA/d0.img:256M"
eb volume create p/v --size 128M || fail "volume create"

step "host attach p/v"
DEV=$(eb host attach p/v) || fail "host attach"
log "attached as $DEV"
case $DEV in /dev/ublkb[0-9]*) ;; *) fail "host attach printed '$DEV', expected /dev/ublkbN" ;; esac
[ -b "$DEV" ] || fail "$DEV is not a block device"
[ "$(blockdev --getsize64 "$DEV")" = $((128 << 20)) ] || fail "$DEV has $(blockdev --getsize64 "$DEV") bytes, expected 128 MiB"

step "mkfs.ext4 and mount"
run mkfs_ext4 -F -q "$DEV" || fail "mkfs.ext4 $DEV"
mount -t ext4 "$DEV" "$MNT" || fail "mount $DEV"

fio_verify "$MNT/data" file-4k 4k 0 "$FIO_SIZE" 16
fio_verify "$MNT/data2" file-128k 128k 0 "$FIO_SIZE" 8

step "detach while mounted is refused naming the mount point"
rc=0
eb host detach p/v >/tmp/detach.out 2>&1 || rc=$?
cat /tmp/detach.out
[ "$rc" = 2 ] || fail "host detach of a mounted device exited $rc, expected 2 (refused)"
grep -q "$MNT" /tmp/detach.out || fail "the refusal does not name the mount point $MNT"
[ -b "$DEV" ] || fail "$DEV went away although the detach was refused"

step "umount, e2fsck -fn on what the daemon stored"
sync
umount "$MNT" || fail "umount"
# Without this e2fsck reads the kernel's page cache of the device, which hides a write the daemon acknowledged
# but lost (a discard beside a write in flight once unmapped its extent: only the restart below showed it).
blockdev --flushbufs "$DEV" || fail "blockdev --flushbufs $DEV"
run e2fsck -fn "$DEV" || fail "e2fsck -fn $DEV reports problems"

step "host devices --json"
eb host devices --json >/tmp/devices.json || fail "host devices"
cat /tmp/devices.json
grep -q "\"device\": *\"$DEV\"" /tmp/devices.json || fail "host devices does not list $DEV"
grep -q '"state": *"attached"' /tmp/devices.json || fail "host devices does not say attached"

step "restart: the device is attached again from the config, the file system is intact"
daemon_stop
[ ! -b "$DEV" ] || log "note: $DEV still exists after the daemon stopped"
daemon_start --listen 127.0.0.1:4420
eb host devices --json >/tmp/devices2.json || fail "host devices after restart"
cat /tmp/devices2.json
DEV2=$(sed -n 's/.*"device": *"\([^"]*\)".*/\1/p' /tmp/devices2.json)
[ -b "$DEV2" ] || fail "after the restart the volume is not attached (device '$DEV2')"
run e2fsck -fn "$DEV2" || fail "e2fsck -fn $DEV2 after the restart reports problems"

step "detach"
eb host detach "$DEV2" || fail "host detach $DEV2"
[ ! -b "$DEV2" ] || fail "$DEV2 still exists after detach"
daemon_stop
log "PASS"
