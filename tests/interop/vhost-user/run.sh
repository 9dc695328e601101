#!/usr/bin/env bash
# run.sh — vhost-user-blk interop: stock QEMU (vhost-user-blk-pci) and a Linux guest against
# EdgeBlock's vhost-user transport.
#
# Starts tools/EdgeBlock.VhostServe exporting a sparse 256 MiB file over a vhost-user socket,
# boots the interop guest (build-guest.sh's kernel and initramfs, plus the fio layer) with
# its RAM in a shared memfd and
#     -chardev socket,id=c0,path=SOCK -device vhost-user-blk-pci,chardev=c0,num-queues=2
# and runs guest.sh in it: fio --verify=crc32c at 4k and 64k, mkfs.ext4 + e2fsck -fn,
# a server restart in the middle (QEMU reconnects, the data and the file system are intact,
# I/O goes on), a server SIGKILL during fio (requests in flight are resubmitted), blkdiscard (the host file's allocated blocks must shrink). The server must
# still be running at the end and stop cleanly on SIGINT.
#
# Prints `vhost-user: PASS|FAIL (<seconds>s)` last; exit status 0 on PASS.
#
# Usage: run.sh [-v] [--timeout SEC] [--keep]
#   -v         stream the guest console
#   --timeout  seconds for the guest (default 240)
# Bounded: the guest gets --timeout seconds, the build of VhostServe (only when a source is
# newer than its DLL) at most 240 s. An idle machine runs it all in about 90 s (guest ~55 s).
#   --keep     keep the work directory (file, socket, logs)
# Environment: EDGEBLOCK_CACHE, EDGEBLOCK_INTEROP_LOGS, EDGEBLOCK_QEMU.
set -euo pipefail

INTEROP_PROG=vhost-user
# shellcheck source-path=SCRIPTDIR source=../lib/host-common.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/host-common.sh"
HERE=$INTEROP_DIR/vhost-user

VERBOSE=0
[[ -t 1 ]] && VERBOSE=1
standalone_options "$@"

START=$SECONDS
QEMU=${EDGEBLOCK_QEMU:-qemu-system-x86_64}
ensure_commands "$QEMU:qemu-system-x86" cpio:cpio timeout:coreutils dotnet:dotnet-sdk-10.0
"$INTEROP_DIR/build-guest.sh"
KERNEL=$INTEROP_GUEST_DIR/vmlinux
[[ -f $KERNEL ]] || KERNEL=$INTEROP_GUEST_DIR/vmlinuz
[[ -f $INTEROP_GUEST_DIR/fio.cpio ]] || die "build-guest.sh made no fio layer"

