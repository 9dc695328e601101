#!/usr/bin/env bash
# run.sh — vhost-user-blk interop: stock QEMU (vhost-user-blk-pci) and a Linux guest against
# EdgeBlock's vhost-user transport.
#
# Starts tools/EdgeBlock.VhostServe exporting a sparse 256 MiB file over a vhost-user socket,
# boots the interop guest (build-guest.sh's kernel and initramfs, plus the fio layer) with
# its RAM in a shared memfd and
#     -chardev socket,id=c0,path=SOCK -device vhost-user-blk-pci,chardev=c0,num-queues=2
# and runs guest.sh in it: fio --verify=crc32c at 4k and 64k, mkfs.ext4 + e2fsck -fn,
# blkdiscard (the host file's allocated blocks must shrink). The server must still be
# running at the end and stop cleanly on SIGINT.
#
# Prints `vhost-user: PASS|FAIL (<seconds>s)` last; exit status 0 on PASS.
#
# Usage: run.sh [-v] [--timeout SEC] [--keep]
#   -v         stream the guest console
#   --timeout  seconds for the guest (default 240); the whole run stays under 5 minutes
#   --keep     keep the work directory (file, socket, logs)
# Environment: EDGEBLOCK_CACHE, EDGEBLOCK_INTEROP_LOGS, EDGEBLOCK_QEMU.
set -euo pipefail

INTEROP_PROG=vhost-user
# shellcheck source-path=SCRIPTDIR source=../lib/host-common.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/host-common.sh"
HERE=$INTEROP_DIR/vhost-user

VERBOSE=0 TIMEOUT=240 KEEP=0
[[ -t 1 ]] && VERBOSE=1
while [[ $# -gt 0 ]]; do
    case $1 in
        -v | --verbose) VERBOSE=1 ;;
        --timeout) TIMEOUT=${2:?--timeout needs seconds}; shift ;;
        --keep) KEEP=1 ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument $1 (see --help)" ;;
    esac
    shift
done

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
SERVER_PID=
cleanup() {
    if [[ -n $SERVER_PID ]] && pid_alive "$SERVER_PID"; then kill -KILL "$SERVER_PID" 2>/dev/null || true; fi
    if [[ $KEEP -eq 1 ]]; then log "work directory kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

verdict() {
    echo "vhost-user: $1 ($((SECONDS - START))s)"
    [[ $1 == PASS ]] && exit 0
    exit 1
}

# The server ----------------------------------------------------------------------------------
log "building tools/EdgeBlock.VhostServe"
dotnet build "$INTEROP_REPO_ROOT/tools/EdgeBlock.VhostServe" -c Release -nologo -v q >"$WORK/build.log" 2>&1 || {
    tail -n 20 "$WORK/build.log" >&2
    verdict FAIL
}
SERVE_DLL=$INTEROP_REPO_ROOT/tools/EdgeBlock.VhostServe/bin/Release/net10.0/EdgeBlock.VhostServe.dll
SOCK=$WORK/vhost.sock
IMG=$WORK/disk.img
: >"$SERVER_LOG"
(
    set -m # own process group and default signal dispositions (SIGINT must reach it)
    exec dotnet "$SERVE_DLL" --socket "$SOCK" --file "$IMG" --size 256M --queues 2 </dev/null >>"$SERVER_LOG" 2>&1
) &
SERVER_PID=$!
for _ in $(seq 1 100); do
    [[ -S $SOCK ]] && break
    pid_alive "$SERVER_PID" || { log "the server exited during start-up:"; tail -n 20 "$SERVER_LOG" >&2; verdict FAIL; }
    sleep 0.1
done
[[ -S $SOCK ]] || { log "the server did not create $SOCK within 10 s"; verdict FAIL; }
log "server pid $SERVER_PID on $SOCK ($(head -n 1 "$SERVER_LOG"))"

# The guest -----------------------------------------------------------------------------------
STAGE=$WORK/scenario-root
mkdir -p "$STAGE"
printf "SCENARIO=vhost-user\nREFERENCE=0\nACTION_ADDR=%s\nACTION_PORT=%s\n" "$INTEROP_ACTION_ADDR" "$INTEROP_ACTION_PORT" >"$STAGE/scenario.env"
install -m 0755 "$HERE/guest.sh" "$STAGE/scenario.sh"
install -m 0644 "$INTEROP_DIR/guest/interop-lib.sh" "$STAGE/interop-lib.sh"
(cd "$STAGE" && find . -mindepth 1 | LC_ALL=C sort | cpio --create --format=newc --owner=0:0 --quiet) >"$WORK/scenario.cpio"
cat "$INTEROP_GUEST_DIR/base.cpio" "$INTEROP_GUEST_DIR/fio.cpio" "$WORK/scenario.cpio" >"$WORK/initrd"

export VHOST_IMG=$IMG VHOST_RUN_DIR=$WORK
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
    -chardev "socket,id=c0,path=$SOCK"
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
grep -aE 'fio verify-|IOPS=|allocated|range discard|files intact|size [0-9]+, queues' "$LOG" | sed 's/^/    | /' >&2 || true

# The server must have survived and must stop on SIGINT.
if ! pid_alive "$SERVER_PID"; then
    log "the server is no longer running (crashed?)"; failed=1
else
    kill -INT "$SERVER_PID"
    for _ in $(seq 1 100); do pid_alive "$SERVER_PID" || break; sleep 0.1; done
    if pid_alive "$SERVER_PID"; then log "the server did not stop within 10 s of SIGINT"; failed=1; fi
fi
if grep -qE ' (fail|crit):' "$SERVER_LOG"; then
    log "the server logged errors:"; grep -E ' (fail|crit):' "$SERVER_LOG" | head -n 10 | sed 's/^/    | /' >&2; failed=1
fi
log "server log: $SERVER_LOG"
if [[ $failed -eq 0 ]]; then verdict PASS; else tail -n 15 "$SERVER_LOG" | sed 's/^/    | /' >&2; verdict FAIL; fi
