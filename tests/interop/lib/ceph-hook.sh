# shellcheck shell=bash disable=SC2154 # cli and data_dir: set by daemon_cli (host-common.sh)
# ceph-hook.sh — sourced by the host hooks of the Ceph scenarios (rbd, rbd-osd) after host-common.sh: the test
# cluster (CEPH, from EDGEBLOCK_CEPH_DIR), the live daemon's CLI (eb), rbd(8) as client.edgeblock (rbd_), and
# VOLUME: one image per run in the shared cluster, named after the daemon's fresh data directory.
CEPH=${EDGEBLOCK_CEPH_DIR:?EDGEBLOCK_CEPH_DIR is not set: run-all.sh skips this scenario without a cluster}
daemon_cli
# shellcheck disable=SC2034 # used by the hooks that source this
VOLUME=interop-$(basename "$data_dir" | tr -c 'a-zA-Z0-9\n' '-')
eb() {
    echo "\$ edgeblock $*" >&2
    (cd "$EDGEBLOCK_DAEMON_CWD" && "${cli[@]}" "$@" --api-socket "$data_dir/api.sock")
}
rbd_() { rbd -c "$CEPH/ceph.conf" --id edgeblock --keyring "$CEPH/edgeblock.keyring" "$@"; }
