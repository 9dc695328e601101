#!/usr/bin/env bash
# Host hook of the data-services scenario: a volume with lz4 compression, checksums and
# encryption, set up and judged with the `edgeblock` CLI over the live daemon's API socket
# (DATA-DIR/api.sock).
#   setup  pool ds over one 512M file drive (in the data dir), volume ds/v (256M,
#          --compress lz4 --checksum on --encrypt, key file of 64 random bytes, mode 0600);
#          subsystem with namespace 1 = ds/v
#   check  after the guest's fio and ext4 passes: `volume show --json` has a compression
#          ratio above 1.5 (the guest wrote mostly text) and no checksum errors; the daemon
#          logged no errors; `pool check` is clean
set -euo pipefail
# shellcheck disable=SC2034 # used by host-common.sh
INTEROP_PROG=data-services.host
# shellcheck source-path=SCRIPTDIR source=../lib/host-common.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/host-common.sh"

NQN=nqn.2026-11.io.edgeblock:data-services
VOLUME=ds/v
MIN_RATIO=1.5
daemon_cli
eb() {
    echo "\$ edgeblock $*" >&2
    (cd "$EDGEBLOCK_DAEMON_CWD" && "${cli[@]}" "$@" --api-socket "$data_dir/api.sock")
}
# json_value NAME: the first "NAME": <number|true|false|"string"> of the JSON on stdin, bare.
json_value() {
    grep -o "\"$1\": *\(\"[^\"]*\"\|[-0-9.eE+]*\|true\|false\)" | head -n 1 | sed 's/^[^:]*: *//; s/"//g'
}
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }

case ${1:-} in
    setup)
        mkdir -p "$data_dir/drives"
        eb pool create ds "$data_dir/drives/d0.img:512M"
        (umask 077 && head -c 64 /dev/urandom >"$data_dir/ds-v.key")
        eb volume create "$VOLUME" --size 256M --compress lz4 --checksum on --encrypt --key-file "$data_dir/ds-v.key"
        eb subsystem create "$NQN" --allow-any-host
        eb namespace add "$NQN" --nsid 1 --volume "$VOLUME"
        json=$(eb volume show "$VOLUME" --json)
        # The daemon must have kept what was asked, or the rest proves nothing.
        [[ $(json_value compression <<<"$json") == lz4 && $(json_value checksum <<<"$json") == true && $(json_value encrypted <<<"$json") == true ]] ||
            die "$VOLUME was created with --compress lz4 --checksum on --encrypt, but the daemon reports: $json"
        eb volume show "$VOLUME"
        ;;
    check)
        json=$(eb volume show "$VOLUME" --json)
        eb volume show "$VOLUME"
        ratio=$(json_value compression_ratio <<<"$json")
        errors=$(json_value checksum_errors <<<"$json")
        logical=$(json_value logical_bytes <<<"$json")
        physical=$(json_value physical_bytes <<<"$json")
        [[ -n $ratio && -n $errors && -n $logical && -n $physical ]] ||
            die "volume show --json of $VOLUME lacks compression_ratio, checksum_errors, logical_bytes or physical_bytes: $json"
        echo "$VOLUME: logical $(mib "$logical"), physical $(mib "$physical"), ratio $ratio, checksum errors $errors"
        [[ $errors == 0 ]] || die "$VOLUME: $errors checksum error(s): reads found stored data that did not match its checksum"
        awk -v r="$ratio" -v m="$MIN_RATIO" 'BEGIN { exit !(r > m) }' ||
            die "$VOLUME: compression ratio $ratio, expected above $MIN_RATIO (logical $(mib "$logical"), physical $(mib "$physical")): the guest's text was not stored compressed"
        # Background work of chunk volumes (commits, compaction) fails only in the log.
        if [[ -f ${EDGEBLOCK_DAEMON_LOG:-} ]] && grep -qE '^(fail|crit):|\b(fail|crit): ' "$EDGEBLOCK_DAEMON_LOG"; then
            grep -E '^(fail|crit):|\b(fail|crit): ' "$EDGEBLOCK_DAEMON_LOG" | head -n 5 | cut -c1-400
            eb pool check ds || true
            die "the daemon logged errors (above; $EDGEBLOCK_DAEMON_LOG)"
        fi
        eb pool check ds
        ;;
    *) die "unknown action '${1:-}' (setup, check)" ;;
esac
