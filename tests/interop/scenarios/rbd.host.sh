#!/usr/bin/env bash
# Host hook of the rbd scenario: a volume of a Ceph pool (an RBD image of the test cluster of
# EDGEBLOCK_CEPH_DIR), set up and judged with the `edgeblock` CLI over the live daemon's API
# socket, and read back by rbd(8), a librbd client of its own.
#   setup          pool site --ceph (as client.edgeblock), volume site/$VOLUME (256M), subsystem
#                  with namespace 1 = it
#   flushed-SHA    the guest wrote 4 MiB at 200 MiB and flushed: `rbd export` of the image has
#                  SHA (sha256) there: a completed Flush means the data is in the cluster
#   check          `pool show` says online; the daemon logged no errors
#   cleanup        namespace removed, volume deleted, image gone from the cluster
set -euo pipefail
# shellcheck disable=SC2034 # used by host-common.sh
INTEROP_PROG=rbd.host
# shellcheck source-path=SCRIPTDIR source=../lib/host-common.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/host-common.sh"

NQN=nqn.2026-11.io.edgeblock:rbd
# shellcheck source-path=SCRIPTDIR source=../lib/ceph-hook.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/ceph-hook.sh"

case ${1:-} in
    setup)
        eb pool create site --ceph "$CEPH/ceph.conf" --ceph-user edgeblock --keyring "$CEPH/edgeblock.keyring"
        eb volume create "site/$VOLUME" --size 256M
        eb subsystem create "$NQN" --allow-any-host
        eb namespace add "$NQN" --nsid 1 --volume "site/$VOLUME"
        rbd_ info "rbd/$VOLUME" | head -n 3
        ;;
    flushed-*)
        want=${1#flushed-}
        # The whole image through a pipe (read to its end: rbd must not die of SIGPIPE), 200-204 MiB hashed.
        got=$(rbd_ export --no-progress "rbd/$VOLUME" - |
            { dd bs=1M skip=200 count=4 iflag=fullblock status=none | sha256sum | cut -d' ' -f1; cat >/dev/null; })
        [[ $got == "$want" ]] || die "rbd export of rbd/$VOLUME has sha256 $got at 200-204 MiB, the guest flushed $want there"
        echo "rbd export of rbd/$VOLUME: 200-204 MiB as the guest flushed it (sha256 ${got:0:16}...)"
        ;;
    check)
        eb pool show site
        [[ $(eb pool show site --json | grep -o '"state": *"[a-z]*"' | head -n 1) == *'"online"' ]] || die "pool site is not online"
        if [[ -f ${EDGEBLOCK_DAEMON_LOG:-} ]] && grep -qE '^(fail|crit):|\b(fail|crit): ' "$EDGEBLOCK_DAEMON_LOG"; then
            grep -E '^(fail|crit):|\b(fail|crit): ' "$EDGEBLOCK_DAEMON_LOG" | head -n 5 | cut -c1-400
            die "the daemon logged errors (above; $EDGEBLOCK_DAEMON_LOG)"
        fi
        ;;
    cleanup)
        eb namespace remove "$NQN" 1
        eb volume delete "site/$VOLUME"
        if rbd_ ls rbd | grep -qx "$VOLUME"; then die "rbd/$VOLUME is still in the cluster after volume delete"; fi
        ;;
    *) die "unknown action '${1:-}' (setup, flushed-SHA, check, cleanup)" ;;
esac
