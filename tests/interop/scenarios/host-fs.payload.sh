#!/usr/bin/env bash
# host-fs.payload.sh STAGE_DIR: the same daemon for the guest as host-attach.
exec bash "$(dirname "${BASH_SOURCE[0]}")/host-attach.payload.sh" "$@"
