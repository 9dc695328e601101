#!/usr/bin/env bash
# Host hook of the crash-restart scenario (run by host-action.sh on the guest's request).
#   kill-restart  SIGKILL the daemon, then start it again with the same command line and
#                 data directory, and wait until it accepts connections
# The daemon's description comes from run-all.sh (EDGEBLOCK_DAEMON_* in host-common.sh).
set -euo pipefail
# shellcheck disable=SC2034 # used by host-common.sh
INTEROP_PROG=crash-restart.host
# shellcheck source-path=SCRIPTDIR source=../lib/host-common.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/host-common.sh"

case ${1:-} in
    kill-restart)
        [[ -n ${EDGEBLOCK_DAEMON_ARGV:-} && -f ${EDGEBLOCK_DAEMON_ARGV:-} ]] ||
            die "no daemon to restart: run this scenario through run-all.sh (EDGEBLOCK_DAEMON_ARGV is not set)"
        t=$(now)
        pid=$(daemon_pid)
        daemon_kill9
        echo "daemon pid $pid killed with SIGKILL"
        daemon_start
        echo "daemon restarted as pid $(daemon_pid) in $(elapsed "$t")s"
        ;;
    *) die "unknown action '${1:-}' (kill-restart)" ;;
esac
