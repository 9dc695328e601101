#!/usr/bin/env bash
# run.sh — instant boot (issue F): a VM's root file system from a volume `image attach`ed from a qcow2, its copy running.
#
# Starts `./edgeblock serve` on a fresh data dir with a pool on a sparse file, makes an ext4 root file system (the
# guest's busybox, a /sbin/init of its own, 48 MiB of files whose SHA-256 are in /etc/image.sums) and converts it to a
# deflate-compressed qcow2 with qemu-img, then:
#  1. `image attach` of the qcow2 as tank/root with --io-share 0.002, so the background copy crawls;
#  2. `vm run --accel tcg` with tank/root as its disk (vhost-user): the guest mounts the root, runs the root's own
#     /sbin/init chrooted in it (the interop initramfs must report the result, so this is how far the guest "boots"
#     from it: the root's binaries and files, not a switch_root), which reads every file back against the sums,
#     writes files of its own and syncs them;
#  3. at the guest's signal (the copy must still run then) the daemon is restarted (SIGINT, same command) while the
#     guest writes and syncs a file twice a second; QEMU reconnects, the copy resumes (at the default share: a
#     resumed copy does not keep --io-share), the guest remounts the root, checks everything again, writes more,
#     unmounts and runs e2fsck -fn;
#  4. the copy completes (the origin is dropped), the volume exported as raw is e2fsck -fn clean on the host and
#     holds the image's files and every file the guest wrote (debugfs rdump, SHA-256); `pool check` is clean, the
#     daemon logged no errors.
#
# Prints `image-boot: PASS|FAIL (<seconds>s)` last; exit status 0 on PASS.
# Usage: run.sh [--keep] [--timeout SEC]
#   --keep     keep the work directory (data dir, image, initrd)
#   --timeout  seconds the `vm run` may take before it gets SIGTERM (default 240)
# Environment: EDGEBLOCK_CACHE, EDGEBLOCK_INTEROP_LOGS, EDGEBLOCK_QEMU.
set -euo pipefail

INTEROP_PROG=image-boot
# shellcheck source-path=SCRIPTDIR source=../lib/host-common.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/host-common.sh"
# shellcheck source-path=SCRIPTDIR source=../lib/vm-common.sh
. "$INTEROP_DIR/lib/vm-common.sh"
HERE=$INTEROP_DIR/image-boot

VM_COMMANDS=(qemu-img:qemu-utils mkfs.ext4:e2fsprogs debugfs:e2fsprogs)
vm_scenario_begin "$@"
origin() { eb volume show tank/root --json | jq -c '.origin_copy'; }

