#!/usr/bin/env bash
# host-attach.payload.sh STAGE_DIR: our daemon for the guest, published as for kernel-engine, plus RocksDB's
# native library (pools need it; a single-file publish keeps native libraries out of the bundle, and RocksDbSharp
# looks for them beside the binary). Taken from the publish's build output, which an incremental publish keeps.
set -euo pipefail

INTEROP_PROG=host-attach-payload
# shellcheck source-path=SCRIPTDIR source=../lib/host-common.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/host-common.sh"

STAGE=${1:?usage: host-attach.payload.sh STAGE_DIR}
bash "$INTEROP_DIR/scenarios/kernel-engine.payload.sh" "$STAGE"
LIB=$INTEROP_CACHE/kernel-engine/artifacts/bin/EdgeBlock.Cli/release_linux-x64/librocksdb.so
[[ -f $LIB ]] || die "$LIB is missing after the publish (RocksDb package layout changed?)"
install -m 0755 "$LIB" "$STAGE/usr/local/bin/librocksdb.so"
