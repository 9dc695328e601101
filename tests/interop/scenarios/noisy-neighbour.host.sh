#!/usr/bin/env bash
# Host hook of the noisy-neighbour scenario: the pool, the volumes, the six .NET readers and the
# noisy writer (`edgeblock bench`, one controller each) and the judgement.
#   setup                  pool n over one 2G file drive; volumes v1..v8 (128M) as namespaces 1-8;
#                          v1..v7 filled over their first 32M (reads of unwritten blocks do no I/O)
#   start-PHASE-N          QoS for PHASE (limited: EDGEBLOCK_NOISY_QOS on v8 and EDGEBLOCK_NOISY_READER_QOS,
#                          if set, on v1..v7; alone2 clears them); the writer
#                          (noisy, limited) on v8, then readers on v2..v7, in the background
#   collect-PHASE-N-P99    waits for them; records their p99 and the guest's (P99, µs)
#   judge-N                the table; prints NOISY-NEIGHBOUR-PASS when in the limited phase the
#                          .NET readers' median p99 and the guest's p99 are each <= 2x their
#                          baseline (the better of alone and alone2, at least 1 ms); attempt 1 only reports a miss
#                          (the guest repeats the measurement), attempt 2 fails
set -euo pipefail
# shellcheck disable=SC2034 # used by host-common.sh
INTEROP_PROG=noisy-neighbour.host
# shellcheck source-path=SCRIPTDIR source=../lib/host-common.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/host-common.sh"

NQN=nqn.2026-11.io.edgeblock:noisy-neighbour
READ_SECONDS=8     # the guest's runtime too (noisy-neighbour.sh)
READER_IOPS=200    # per .NET reader: paced, as a VM that cares about latency, not throughput
NOISY_QOS=${EDGEBLOCK_NOISY_QOS:---iops 500}
READER_QOS=${EDGEBLOCK_NOISY_READER_QOS:-}
FLOOR_US=1000      # the least baseline p99 a ratio is taken against
daemon_cli
work=${INTEROP_RUN_DIR:?}/noisy
results=$work/results
mkdir -p "$work"
eb() {
    echo "\$ edgeblock $*" >&2
    (cd "$EDGEBLOCK_DAEMON_CWD" && "${cli[@]}" "$@" --api-socket "$data_dir/api.sock")
}
bench() { (cd "$EDGEBLOCK_DAEMON_CWD" && exec "${cli[@]}" bench --addr "127.0.0.1:$EDGEBLOCK_DAEMON_PORT" --nqn "$NQN" --json "$@"); }
# bench_bg NAME ARGS...: a bench run detached from this hook (its output must not hold the
# guest's connection open), its pid in $work/NAME.pid, its JSON in $work/NAME.json.
bench_bg() {
    local name=$1
    shift
    (cd "$EDGEBLOCK_DAEMON_CWD" && {
        setsid "${cli[@]}" bench --addr "127.0.0.1:$EDGEBLOCK_DAEMON_PORT" --nqn "$NQN" --json "$@" \
            >"$work/$name.json" 2>"$work/$name.err" </dev/null &
        echo $! >"$work/$name.pid"
    })
}
# json_num KEY FILE: the first "KEY": number of a bench JSON (the top level's come first).
json_num() { tr -d ' \n' <"$2" | grep -o "\"$1\":[0-9.]*" | head -n 1 | cut -d: -f2; }
p99_of() { tr -d ' \n' <"$1" | grep -o '"latency_us":{[^}]*}' | head -n 1 | grep -o '"p99":[0-9.]*' | cut -d: -f2; }

