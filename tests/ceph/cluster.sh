#!/usr/bin/env bash
# A throwaway single-node Ceph cluster for tests: one monitor and one OSD on 127.0.0.1, BlueStore on
# a sparse file, replication size 1, cephx on, no systemd, no root needed.
#
#   tests/ceph/cluster.sh start DIR   creates DIR (must not exist or be empty), starts the cluster, creates
#                                     pool "rbd" and user client.edgeblock (keyring DIR/edgeblock.keyring, 0600);
#                                     prints "ceph cluster up in N s, mon RSS N MiB, osd RSS N MiB, conf DIR/ceph.conf"
#   tests/ceph/cluster.sh stop DIR    kills its daemons (SIGKILL: it is throwaway) and removes DIR
#   tests/ceph/cluster.sh kill-osd DIR / start-osd DIR   stop or restart the OSD (cluster-gone tests); start-osd
#                                     returns once the pool answers I/O again
#   tests/ceph/cluster.sh kill-mon DIR / start-mon DIR   stop or restart the monitor (a cluster gone when a client
#                                     connects); start-mon returns once the monitor answers
#   tests/ceph/cluster.sh heal DIR    restarts the monitor or OSD that is not running (after a test that killed it
#                                     failed midway)
#
# DIR must be on a disk-backed file system: BlueStore opens its block file with O_DIRECT.
# Exit status 0 when the cluster serves I/O; otherwise 1 with the reason on stderr and DIR/out/ logs.
set -euo pipefail

cmd=${1:-}; D=${2:-}
[ -n "$cmd" ] && [ -n "$D" ] || { echo "usage: $0 start|stop|kill-osd|start-osd|kill-mon|start-mon|heal DIR" >&2; exit 64; }

fail() { echo "ceph cluster: $*" >&2; exit 1; }

# The monitor's port: a free one, so parallel clusters (and a system Ceph) never collide. OSDs pick their own in 6800-7300.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

rss_mib() { # RSS of the daemon whose pid file is $1, in MiB
  local pid; pid=$(cat "$1" 2>/dev/null) || { echo 0; return; }
  awk '/^VmRSS:/ { printf "%d", $2 / 1024 }' "/proc/$pid/status" 2>/dev/null || echo 0
}

write_conf() {
  local fsid=$1 port=$2
  cat >"$D/ceph.conf" <<EOF
[global]
fsid = $fsid
mon host = v2:127.0.0.1:$port
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind ipv6 = false
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
mon warn on insecure global id reclaim allowed = false
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon data avail warn = 2
mon data avail crit = 1
run dir = $D/run
log file = $D/out/\$name.log
pid file = $D/run/\$name.pid
keyring = $D/keyring
mon data = $D/mon.\$id
osd data = $D/osd.\$id
[mon]
mon cluster log file = $D/out/\$cluster.\$channel.log
admin socket = $D/run/\$name.asok
[client]
admin socket = $D/run/\$name.\$pid.asok
log file = $D/out/\$name.\$pid.log
rados osd op timeout = 30
rados mon op timeout = 30
client mount timeout = 30
[osd]
keyring = $D/osd.\$id/keyring
admin socket = $D/run/\$name.asok
osd objectstore = bluestore
bluestore block create = true
bluestore block size = 4294967296
bluestore fsck on mount = false
bluestore cache autotune = false
bluestore cache size = 134217728
osd class dir = /usr/lib/x86_64-linux-gnu/rados-classes
EOF
}

start_mon() {
  ceph-mon -c "$D/ceph.conf" -i a 2>>"$D/out/mon.stderr" || fail "ceph-mon did not start (see $D/out/mon.a.log)"
  ceph -c "$D/ceph.conf" -s --connect-timeout 20 >/dev/null 2>>"$D/out/ceph-cli.stderr" || fail "monitor not answering (see $D/out/mon.a.log)"
}

start_osd() {
  ceph-osd -c "$D/ceph.conf" -i 0 2>>"$D/out/osd.stderr" || fail "ceph-osd did not start (see $D/out/osd.0.log)"
  local deadline=$((SECONDS + 60))
  until ceph -c "$D/ceph.conf" osd dump 2>/dev/null | grep -q "^osd.0 up"; do
    [ $SECONDS -lt $deadline ] || fail "osd.0 not up after 60 s (see $D/out/osd.0.log)"
    sleep 0.3
  done
}

