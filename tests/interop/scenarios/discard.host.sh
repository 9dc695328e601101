#!/usr/bin/env bash
# Host hook of the discard scenario (run by host-action.sh on the guest's request).
#   measure-before  record the allocated size of the daemon's backing storage
#   measure-after   fail unless it shrank since measure-before
# DEFAULT_IMG is the backing file of the default namespace (run-all.sh sets it); if it is
# a directory, the allocation of all files under it is summed.
set -euo pipefail
# shellcheck disable=SC2034 # used by host-common.sh
INTEROP_PROG=discard.host
# shellcheck source-path=SCRIPTDIR source=../lib/host-common.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/host-common.sh"

[[ -n ${DEFAULT_IMG:-} ]] || die "DEFAULT_IMG is not set: the path of the daemon's backing file (run-all.sh sets it)"
[[ -e $DEFAULT_IMG ]] || die "DEFAULT_IMG=$DEFAULT_IMG does not exist (EDGEBLOCK_DEFAULT_IMG_NAME names it inside the data dir)"
state=${INTEROP_RUN_DIR:?}/discard.allocated-before

# allocated_bytes: bytes actually allocated on disk (not the apparent size).
allocated_bytes() {
    if [[ -d $DEFAULT_IMG ]]; then
        du -s --block-size=1 "$DEFAULT_IMG" | cut -f1
    else
        stat -c '%b %B' "$DEFAULT_IMG" | awk '{ print $1 * $2 }'
    fi
}
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }

case ${1:-} in
    measure-before)
        n=$(allocated_bytes)
        echo "$n" >"$state"
        echo "allocated before discard: $(mib "$n") ($DEFAULT_IMG)"
        ;;
    measure-after)
        [[ -f $state ]] || die "measure-after without measure-before"
        before=$(cat "$state") after=$(allocated_bytes)
        echo "allocated after discard: $(mib "$after") (before: $(mib "$before"))"
        ((after < before)) || die "the backing storage did not shrink after the discard ($(mib "$before") -> $(mib "$after")): Deallocate does not release space"
        ;;
    *) die "unknown action '${1:-}' (measure-before, measure-after)" ;;
esac