case ${1:-} in
    setup)
        eb pool create n "$data_dir/n.img:2G"
        eb subsystem create "$NQN" --allow-any-host
        for i in 1 2 3 4 5 6 7 8; do
            eb volume create "n/v$i" --size 128M
            eb namespace add "$NQN" --nsid "$i" --volume "n/v$i"
        done
        pids=()
        for i in 1 2 3 4 5 6 7; do
            bench --nsid "$i" --rw write --bs 128k --qd 8 --size-limit 32M --io-limit 32M --time 60s >/dev/null &
            pids+=($!)
        done
        wait "${pids[@]}"
        eb volume list n
        ;;
    start-*)
        read -r _ phase attempt <<<"${1//-/ }"
        # shellcheck disable=SC2086 # NOISY_QOS and READER_QOS are lists of options
        case $phase in
            limited)
                eb volume set n/v8 $NOISY_QOS
                if [[ -n $READER_QOS ]]; then for i in 1 2 3 4 5 6 7; do eb volume set "n/v$i" $READER_QOS; done; fi
                eb volume show n/v8 | grep -E '^(qos|throttled)'
                ;;
            alone2) # what limited set
                eb volume set n/v8 --iops none --bw none --weight none
                if [[ -n $READER_QOS ]]; then for i in 1 2 3 4 5 6 7; do eb volume set "n/v$i" --iops none --bw none --weight none; done; fi
                ;;
        esac >&2
        rm -f "$work"/*.pid
        if [[ $phase == noisy || $phase == limited ]]; then
            # Runs past the readers' window: it starts first and ends after they do.
            bench_bg writer --nsid 8 --rw randwrite --qd 128 --time "$((READ_SECONDS + 5))s"
            sleep 1
        fi
        for i in 2 3 4 5 6 7; do
            bench_bg "r$i" --nsid "$i" --rw randread --qd 1 --rate-iops "$READER_IOPS" --size-limit 32M --ramp 1s --time "${READ_SECONDS}s"
        done
        echo "$phase ($attempt): readers on v2..v7$([[ -f $work/writer.pid ]] && echo ", writer on v8") started"
        ;;
    collect-*)
        read -r _ phase attempt guest_p99 <<<"${1//-/ }"
        for f in "$work"/*.pid; do
            pid=$(cat "$f")
            for _ in $(seq 1 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -0 "$pid" 2>/dev/null && die "$(basename "$f" .pid) still runs 60 s after its time"
        done
        line="$phase ($attempt): guest p99 ${guest_p99} µs"
        echo "$attempt $phase guest $guest_p99 0" >>"$results"
        for i in 2 3 4 5 6 7; do
            p99=$(p99_of "$work/r$i.json") || true
            [[ -n $p99 ]] || die "reader v$i: no result ($(tail -n 3 "$work/r$i.err"))"
            echo "$attempt $phase v$i $p99 $(json_num iops "$work/r$i.json")" >>"$results"
            line+=", v$i ${p99%.*}"
        done
        if [[ -f $work/writer.pid ]]; then
            [[ -s $work/writer.json ]] || die "the writer: no result ($(tail -n 3 "$work/writer.err"))"
            echo "$attempt $phase writer $(p99_of "$work/writer.json") $(json_num iops "$work/writer.json")" >>"$results"
            line+="; writer $(json_num iops "$work/writer.json") IOPS"
        fi
        echo "$line"
        ;;
    judge-*)
        attempt=${1#judge-}
        eb volume show n/v8 | grep -E '^throttled' >&2
        # The six .NET readers count as one: their median p99 per phase (one reader's p99 over 8 s
        # is ~16 samples of the tail, at the mercy of the shared box's scheduler); the guest alone.
        # The baseline is the better of the two alone runs (other work on the shared box only ever adds
        # latency: a burst of it during one alone run must not make the limited phase look good), and
        # one under FLOOR_US counts as FLOOR_US: below a millisecond, 2x is scheduler jitter.
        awk -v a="$attempt" -v qos="$NOISY_QOS" -v floor="$FLOOR_US" '
            function median(phase,   i, j, k, t, v) {
                k = 0
                for (i = 0; i < n; i++) if (order[i] != "guest") v[k++] = p[phase, order[i]]
                for (i = 1; i < k; i++) for (j = i; j > 0 && v[j - 1] > v[j]; j--) { t = v[j]; v[j] = v[j - 1]; v[j - 1] = t }
                return k % 2 ? v[int(k / 2)] : (v[k / 2 - 1] + v[k / 2]) / 2
            }
            function row(name, al, al2, no, li,   base) {
                base = al < al2 ? al : al2
                if (base < floor) base = floor
                printf "| %s | %.0f | %.0f | %.0f | %.2f | %.0f | %.2f |\n", name, al, al2, no, no / base, li, li / base
                return li / base
            }
            $1 != a { next }
            $3 == "writer" { wiops[$2] = $5; next }
            { p[$2, $3] = $4; if (!($3 in seen)) { seen[$3] = 1; order[n++] = $3 } }
            END {
                printf "| reader | alone p99 µs | alone2 | noisy (writer %d IOPS) | ratio | limited (%s, writer %d IOPS) | ratio |\n", wiops["noisy"], qos, wiops["limited"]
                print "|---|---:|---:|---:|---:|---:|---:|"
                for (i = 0; i < n; i++) if (order[i] != "guest") row(order[i], p["alone", order[i]], p["alone2", order[i]], p["noisy", order[i]], p["limited", order[i]])
                host = row("v2..v7 (median)", median("alone"), median("alone2"), median("noisy"), median("limited"))
                guest = row("guest (kernel host)", p["alone", "guest"], p["alone2", "guest"], p["noisy", "guest"], p["limited", "guest"])
                bad = (host > 2) + (guest > 2)
                if (bad == 0) print "NOISY-NEIGHBOUR-PASS: the readers stay within 2x their alone p99 with the writer limited"
                else {
                    who = (host > 2) ? ((guest > 2) ? "the .NET readers and the guest" : "the .NET readers") : "the guest"
                    print "NOISY-NEIGHBOUR-MISS: with the writer limited, p99 over 2x alone for " who
                }
                exit (bad > 0 && a >= 2)
            }' SUBSEP="" "$results"
        ;;
    *) die "unknown action '${1:-}' (setup, start-PHASE-N, collect-PHASE-N-P99, judge-N)" ;;
esac
