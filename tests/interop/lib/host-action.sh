#!/usr/bin/env bash
# host-action.sh — runs a scenario's host hook on behalf of the guest.
#
# run-scenario.sh starts QEMU with
#     -netdev user,...,guestfwd=tcp:10.0.2.100:7777-cmd:bash host-action.sh
# so each TCP connection the guest opens to 10.0.2.100:7777 starts this script with the
# connection as its stdin and stdout. The guest sends one word (after printing
# `EDGEBLOCK-HOST-ACTION <word>` on its console); this script runs
#     scenarios/$INTEROP_SCENARIO.host.sh <word>
# if that hook exists, streams its output back, and ends with the line
#     EDGEBLOCK-HOST-ACTION-RESULT rc=<hook exit status>
# The guest waits for that line, so a host action is synchronous for the guest.
# Everything is also recorded in $INTEROP_RUN_DIR (host-actions.log, host-actions.status)
# for the runner, which fails the scenario when a hook failed.
#
# Environment (exported by run-scenario.sh, inherited through QEMU):
#   INTEROP_SCENARIO, INTEROP_RUN_DIR, plus whatever the hooks need (DEFAULT_IMG,
#   EDGEBLOCK_DAEMON_*).
set -uo pipefail
# shellcheck disable=SC2034 # used by host-common.sh
INTEROP_PROG=host-action
# shellcheck source-path=SCRIPTDIR source=host-common.sh
. "$(dirname "${BASH_SOURCE[0]}")/host-common.sh"

result() {
    printf '%s %s\n' "$1" "$2" >>"$INTEROP_RUN_DIR/host-actions.status"
    echo "EDGEBLOCK-HOST-ACTION-RESULT rc=$2"
    exit 0
}

# The runner stops this process (and the hook under it) if it outlives the guest.
echo "$$" >>"$INTEROP_RUN_DIR/host-action.pids"

word=
read -r -t 10 word || true
word=${word%$'\r'}
if [[ ! $word =~ ^[a-z0-9][a-z0-9-]*$ ]]; then
    echo "host-action: bad request '${word}'"
    result "invalid" 2
fi

hook=$INTEROP_DIR/scenarios/$INTEROP_SCENARIO.host.sh
start=$(now)
{
    echo "==== $(date -u +%FT%TZ) $INTEROP_SCENARIO: host action '$word'"
} >>"$INTEROP_RUN_DIR/host-actions.log"
if [[ -f $hook ]]; then
    # The hook's output goes to the guest (stdout is the connection) and to the log.
    bash "$hook" "$word" 2>&1 | tee -a "$INTEROP_RUN_DIR/host-actions.log"
    rc=${PIPESTATUS[0]}
else
    echo "no host hook scenarios/$INTEROP_SCENARIO.host.sh: nothing to do for '$word'" |
        tee -a "$INTEROP_RUN_DIR/host-actions.log"
    rc=0
fi
echo "==== '$word' rc=$rc ($(elapsed "$start")s)" >>"$INTEROP_RUN_DIR/host-actions.log"
result "$word" "$rc"
