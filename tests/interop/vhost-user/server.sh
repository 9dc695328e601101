#!/usr/bin/env bash
# server.sh start [VHOSTSERVE-ARGS...] | stop — the VhostServe process of the vhost-user interop test, started and
# stopped the same way by run.sh and by host-action.sh (the restart-server action).
# Everything comes from the environment run.sh exports:
#   VHOST_RUN_DIR    work directory (server.pid is kept there)
#   VHOST_SERVE_DLL  the built EdgeBlock.VhostServe.dll
#   VHOST_SOCK, VHOST_IMG, VHOST_SERVER_LOG
set -euo pipefail
: "${VHOST_RUN_DIR:?}" "${VHOST_SERVE_DLL:?}" "${VHOST_SOCK:?}" "${VHOST_IMG:?}" "${VHOST_SERVER_LOG:?}"
pidfile=$VHOST_RUN_DIR/server.pid
alive() { [[ -n ${1:-} && -r /proc/$1/stat ]] && ! awk '{ sub(/^.*\) /, ""); exit !($1 == "Z" || $1 == "X") }' "/proc/$1/stat"; }

case ${1:-} in
    start)
        echo "==== $(date -u +%T) starting the server" >>"$VHOST_SERVER_LOG"
        lines=$(wc -l <"$VHOST_SERVER_LOG")
        # Detached (own process group, not a child of whoever runs this: QEMU runs the host
        # actions), with default signal dispositions so SIGINT stops it.
        (
            set -m
            dotnet "$VHOST_SERVE_DLL" --socket "$VHOST_SOCK" --file "$VHOST_IMG" --size 256M --queues 2 -v "${@:2}" \
                </dev/null >>"$VHOST_SERVER_LOG" 2>&1 &
            echo $! >"$pidfile"
        )
        pid=$(cat "$pidfile")
        for _ in $(seq 1 150); do
            if tail -n +"$((lines + 1))" "$VHOST_SERVER_LOG" | grep -q 'vhost-serve: listening'; then
                echo "server pid $pid listening on $VHOST_SOCK"
                exit 0
            fi
            alive "$pid" || { echo "the server exited during start-up:"; tail -n 20 "$VHOST_SERVER_LOG"; exit 1; }
            sleep 0.1
        done
        echo "the server did not listen within 15 s"
        exit 1
        ;;
    stop)
        pid=$(cat "$pidfile" 2>/dev/null || true)
        alive "$pid" || { echo "the server (pid ${pid:-?}) is not running (crashed?)"; exit 2; }
        kill -INT "$pid"
        for _ in $(seq 1 100); do alive "$pid" || { echo "server pid $pid stopped"; exit 0; }; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        echo "the server did not stop within 10 s of SIGINT (killed)"
        exit 3
        ;;
    *) echo "usage: server.sh start [VHOSTSERVE-ARGS...] | stop" >&2; exit 2 ;;
esac
