#!/usr/bin/env bash
# Host hook of the vhost-user-blk interop test. QEMU runs it (guestfwd) for each connection
# the guest opens to 10.0.2.100:7777; the guest sends one word and waits for the line
# EDGEBLOCK-HOST-ACTION-RESULT rc=N (the contract of guest/interop-lib.sh's host_action).
#   measure-before  record the allocated bytes of the exported file ($VHOST_IMG)
#   measure-after   fail unless they shrank since measure-before
#   restart-server  stop the server (SIGINT), start a new one on the same socket and file (with
#                   5 ms added latency), and wait until QEMU (chardev reconnect=1) has connected
#                   again and shared its memory
#   crash-server    the same with SIGKILL and without the latency (requests in flight are left in
#                   the in-flight area for the next server to resubmit)
set -uo pipefail
state=${VHOST_RUN_DIR:?}/allocated-before
allocated() { stat -c '%b %B' "$VHOST_IMG" | awk '{ print $1 * $2 }'; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
word=
read -r -t 10 word || true
word=${word%$'\r'}
rc=0
case $word in
    measure-before)
        n=$(allocated); echo "$n" >"$state"
        echo "allocated before discard: $(mib "$n")"
        ;;
    measure-after)
        before=$(cat "$state" 2>/dev/null || echo 0) after=$(allocated)
        echo "allocated after discard: $(mib "$after") (before: $(mib "$before"))"
        if ((after >= before)); then echo "the file did not shrink: discard does not free space"; rc=1; fi
        ;;
    restart-server | crash-server)
        here=$(dirname "${BASH_SOURCE[0]}")
        if [[ $word == crash-server ]]; then
            pid=$(cat "$VHOST_RUN_DIR/server.pid")
            kill -KILL "$pid" && echo "server pid $pid killed (SIGKILL)" || rc=1
            for _ in $(seq 1 100); do [[ -e /proc/$pid ]] || break; sleep 0.05; done
        else
            bash "$here/server.sh" stop || rc=1
        fi
        if [[ $rc -eq 0 ]]; then
            lines=$(wc -l <"$VHOST_SERVER_LOG")
            # After the graceful restart the server adds 5 ms to every read and write, so
            # that the SIGKILL of crash-server finds requests in flight in the back-end.
            if [[ $word == restart-server ]]; then extra=(--latency-ms 5); else extra=(); fi
            bash "$here/server.sh" start "${extra[@]}" || rc=1
        fi
        if [[ $rc -eq 0 ]]; then
            ok=0
            for _ in $(seq 1 100); do
                if tail -n +"$((lines + 1))" "$VHOST_SERVER_LOG" | grep -q 'guest memory mapped'; then ok=1; break; fi
                sleep 0.1
            done
            if [[ $ok -eq 1 ]]; then echo "QEMU reconnected and mapped the guest memory again"; else echo "QEMU did not reconnect within 10 s"; rc=1; fi
            sleep 0.5
            tail -n +"$((lines + 1))" "$VHOST_SERVER_LOG" | grep -o 'queue [0-9]*: resubmitting .*' || echo "no request was in flight"
        fi
        ;;
    *) echo "unknown host action '$word'"; rc=2 ;;
esac
echo "$word $rc" >>"$VHOST_RUN_DIR/host-actions.status"
echo "EDGEBLOCK-HOST-ACTION-RESULT rc=$rc"
