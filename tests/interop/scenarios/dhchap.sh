#!/bin/sh
# dhchap: NVMe in-band authentication (DH-HMAC-CHAP) with the Linux host (6.12 guest kernel).
# The host hook sets the secrets through the CLI. A wrong secret and no secret are refused; the
# right one connects (SHA-256, null DH) and does I/O; bidirectional with ffdhe2048/SHA-384 works and
# a wrong controller secret is caught by the host; after the secret changes on the target, writing
# the new one to /sys/class/nvme/nvmeX/dhchap_secret re-authenticates every queue and I/O goes on.
set -eu
. /interop-lib.sh
scenario_begin
: "${DHCHAP_HOSTNQN:?see dhchap.conf}"
[ "$REFERENCE" = 1 ] && { log "SKIPPED: the secrets are set through the daemon's CLI (no reference target setup)"; scenario_end; exit 0; }
hostid=$(cat /proc/sys/kernel/random/uuid)
as_host="--hostnqn $DHCHAP_HOSTNQN --hostid $hostid"

# io_check: 1 MiB written at OFFSET_MIB, read back identical.
io_check() {
    random_file /tmp/data 1
    dev_write /tmp/data "$NS" "$1"
    [ "$(dev_sha256 "$NS" "$1" 1)" = "$(sha256 /tmp/data)" ] || fail "1 MiB at ${1} MiB did not read back"
    log "1 MiB at ${1} MiB written and read back"
}

# refused WHAT ARGS...: the connect must fail and leave no controller.
refused() {
    what=$1
    shift
    # shellcheck disable=SC2086
    if run nvme connect -t tcp -a "$TARGET_ADDR" -s "$TARGET_PORT" -n "$NQN" -i 2 $as_host "$@"; then
        nvme disconnect -n "$NQN" || true
        fail "the connect with $what succeeded"
    fi
    if find_ctrl >/dev/null; then fail "a controller for $NQN exists after the refused connect ($what)"; fi
    log "refused ($what), as it should be"
}

authenticated_count() { dmesg | grep -c "qid 0: authenticated" || true; }

step "target: host allowed with a DH-HMAC-CHAP secret (SHA-256, null DH)"
host_action create

step "no secret, and a wrong secret, are refused"
refused "no secret"
refused "a wrong secret" --dhchap-secret "$DHCHAP_WRONG"
dmesg | grep -i "nvme" | tail -n 3 || true

step "the right secret connects (2 I/O queues) and does I/O"
# shellcheck disable=SC2086
connect -i 2 $as_host --dhchap-secret "$DHCHAP_KEY1"
dmesg | grep "qid 0: authenticated" | tail -n 1
io_check 0
disconnect

step "bidirectional (SHA-384, ffdhe2048): a wrong controller secret is caught by the host"
host_action bidi
refused "a wrong controller secret" --dhchap-secret "$DHCHAP_KEY1" --dhchap-ctrl-secret "$DHCHAP_CTRL_WRONG"
dmesg | grep -i "controller authentication failed" | tail -n 1 ||
    log "note: no 'controller authentication failed' line in dmesg"

step "bidirectional with the right secrets connects and does I/O"
# shellcheck disable=SC2086
connect -i 2 $as_host --dhchap-secret "$DHCHAP_KEY1" --dhchap-ctrl-secret "$DHCHAP_CTRL"
dmesg | grep -E "qid 0: (authenticated|controller authenticated)" | tail -n 2
dmesg | grep -q "qid 0: controller authenticated" || fail "the kernel did not report the controller authenticated"
io_check 2

step "re-authentication: the target's secret changes, the host gets the new one through sysfs"
host_action rekey
lines_before=$(dmesg | wc -l)
before=$(authenticated_count)
echo "$DHCHAP_KEY2" >"/sys/class/nvme/$CTRL/dhchap_secret" || fail "cannot write /sys/class/nvme/$CTRL/dhchap_secret"
i=0
until [ "$(authenticated_count)" -gt "$before" ]; do
    [ $i -lt 300 ] || fail "no new 'qid 0: authenticated' in dmesg 30 s after the secret change"
    sleep 0.1
    i=$((i + 1))
done
sleep 2 # the I/O queues re-authenticate after the admin queue
dmesg | tail -n +"$((lines_before + 1))" >/tmp/reauth.txt
cat /tmp/reauth.txt
if grep -q "authentication failed" /tmp/reauth.txt; then fail "the kernel reports a failed authentication after the secret change"; fi
grep -q "qid 0: controller authenticated" /tmp/reauth.txt || fail "the re-authentication did not authenticate the controller again"
wait_state live 10 || fail "$CTRL is $(ctrl_state) after re-authentication"
io_check 4
disconnect

step "after the change only the new secret connects"
refused "the old secret" --dhchap-secret "$DHCHAP_KEY1" --dhchap-ctrl-secret "$DHCHAP_CTRL"
# shellcheck disable=SC2086
connect -i 2 $as_host --dhchap-secret "$DHCHAP_KEY2" --dhchap-ctrl-secret "$DHCHAP_CTRL"
io_check 6
disconnect
scenario_end
