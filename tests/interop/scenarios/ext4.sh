#!/bin/sh
# ext4: a real file system on the namespace. mkfs.ext4, mount, write files of random data,
# record their SHA-256, sync, unmount, mount again, compare, unmount, and e2fsck -fn finds
# the file system clean.
set -eu
. /interop-lib.sh
scenario_begin

step "connect with 2 I/O queues"
connect -i 2

ext4_roundtrip "$NS"

step "disconnect"
disconnect
scenario_end