mkdir -p "$INTEROP_LOG_DIR"
LOG=$INTEROP_LOG_DIR/vhost-user.log
SERVER_LOG=$INTEROP_LOG_DIR/vhost-user.server.log
# A short directory: socket paths are limited to 107 bytes.
WORK=$(mktemp -d /tmp/ebvh.XXXXXX)
SERVER_STARTED=0
cleanup() {
    if [[ $SERVER_STARTED -eq 1 ]] && pid_alive "$(cat "$WORK/server.pid" 2>/dev/null)"; then kill -KILL "$(cat "$WORK/server.pid")" 2>/dev/null || true; fi
    if [[ $KEEP -eq 1 ]]; then log "work directory kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

verdict() {
    echo "vhost-user: $1 ($((SECONDS - START))s)"
    [[ $1 == PASS ]] && exit 0
    exit 1
}

# The server ---------------------------------------------------------------------------------
SERVE_DLL=$INTEROP_REPO_ROOT/tools/EdgeBlock.VhostServe/bin/Release/net10.0/EdgeBlock.VhostServe.dll
# Build only when a source is newer than the DLL: on a busy machine even a no-op build costs
# tens of seconds of the 5-minute budget.
if [[ -f $SERVE_DLL ]] && [[ -z $(find "$INTEROP_REPO_ROOT"/src/EdgeBlock.Transports.VhostUser "$INTEROP_REPO_ROOT"/src/EdgeBlock.Storage \
    "$INTEROP_REPO_ROOT"/tools/EdgeBlock.VhostServe "$INTEROP_REPO_ROOT"/Directory.*.props \
    \( -name '*.cs' -o -name '*.csproj' -o -name '*.props' \) -newer "$SERVE_DLL" -not -path '*/obj/*' -not -path '*/bin/*' -print -quit) ]]; then
    log "tools/EdgeBlock.VhostServe is up to date"
else
    log "building tools/EdgeBlock.VhostServe"
    timeout 240 dotnet build "$INTEROP_REPO_ROOT/tools/EdgeBlock.VhostServe" -c Release -nologo -v q >"$WORK/build.log" 2>&1 || {
        tail -n 20 "$WORK/build.log" >&2
        verdict FAIL
    }
fi
export VHOST_RUN_DIR=$WORK VHOST_SERVE_DLL=$SERVE_DLL VHOST_SOCK=$WORK/vhost.sock VHOST_IMG=$WORK/disk.img VHOST_SERVER_LOG=$SERVER_LOG
SOCK=$VHOST_SOCK IMG=$VHOST_IMG
: >"$SERVER_LOG"
"$HERE/server.sh" start >"$WORK/start.txt" || { cat "$WORK/start.txt" >&2; verdict FAIL; }
SERVER_STARTED=1
log "$(cat "$WORK/start.txt") ($(grep -m1 'vhost-serve: listening' "$SERVER_LOG" | sed 's/.*(//; s/)$//'))"

# The guest -----------------------------------------------------------------------------------
STAGE=$WORK/scenario-root
mkdir -p "$STAGE"
printf "SCENARIO=vhost-user\nREFERENCE=0\nACTION_ADDR=%s\nACTION_PORT=%s\n" "$INTEROP_ACTION_ADDR" "$INTEROP_ACTION_PORT" >"$STAGE/scenario.env"
install -m 0755 "$HERE/guest.sh" "$STAGE/scenario.sh"
install -m 0644 "$INTEROP_DIR/guest/interop-lib.sh" "$STAGE/interop-lib.sh"
(cd "$STAGE" && find . -mindepth 1 | LC_ALL=C sort | cpio --create --format=newc --owner=0:0 --quiet) >"$WORK/scenario.cpio"
cat "$INTEROP_GUEST_DIR/base.cpio" "$INTEROP_GUEST_DIR/fio.cpio" "$WORK/scenario.cpio" >"$WORK/initrd"

: >"$WORK/host-actions.status"
action_cmd="bash $HERE/host-action.sh"
action_cmd=${action_cmd//,/,,}
# shellcheck disable=SC2054 # the commas are QEMU's
QEMU_ARGS=(
    -accel tcg -cpu max -m 1G -smp 2
    -object memory-backend-memfd,id=mem,size=1G,share=on -numa node,memdev=mem
    -nographic -no-reboot
    -kernel "$KERNEL" -initrd "$WORK/initrd" -append "console=ttyS0 quiet panic=-1"
    -netdev "user,id=n0,guestfwd=tcp:$INTEROP_ACTION_ADDR:$INTEROP_ACTION_PORT-cmd:$action_cmd"
    -device virtio-net-pci,netdev=n0,romfile=
    -chardev "socket,id=c0,path=$SOCK,reconnect=1"
    -device vhost-user-blk-pci,chardev=c0,num-queues=2
)
log "booting $(basename "$KERNEL") $(cat "$INTEROP_GUEST_DIR/kernel-version") with a vhost-user-blk disk; timeout ${TIMEOUT}s; console log $LOG"
guest_start=$SECONDS
: >"$LOG"
{
    rc=0
    timeout -k 10 "$TIMEOUT" "$QEMU" "${QEMU_ARGS[@]}" </dev/null 2>&1 || rc=$?
    echo "$rc" >"$WORK/qemu.rc"
} | while IFS= read -r line || [[ -n $line ]]; do
    line=${line//$'\r'/}
    while [[ $line =~ $'\e'(\[[0-9\;?]*[A-Za-z]|c) ]]; do line=${line/"${BASH_REMATCH[0]}"/}; done
    printf '%s\n' "$line" >>"$LOG"
    if [[ $VERBOSE -eq 1 ]]; then printf '%s\n' "$line"; fi
done
qemu_rc=$(cat "$WORK/qemu.rc" 2>/dev/null || echo 1)
guest_rc=$(grep -ao 'EDGEBLOCK-SCENARIO-RESULT rc=[0-9]*' "$LOG" | tail -n 1 | sed 's/.*rc=//' || true)
log "guest finished in $((SECONDS - guest_start))s (qemu exit $qemu_rc, scenario rc ${guest_rc:-none})"

failed=0
if [[ $qemu_rc -eq 124 || $qemu_rc -eq 137 ]]; then
    log "TIMEOUT: the guest did not finish within ${TIMEOUT}s"; failed=1
elif [[ -z $guest_rc ]]; then
    log "the guest stopped without reporting a result"; failed=1
elif [[ $guest_rc -ne 0 ]]; then
    log "the guest scenario failed (rc=$guest_rc)"; failed=1
fi
if awk '$2 != 0 { bad = 1 } END { exit !bad }' "$WORK/host-actions.status"; then
    log "host action(s) failed: $(tr '\n' ' ' <"$WORK/host-actions.status")"; failed=1
fi
if [[ $failed -eq 1 ]]; then
    grep -aE '\] (FAIL|failed in step|==>)|^\+ |vhost|virtio' "$LOG" | tail -n 12 | sed 's/^/    | /' >&2
fi
grep -aE 'fio verify-|fio after-|fio across|IOPS=|allocated|range discard|files intact|reconnected|resubmitting|no request was|killed|size [0-9]+, queues' "$LOG" | sed 's/^/    | /' >&2 || true

# The server must have survived and must stop on SIGINT.
"$HERE/server.sh" stop >"$WORK/stop.txt" || { log "$(cat "$WORK/stop.txt")"; failed=1; }
if grep -qE ' (erro|crit):' "$SERVER_LOG"; then
    log "the server logged errors:"; grep -E ' (erro|crit):' "$SERVER_LOG" | head -n 10 | sed 's/^/    | /' >&2; failed=1
fi
log "server log: $SERVER_LOG"
if [[ $failed -eq 0 ]]; then verdict PASS; else tail -n 15 "$SERVER_LOG" | sed 's/^/    | /' >&2; verdict FAIL; fi
