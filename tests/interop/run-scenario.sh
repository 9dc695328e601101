#!/usr/bin/env bash
# run-scenario.sh — boot the test guest and run one scenario in it.
#
# Usage: run-scenario.sh [options] NAME [VAR=VALUE ...]
#   NAME            a scenario: scenarios/NAME.sh runs inside the guest
#   VAR=VALUE       added to the guest's /scenario.env (e.g. TARGET_PORT=4421)
#   --reference     reference mode (also REFERENCE=1 in the environment): the guest runs
#                   the Linux in-kernel target (nvmet-tcp + null_blk) itself and the
#                   scenario talks to it on 127.0.0.1; no daemon needed. Host actions are
#                   skipped or simulated in the guest, and the output says so.
#   --timeout SEC   kill the guest after SEC seconds (default: SCENARIO_TIMEOUT from
#                   scenarios/NAME.conf, else 300)
#   --label LABEL   log file name (default NAME, or NAME.reference)
#   --shell         no scenario: an interactive shell in the guest (debugging; exit it
#                   to power off)
#   -v, --verbose   stream the guest console (default when stdout is a terminal)
#
# The guest reaches the host's 127.0.0.1 at 10.0.2.2: by default the scenario targets
# 10.0.2.2:4420, subsystem nqn.2026-11.io.edgeblock:default.
#
# Host actions: when the guest prints `EDGEBLOCK-HOST-ACTION <word>` it also asks the host
# (over QEMU's guestfwd) to run scenarios/NAME.host.sh <word> and waits for it; a failing
# hook fails the scenario. See lib/host-action.sh.
#
# Log: the serial console goes to ${EDGEBLOCK_INTEROP_LOGS:-$EDGEBLOCK_CACHE/interop-logs}/LABEL.log
# (host-action output appended at the end).
#
# Exit status: the guest scenario's exit code; 1 if a host hook failed or the guest
# stopped without reporting a result; 124 on timeout.
#
# Environment: EDGEBLOCK_CACHE, EDGEBLOCK_INTEROP_LOGS, EDGEBLOCK_GUEST_MEM (MiB, 1024),
# EDGEBLOCK_GUEST_CPUS (2), EDGEBLOCK_QEMU (qemu-system-x86_64).
set -euo pipefail

INTEROP_PROG=run-scenario
# shellcheck source-path=SCRIPTDIR source=lib/host-common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/host-common.sh"

usage() { sed -n '2,/^set -euo/p' "$0" | grep -v '^# shellcheck' | sed '$d; s/^# \{0,1\}//'; }

# Arguments -------------------------------------------------------------------------------
NAME='' LABEL='' TIMEOUT='' SHELL_MODE=0 VERBOSE=0 REFERENCE=${REFERENCE:-0}
[[ -t 1 ]] && VERBOSE=1
CLI_ENV=()
while [[ $# -gt 0 ]]; do
    case $1 in
        --reference) REFERENCE=1 ;;
        --timeout) TIMEOUT=${2:?--timeout needs seconds}; shift ;;
        --label) LABEL=${2:?--label needs a name}; shift ;;
        --shell) SHELL_MODE=1 ;;
        -v | --verbose) VERBOSE=1 ;;
        -h | --help) usage; exit 0 ;;
        -*) die "unknown option $1 (see --help)" ;;
        *=*)
            [[ $1 =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] || die "not a VAR=VALUE: $1"
            CLI_ENV+=("$1")
            ;;
        *) [[ -z $NAME ]] || die "two scenario names: $NAME and $1"; NAME=$1 ;;
    esac
    shift
done
[[ $REFERENCE == 1 ]] || REFERENCE=0
if [[ $SHELL_MODE -eq 1 ]]; then
    NAME=${NAME:-shell}
else
    [[ -n $NAME ]] || { usage >&2; exit 2; }
    if [[ ! -f $INTEROP_DIR/scenarios/$NAME.sh || $NAME == *.host ]]; then
        have=()
        for f in "$INTEROP_DIR"/scenarios/*.sh; do
            f=${f##*/}
            [[ $f == *.host.sh ]] || have+=("${f%.sh}")
        done
        die "no scenario '$NAME' (have: ${have[*]})"
    fi
