# shellcheck shell=bash disable=SC2034 # the variables are for the scripts that source this
# Host-side helpers shared by the interop scripts (sourced, never executed).
#
# Everything here runs on the host (the machine that runs QEMU and the daemon), in bash.
# The guest side lives in ../guest/ and is POSIX sh for busybox.

# Directory layout -------------------------------------------------------------------------

INTEROP_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
INTEROP_REPO_ROOT=$(cd "$INTEROP_DIR/../.." && pwd)
INTEROP_CACHE=${EDGEBLOCK_CACHE:-$HOME/.cache/edgeblock}
# guest_dir [KERNEL]: where build-guest.sh puts the guest of a kernel series (GUEST_KERNEL in a
# scenario's .conf, e.g. 6.12); none: the default kernel (the one linux-image-amd64 depends on).
guest_dir() { printf '%s\n' "$INTEROP_CACHE/guest${1:+-$1}"; }
INTEROP_GUEST_DIR=$(guest_dir "${GUEST_KERNEL:-}")
INTEROP_LOG_DIR=${EDGEBLOCK_INTEROP_LOGS:-$INTEROP_CACHE/interop-logs}

# Defaults of the contract between the runner, the guest and the daemon.
INTEROP_DEFAULT_NQN=nqn.2026-11.io.edgeblock:default
INTEROP_DEFAULT_PORT=4420
# The guest reaches the host's 127.0.0.1 at this address (QEMU user networking).
INTEROP_HOST_ADDR_FROM_GUEST=10.0.2.2
# Guest-to-host request channel for host actions (QEMU guestfwd, see run-scenario.sh).
INTEROP_ACTION_ADDR=10.0.2.100
INTEROP_ACTION_PORT=7777

# Messages ---------------------------------------------------------------------------------

# Prefix for messages; each script sets its own name.
: "${INTEROP_PROG:=interop}"

log() { printf '%s: %s\n' "$INTEROP_PROG" "$*" >&2; }
die() { printf '%s: error: %s\n' "$INTEROP_PROG" "$*" >&2; exit 1; }

# Seconds since the epoch with sub-second precision (bash 5).
now() { printf '%s' "${EPOCHREALTIME:-$(date +%s.%N)}"; }
# elapsed START [END]: seconds between two now() values, one decimal.
elapsed() { awk -v a="$1" -v b="${2:-$(now)}" 'BEGIN { printf "%.1f", b - a }'; }

# standalone_options ARGS...: the options of the standalone scenarios (vhost-user, vm-run, image-boot): --keep (KEEP=1),
# --timeout SEC (TIMEOUT, default 240), -v/--verbose (VERBOSE=1), --help (the script's header comment).
standalone_options() {
    KEEP=0 TIMEOUT=240 VERBOSE=${VERBOSE:-0}
    while [[ $# -gt 0 ]]; do
        case $1 in
            -v | --verbose) VERBOSE=1 ;;
            --timeout) TIMEOUT=${2:?--timeout needs seconds}; shift ;;
            --keep) KEEP=1 ;;
            -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
            *) die "unknown argument $1 (see --help)" ;;
        esac
        shift
    done
}

# Packages ---------------------------------------------------------------------------------

