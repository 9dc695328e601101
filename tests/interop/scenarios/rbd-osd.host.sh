#!/usr/bin/env bash
# Host hook of the rbd-osd scenario: the OSD of the Ceph test cluster (EDGEBLOCK_CEPH_DIR) killed and restarted
# under the guest's I/O, with a local pool beside the Ceph one.
#   setup        pool site --ceph with volume site/$VOLUME (128M) as namespace 1 of $RBD_NQN; pool loc (one
#                file drive in the data dir) with volume loc/v (64M) as namespace 1 of $LOCAL_NQN
#   kill-osd     SIGKILL the OSD
#   degraded     `pool show site` says degraded (within 20 s: the health probe runs every 10 s), loc online
#   start-osd    restart the OSD; returns once the RADOS pool answers I/O
#   check        pool site online again (within 20 s); the Namespace Not Ready completions the daemon logged
#   cleanup      namespaces removed, volume deleted, image gone from the cluster
set -euo pipefail
# shellcheck disable=SC2034 # used by host-common.sh
INTEROP_PROG=rbd-osd.host
# shellcheck source-path=SCRIPTDIR source=../lib/host-common.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/host-common.sh"

RBD_NQN=nqn.2026-11.io.edgeblock:rbd-osd
LOCAL_NQN=nqn.2026-11.io.edgeblock:local
# shellcheck source-path=SCRIPTDIR source=../lib/ceph-hook.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/ceph-hook.sh"
CLUSTER=$INTEROP_REPO_ROOT/tests/ceph/cluster.sh
# wait_state POOL STATE: `pool show POOL` reports STATE within 20 s.
wait_state() {
    local state=
    for _ in $(seq 1 40); do
        state=$(eb pool show "$1" --json 2>/dev/null | grep -o '"state": *"[a-z]*"' | head -n 1 | grep -o '[a-z]*"$' | tr -d '"')
        [[ $state == "$2" ]] && { eb pool show "$1"; return 0; }
        sleep 0.5
    done
    eb pool show "$1" || true
    die "pool $1 is '$state', not $2, after 20 s"
}

case ${1:-} in
    setup)
        eb pool create site --ceph "$CEPH/ceph.conf" --ceph-user edgeblock --keyring "$CEPH/edgeblock.keyring"
        eb volume create "site/$VOLUME" --size 128M
        mkdir -p "$data_dir/drives"
        eb pool create loc "$data_dir/drives/d0.img:256M"
        eb volume create loc/v --size 64M
        eb subsystem create "$RBD_NQN" --allow-any-host
        eb namespace add "$RBD_NQN" --nsid 1 --volume "site/$VOLUME"
        eb subsystem create "$LOCAL_NQN" --allow-any-host
        eb namespace add "$LOCAL_NQN" --nsid 1 --volume loc/v
        ;;
    kill-osd)
        "$CLUSTER" kill-osd "$CEPH"
        echo "osd.0 killed (SIGKILL) at $(date -u +%T.%N | cut -c1-12)"
        ;;
    degraded)
        wait_state site degraded
        wait_state loc online
        ;;
    start-osd)
        t=$(now)
        "$CLUSTER" start-osd "$CEPH"
        echo "osd.0 restarted, pool rbd answers I/O after $(elapsed "$t")s ($(date -u +%T.%N | cut -c1-12))"
        ;;
    check)
        wait_state site online
        if [[ -f ${EDGEBLOCK_DAEMON_LOG:-} ]]; then
            echo "daemon log: $(grep -c 'Not Ready\|NotReady' "$EDGEBLOCK_DAEMON_LOG" || true) line(s) on Namespace Not Ready; its warnings and errors:"
            grep -E '^(warn|fail|crit):|\b(warn|fail|crit): ' -A1 "$EDGEBLOCK_DAEMON_LOG" | cut -c1-300 | head -n 20 || true
        fi
        ;;
    cleanup)
        eb namespace remove "$RBD_NQN" 1
        eb namespace remove "$LOCAL_NQN" 1
        eb volume delete "site/$VOLUME"
        if rbd_ ls rbd | grep -qx "$VOLUME"; then die "rbd/$VOLUME is still in the cluster after volume delete"; fi
        ;;
    *) die "unknown action '${1:-}' (setup, kill-osd, degraded, start-osd, check, cleanup)" ;;
esac
