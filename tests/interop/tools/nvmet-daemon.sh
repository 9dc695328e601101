#!/usr/bin/env bash
# nvmet-daemon.sh — a stand-in for `edgeblock serve`, built from the Linux in-kernel
# target, to check run-all.sh's daemon mode (daemon start/stop, host hooks, SIGKILL and
# restart, backing-file measurements) before our daemon exists, or to compare with it:
#
#     EDGEBLOCK_CMD=tests/interop/tools/nvmet-daemon.sh tests/interop/run-all.sh
#
# Usage (the part of edgeblock's CLI that run-all.sh uses):
#     nvmet-daemon.sh serve --data-dir DIR --listen 127.0.0.1:PORT --default-size SIZE
#                           [--allow-host NQN]...
#
# It becomes (exec) a QEMU guest booted from the interop guest image that exports
# DIR/default.img (created sparse with SIZE if missing; its namespace UUID/NGUID and
# serial kept in DIR/nvmet-ids) as namespace 1 of
# nqn.2026-11.io.edgeblock:default with nvmet-tcp. The image is a virtio-blk disk with
# discard=unmap, so a Deallocate from the test guest punches holes in the host file, and
# writes survive a SIGKILL of this process (the same pid as QEMU) like a daemon's would.
# The port is forwarded only once the target listens (hostfwd_add through the monitor),
# so "the port accepts connections" means "ready", as for the real daemon.
set -euo pipefail
# shellcheck disable=SC2034 # used by host-common.sh
INTEROP_PROG=nvmet-daemon
# shellcheck source-path=SCRIPTDIR source=../lib/host-common.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/host-common.sh"

[[ ${1:-} == serve ]] || die "usage: nvmet-daemon.sh serve --data-dir DIR --listen 127.0.0.1:PORT --default-size SIZE [--allow-host NQN]..."
shift
DATA_DIR='' LISTEN='' SIZE=1G ALLOW=()
while [[ $# -gt 0 ]]; do
    case $1 in
        --data-dir) DATA_DIR=$2; shift ;;
        --listen) LISTEN=$2; shift ;;
        --default-size) SIZE=$2; shift ;;
        --allow-host) ALLOW+=("$2"); shift ;;
        *) die "unknown argument $1" ;;
    esac
    shift
done
[[ -n $DATA_DIR && $LISTEN == *:* ]] || die "--data-dir and --listen HOST:PORT are required"
[[ -f $INTEROP_GUEST_DIR/base.cpio ]] || die "no guest image: run tests/interop/build-guest.sh"

mkdir -p "$DATA_DIR"
IMG=$DATA_DIR/default.img
[[ -f $IMG ]] || truncate -s "$SIZE" "$IMG"
RUN=$DATA_DIR/.nvmet-daemon
rm -rf "$RUN"
mkdir -p "$RUN/root"

# Identifiers that stay with the data, as a real target's must: the host drops a namespace
# whose NGUID/UUID changed when it reconnects.
IDS=$DATA_DIR/nvmet-ids
if [[ ! -f $IDS ]]; then
    uuid=$(cat /proc/sys/kernel/random/uuid)
    printf 'REFERENCE_NS_UUID=%s\nREFERENCE_SERIAL=%s\n' "$uuid" "$(tr -d - <<<"$uuid" | cut -c1-16)" >"$IDS"
fi

# The target's own scenario archive: the script above plus the guest library.
{ cat "$IDS"; cat <<ENV
SCENARIO='nvmet-daemon'
TARGET_ADDR='0.0.0.0'
TARGET_PORT='4420'
NQN='$INTEROP_DEFAULT_NQN'
REFERENCE_DEVICE='/dev/vda'
ALLOW_HOSTS='${ALLOW[*]}'
ENV
} >"$RUN/root/scenario.env"
install -m 0755 "$INTEROP_DIR/tools/nvmet-target.sh" "$RUN/root/scenario.sh"
install -m 0644 "$INTEROP_DIR/guest/interop-lib.sh" "$RUN/root/interop-lib.sh"
(cd "$RUN/root" && find . -mindepth 1 | cpio --create --format=newc --owner=0:0 --quiet) >"$RUN/scenario.cpio"
cat "$INTEROP_GUEST_DIR/base.cpio" "$RUN/scenario.cpio" >"$RUN/initrd"
KERNEL=$INTEROP_GUEST_DIR/vmlinux
[[ -f $KERNEL ]] || KERNEL=$INTEROP_GUEST_DIR/vmlinuz

# Once the target says it listens, forward the port (QEMU monitor on a pipe pair).
mkfifo "$RUN/mon.in" "$RUN/mon.out"
(
    for _ in $(seq 1 1200); do
        if grep -q NVMET-TARGET-READY "$RUN/console.log" 2>/dev/null; then
            echo "hostfwd_add n0 tcp:$LISTEN-:4420" >"$RUN/mon.in"
            exit 0
        fi
        sleep 0.1
    done
    echo "nvmet-daemon: the target guest did not get ready in 120 s" >&2
) </dev/null &
# Drain the monitor's output so QEMU never blocks on it.
(cat "$RUN/mon.out" >/dev/null) </dev/null &

echo "nvmet-daemon: QEMU pid $$, data $IMG, listening on $LISTEN once the guest is ready"
exec "${EDGEBLOCK_QEMU:-qemu-system-x86_64}" -accel tcg -cpu max -m 512 -smp 1 \
    -display none -no-reboot -serial "file:$RUN/console.log" \
    -chardev "pipe,id=mon,path=$RUN/mon" -mon chardev=mon,mode=readline \
    -kernel "$KERNEL" -initrd "$RUN/initrd" -append "console=ttyS0 quiet panic=-1" \
    -drive "file=$IMG,format=raw,if=none,id=d0,cache=writeback,discard=unmap" \
    -device virtio-blk-pci,drive=d0,romfile= \
    -netdev user,id=n0 -device virtio-net-pci,netdev=n0,romfile=
