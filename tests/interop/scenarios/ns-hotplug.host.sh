#!/usr/bin/env bash
# Host hook of the ns-hotplug scenario: changes the live daemon through its management CLI.
#   add-ns     edgeblock namespace add (nsid 2, 64 MiB in memory)
#   remove-ns  edgeblock namespace remove (nsid 2)
set -euo pipefail
# shellcheck disable=SC2034 # used by host-common.sh
INTEROP_PROG=ns-hotplug.host
# shellcheck source-path=SCRIPTDIR source=../lib/host-common.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/host-common.sh"

[[ -n ${DEFAULT_IMG:-} && -n ${EDGEBLOCK_DAEMON_CWD:-} ]] ||
    die "no daemon to change: run this scenario through run-all.sh (DEFAULT_IMG is not set)"
nqn=nqn.2026-11.io.edgeblock:default
cli() { (cd "$EDGEBLOCK_DAEMON_CWD" && ./edgeblock "$@" --api-socket "$(dirname "$DEFAULT_IMG")/api.sock"); }

case ${1:-} in
    add-ns) cli namespace add "$nqn" --nsid 2 --backend memory:64M ;;
    remove-ns) cli namespace remove "$nqn" 2 ;;
    *) die "unknown action '${1:-}' (add-ns, remove-ns)" ;;
esac
cli namespace list "$nqn"