fi
LABEL=${LABEL:-$NAME$([[ $REFERENCE -eq 1 ]] && echo .reference || :)}

# Per-scenario host-side settings.
# shellcheck disable=SC2034 # DAEMON_ARGS is run-all.sh's
SCENARIO_TIMEOUT=300 GUEST_LAYERS=() GUEST_ENV=() DAEMON_ARGS=() GUEST_KERNEL=
if [[ -f $INTEROP_DIR/scenarios/$NAME.conf ]]; then
    # shellcheck source-path=SCRIPTDIR source=lib/host-common.sh
    . "$INTEROP_DIR/scenarios/$NAME.conf"
fi
# A scenario may need another kernel series (GUEST_KERNEL=6.12: NVMe host authentication).
INTEROP_GUEST_DIR=$(guest_dir "$GUEST_KERNEL")
TIMEOUT=${TIMEOUT:-$SCENARIO_TIMEOUT}

# Tools and guest -------------------------------------------------------------------------
QEMU=${EDGEBLOCK_QEMU:-qemu-system-x86_64}
ensure_commands "$QEMU:qemu-system-x86" cpio:cpio timeout:coreutils
# run-all.sh checks the default guest once for the whole suite; another kernel is checked here.
[[ ${INTEROP_GUEST_CHECKED:-0} == 1 && -z $GUEST_KERNEL ]] || GUEST_KERNEL=$GUEST_KERNEL "$INTEROP_DIR/build-guest.sh"
KERNEL=$INTEROP_GUEST_DIR/vmlinux
[[ -f $KERNEL ]] || KERNEL=$INTEROP_GUEST_DIR/vmlinuz
for layer in "${GUEST_LAYERS[@]}"; do
    [[ -f $INTEROP_GUEST_DIR/$layer.cpio ]] || die "scenario $NAME needs guest layer '$layer', which build-guest.sh did not make"
done

RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/edgeblock-interop.XXXXXX")
trap 'rm -rf "$RUN_DIR"' EXIT
mkdir -p "$INTEROP_LOG_DIR"
LOG=$INTEROP_LOG_DIR/$LABEL.log

# Scenario archive ------------------------------------------------------------------------
# /scenario.env: defaults, then the scenario's GUEST_ENV, then the command line's.
if [[ $REFERENCE -eq 1 ]]; then
    ENV_WORDS=(TARGET_ADDR=127.0.0.1 "TARGET_PORT=$INTEROP_DEFAULT_PORT")
else
    ENV_WORDS=("TARGET_ADDR=$INTEROP_HOST_ADDR_FROM_GUEST" "TARGET_PORT=$INTEROP_DEFAULT_PORT")
fi
ENV_WORDS+=("NQN=$INTEROP_DEFAULT_NQN" "SCENARIO=$NAME" "REFERENCE=$REFERENCE"
    "ACTION_ADDR=$INTEROP_ACTION_ADDR" "ACTION_PORT=$INTEROP_ACTION_PORT"
    "${GUEST_ENV[@]}" "${CLI_ENV[@]}")

# shell_quote VALUE: VALUE in single quotes for busybox sh.
shell_quote() { printf "'%s'" "${1//\'/\'\\\'\'}"; }

