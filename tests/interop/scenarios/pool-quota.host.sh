#!/usr/bin/env bash
# Host hook of the pool-quota scenario: pools, volumes and a group quota set up with the
# `edgeblock` CLI over the live daemon's API socket (DATA-DIR/api.sock).
#   setup          pool q over two 256M file drives (in the data dir), volumes a, b (64M)
#                  and c (128M, group t, quota 32M); subsystem with namespaces 1-3 = a, b, c
#   measure-full   after c hit its quota: group t uses exactly its quota, the pool counted
#                  the refused writes, `pool check` is clean; records the allocated space
#   check-freed    after the guest discarded c: `pool show --json` reports less allocated
#                  space (within 15 s: freed extents return at the pool's next commit, 2 s)
set -euo pipefail
# shellcheck disable=SC2034 # used by host-common.sh
INTEROP_PROG=pool-quota.host
# shellcheck source-path=SCRIPTDIR source=../lib/host-common.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/host-common.sh"

NQN=nqn.2026-11.io.edgeblock:pool-quota
daemon_cli
state=${INTEROP_RUN_DIR:?}/pool-quota.allocated-full
eb() {
    echo "\$ edgeblock $*" >&2
    (cd "$EDGEBLOCK_DAEMON_CWD" && "${cli[@]}" "$@" --api-socket "$data_dir/api.sock")
}
# json_field NAME: the first "NAME": <number> of the JSON on stdin.
json_field() { grep -o "\"$1\": *[0-9]*" | head -n 1 | grep -o '[0-9]*$'; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }

case ${1:-} in
    setup)
        mkdir -p "$data_dir/drives"
        eb pool create q "$data_dir/drives/d0.img:256M" "$data_dir/drives/d1.img:256M"
        eb volume create q/a --size 64M
        eb volume create q/b --size 64M
        eb group set q/t --quota 32M
        eb volume create q/c --size 128M --group t
        eb subsystem create "$NQN" --allow-any-host
        eb namespace add "$NQN" --nsid 1 --volume q/a
        eb namespace add "$NQN" --nsid 2 --volume q/b
        eb namespace add "$NQN" --nsid 3 --volume q/c
        eb pool show q
        eb volume list q
        ;;
    measure-full)
        eb group list q
        eb volume list q
        json=$(eb pool show q --json)
        used=$(eb group list q --json | json_field used_bytes)
        [[ $used -eq $((32 << 20)) ]] || die "group t uses $(mib "$used"), expected exactly its quota of 32 MiB"
        refused=$(printf '%s' "$json" | json_field capacity_exceeded)
        [[ $refused -ge 1 ]] || die "the pool counted no Capacity Exceeded refusals"
        allocated=$(printf '%s' "$json" | json_field allocated_bytes)
        echo "$allocated" >"$state"
        echo "pool q: $(mib "$allocated") allocated, $refused write(s) refused with Capacity Exceeded"
        eb pool check q
        ;;
    check-freed)
        [[ -f $state ]] || die "check-freed without measure-full"
        before=$(cat "$state") after=$before
        for _ in $(seq 1 30); do
            after=$(eb pool show q --json | json_field allocated_bytes)
            ((after <= before - (32 << 20))) && break
            sleep 0.5
        done
        eb pool show q
        ((after <= before - (32 << 20))) ||
            die "pool show reports $(mib "$after") allocated after discarding c (before: $(mib "$before")): the 32 MiB did not come back"
        echo "allocated: $(mib "$before") -> $(mib "$after"): the discarded space is back"
        eb pool check q
        ;;
    *) die "unknown action '${1:-}' (setup, measure-full, check-freed)" ;;
esac
