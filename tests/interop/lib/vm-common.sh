# shellcheck shell=bash disable=SC2034 # the variables are for the scripts that source this
# Host-side helpers of the standalone scenarios that start VMs with `edgeblock vm run` against a daemon of their own
# (vm-run, image-boot); sourced after host-common.sh. vm_scenario_begin sets up what the others use.

# vm_scenario_begin ARGS...: the scenario's options (--keep, --timeout SEC, --help), the tools (and those of the
# caller's VM_COMMANDS, CMD:PACKAGE), the guest (KERNEL), LOGS ($INTEROP_LOG_DIR/$INTEROP_PROG, emptied), WORK (a
# short directory: socket paths are limited to 107 bytes; removed at exit unless --keep), DATA (the daemon's data dir
# in it) and the daemon's settings for daemon_start; a daemon still running at exit is stopped.
vm_scenario_begin() {
    standalone_options "$@"
    START=$SECONDS
    QEMU=${EDGEBLOCK_QEMU:-qemu-system-x86_64}
    ensure_commands "$QEMU:qemu-system-x86" cpio:cpio timeout:coreutils curl:curl jq:jq dotnet:dotnet-sdk-10.0 ${VM_COMMANDS[@]+"${VM_COMMANDS[@]}"}
    "$INTEROP_DIR/build-guest.sh"
    KERNEL=$INTEROP_GUEST_DIR/vmlinux
    [[ -f $KERNEL ]] || KERNEL=$INTEROP_GUEST_DIR/vmlinuz
    [[ -f $INTEROP_GUEST_DIR/fio.cpio ]] || die "build-guest.sh made no fio layer"
    mkdir -p "$INTEROP_LOG_DIR"
    LOGS=$INTEROP_LOG_DIR/$INTEROP_PROG
    rm -rf "$LOGS" && mkdir -p "$LOGS"
    WORK=$(mktemp -d /tmp/ebvm.XXXXXX)
    DATA=$WORK/data
    export EDGEBLOCK_DAEMON_ARGV=$WORK/daemon.argv EDGEBLOCK_DAEMON_PIDFILE=$WORK/daemon.pid \
        EDGEBLOCK_DAEMON_LOG=$LOGS/daemon.log EDGEBLOCK_DAEMON_PORT EDGEBLOCK_DAEMON_CWD=$INTEROP_REPO_ROOT
    EDGEBLOCK_DAEMON_PORT=$(free_port)
    trap vm_scenario_cleanup EXIT
    trap 'exit 130' INT TERM
    FAILED=0
}

vm_scenario_cleanup() {
    if pid_alive "$(daemon_pid)"; then daemon_stop || true; fi
    if [[ $KEEP -eq 1 ]]; then log "work directory kept: $WORK"; else rm -rf "$WORK"; fi
}

# check MESSAGE: records a failure (the scenario goes on); verdict PASS|FAIL: the last line, and the exit status.
check() { log "FAIL: $*"; FAILED=1; }
verdict() {
    echo "$INTEROP_PROG: $1 ($((SECONDS - START))s)"
    [[ $1 == PASS ]] && exit 0
    exit 1
}

eb() { (cd "$INTEROP_REPO_ROOT" && ./edgeblock --api-socket "$DATA/api.sock" "$@"); }
api_get() { curl -sf --unix-socket "$DATA/api.sock" "http://edgeblock$1"; }

# vm_initrd NAME GUEST_SCRIPT ENV...: $WORK/NAME.initrd, the guest's initramfs with GUEST_SCRIPT as /scenario.sh, these
# scenario variables and whatever the caller put into $WORK/stage-NAME before.
vm_initrd() {
    local name=$1 script=$2 stage=$WORK/stage-$1
    shift 2
    mkdir -p "$stage"
    printf '%s\n' "SCENARIO=$INTEROP_PROG-$name" "$@" >"$stage/scenario.env"
    install -m 0755 "$script" "$stage/scenario.sh"
    install -m 0644 "$INTEROP_DIR/guest/interop-lib.sh" "$stage/interop-lib.sh"
    (cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | cpio --create --format=newc --owner=0:0 --quiet) >"$WORK/$name.cpio"
    cat "$INTEROP_GUEST_DIR/base.cpio" "$INTEROP_GUEST_DIR/fio.cpio" "$WORK/$name.cpio" >"$WORK/$name.initrd"
}

