#!/usr/bin/env bash
# Host hook of the cli-manage scenario: configures the live daemon with the `edgeblock` CLI
# over its API socket (DATA-DIR/api.sock, as `serve --data-dir` puts it).
#   create      subsystem (any host) + namespace 1 on a file in the data directory
#   add-ns2     namespace 2 (memory) while the guest is connected
#   remove-ns2  namespace 2 removed while the guest is connected
#   restart     graceful stop (SIGINT) and start with the same command line; then the CLI
#               must show the subsystem again (the config file brought it back)
set -euo pipefail
# shellcheck disable=SC2034 # used by host-common.sh
INTEROP_PROG=cli-manage.host
# shellcheck source-path=SCRIPTDIR source=../lib/host-common.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/host-common.sh"

NQN=nqn.2026-11.io.edgeblock:cli-managed
daemon_cli
eb() {
    echo "\$ edgeblock $*"
    (cd "$EDGEBLOCK_DAEMON_CWD" && "${cli[@]}" "$@" --api-socket "$data_dir/api.sock")
}

case ${1:-} in
    create)
        eb subsystem create "$NQN" --allow-any-host
        eb namespace add "$NQN" --nsid 1 --backend file:cli-ns1.img:64M
        eb subsystem show "$NQN"
        ;;
    add-ns2) eb namespace add "$NQN" --nsid 2 --backend memory:32M ;;
    remove-ns2) eb namespace remove "$NQN" 2 ;;
    restart)
        rc=0
        daemon_stop || rc=$?
        [[ $rc -eq 0 ]] || die "the daemon did not stop cleanly on SIGINT (daemon_stop rc=$rc)"
        echo "daemon stopped cleanly"
        daemon_start
        eb namespace list "$NQN"
        eb namespace list "$NQN" --json | grep -q '"backend": "file:cli-ns1.img:64M"' ||
            die "after the restart the daemon does not have namespace 1 of $NQN"
        eb host list
        ;;
    *) die "unknown action '${1:-}' (create, add-ns2, remove-ns2, restart)" ;;
esac
