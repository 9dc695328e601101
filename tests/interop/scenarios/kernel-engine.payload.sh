#!/usr/bin/env bash
# kernel-engine.payload.sh STAGE_DIR: our own CLI/daemon for the guest, run by run-scenario.sh.
#
# `dotnet publish` of src/EdgeBlock.Cli for linux-x64, self-contained, one file (about
# 100 MB; no .NET in the guest), into $EDGEBLOCK_CACHE/kernel-engine/ (its own artifacts
# path, so the repository's obj/ and bin/ are left alone; incremental after the first time),
# then copied to STAGE_DIR/usr/local/bin/edgeblock with the shared libraries ldd finds.
# EDGEBLOCK_PAYLOAD_REF=REF (e.g. HEAD) publishes that commit (git archive) instead of the
# working tree, e.g. while someone's half-written change does not compile.
set -euo pipefail

INTEROP_PROG=kernel-engine-payload
# shellcheck source-path=SCRIPTDIR source=../lib/host-common.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/host-common.sh"

STAGE=${1:?usage: kernel-engine.payload.sh STAGE_DIR}
OUT=$INTEROP_CACHE/kernel-engine
command -v dotnet >/dev/null || die "dotnet is not installed: the kernel-engine scenario publishes the daemon for the guest"
mkdir -p "$OUT"
start=$(now)
SRC=$INTEROP_REPO_ROOT
if [[ -n ${EDGEBLOCK_PAYLOAD_REF:-} ]]; then
    SRC=$OUT/source
    rm -rf "$SRC"
    mkdir -p "$SRC"
    git -C "$INTEROP_REPO_ROOT" archive "$EDGEBLOCK_PAYLOAD_REF" | tar -x -C "$SRC"
    log "publishing $EDGEBLOCK_PAYLOAD_REF ($(git -C "$INTEROP_REPO_ROOT" rev-parse --short "$EDGEBLOCK_PAYLOAD_REF"))"
fi
if ! (cd "$SRC" && dotnet publish src/EdgeBlock.Cli -c Release -r linux-x64 --self-contained \
    -p:PublishSingleFile=true -p:DebugType=none --artifacts-path "$OUT/artifacts" -o "$OUT/publish") \
    >"$OUT/publish.log" 2>&1; then
    tail -n 20 "$OUT/publish.log" | sed 's/^/    | /' >&2
    die "dotnet publish failed; see $OUT/publish.log"
fi
BIN=$OUT/publish/edgeblock
log "published $BIN ($(du -h "$BIN" | cut -f1), $(elapsed "$start")s)"

install -D -m 0755 "$BIN" "$STAGE/usr/local/bin/edgeblock"
# The single-file host needs libstdc++, libgcc_s, libm... as on the host: copy what ldd finds.
while IFS= read -r line; do
    case $line in
        *"not found"*) die "edgeblock: missing library: $line" ;;
        *" => /"*) lib=${line#*=> }; lib=${lib%% (*} ;;
        *"=>"*) continue ;;
        *) lib=$(awk '{print $1}' <<<"$line"); [[ $lib == /* ]] || continue ;;
    esac
    mkdir -p "$STAGE/$(dirname "$lib")"
    cp -L "$lib" "$STAGE/$lib"
done < <(ldd "$BIN")
