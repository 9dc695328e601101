#!/bin/sh
# ns-hotplug: namespaces added and removed on the target while the kernel host is connected.
# The host hook adds namespace 2 through the management CLI; the target raises a Namespace
# Attribute Changed event, the kernel reads the Changed Namespace List and a new block device
# appears, usable at once. Removing it makes the device go away, while namespace 1 keeps working.
set -eu
. /interop-lib.sh
scenario_begin

step "connect"
connect -i 2
ns1=$NS

step "add namespace 2 on the target while connected"
host_action add-ns
NSID=2
i=0
until ns2=$(find_ns) && [ -b "/dev/$ns2" ]; do
    [ $i -lt 300 ] || fail "namespace 2 did not appear within 30 s (no AEN / rescan?)"
    sleep 0.1
    i=$((i + 1))
done
log "namespace 2 appeared as /dev/$ns2 ($(blockdev --getsize64 "/dev/$ns2") bytes)"
[ "$(blockdev --getsize64 "/dev/$ns2")" = $((64 * 1048576)) ] || fail "/dev/$ns2 is not 64 MiB"

step "I/O on the new namespace"
random_file /tmp/p2 4
dev_write /tmp/p2 "/dev/$ns2" 8
[ "$(dev_sha256 "/dev/$ns2" 8 4)" = "$(sha256 /tmp/p2)" ] || fail "data on the hot-added namespace is wrong"

step "remove namespace 2 while connected"
host_action remove-ns
i=0
while [ -b "/dev/$ns2" ]; do
    [ $i -lt 300 ] || fail "/dev/$ns2 is still there 30 s after the namespace was removed"
    sleep 0.1
    i=$((i + 1))
done
log "/dev/$ns2 went away"

step "namespace 1 still works"
random_file /tmp/p1 2
dev_write /tmp/p1 "$ns1" 16
[ "$(dev_sha256 "$ns1" 16 2)" = "$(sha256 /tmp/p1)" ] || fail "namespace 1 broke after the hot-plug"

NSID=1
step "disconnect"
disconnect
scenario_end
