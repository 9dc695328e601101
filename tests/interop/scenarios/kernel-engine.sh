#!/bin/sh
# kernel-engine: `edgeblock serve --engine kernel` drives the Linux in-kernel target (nvmet)
# through configfs. Everything runs in this guest: our daemon (published by
# kernel-engine.payload.sh), the guest kernel's nvmet + nvmet-tcp, a memory-backed null_blk
# and a file on tmpfs as backends, and the guest's own NVMe/TCP host on 127.0.0.1.
# The CLI creates a subsystem, two namespaces and a listener; configfs has them (port
# address, links, device paths, UUIDs, buffered_io for tmpfs); the host connects, the NGUID
# is the configured UUID, fio verify=crc32c passes on both namespaces; removing namespace 2
# with the CLI removes it from configfs and from the host; deleting the subsystem and the
# listener with the CLI leaves configfs empty; the daemon stops cleanly.
# Under TCG every CLI call costs 20-40 s (a fresh .NET process, and the daemon's first use
# of each endpoint), so the scenario makes only the calls it checks. Refusals (null/memory
# backends), ordering rules and adoption after a restart are unit-tested against a fake
# configfs (tests/EdgeBlock.Daemon.Tests/KernelEngine).
set -eu
. /interop-lib.sh
: "${KERNEL_NQN:?KERNEL_NQN is not set (see kernel-engine.conf)}"
: "${FIO_SIZE:=32M}"
if [ "$REFERENCE" = 1 ]; then
    log "reference mode: this scenario always runs against the in-guest kernel target (driven by our daemon); running it as is"
fi

EB=/usr/local/bin/edgeblock
DATA=/tmp/eb
NVMET=/sys/kernel/config/nvmet
NQN=$KERNEL_NQN
TARGET_ADDR=127.0.0.1
TARGET_PORT=4420
SUB=$NVMET/subsystems/$NQN
export EDGEBLOCK_API_SOCKET=$DATA/api.sock
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_TieredPGO=0 # no instrumented tier: startup under TCG is all that matters here
DAEMON_PID=

log "daemon $EB, data dir $DATA, subsystem $NQN"

# expect_attr PATH VALUE: a configfs attribute has this value.
expect_attr() {
    [ -e "$1" ] || fail "$1 does not exist"
    got=$(cat "$1")
    [ "$got" = "$2" ] || fail "$1 is '$got', expected '$2'"
}

on_failure() {
    rc=$?
    if [ "$rc" -ne 0 ]; then
        echo "[$SCENARIO] --- daemon log (last 30) ---"
        tail -n 30 /tmp/daemon.log 2>/dev/null || true
        echo "[$SCENARIO] --- configfs ---"
        find "$NVMET" -maxdepth 4 2>/dev/null | head -n 60 || true
        dmesg | grep -i nvmet | tail -n 20 || true
    fi
    (exit "$rc") # _on_exit reads the status from $?
    _on_exit
}
trap on_failure EXIT

step "load nvmet, nvmet-tcp, null_blk; configfs"
modprobe nvmet || fail "modprobe nvmet"
modprobe nvmet_tcp || fail "modprobe nvmet_tcp"
modprobe null_blk nr_devices=1 gb=1 bs=512 memory_backed=1 || fail "modprobe null_blk"
grep -q ' /sys/kernel/config ' /proc/mounts || mount -t configfs none /sys/kernel/config
i=0
while [ ! -b /dev/nullb0 ]; do
    [ $i -lt 50 ] || fail "no /dev/nullb0"
    sleep 0.1
    i=$((i + 1))
done
[ -d "$NVMET/subsystems" ] || fail "$NVMET/subsystems is missing after modprobe nvmet"

step "edgeblock serve --engine kernel (empty desired state)"
mkdir -p "$DATA"
echo '{ "version": 1, "listeners": [], "subsystems": [] }' >"$DATA/edgeblock.json"
daemon_start --engine kernel

step "CLI: subsystem create, namespace add (null_blk, file on tmpfs), listener add"
eb subsystem create "$NQN" --allow-any-host || fail "subsystem create"
eb namespace add "$NQN" --nsid 1 --backend file:/dev/nullb0 || fail "namespace add 1"
eb namespace add "$NQN" --nsid 2 --backend file:$DATA/ns2.img:64M || fail "namespace add 2"
eb listener add 127.0.0.1:4420 || fail "listener add"