# wait_io: until a RADOS op on pool rbd is answered (ENOENT for an object that is not there): "osd.0 up" in the
# osd map comes before its placement groups are active, and a client's first write would wait for them.
wait_io() {
  local deadline=$((SECONDS + 60))
  until [[ $(timeout 10 rados -c "$D/ceph.conf" -p rbd stat edgeblock-no-such-object 2>&1) == *"No such file"* ]]; do
    [ $SECONDS -lt $deadline ] || fail "pool rbd does not answer 60 s after osd.0 came up (see $D/out/osd.0.log)"
    sleep 0.3
  done
}

start() {
  local t0=$SECONDS start_ns; start_ns=$(date +%s%N)
  for tool in ceph-mon ceph-osd ceph ceph-authtool monmaptool rbd; do
    command -v "$tool" >/dev/null || fail "$tool not installed (apt-get install ceph-mon ceph-osd ceph-common)"
  done
  [ ! -e "$D" ] || [ -z "$(ls -A "$D")" ] || fail "$D is not empty"
  mkdir -p "$D"/{mon.a,osd.0,out,run}
  chmod 700 "$D"
  local fsid port; fsid=$(uuidgen); port=$(free_port)
  write_conf "$fsid" "$port"
  local conf=$D/ceph.conf
  ceph-authtool --create-keyring "$D/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
  ceph-authtool "$D/keyring" --gen-key -n client.admin --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' >/dev/null
  monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$port]" "$D/monmap" >/dev/null
  ceph-mon -c "$conf" --mkfs -i a --monmap "$D/monmap" --keyring "$D/keyring" 2>>"$D/out/mon.stderr" \
    || fail "ceph-mon --mkfs failed (see $D/out/mon.stderr)"
  start_mon

  # The OSD with its own cephx key, as vstart.sh does: the secret goes to the monitor with "osd new".
  local uuid key; uuid=$(uuidgen); key=$(ceph-authtool --gen-print-key)
  printf '{"cephx_secret": "%s"}' "$key" >"$D/osd.0/secret.json"
  local id; id=$(ceph -c "$conf" osd new "$uuid" -i "$D/osd.0/secret.json")
  [ "$id" = 0 ] || fail "expected osd id 0, got '$id'"
  ceph-osd -c "$conf" -i 0 --mkfs --osd-uuid "$uuid" --key "$key" 2>>"$D/out/osd.stderr" >/dev/null \
    || fail "ceph-osd --mkfs failed (see $D/out/osd.stderr)"
  ceph-authtool --create-keyring "$D/osd.0/keyring" --name osd.0 --add-key "$key" >/dev/null
  start_osd

  ceph -c "$conf" osd pool create rbd 8 8 >/dev/null 2>&1 || fail "pool create failed"
  rbd -c "$conf" pool init rbd || fail "rbd pool init failed"
  # The user EdgeBlock connects as: rbd rights on pool rbd only; its keyring is private (0600).
  (umask 077; ceph -c "$conf" auth get-or-create client.edgeblock mon 'profile rbd' osd 'profile rbd pool=rbd' \
    -o "$D/edgeblock.keyring" 2>/dev/null) || fail "auth get-or-create client.edgeblock failed"

  local ms=$((($(date +%s%N) - start_ns) / 1000000))
  printf 'ceph cluster up in %d.%01d s, mon RSS %s MiB, osd RSS %s MiB, conf %s\n' $((ms / 1000)) $((ms % 1000 / 100)) \
    "$(rss_mib "$D/run/mon.a.pid")" "$(rss_mib "$D/run/osd.0.pid")" "$conf"
  : "$t0"
}

kill_pidfile() { # SIGKILL the daemon of pid file $1 and wait until it is gone (at most 10 s)
  local pid; pid=$(cat "$1" 2>/dev/null) || return 0
  kill -9 "$pid" 2>/dev/null || return 0
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
}

case $cmd in
  start) start ;;
  stop)
    for f in "$D"/run/*.pid; do [ -e "$f" ] && kill_pidfile "$f"; done
    rm -rf "$D" ;;
  kill-osd) kill_pidfile "$D/run/osd.0.pid" ;;
  kill-mon) kill_pidfile "$D/run/mon.a.pid" ;;
  start-mon) start_mon ;;
  start-osd) start_osd; wait_io ;;
  heal)
    running() { local pid; pid=$(cat "$1" 2>/dev/null) && kill -0 "$pid" 2>/dev/null; }
    running "$D/run/mon.a.pid" || { echo "ceph cluster: mon.a is not running: restarting it" >&2; start_mon; }
    running "$D/run/osd.0.pid" || { echo "ceph cluster: osd.0 is not running: restarting it" >&2; start_osd; wait_io; } ;;
  *) echo "usage: $0 start|stop|kill-osd|start-osd|kill-mon|start-mon|heal DIR" >&2; exit 64 ;;
esac
