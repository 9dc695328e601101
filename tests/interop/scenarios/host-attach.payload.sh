#!/usr/bin/env bash
# host-attach.payload.sh STAGE_DIR: our daemon for the guest, published as for kernel-engine.
exec bash "$(dirname "${BASH_SOURCE[0]}")/kernel-engine.payload.sh" "$@"
