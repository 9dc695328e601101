#!/usr/bin/env bash
# shellcheck disable=SC2031 # scenario .conf files are sourced in subshells on purpose
# run-all.sh — the interop suite: the Linux kernel's NVMe/TCP host against our daemon.
#
# Usage: run-all.sh [--reference] [ENTRY ...]
#   ENTRY        run only these entries (default: all, in the order below)
#   --reference  no daemon: every scenario runs against the in-kernel target inside its
#                guest (run-scenario.sh --reference); checks the scenarios themselves
#
# For each entry the daemon is started from the repository root as
#     $EDGEBLOCK_CMD serve --data-dir <fresh temp dir> --listen 127.0.0.1:<free port> \
#         --default-size 1G [scenario's DAEMON_ARGS, e.g. --allow-host NQN]
# and must then accept TCP connections on that port (within EDGEBLOCK_START_TIMEOUT s)
# serving subsystem nqn.2026-11.io.edgeblock:default with namespace 1 of 1 GiB. The
# guest connects to it at 10.0.2.2:<port>. Afterwards the daemon gets SIGINT, and SIGKILL
# after EDGEBLOCK_STOP_TIMEOUT s; a daemon that is gone by then fails the entry.
#
# Prints `interop: <entry> PASS|FAIL|SKIP (<seconds>s)` per entry and, last,
# `interop: N passed, N failed[, N skipped]`; exits non-zero if any entry failed.
#
# Environment:
#   EDGEBLOCK_CMD               daemon command, split into words (default ./edgeblock)
#   EDGEBLOCK_DEFAULT_IMG_NAME  backing file of the default namespace, relative to the
#                               data dir (default default.img); the discard host hook
#                               measures it (exported to hooks as DEFAULT_IMG)
#   EDGEBLOCK_FAULT_CMD         host command (bash -c) run against the live daemon before
#                               the fio-verify-after-fault entry, with EDGEBLOCK_TARGET
#                               (127.0.0.1:<port>), EDGEBLOCK_NQN, EDGEBLOCK_DATA_DIR set;
#                               default: the repository's malformed-PDU tool
#                               (tools/EdgeBlock.PduFault); empty: that entry is skipped
#   EDGEBLOCK_INTEROP_BUDGET    seconds for the whole suite (default 2700); scenarios get
#                               at most what is left
#   EDGEBLOCK_START_TIMEOUT (180), EDGEBLOCK_STOP_TIMEOUT (10), EDGEBLOCK_KEEP_DATA=1
#   and those of run-scenario.sh (EDGEBLOCK_CACHE, EDGEBLOCK_INTEROP_LOGS, ...)
set -euo pipefail

INTEROP_PROG=interop
# shellcheck source-path=SCRIPTDIR source=lib/host-common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/host-common.sh"

# The suite: entry name, scenario, host step before the guest boots ("-" for none).
# "standalone" entries are scripts under tests/interop that bring their own server and guest
# (no daemon, no reference mode) and exit 0 on success.
SUITE=(
    "discover discover -"
    "fio-verify fio-verify -"
    "ext4 ext4 -"
    "discard discard -"
    "host-denied host-denied -"
    "crash-restart crash-restart -"
    "ns-hotplug ns-hotplug -"
    "fio-verify-after-fault fio-verify fault_injection"
    "cli-manage cli-manage -"
    "pool-quota pool-quota -"
    "data-services data-services -"
    "noisy-neighbour noisy-neighbour -"
    "kernel-engine kernel-engine -"
    "dhchap dhchap -"
    "rbd rbd ceph_cluster"
    "rbd-osd rbd-osd ceph_cluster"
    "host-attach host-attach -"
    "host-fs host-fs -"
    "vhost-user vhost-user/run.sh standalone"
    "vm-run vm-run/run.sh standalone"
    "image-boot image-boot/run.sh standalone"
)

REFERENCE=${REFERENCE:-0}
SELECTED=()
for arg in "$@"; do
    case $arg in
        --reference) REFERENCE=1 ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | grep -v '^# shellcheck' | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        -*) die "unknown option $arg" ;;
        *) SELECTED+=("$arg") ;;
    esac
