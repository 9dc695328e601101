#!/bin/sh
# crash-restart: flushed data survives a target crash, and the kernel host reconnects by
# itself. The guest writes 16 MiB of random data, flushes (blockdev --flushbufs and an
# NVMe Flush), then the host hook kills the daemon with SIGKILL and restarts it with the
# same command and data directory. The controller must come back to "live" on its own
# (ctrl-loss-tmo 60 s, reconnect every second) and the data must read back intact; new
# I/O must work afterwards.
set -eu
. /interop-lib.sh
scenario_begin

step "connect with ctrl-loss-tmo 60 s, reconnect-delay 1 s"
connect -i 2 --ctrl-loss-tmo=60 --reconnect-delay=1

step "write 16 MiB of random data at 100 MiB and flush"
random_file /tmp/pattern 16
want=$(sha256 /tmp/pattern)
dev_write /tmp/pattern "$NS" 100
run blockdev --flushbufs "$NS"
run nvme flush "$NS" || fail "nvme flush failed"
log "written and flushed: sha256 $want"

step "target crash and restart"
# The kernel logs "nvme nvmeN: Successfully reconnected" after each reconnect; counting
# those proves the connection was really lost and re-established, even when the reconnect
# finished before the host action returned.
reconnects() { dmesg | grep -c "nvme $CTRL: Successfully reconnected" || true; }
before=$(reconnects)
host_action kill-restart

step "wait for the controller to reconnect (up to 90 s)"
i=0
until [ "$(reconnects)" -gt "$before" ] && [ "$(ctrl_state)" = live ]; do
    [ $i -lt 900 ] || fail "$CTRL did not reconnect within 90 s (state: $(ctrl_state))"
    sleep 0.1
    i=$((i + 1))
done
log "$CTRL reconnected and is live"
dmesg | grep -E "nvme $CTRL: " | tail -n 6 || true
# A target that comes back with other namespace identifiers (NGUID/EUI-64/UUID) makes the
# kernel drop the namespace: name that instead of failing later on a missing device.
if dmesg | grep -q "nvme $CTRL: identifiers changed for nsid $NSID"; then
    fail "the namespace identifiers changed across the restart; the kernel dropped namespace $NSID (a target must keep NGUID/EUI-64/UUID stable)"
fi
[ -b "$NS" ] || fail "$NS is gone after the reconnect"

step "read back the flushed data"
got=$(dev_sha256 "$NS" 100 16)
[ "$got" = "$want" ] || fail "flushed data changed across the crash: read $got, wrote $want"
log "16 MiB intact after the crash"

step "new I/O after the reconnect"
random_file /tmp/after 4
dev_write /tmp/after "$NS" 200
[ "$(dev_sha256 "$NS" 200 4)" = "$(sha256 /tmp/after)" ] || fail "I/O after the reconnect is wrong"

step "disconnect"
disconnect
scenario_end