# vm NAME VOLUME [vm run options]: runs `edgeblock vm run` in the background (pid in VM_PID);
# job control gives it default signal dispositions (bash starts background jobs with SIGINT
# ignored, and .NET keeps that). SIGTERM from timeout is its clean stop.
vm() {
    local name=$1 volume=$2
    shift 2
    set -m
    (cd "$INTEROP_REPO_ROOT" && exec timeout -k 20 -s TERM "$TIMEOUT" ./edgeblock --api-socket "$DATA/api.sock" vm run --accel tcg \
        --kernel "$KERNEL" --initrd "$WORK/$name.initrd" --disk "$volume" --name "$name" --mem 512M --cpus 2 --append quiet \
        --console "$LOGS/$name.console.log" --qemu "$QEMU" "$@") >"$LOGS/$name.out" 2>&1 &
    VM_PID=$!
    set +m
}

# vm_result NAME RC [SUMMARY-REGEX]: the CLI's exit code and the guest's scenario result; the console lines matching
# SUMMARY-REGEX are shown either way.
vm_result() {
    local guest_rc
    guest_rc=$(grep -ao 'EDGEBLOCK-SCENARIO-RESULT rc=[0-9]*' "$LOGS/$1.console.log" 2>/dev/null | tail -n 1 | sed 's/.*rc=//' || true)
    log "$1: vm run exit $2, guest scenario rc ${guest_rc:-none}"
    if [[ $2 -ne 0 || $guest_rc != 0 ]]; then
        check "$1 failed"
        sed 's/^/    | /' "$LOGS/$1.out" >&2
        grep -aE '\] (FAIL|failed in step|==>)|^\+ |init:|^root:' "$LOGS/$1.console.log" | tail -n 12 | sed 's/^/    | /' >&2 || true
    fi
    if [[ -n ${3:-} ]]; then grep -aE "$3" "$LOGS/$1.console.log" | sed 's/^/    | /' >&2 || true; fi
}

# daemon_errors: fails (check) when the daemon logged errors.
daemon_errors() {
    if grep -qE '^(fail|crit):|\b(fail|crit): ' "$EDGEBLOCK_DAEMON_LOG"; then
        check "the daemon logged errors:"
        grep -E '^(fail|crit):|\b(fail|crit): ' "$EDGEBLOCK_DAEMON_LOG" -A2 | head -n 20 | sed 's/^/    | /' >&2
    fi
}

# vm_wait_console NAME MARKER PID [TRIES]: waits until the VM's console shows MARKER (TRIES half seconds, default 480)
# or the VM (PID) ends; true when it showed it.
vm_wait_console() {
    local _i
    for ((_i = 0; _i < ${4:-480}; _i++)); do
        grep -aq "$2" "$LOGS/$1.console.log" 2>/dev/null && return 0
        pid_alive "$3" || break
        sleep 0.5
    done
    grep -aq "$2" "$LOGS/$1.console.log" 2>/dev/null
}

# vm_reconnected BACKEND: true once the vhost-user export of BACKEND (volume:POOL/NAME) is connected again and served
# requests, within 60 s (after a daemon restart: QEMU reconnects, chardev reconnect=1).
vm_reconnected() {
    local _i
    for ((_i = 0; _i < 120; _i++)); do
        api_get /v1/vhost | jq -e --arg b "$1" 'any(.[]; .backend == $b and .state == "connected" and .requests > 0)' >/dev/null && return 0
        sleep 0.5
    done
    return 1
}
