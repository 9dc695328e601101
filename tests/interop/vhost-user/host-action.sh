#!/usr/bin/env bash
# Host hook of the vhost-user-blk interop test. QEMU runs it (guestfwd) for each connection
# the guest opens to 10.0.2.100:7777; the guest sends one word and waits for the line
# EDGEBLOCK-HOST-ACTION-RESULT rc=N (the contract of guest/interop-lib.sh's host_action).
#   measure-before  record the allocated bytes of the exported file ($VHOST_IMG)
#   measure-after   fail unless they shrank since measure-before
set -uo pipefail
state=${VHOST_RUN_DIR:?}/allocated-before
allocated() { stat -c '%b %B' "$VHOST_IMG" | awk '{ print $1 * $2 }'; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
word=
read -r -t 10 word || true
word=${word%$'\r'}
rc=0
case $word in
    measure-before)
        n=$(allocated); echo "$n" >"$state"
        echo "allocated before discard: $(mib "$n")"
        ;;
    measure-after)
        before=$(cat "$state" 2>/dev/null || echo 0) after=$(allocated)
        echo "allocated after discard: $(mib "$after") (before: $(mib "$before"))"
        if ((after >= before)); then echo "the file did not shrink: discard does not free space"; rc=1; fi
        ;;
    *) echo "unknown host action '$word'"; rc=2 ;;
esac
echo "$word $rc" >>"$VHOST_RUN_DIR/host-actions.status"
echo "EDGEBLOCK-HOST-ACTION-RESULT rc=$rc"
