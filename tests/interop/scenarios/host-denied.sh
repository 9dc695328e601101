#!/bin/sh
# host-denied: the target admits only the hosts on its access list. The target is set up
# to allow ALLOWED_HOSTNQN only (daemon: --allow-host; reference: nvmet allowed_hosts).
# Connecting as another host must fail; connecting as the allowed host must work.
set -eu
. /interop-lib.sh
scenario_begin
: "${ALLOWED_HOSTNQN:?ALLOWED_HOSTNQN is not set (see host-denied.conf)}"
: "${DENIED_HOSTNQN:=nqn.2014-08.org.nvmexpress:uuid:someone-else}"

# Each host NQN gets its own host ID: the kernel refuses one NQN with two IDs.
denied_id=$(cat /proc/sys/kernel/random/uuid)
allowed_id=$(cat /proc/sys/kernel/random/uuid)

step "discovery as the denied host (informational)"
if nvme discover -t tcp -a "$TARGET_ADDR" -s "$TARGET_PORT" \
    --hostnqn "$DENIED_HOSTNQN" --hostid "$denied_id" >/tmp/disc-denied.txt 2>&1; then
    if grep -Eq "^subnqn: +$NQN\$" /tmp/disc-denied.txt; then
        log "note: the discovery log shows $NQN to a host that may not connect to it"
    else
        log "the discovery log hides $NQN from the denied host"
    fi
else
    log "note: discovery as the denied host failed: $(tail -n 1 /tmp/disc-denied.txt)"
fi

step "connect as $DENIED_HOSTNQN must fail"
if run nvme connect -t tcp -a "$TARGET_ADDR" -s "$TARGET_PORT" -n "$NQN" -i 2 \
    --hostnqn "$DENIED_HOSTNQN" --hostid "$denied_id"; then
    nvme disconnect -n "$NQN" || true
    fail "the target accepted $DENIED_HOSTNQN, which is not on its access list"
fi
if find_ctrl >/dev/null; then fail "a controller for $NQN exists after the refused connect"; fi
log "refused, as it should be"
dmesg | grep -i nvme | tail -n 3 || true

step "connect as $ALLOWED_HOSTNQN must work"
connect -i 2 --hostnqn "$ALLOWED_HOSTNQN" --hostid "$allowed_id"
[ "$(cat "/sys/class/nvme/$CTRL/hostnqn")" = "$ALLOWED_HOSTNQN" ] ||
    fail "$CTRL uses host NQN $(cat "/sys/class/nvme/$CTRL/hostnqn")"
random_file /tmp/data 1
dev_write /tmp/data "$NS" 0
[ "$(dev_sha256 "$NS" 0 1)" = "$(sha256 /tmp/data)" ] || fail "1 MiB did not read back"
log "the allowed host reads and writes"

step "disconnect"
disconnect
scenario_end
