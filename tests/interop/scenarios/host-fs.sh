#!/bin/sh
# host-fs: file systems of this host on thin volumes (`edgeblock fs`), in a 6.12 guest that runs our daemon (as
# host-attach): three service file systems of 32 MiB and a pair in group "containers" (quota 48 MiB together), all
# ext4 mounted with discard; a mount point that is not an empty directory is refused naming it; a dd runaway fills its
# own file system (ENOSPC at its size) while fio verify passes in another and a third stays writable; rm + fstrim give
# the space back to the pool (pool show --json); SIGKILL of the daemon with everything mounted, then a start: the file
# systems are attached and mounted again (journal replayed by the mount), and e2fsck -fn is clean after an unmount.
set -eu
. /interop-lib.sh
if [ "$REFERENCE" = 1 ]; then
    log "reference mode: this scenario has no reference target (ublk is served by our daemon only); running it as is"
fi

EB=/usr/local/bin/edgeblock
DATA=/tmp/eb
export EDGEBLOCK_API_SOCKET=$DATA/api.sock
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_TieredPGO=0
DAEMON_PID=
SERVICES="/srv/log /srv/db /srv/web"
CONTAINERS="/var/lib/containers/c1 /var/lib/containers/c2"
trap ublk_daemon_on_failure EXIT

# pool_allocated: the pool's allocated bytes (the first allocated_bytes of `pool show --json`: the pool's, before its drives').
pool_allocated() { eb pool show p --json | sed -n 's/.*"allocated_bytes": *\([0-9]*\).*/\1/p' | head -n 1; }

assert_mounted() {
    for m in $SERVICES $CONTAINERS; do
        grep -q " $m ext4 " /proc/mounts || fail "$m is not mounted"
    done
}

step "load ublk_drv, daemon, pool on a tmpfs file, group quota"
modprobe ublk_drv || fail "modprobe ublk_drv"
mkdir -p "$DATA"
daemon_start
pool_create_waiting p "$DATA/d0.img:320M"
eb group set p/containers --quota 48M || fail "group set p/containers"

step "fs create: three services and a group-capped pair"
for m in $SERVICES; do
    eb fs create "p/${m##*/}" --size 32M --mount "$m" || fail "fs create p/${m##*/}"
done
for m in $CONTAINERS; do
    eb fs create "p/${m##*/}" --size 32M --mount "$m" --group containers || fail "fs create p/${m##*/}"
done
eb fs list || fail "fs list"
assert_mounted
grep " /srv/log " /proc/mounts | grep -q discard || fail "/srv/log is not mounted with discard"

step "a mount point that is not an empty directory is refused naming it"
mkdir -p /srv/full
echo x >/srv/full/old
rc=0
eb fs create p/full --size 32M --mount /srv/full 2>/tmp/refused.txt || rc=$?
cat /tmp/refused.txt
[ "$rc" = 2 ] || fail "fs create on a non-empty directory exited $rc, expected 2"
grep -q "/srv/full" /tmp/refused.txt || fail "the refusal does not name /srv/full"

step "a dd runaway fills /srv/log (ENOSPC at its size); fio verify passes in /srv/db meanwhile"
(
    rc=0
    dd if=/dev/zero of=/srv/log/runaway bs=1M 2>/tmp/dd.err || rc=$?
    echo "$rc" >/tmp/dd.rc
) &
DD=$!
fio_verify /srv/db/data file-4k 4k 0 8M 8
wait "$DD" || true
cat /tmp/dd.err
[ "$(cat /tmp/dd.rc)" != 0 ] || fail "dd ended without an error: the runaway was not stopped"
grep -q "No space left on device" /tmp/dd.err || fail "dd did not stop with ENOSPC"
runaway=$(du -k /srv/log/runaway | cut -f1)
log "the runaway wrote ${runaway} KiB into its 32 MiB file system"
[ "$runaway" -le 32768 ] || fail "the runaway wrote more than its file system's size"
echo ok >/srv/web/after-runaway || fail "/srv/web is not writable after the runaway"
for m in $CONTAINERS; do
    dd if=/dev/urandom of="$m/layer" bs=1M count=8 2>/dev/null || fail "write into $m"
done
sync
eb group list p || fail "group list p"

step "rm + fstrim give the runaway's space back to the pool"
before=$(pool_allocated)
rm /srv/log/runaway
sync
run fstrim -v /srv/log || fail "fstrim /srv/log"
i=0
# Freed extents count as free after the pool's next commit.
until [ $((before - $(pool_allocated))) -ge $((16 << 20)) ]; do
    [ $i -lt 30 ] || fail "pool allocation went from $before to $(pool_allocated) bytes only"
    sleep 1
    i=$((i + 1))
done
log "pool allocated: $before -> $(pool_allocated) bytes"

step "SIGKILL the daemon with the file systems mounted"
echo before-kill >/srv/web/marker
sync
kill -KILL "$DAEMON_PID"
wait "$DAEMON_PID" || true
DAEMON_PID=
sleep 2
# No ublk user recovery (yet): the kernel ends the devices of a server that died, and the mounts stay on dead devices.
# The operator's step before the restart: detach those mounts (lazily, nothing can be written through them anyway).
grep -E ' /(srv|var/lib/containers)/' /proc/mounts || true
for m in $SERVICES $CONTAINERS; do
    umount -l "$m" || log "umount -l $m failed"
done

step "start again: the file systems are attached and mounted again (the mount replays each journal)"
rm -f "$DATA/api.sock" # the killed daemon's socket: daemon_start waits for a new one
daemon_start
eb fs list || fail "fs list after the restart"
assert_mounted
[ "$(cat /srv/web/marker)" = before-kill ] || fail "/srv/web/marker lost its synced content"
DEV=$(grep " /srv/db " /proc/mounts | cut -d' ' -f1)
umount /srv/db || fail "umount /srv/db"
blockdev --flushbufs "$DEV" || fail "blockdev --flushbufs $DEV"
run e2fsck -fn "$DEV" || fail "e2fsck -fn $DEV reports problems after the restart"
mount -t ext4 -o discard "$DEV" /srv/db || fail "mount $DEV /srv/db again"

step "fs remove (and --keep-volume)"
eb fs remove p/web || fail "fs remove p/web"
grep -q " /srv/web " /proc/mounts && fail "/srv/web is still mounted"
eb volume list --json >/tmp/volumes.json || fail "volume list"
grep -q '"name": *"web"' /tmp/volumes.json && fail "the volume of p/web was not deleted"
eb fs remove p/log --keep-volume || fail "fs remove p/log --keep-volume"
eb volume list --json >/tmp/volumes.json || fail "volume list"
grep -q '"name": *"log"' /tmp/volumes.json || fail "--keep-volume deleted p/log"
daemon_stop
log "PASS"