# The root file system and its qcow2 ---------------------------------------------------------------
log "making the root file system and its qcow2"
ROOTFS=$WORK/rootfs
mkdir -p "$ROOTFS"/{bin,sbin,etc,dev,proc,data}
(cd "$ROOTFS" && cpio -id --quiet bin/busybox <"$INTEROP_GUEST_DIR/base.cpio") || die "no bin/busybox in the guest's base.cpio"
for applet in sh sha256sum dd sync sleep mkdir wc cat; do ln -s busybox "$ROOTFS/bin/$applet"; done
install -m 0755 "$HERE/root-init.sh" "$ROOTFS/sbin/init"
for i in $(seq 1 10); do head -c 4M /dev/urandom >"$ROOTFS/data/random-$i.bin"; done
for i in $(seq 1 4); do seq -f "line %.0f of a text file that compresses" $((i * 20000)) >"$ROOTFS/data/text-$i.txt"; done
(cd "$ROOTFS" && sha256sum data/* sbin/init >etc/image.sums)
mkfs.ext4 -q -F -b 4096 -L ebroot -d "$ROOTFS" "$WORK/root.raw" 128M
qemu-img convert -c -f raw -O qcow2 "$WORK/root.raw" "$WORK/root.qcow2"
rm -f "$WORK/root.raw"
log "root.qcow2: $(qemu-img info --output=json "$WORK/root.qcow2" | jq -c '{virtual: ."virtual-size", actual: ."actual-size"}')"

# The daemon, a pool, the attached volume --------------------------------------------------------------
log "building the CLI (if stale)"
(cd "$INTEROP_REPO_ROOT" && ./edgeblock --help >/dev/null) || verdict FAIL
mkdir -p "$DATA"
printf '%s\0' ./edgeblock serve --data-dir "$DATA" --storage-root "$WORK" --listen "127.0.0.1:$EDGEBLOCK_DAEMON_PORT" --default-size 64M >"$EDGEBLOCK_DAEMON_ARGV"
daemon_start || verdict FAIL
eb pool create tank "$WORK/drive0.img:1G" >"$LOGS/setup.log" 2>&1 || { cat "$LOGS/setup.log" >&2; verdict FAIL; }
eb image attach "$WORK/root.qcow2" tank/root --io-share 0.002 >>"$LOGS/setup.log" 2>&1 || { cat "$LOGS/setup.log" >&2; verdict FAIL; }
log "attached: $(origin)"

# The VM --------------------------------------------------------------------------------------------
mkdir -p "$WORK/stage-root"
cp "$ROOTFS/etc/image.sums" "$WORK/stage-root/expected.sums"
vm_initrd root "$HERE/guest.sh"
log "booting the VM (vhost-user, tcg) on tank/root"
t=$SECONDS
vm root tank/root
pid=$VM_PID
if vm_wait_console root EDGEBLOCK-IMAGE-BOOT-RESTART "$pid"; then
    o=$(origin)
    log "the guest read the image's files and wrote its own ($((SECONDS - t))s after boot); copy: $o"
    jq -e '. != null and .bytes_copied < .bytes_total' <<<"$o" >/dev/null || check "the copy was no longer running when the guest had read and written: $o"
    r=$SECONDS
    daemon_stop || check "the daemon did not stop cleanly on SIGINT for the restart (rc $?)"
    daemon_start || verdict FAIL
    log "daemon restarted in $((SECONDS - r))s under the VM"
    if grep -aq 'root: 20 files written across the restart' "$LOGS/root.console.log"; then
        check "the guest's write window ended before the restarted daemon was up (the restart was not under its I/O)"
    fi
    vm_reconnected volume:tank/root || check "the VM's QEMU did not reconnect to the restarted daemon and send I/O within 60 s"
    log "after the restart: copy $(origin)"
else
    check "the guest never reached the daemon restart"
fi
rc=0
wait "$pid" || rc=$?
log "the VM is done in $((SECONDS - t))s"
vm_result root $rc '^root:|e2fsck -fn clean'

# The copy completes; the volume holds everything -------------------------------------------------------
done=0
for _ in $(seq 1 240); do
    if [[ $(origin) == null ]]; then done=1; break; fi
    sleep 0.5
done
((done)) || check "the copy did not complete within 120 s after the VM: $(origin)"
grep -q 'copy from origin .* resumed at' "$EDGEBLOCK_DAEMON_LOG" || check "the restarted daemon did not resume the copy"
grep -q 'copy from origin .* done; the origin is dropped' "$EDGEBLOCK_DAEMON_LOG" || check "the daemon did not log the end of the copy"
if ((done)); then
    eb image export tank/root "$WORK/out.raw" --format raw >"$LOGS/export.log" 2>&1 || check "image export failed: $(cat "$LOGS/export.log")"
    e2fsck -fn "$WORK/out.raw" >"$LOGS/e2fsck.log" 2>&1 || check "e2fsck -fn of the copied volume is not clean: $(tail -n 5 "$LOGS/e2fsck.log")"
    mkdir -p "$WORK/dump"
    debugfs -R "rdump /data /sbin /etc /written $WORK/dump" "$WORK/out.raw" >"$LOGS/debugfs.log" 2>&1 || check "debugfs rdump failed"
    (cd "$WORK/dump" && sha256sum -c --quiet etc/image.sums && sha256sum -c --quiet written/SUMS) >"$LOGS/sums.log" 2>&1 ||
        check "the copied volume's files differ: $(head -n 5 "$LOGS/sums.log")"
    n=$(wc -l <"$WORK/dump/written/SUMS" 2>/dev/null || echo 0)
    ((n == 26)) || check "the copied volume holds $n of the 26 files the guest wrote"
    log "copied volume: e2fsck -fn clean, the image's $(wc -l <"$WORK/dump/etc/image.sums") files and the guest's $n files intact"
fi
eb pool check tank >"$LOGS/pool-check.log" 2>&1 || check "pool check tank: $(cat "$LOGS/pool-check.log")"

daemon_stop || check "the daemon did not stop cleanly on SIGINT (rc $?)"
daemon_errors
log "logs: $LOGS"
if [[ $FAILED -eq 0 ]]; then verdict PASS; else verdict FAIL; fi
