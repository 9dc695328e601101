#!/bin/sh
# cli-manage: what the `edgeblock` CLI configures on the live daemon is what the kernel host
# sees. The host hook creates a subsystem and a file-backed namespace with the CLI; the guest
# connects and writes; a namespace added while connected appears (the target's namespace
# attribute notice makes the kernel rescan), and disappears when removed; after a graceful
# daemon restart the configuration is back from its file: the kernel reconnects by itself,
# the namespace keeps its identifiers and the flushed data reads back.
set -eu
. /interop-lib.sh
if [ "$REFERENCE" = 1 ]; then
    log "reference mode: cli-manage configures our daemon with its CLI; nothing to check against nvmet: SKIPPED"
    scenario_end
    exit 0
fi
scenario_begin
: "${CLI_NQN:?CLI_NQN is not set (see cli-manage.conf)}"

step "host: edgeblock subsystem create + namespace add"
host_action create
NQN=$CLI_NQN
NSID=1

step "connect to $NQN"
connect -i 2 --ctrl-loss-tmo=60 --reconnect-delay=1
[ "$(blockdev --getsize64 "$NS")" = 67108864 ] || fail "namespace 1 is $(blockdev --getsize64 "$NS") bytes, configured 64M"
random_file /tmp/pattern 4
want=$(sha256 /tmp/pattern)
dev_write /tmp/pattern "$NS" 8
run blockdev --flushbufs "$NS"
run nvme flush "$NS" || fail "nvme flush failed"
log "4 MiB written and flushed: sha256 $want"

step "host: edgeblock namespace add --nsid 2 while connected"
host_action add-ns2
NSID=2
wait_ns PRESENT 20 || fail "namespace 2 did not appear within 20 s (no namespace-changed event, or no rescan)"
ns2=/dev/$(find_ns)
[ "$(blockdev --getsize64 "$ns2")" = 33554432 ] || fail "namespace 2 is $(blockdev --getsize64 "$ns2") bytes, configured 32M"
log "namespace 2 appeared as $ns2"

step "host: edgeblock namespace remove 2 while connected"
host_action remove-ns2
wait_ns ABSENT 20 || fail "namespace 2 is still there 20 s after its removal"
log "namespace 2 is gone"
dmesg | grep -iE "nvme|rescan" | tail -n 4 || true
NSID=1
[ -b "$NS" ] || fail "namespace 1 ($NS) went away with namespace 2"

step "host: graceful daemon restart; the config brings $NQN back"
reconnects() { dmesg | grep -c "nvme $CTRL: Successfully reconnected" || true; }
before=$(reconnects)
host_action restart
i=0
until [ "$(reconnects)" -gt "$before" ] && [ "$(ctrl_state)" = live ]; do
    [ $i -lt 900 ] || fail "$CTRL did not reconnect within 90 s (state: $(ctrl_state))"
    sleep 0.1
    i=$((i + 1))
done
if dmesg | grep -q "nvme $CTRL: identifiers changed for nsid $NSID"; then
    fail "namespace identifiers changed across the restart (the UUID must come back from the config)"
fi
[ -b "$NS" ] || fail "$NS is gone after the reconnect"
got=$(dev_sha256 "$NS" 8 4)
[ "$got" = "$want" ] || fail "data changed across the restart: read $got, wrote $want"
log "reconnected; namespace 1 and its data are back"

step "disconnect"
disconnect
scenario_end