step "configfs has what the CLI asked for"
expect_attr "$SUB/attr_allow_any_host" 1
expect_attr "$SUB/namespaces/1/device_path" /dev/nullb0
expect_attr "$SUB/namespaces/1/enable" 1
expect_attr "$SUB/namespaces/2/device_path" "$DATA/ns2.img"
expect_attr "$SUB/namespaces/2/enable" 1
expect_attr "$SUB/namespaces/2/buffered_io" 1 # tmpfs has no O_DIRECT on 6.1
uuid=$(sed -n "/\"nsid\": 1,/,/uuid/s/.*\"uuid\": \"\\([^\"]*\\)\".*/\\1/p" "$DATA/edgeblock.json" | head -n 1)
[ -n "$uuid" ] || fail "no uuid of namespace 1 in $DATA/edgeblock.json"
expect_attr "$SUB/namespaces/1/device_uuid" "$uuid"
port=$(ls "$NVMET/ports")
[ "$(echo "$port" | wc -w)" = 1 ] || fail "expected one port, have: $port"
expect_attr "$NVMET/ports/$port/addr_trtype" tcp
expect_attr "$NVMET/ports/$port/addr_adrfam" ipv4
expect_attr "$NVMET/ports/$port/addr_traddr" 127.0.0.1
expect_attr "$NVMET/ports/$port/addr_trsvcid" 4420
[ -L "$NVMET/ports/$port/subsystems/$NQN" ] || fail "port $port does not link $NQN"
log "configfs: port $port tcp 127.0.0.1:4420 -> $NQN; namespaces 1 (/dev/nullb0) and 2 ($DATA/ns2.img, buffered_io) enabled; uuid $uuid"

step "nvme connect from this guest to 127.0.0.1:4420"
NSID=1
connect -i 2
ns1=$NS
id=$(nvme id-ns "$ns1" -o json 2>/dev/null | tr -d ' \n' | sed -n 's/.*"nguid":"\([0-9a-f]*\)".*/\1/p')
want=$(echo "$uuid" | tr -d '-')
[ "$id" = "$want" ] || fail "namespace 1 NGUID is '$id', expected $want (the UUID from the config)"
log "namespace 1 = $ns1, NGUID $id"

step "fio verify=crc32c on namespace 1 (null_blk)"
fio_verify "$ns1" ns1-4k 4k 0 "$FIO_SIZE" 16

step "fio verify=crc32c on namespace 2 (file on tmpfs)"
NSID=2
wait_ns PRESENT 20 || fail "namespace 2 is not there"
ns2=/dev/$(find_ns)
[ "$(blockdev --getsize64 "$ns2")" = 67108864 ] || fail "namespace 2 is $(blockdev --getsize64 "$ns2") bytes, configured 64M"
fio_verify "$ns2" ns2-4k 4k 0 16M 16

step "CLI: namespace remove 2 while connected"
eb namespace remove "$NQN" 2 || fail "namespace remove"
[ ! -e "$SUB/namespaces/2" ] || fail "$SUB/namespaces/2 is still in configfs"
wait_ns ABSENT 20 || fail "namespace 2 is still on the host 20 s after its removal"
[ -b "$ns1" ] || fail "namespace 1 went away with namespace 2"
log "namespace 2 gone from configfs and from the host; namespace 1 stays"

step "disconnect"
disconnect

step "CLI: subsystem delete, listener remove: configfs is empty again"
eb subsystem delete "$NQN" || fail "subsystem delete"
eb listener remove 127.0.0.1:4420 || fail "listener remove"
[ -z "$(ls "$NVMET/subsystems")" ] || fail "configfs still has subsystems: $(ls "$NVMET/subsystems")"
[ -z "$(ls "$NVMET/ports")" ] || fail "configfs still has ports: $(ls "$NVMET/ports")"
grep -q "$NQN" "$DATA/kernel-engine.json" && fail "$DATA/kernel-engine.json still lists $NQN"
log "configfs is empty again"

step "daemon stops"
daemon_stop
tail -n 12 /tmp/daemon.log

scenario_end