done
for name in "${SELECTED[@]}"; do
    printf '%s\n' "${SUITE[@]}" | grep -q "^$name " || die "no entry '$name' (have: $(printf '%s\n' "${SUITE[@]}" | cut -d' ' -f1 | tr '\n' ' '))"
done

BUDGET=${EDGEBLOCK_INTEROP_BUDGET:-2700}
# The fault entry sends malformed PDUs with our own raw-socket tool, then the guest runs fio verify.
if [[ ! -v EDGEBLOCK_FAULT_CMD ]]; then
    EDGEBLOCK_FAULT_CMD='dotnet run --project tools/EdgeBlock.PduFault -c Release -- "${EDGEBLOCK_TARGET%:*}" "${EDGEBLOCK_TARGET##*:}"'
fi

read -r -a DAEMON_CMD <<<"${EDGEBLOCK_CMD:-./edgeblock}"
IMG_NAME=${EDGEBLOCK_DEFAULT_IMG_NAME:-default.img}
mkdir -p "$INTEROP_LOG_DIR"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/edgeblock-interop-all.XXXXXX")
CURRENT_DATA_DIR=

# Whatever happens (failure, Ctrl-C), stop a daemon we started and drop its data.
cleanup() {
    if [[ -n ${EDGEBLOCK_DAEMON_PIDFILE:-} ]] && pid_alive "$(daemon_pid)"; then daemon_stop || true; fi
    if [[ -n $CURRENT_DATA_DIR && ${EDGEBLOCK_KEEP_DATA:-0} != 1 ]]; then rm -rf "$CURRENT_DATA_DIR"; fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The host step before fio-verify-after-fault: the fault-injection tool (written
# separately, in C#) hammers the live daemon; the guest then checks the data path.
# ceph_cluster NAME: the Ceph cluster an entry needs is EDGEBLOCK_CEPH_DIR's (checked in run_entry); nothing to do here.
ceph_cluster() { log "$1: Ceph cluster $EDGEBLOCK_CEPH_DIR"; }

fault_injection() {
    log "$1: fault injection: $EDGEBLOCK_FAULT_CMD"
    EDGEBLOCK_TARGET=127.0.0.1:$EDGEBLOCK_DAEMON_PORT EDGEBLOCK_NQN=$INTEROP_DEFAULT_NQN \
        EDGEBLOCK_DATA_DIR=$CURRENT_DATA_DIR bash -c "$EDGEBLOCK_FAULT_CMD" \
        >>"$INTEROP_LOG_DIR/$1.fault.log" 2>&1 || {
        log "$1: the fault-injection command failed; see $INTEROP_LOG_DIR/$1.fault.log"
        tail -n 15 "$INTEROP_LOG_DIR/$1.fault.log" | sed 's/^/    | /' >&2
        return 1
    }
}

# daemon_settings SCENARIO: the scenario's DAEMON_ARGS (from NAME.conf), NUL-separated.
daemon_settings() {
    (
        DAEMON_ARGS=()
        conf=$INTEROP_DIR/scenarios/$1.conf
        # shellcheck source-path=SCRIPTDIR source=lib/host-common.sh
        if [[ -f $conf ]]; then . "$conf"; fi
        if [[ ${#DAEMON_ARGS[@]} -gt 0 ]]; then printf '%s\0' "${DAEMON_ARGS[@]}"; fi
    )
}

# run_entry NAME SCENARIO PRE: one entry; returns 0 pass, 1 fail, 3 skip (SKIP_REASON).
run_entry() {
    local name=$1 scenario=$2 pre=$3 remaining rc=0 stop_rc=0 extra=()
    remaining=$((BUDGET - SECONDS))
    if ((remaining < 60)); then
        log "$name: not run: the suite's budget of ${BUDGET}s is used up"
        return 1
    fi
    if [[ $pre == standalone ]]; then
        if [[ $REFERENCE -eq 1 ]]; then SKIP_REASON="no reference mode"; return 3; fi
        local t=$((remaining - 40))
        ((t < 240)) || t=240
        "$INTEROP_DIR/$scenario" --timeout "$t" >"$INTEROP_LOG_DIR/$name.run.log" 2>&1 || {
            log "$name: failed; see $INTEROP_LOG_DIR/$name.run.log"
            tail -n 15 "$INTEROP_LOG_DIR/$name.run.log" | sed 's/^/    | /' >&2
            return 1
        }
        return 0
    fi
    if [[ $pre != - && $REFERENCE -eq 1 ]]; then
        SKIP_REASON="needs the daemon (reference mode)"
        return 3
    fi
    if [[ $pre == ceph_cluster ]]; then
        if [[ -n ${EDGEBLOCK_SKIP_CEPH:-} ]]; then SKIP_REASON="Ceph: $EDGEBLOCK_SKIP_CEPH"; return 3; fi
        if [[ ! -f ${EDGEBLOCK_CEPH_DIR:-/nonexistent}/ceph.conf ]]; then
            SKIP_REASON="no Ceph cluster: EDGEBLOCK_CEPH_DIR names none (tests/ceph/cluster.sh start DIR makes one; ./test.sh does)"
            return 3
        fi
    fi
    if [[ $pre == fault_injection && -z ${EDGEBLOCK_FAULT_CMD:-} ]]; then
        SKIP_REASON="EDGEBLOCK_FAULT_CMD is not set"
        return 3
    fi
    if [[ $REFERENCE -eq 1 ]]; then
        "$INTEROP_DIR/run-scenario.sh" --reference --label "$name.reference" \
            --timeout "$(timeout_for "$scenario" "$remaining")" "$scenario" || return 1
        return 0
    fi
    # A scenario that brings its own target into the guest (HOST_DAEMON=0 in NAME.conf) needs no daemon here.
    if [[ $(HOST_DAEMON=1; conf=$INTEROP_DIR/scenarios/$scenario.conf
            # shellcheck source-path=SCRIPTDIR source=lib/host-common.sh
            if [[ -f $conf ]]; then . "$conf"; fi; echo "$HOST_DAEMON") == 0 ]]; then
        "$INTEROP_DIR/run-scenario.sh" --label "$name" \
            --timeout "$(timeout_for "$scenario" "$remaining")" "$scenario" || return 1
        return 0
    fi

    # A fresh daemon with a fresh data directory.
    CURRENT_DATA_DIR=$(mktemp -d "${TMPDIR:-/tmp}/edgeblock-data.XXXXXX")
    export EDGEBLOCK_DAEMON_ARGV=$WORK/$name.argv
    export EDGEBLOCK_DAEMON_PIDFILE=$WORK/$name.pid
    export EDGEBLOCK_DAEMON_LOG=$INTEROP_LOG_DIR/$name.daemon.log
    export EDGEBLOCK_DAEMON_PORT
    export EDGEBLOCK_DAEMON_CWD=$INTEROP_REPO_ROOT
    export DEFAULT_IMG=$CURRENT_DATA_DIR/$IMG_NAME
    EDGEBLOCK_DAEMON_PORT=$(free_port)
    mapfile -d '' -t extra < <(daemon_settings "$scenario")
    printf '%s\0' "${DAEMON_CMD[@]}" serve --data-dir "$CURRENT_DATA_DIR" \
        --listen "127.0.0.1:$EDGEBLOCK_DAEMON_PORT" --default-size 1G "${extra[@]}" \
        >"$EDGEBLOCK_DAEMON_ARGV"
    : >"$EDGEBLOCK_DAEMON_LOG"

    daemon_start || rc=1
    if [[ $rc -eq 0 && $pre != - ]]; then "$pre" "$name" || rc=1; fi
    if [[ $rc -eq 0 ]]; then
        "$INTEROP_DIR/run-scenario.sh" --label "$name" \
            --timeout "$(timeout_for "$scenario" "$((BUDGET - SECONDS))")" \
            "$scenario" "TARGET_PORT=$EDGEBLOCK_DAEMON_PORT" || rc=1
    fi

    daemon_stop || stop_rc=$?
    case $stop_rc in
        2) if [[ $rc -eq 0 ]]; then log "$name: the daemon was no longer running at the end (it crashed?)"; rc=1; fi ;;
        3) log "$name: note: the daemon needed SIGKILL to stop" ;;
    esac
    if [[ $rc -eq 1 ]]; then
        log "$name: last lines of the daemon log $EDGEBLOCK_DAEMON_LOG:"
        tail -n 15 "$EDGEBLOCK_DAEMON_LOG" | sed 's/^/    | /' >&2
    fi
    # A Ceph entry that failed with the OSD killed must not take the shared cluster from the entries after it.
    if [[ $pre == ceph_cluster ]] && ! "$INTEROP_REPO_ROOT/tests/ceph/cluster.sh" heal "$EDGEBLOCK_CEPH_DIR"; then
        log "$name: the Ceph cluster's OSD could not be restarted (see $EDGEBLOCK_CEPH_DIR/out)"
        rc=1
    fi
    if [[ ${EDGEBLOCK_KEEP_DATA:-0} == 1 ]]; then log "$name: data kept in $CURRENT_DATA_DIR"; else rm -rf "$CURRENT_DATA_DIR"; fi
    CURRENT_DATA_DIR=
    return "$rc"
}

# timeout_for SCENARIO REMAINING: the scenario's timeout, capped by the suite's budget.
timeout_for() {
    local t
    t=$(SCENARIO_TIMEOUT=300; conf=$INTEROP_DIR/scenarios/$1.conf
        # shellcheck source-path=SCRIPTDIR source=lib/host-common.sh
        if [[ -f $conf ]]; then . "$conf"; fi; echo "$SCENARIO_TIMEOUT")
    ((t < $2)) && echo "$t" || echo "$2"
}

# Up-front checks, so a missing daemon or tool fails in seconds, not per scenario.
if [[ $REFERENCE -ne 1 ]]; then
    if [[ ${DAEMON_CMD[0]} == */* ]]; then
        found=0
        (cd "$INTEROP_REPO_ROOT" && [[ -x ${DAEMON_CMD[0]} ]]) && found=1
    else
        found=0
        command -v "${DAEMON_CMD[0]}" >/dev/null && found=1
    fi
    if [[ $found -eq 0 ]]; then
        log "the daemon command '${DAEMON_CMD[0]}' is not executable from $INTEROP_REPO_ROOT: build it, or set EDGEBLOCK_CMD (e.g. EDGEBLOCK_CMD='dotnet run --project src/EdgeBlock.Daemon --')"
        echo "interop: 0 passed, 1 failed"
        exit 1
    fi
fi
"$INTEROP_DIR/build-guest.sh"
export INTEROP_GUEST_CHECKED=1

# Entries a default run skips, as [name]="reason" (they still run when named). None now: host-attach's corrupt
# journal after a restart was a pool race (a discard unmapping an extent under a write in flight), fixed.
declare -A NOT_BY_DEFAULT=()

passed=0 failed=0 skipped=0
log "suite: ${#SUITE[@]} entries, budget ${BUDGET}s, $([[ $REFERENCE -eq 1 ]] && echo 'REFERENCE MODE (in-guest nvmet, no daemon)' || echo "daemon: ${DAEMON_CMD[*]}"); logs in $INTEROP_LOG_DIR"
for entry in "${SUITE[@]}"; do
    read -r name scenario pre <<<"$entry"
    if [[ ${#SELECTED[@]} -gt 0 ]] && ! printf '%s\n' "${SELECTED[@]}" | grep -qx "$name"; then continue; fi
    if [[ ${#SELECTED[@]} -eq 0 && -n "${NOT_BY_DEFAULT[$name]:-}" ]]; then
        echo "interop: $name SKIP (${NOT_BY_DEFAULT[$name]})"; skipped=$((skipped + 1)); continue
    fi
    t0=$SECONDS SKIP_REASON='' rc=0
    run_entry "$name" "$scenario" "$pre" || rc=$?
    case $rc in
        0) echo "interop: $name PASS ($((SECONDS - t0))s)"; passed=$((passed + 1)) ;;
        3) echo "interop: $name SKIP ($SKIP_REASON)"; skipped=$((skipped + 1)) ;;
        *) echo "interop: $name FAIL ($((SECONDS - t0))s)"; failed=$((failed + 1)) ;;
    esac
done

summary="interop: $passed passed, $failed failed"
[[ $skipped -eq 0 ]] || summary+=", $skipped skipped"
log "total ${SECONDS}s"
echo "$summary"
[[ $failed -eq 0 ]]
