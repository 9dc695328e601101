#!/bin/sh
# discover: the kernel host discovers the subsystem, connects, and nvme-cli's admin
# commands (Identify controller/namespace, SMART and error logs, Get Features) work;
# then again with NVMe/TCP header and data digests, with a small direct read/write.
set -eu
. /interop-lib.sh
scenario_begin

step "discovery log lists $NQN"
run nvme discover -t tcp -a "$TARGET_ADDR" -s "$TARGET_PORT" >/tmp/discover.txt ||
    fail "nvme discover failed"
cat /tmp/discover.txt
grep -Eq "^subnqn: +$NQN\$" /tmp/discover.txt || fail "the discovery log does not list $NQN"
grep -Eq '^trtype: +tcp' /tmp/discover.txt || fail "the discovery log has no tcp entry"

# admin_commands: the Identify/log/feature commands a host tool runs, with a few checks
# of the answers.
admin_commands() {
    step "nvme list"
    run nvme list >/tmp/list.txt || fail "nvme list failed"
    cat /tmp/list.txt
    grep -q "$NS" /tmp/list.txt || fail "nvme list does not show $NS"

    step "nvme id-ctrl"
    run nvme id-ctrl "$CTRL_DEV" >/tmp/id-ctrl.txt || fail "nvme id-ctrl failed"
    grep -E '^(vid|sn|mn|fr|mdts|cntlid|ver|cntrltype|oacs|aerl|elpe|lpa|sqes|cqes|nn|oncs|vwc|sgls|ioccsz|iorcsz|subnqn) ' /tmp/id-ctrl.txt
    grep -Eq "^subnqn +: $NQN\$" /tmp/id-ctrl.txt || fail "id-ctrl subnqn is not $NQN"
    nn=$(sed -n 's/^nn *: *//p' /tmp/id-ctrl.txt)
    [ "${nn:-0}" -ge "$NSID" ] || fail "id-ctrl nn=$nn is below the namespace id $NSID"

    step "nvme id-ns -n $NSID"
    run nvme id-ns "$CTRL_DEV" -n "$NSID" >/tmp/id-ns.txt || fail "nvme id-ns failed"
    grep -E '^(nsze|ncap|nuse|nsfeat|nlbaf|flbas|dlfeat|lbaf +0) ' /tmp/id-ns.txt
    nsze=$(sed -n 's/^nsze *: *//p' /tmp/id-ns.txt)
    if [ -z "$nsze" ] || [ "$((nsze))" -le 0 ]; then fail "id-ns nsze is '$nsze'"; fi
    # The namespace size in the Identify data matches the block device the kernel made.
    lbads=$(sed -n 's/^lbaf  *0 .*lbads:\([0-9]*\).*/\1/p' /tmp/id-ns.txt)
    if [ -n "$lbads" ]; then
        [ $(((nsze) << lbads)) -eq "$(blockdev --getsize64 "$NS")" ] ||
            fail "nsze $nsze x 2^$lbads bytes != $(blockdev --getsize64 "$NS") bytes of $NS"
    fi

    step "nvme smart-log"
    run nvme smart-log "$CTRL_DEV" || fail "nvme smart-log failed"
    step "nvme error-log"
    run nvme error-log "$CTRL_DEV" -e 4 || fail "nvme error-log failed"
    step "nvme get-feature -f 7 (number of queues)"
    run nvme get-feature "$CTRL_DEV" -f 7 -H || fail "nvme get-feature -f 7 failed"
}

step "connect with 2 I/O queues"
connect -i 2
admin_commands
step "disconnect"
disconnect

step "connect with header and data digests (-g -G)"
connect -i 2 -g -G
admin_commands

step "direct write/read of 4 MiB with digests on"
random_file /tmp/data 4
want=$(sha256 /tmp/data)
dev_write /tmp/data "$NS" 8
got=$(dev_sha256 "$NS" 8 4)
[ "$got" = "$want" ] || fail "read back $got, wrote $want"
log "4 MiB at 8 MiB read back intact ($want)"

step "disconnect"
disconnect
scenario_end
