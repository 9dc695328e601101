#!/usr/bin/env bash
# Host hook of the dhchap scenario: sets the host's DH-HMAC-CHAP secrets with the CLI, which reads
# them from a file or stdin (never argv).
#   create  subsystem + memory namespace; the host allowed with KEY1 (SHA-256, null DH, unidirectional)
#   bidi    KEY1 + the controller secret, SHA-384, ffdhe2048 (bidirectional)
#   rekey   KEY2 + the controller secret, same hash and group (the guest then re-authenticates)
set -euo pipefail
# shellcheck disable=SC2034 # used by host-common.sh
INTEROP_PROG=dhchap.host
# shellcheck source-path=SCRIPTDIR source=../lib/host-common.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/host-common.sh"
# shellcheck source-path=SCRIPTDIR source=dhchap.conf
. "$(dirname "${BASH_SOURCE[0]}")/dhchap.conf"

daemon_cli
eb() {
    echo "\$ edgeblock $*"
    (cd "$EDGEBLOCK_DAEMON_CWD" && "${cli[@]}" "$@" --api-socket "$data_dir/api.sock")
}
ctrl_file=$(mktemp)
trap 'rm -f "$ctrl_file"' EXIT
printf '%s\n' "$DHCHAP_CTRL" >"$ctrl_file"

case ${1:-} in
    create)
        eb subsystem create "$DHCHAP_NQN"
        eb namespace add "$DHCHAP_NQN" --nsid 1 --backend memory:64M
        printf '%s\n' "$DHCHAP_KEY1" | eb subsystem add-host "$DHCHAP_NQN" "$DHCHAP_HOSTNQN" --dhchap-secret-file -
        ;;
    bidi)
        printf '%s\n' "$DHCHAP_KEY1" | eb subsystem set-host-secret "$DHCHAP_NQN" "$DHCHAP_HOSTNQN" --dhchap-secret-file - \
            --dhchap-ctrl-secret-file "$ctrl_file" --dhchap-hash sha384 --dhchap-dhgroup ffdhe2048
        ;;
    rekey)
        printf '%s\n' "$DHCHAP_KEY2" | eb subsystem set-host-secret "$DHCHAP_NQN" "$DHCHAP_HOSTNQN" --dhchap-secret-file - \
            --dhchap-ctrl-secret-file "$ctrl_file" --dhchap-hash sha384 --dhchap-dhgroup ffdhe2048
        ;;
    *) die "unknown action '${1:-}' (create, bidi, rekey)" ;;
esac
eb subsystem show "$DHCHAP_NQN" --json
# The API never shows a secret.
if eb subsystem show "$DHCHAP_NQN" --json | grep -q 'DHHC-1'; then die "the API returned a secret"; fi