# Run a command as root: directly when we are root (CI), through sudo otherwise.
as_root() {
    if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

INTEROP_APT_UPDATED=0
# apt_update_once: refresh the package lists once per script run.
apt_update_once() {
    if [[ $INTEROP_APT_UPDATED -eq 0 ]]; then
        log "apt-get update"
        as_root apt-get update -qq >&2
        INTEROP_APT_UPDATED=1
    fi
}

# ensure_commands CMD:PACKAGE ...: install PACKAGE with apt-get only when CMD is missing.
ensure_commands() {
    local spec cmd pkg missing=()
    for spec in "$@"; do
        cmd=${spec%%:*} pkg=${spec#*:}
        # Tools in /usr/sbin are not on a non-root user's PATH; look there too.
        if ! command -v "$cmd" >/dev/null 2>&1 && [[ ! -x /usr/sbin/$cmd && ! -x /sbin/$cmd ]]; then
            missing+=("$pkg")
        fi
    done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    # Deduplicate (several commands come from one package).
    mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
    log "installing missing packages: ${missing[*]}"
    apt_update_once
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

# Full path of a command, also when it lives in an sbin directory that is not on PATH.
command_path() {
    local p
    p=$(command -v "$1" 2>/dev/null) && [[ $p == /* ]] && { printf '%s\n' "$p"; return 0; }
    for p in /usr/sbin/$1 /sbin/$1 /usr/bin/$1 /bin/$1; do
        [[ -x $p ]] && { printf '%s\n' "$p"; return 0; }
    done
    return 1
}

# Processes --------------------------------------------------------------------------------

# pid_alive PID: true while PID exists and is not a zombie (a killed daemon whose parent
# does not reap it must count as dead).
pid_alive() {
    local state
    [[ -n ${1:-} && -r /proc/$1/stat ]] || return 1
    state=$(awk '{ sub(/^.*\) /, ""); print $1 }' "/proc/$1/stat" 2>/dev/null) || return 1
    [[ -n $state && $state != Z && $state != X ]]
}

# port_open HOST PORT: true when a TCP connection to HOST:PORT succeeds.
port_open() {
    # shellcheck disable=SC2016 # expanded by the inner bash
    timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null
}

# free_port: a TCP port on 127.0.0.1 that nothing listens on (best effort).
free_port() {
    local port
    for _ in $(seq 1 50); do
        port=$((20000 + RANDOM % 20000))
        port_open 127.0.0.1 "$port" || { printf '%s\n' "$port"; return 0; }
    done
    die "no free TCP port found"
}

# Daemon control ---------------------------------------------------------------------------
#
# run-all.sh starts the daemon; the crash-restart host hook kills and restarts it from a
# different process (QEMU runs the hook). They share the daemon's description through
# these environment variables:
#   EDGEBLOCK_DAEMON_ARGV     file with the daemon's argv, one NUL-terminated word each
#   EDGEBLOCK_DAEMON_PIDFILE  file holding the running daemon's pid
#   EDGEBLOCK_DAEMON_LOG      file the daemon's stdout+stderr are appended to
#   EDGEBLOCK_DAEMON_PORT     TCP port on 127.0.0.1 the daemon listens on
#   EDGEBLOCK_DAEMON_CWD      working directory of the daemon (the repository root)

daemon_pid() { cat "$EDGEBLOCK_DAEMON_PIDFILE" 2>/dev/null || true; }

# daemon_cli: sets cli (the edgeblock command the daemon was started with) and data_dir
# (its --data-dir, whose api.sock the CLI talks to) from the live daemon's argv, which is
# "<edgeblock command words> serve --data-dir DIR ..."; dies when there is no daemon.
daemon_cli() {
    [[ -n ${EDGEBLOCK_DAEMON_ARGV:-} && -f ${EDGEBLOCK_DAEMON_ARGV:-} ]] ||
        die "no daemon: run this scenario through run-all.sh (EDGEBLOCK_DAEMON_ARGV is not set)"
    local argv=() i
    mapfile -d '' -t argv <"$EDGEBLOCK_DAEMON_ARGV"
    cli=() data_dir=
    for ((i = 0; i < ${#argv[@]}; i++)); do
        [[ ${argv[i]} == serve ]] && break
        cli+=("${argv[i]}")
    done
    for ((i = 0; i < ${#argv[@]} - 1; i++)); do
        [[ ${argv[i]} == --data-dir ]] && data_dir=${argv[i + 1]}
    done
    [[ -n $data_dir ]] || die "no --data-dir in the daemon's command line"
}

# daemon_start: start the daemon detached (own session, not our child, so whichever
# process stops it later sees it exit) and wait until its port accepts connections
# (EDGEBLOCK_START_TIMEOUT, default 180 s: ./edgeblock builds itself on its first run).
daemon_start() {
    local argv=() timeout=${EDGEBLOCK_START_TIMEOUT:-180} start pid
    mapfile -d '' -t argv <"$EDGEBLOCK_DAEMON_ARGV"
    printf '==== %s: starting: %s\n' "$(date -u +%FT%TZ)" "${argv[*]}" >>"$EDGEBLOCK_DAEMON_LOG"
    # Double fork: the subshell exits at once, the daemon is reparented away from us.
    # `set -m` (job control): the daemon gets its own process group, so a Ctrl-C on our
    # terminal does not reach it, and default signal dispositions: without job control
    # bash starts background commands with SIGINT and SIGQUIT ignored, and .NET keeps an
    # inherited SIG_IGN, so SIGINT could not stop it. (No setsid: it would fork, being
    # a group leader, and $! would be a process that exits at once.)
    (
        set -m
        cd "$EDGEBLOCK_DAEMON_CWD" || exit 1
        "${argv[@]}" </dev/null >>"$EDGEBLOCK_DAEMON_LOG" 2>&1 &
        printf '%s\n' "$!" >"$EDGEBLOCK_DAEMON_PIDFILE"
    )
    pid=$(daemon_pid)
    start=$SECONDS
    until port_open 127.0.0.1 "$EDGEBLOCK_DAEMON_PORT"; do
        if ! pid_alive "$pid"; then
            log "daemon exited during start-up; last lines of $EDGEBLOCK_DAEMON_LOG:"
            tail -n 20 "$EDGEBLOCK_DAEMON_LOG" >&2
            return 1
        fi
        if ((SECONDS - start >= timeout)); then
            log "daemon (pid $pid) did not accept connections on 127.0.0.1:$EDGEBLOCK_DAEMON_PORT within ${timeout}s"
            return 1
        fi
        sleep 0.2
    done
    log "daemon pid $pid listening on 127.0.0.1:$EDGEBLOCK_DAEMON_PORT ($((SECONDS - start))s)"
}

# daemon_wait_exit PID SECONDS: wait until PID is gone; false on timeout.
daemon_wait_exit() {
    local pid=$1 deadline=$((SECONDS + $2))
    while pid_alive "$pid"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.1
    done
}

# daemon_kill9: SIGKILL the daemon (a simulated crash) and wait until it is gone.
daemon_kill9() {
    local pid
    pid=$(daemon_pid)
    pid_alive "$pid" || { log "daemon is not running (pid '${pid}')"; return 1; }
    printf '==== %s: SIGKILL pid %s\n' "$(date -u +%FT%TZ)" "$pid" >>"$EDGEBLOCK_DAEMON_LOG"
    kill -KILL "$pid"
    daemon_wait_exit "$pid" 10 || { log "daemon pid $pid survived SIGKILL"; return 1; }
}

# daemon_stop: SIGINT, then SIGKILL after EDGEBLOCK_STOP_TIMEOUT seconds (default 10).
# Returns 2 when the daemon was no longer running (it died during the scenario),
# 3 when it needed SIGKILL, 0 on a clean stop.
daemon_stop() {
    local pid
    pid=$(daemon_pid)
    pid_alive "$pid" || return 2
    kill -INT "$pid" 2>/dev/null || true
    if daemon_wait_exit "$pid" "${EDGEBLOCK_STOP_TIMEOUT:-10}"; then
        return 0
    fi
    log "daemon pid $pid ignored SIGINT for ${EDGEBLOCK_STOP_TIMEOUT:-10}s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    daemon_wait_exit "$pid" 10 || true
    return 3
}