STAGE=$RUN_DIR/scenario-root
mkdir -p "$STAGE"
for word in "${ENV_WORDS[@]}"; do
    printf '%s=%s\n' "${word%%=*}" "$(shell_quote "${word#*=}")"
done >"$STAGE/scenario.env"
if [[ $SHELL_MODE -eq 0 ]]; then
    install -m 0755 "$INTEROP_DIR/scenarios/$NAME.sh" "$STAGE/scenario.sh"
fi
install -m 0644 "$INTEROP_DIR/guest/interop-lib.sh" "$STAGE/interop-lib.sh"
# A scenario's own files (e.g. our daemon, published for the guest): scenarios/NAME.payload.sh
# STAGE_DIR puts them under STAGE_DIR, which becomes the guest's / with the scenario.
if [[ $SHELL_MODE -eq 0 && -f $INTEROP_DIR/scenarios/$NAME.payload.sh ]]; then
    log "$LABEL: adding the scenario's payload (scenarios/$NAME.payload.sh)"
    bash "$INTEROP_DIR/scenarios/$NAME.payload.sh" "$STAGE" || die "scenarios/$NAME.payload.sh failed"
fi
(cd "$STAGE" && find . -mindepth 1 | LC_ALL=C sort |
    cpio --create --format=newc --owner=0:0 --quiet) >"$RUN_DIR/scenario.cpio"

# The kernel unpacks concatenated archives in order: base, layers, scenario.
INITRD_PARTS=("$INTEROP_GUEST_DIR/base.cpio")
for layer in "${GUEST_LAYERS[@]}"; do INITRD_PARTS+=("$INTEROP_GUEST_DIR/$layer.cpio"); done
INITRD_PARTS+=("$RUN_DIR/scenario.cpio")
cat "${INITRD_PARTS[@]}" >"$RUN_DIR/initrd"

# QEMU ------------------------------------------------------------------------------------
# Host actions: QEMU runs lib/host-action.sh for each guest connection to
# 10.0.2.100:7777. The cmd string is split like a shell command line by QEMU; commas in
# -netdev values are escaped by doubling them.
action_cmd="bash $(shell_quote "$INTEROP_DIR/lib/host-action.sh")"
action_cmd=${action_cmd//,/,,}
export INTEROP_SCENARIO=$NAME INTEROP_RUN_DIR=$RUN_DIR

# shellcheck disable=SC2054 # the commas are QEMU's
QEMU_ARGS=(
    -accel tcg -cpu max # stock Debian guests hang under -enable-kvm on this kind of host
    -m "${EDGEBLOCK_GUEST_MEM:-1024}" -smp "${EDGEBLOCK_GUEST_CPUS:-2}"
    -nographic -no-reboot
    -kernel "$KERNEL" -initrd "$RUN_DIR/initrd"
    -append "console=ttyS0 quiet panic=-1"
    -netdev "user,id=n0,guestfwd=tcp:$INTEROP_ACTION_ADDR:$INTEROP_ACTION_PORT-cmd:$action_cmd"
    -device virtio-net-pci,netdev=n0,romfile=
)

log "$LABEL: booting $(basename "$KERNEL") $(cat "$INTEROP_GUEST_DIR/kernel-version") + base${GUEST_LAYERS[*]/#/ + } + scenario; timeout ${TIMEOUT}s; log $LOG"
if [[ $SHELL_MODE -eq 1 ]]; then
    "$QEMU" "${QEMU_ARGS[@]}"
    exit $?
fi

# Read the console line by line: log it (without the terminal control sequences the
# firmware and kernel emit), show it when verbose, and time the guest's markers.
boot_guest() {
    start=$(now)
    : >"$LOG"
    rm -f "$RUN_DIR/ready.t" "$RUN_DIR/result.t" "$RUN_DIR/qemu.rc"
    {
        rc=0
        timeout -k 10 "$TIMEOUT" "$QEMU" "${QEMU_ARGS[@]}" </dev/null 2>&1 || rc=$?
        echo "$rc" >"$RUN_DIR/qemu.rc"
    } | while IFS= read -r line || [[ -n $line ]]; do
        line=${line//$'\r'/}
        # Drop terminal control sequences (ESC [ ... letter, ESC c) the firmware and kernel emit.
        while [[ $line =~ $'\e'(\[[0-9\;?]*[A-Za-z]|c) ]]; do line=${line/"${BASH_REMATCH[0]}"/}; done
        printf '%s\n' "$line" >>"$LOG"
        [[ $VERBOSE -eq 1 ]] && printf '%s\n' "$line"
        case $line in
            *EDGEBLOCK-GUEST-READY*) elapsed "$start" >"$RUN_DIR/ready.t" ;;
            *EDGEBLOCK-SCENARIO-RESULT*) elapsed "$start" >"$RUN_DIR/result.t" ;;
        esac
    done
    total=$(elapsed "$start")
    qemu_rc=$(cat "$RUN_DIR/qemu.rc" 2>/dev/null || echo 1)
}

# Under TCG, a 6.12 guest very rarely oopses on an int3 left by the kernel's own boot-time
# code patching (seen once in CI: "Oops: int3" in sched_clock_cpu, then a panic, 2 s into
# boot). That is the emulator, not the scenario: when the guest panicked before it was ready
# (so no scenario step and no host action ran), boot it once more and say so.
for attempt in 1 2; do
    boot_guest
    if [[ $attempt -eq 1 && ! -f $RUN_DIR/ready.t && ! -f $RUN_DIR/host-actions.log ]] &&
        grep -aq 'Kernel panic' "$LOG"; then
        cp "$LOG" "$LOG.boot1"
        log "$LABEL: the guest kernel panicked while booting, before the scenario started ($(grep -a -m1 -oE 'Oops: .*|Kernel panic - .*' "$LOG.boot1" | head -c 120)); booting once more (first console: $LOG.boot1)"
        continue
    fi
    break
done

# A host action still running now (the guest timed out while waiting for it) must not
# go on behind our back, e.g. restart a daemon after run-all.sh stopped it.
if [[ -f $RUN_DIR/host-action.pids ]]; then
    while read -r pid; do
        if pid_alive "$pid"; then
            log "$LABEL: stopping host action pid $pid, still running after the guest ended"
            pkill -TERM -P "$pid" 2>/dev/null || true
            kill -TERM "$pid" 2>/dev/null || true
            echo "interrupted 1" >>"$RUN_DIR/host-actions.status"
        fi
    done <"$RUN_DIR/host-action.pids"
fi

# Host-action records go at the end of the log.
if [[ -f $RUN_DIR/host-actions.log ]]; then
    { echo "==== host actions ===="; cat "$RUN_DIR/host-actions.log"; } >>"$LOG"
fi

# Verdict ---------------------------------------------------------------------------------
ready=$(cat "$RUN_DIR/ready.t" 2>/dev/null || echo '?')
result_t=$(cat "$RUN_DIR/result.t" 2>/dev/null || echo '')
scenario_t='?'
[[ -n $result_t && $ready != '?' ]] && scenario_t=$(awk -v a="$ready" -v b="$result_t" 'BEGIN { printf "%.1f", b - a }')
timing="guest ready ${ready}s, scenario ${scenario_t}s, total ${total}s"

guest_rc=$(grep -ao 'EDGEBLOCK-SCENARIO-RESULT rc=[0-9]*' "$LOG" | tail -n 1 | sed 's/.*rc=//' || true)
if [[ $qemu_rc -eq 124 || $qemu_rc -eq 137 ]]; then
    log "$LABEL: TIMEOUT: the guest did not finish within ${TIMEOUT}s ($timing); see $LOG"
    tail -n 15 "$LOG" | sed 's/^/    | /' >&2
    exit 124
fi
if [[ -z $guest_rc ]]; then
    log "$LABEL: FAIL: the guest stopped without reporting a result (qemu exit $qemu_rc; kernel panic?); see $LOG"
    tail -n 15 "$LOG" | sed 's/^/    | /' >&2
    exit 1
fi
if [[ -f $RUN_DIR/host-actions.status ]] && awk '$2 != 0 { bad = 1 } END { exit !bad }' "$RUN_DIR/host-actions.status"; then
    log "$LABEL: FAIL: host action(s) failed: $(awk '$2 != 0 { printf "%s(rc=%s) ", $1, $2 }' "$RUN_DIR/host-actions.status")($timing)"
    [[ $guest_rc -ne 0 ]] || guest_rc=1
fi
if [[ $guest_rc -eq 0 ]]; then
    log "$LABEL: PASS ($timing)"
else
    log "$LABEL: FAIL: scenario exit code $guest_rc ($timing); see $LOG"
    [[ $VERBOSE -eq 1 ]] || grep -aE '\] (FAIL|failed in step|==>)|^\+ ' "$LOG" | tail -n 8 | sed 's/^/    | /' >&2
fi
exit "$guest_rc"
