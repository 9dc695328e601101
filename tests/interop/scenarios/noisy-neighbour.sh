#!/bin/sh
# noisy-neighbour: eight controllers on eight volumes of one pool. This guest's kernel host is one
# of seven readers (4 KiB random reads at QD1, paced: a VM that wants a few hundred IOPS and
# cares about latency); the host's `edgeblock bench` runs the six other readers and the noisy
# neighbour (4 KiB random writes at QD128, as fast as it can). Each reader's p99 is measured
#   alone    the seven readers, nothing else;
#   noisy    with the writer unthrottled (reported, not judged);
#   limited  with the writer under a volume IOPS limit (EDGEBLOCK_NOISY_QOS, see the .conf);
#   alone2   the readers alone again (the box is shared: the baseline is the better of both);
# and the host hook judges: in the limited phase the .NET readers' median p99 and the guest's
# p99 are each at most 2x their baseline. The guest is compared with its own baseline (its
# latency under TCG is mostly emulation). A failed judgement repeats the whole measurement once before the scenario fails.
set -eu
. /interop-lib.sh
if [ "$REFERENCE" = 1 ]; then
    log "reference mode: noisy-neighbour checks our daemon's QoS; nothing to check against nvmet: SKIPPED"
    scenario_end
    exit 0
fi
scenario_begin
: "${NOISY_NQN:?NOISY_NQN is not set (see noisy-neighbour.conf)}"
: "${READ_SECONDS:=8}"
: "${GUEST_RATE_IOPS:=100}"

step "host: edgeblock pool create n + volume create v1..v8 + namespace add x8 + bench fills v1..v7"
host_action setup
NQN=$NOISY_NQN
NSID=1
step "connect to $NQN"
connect -i 1

# measure PHASE ATTEMPT: the host starts its readers (and the writer), this guest reads at QD1
# for the same time, then hands its p99 (µs) to the host, which collects its own.
measure() {
    host_action "start-$1-$2"
    fio --name="$1" --filename="$NS" --ioengine=libaio --direct=1 --rw=randread --bs=4k --iodepth=1 \
        --size=32M --rate_iops="$GUEST_RATE_IOPS" --ramp_time=2 --runtime="$READ_SECONDS" --time_based \
        --output-format=terse --terse-version=3 >/tmp/fio.terse 2>/tmp/fio.err ||
        { cat /tmp/fio.err; fail "fio ($1) failed"; }
    p99=$(tr ';' '\n' </tmp/fio.terse | sed -n 's/^99\.000000%=//p' | head -n 1)
    if [ -z "$p99" ] || [ "$p99" -le 0 ]; then cat /tmp/fio.terse; fail "no read p99 in fio's output ($1)"; fi
    log "guest reader, $1: p99 $p99 µs"
    host_action "collect-$1-$2-$p99"
}

attempt=1
while :; do
    step "attempt $attempt: readers alone, with the noisy writer, with the writer limited, alone again"
    for phase in alone noisy limited alone2; do measure "$phase" "$attempt"; done
    host_action "judge-$attempt"
    case $HOST_OUT in *NOISY-NEIGHBOUR-PASS*) break ;; esac
    [ "$attempt" -lt 2 ] || fail "with the writer limited, the readers' p99 went over 2x their alone p99 (twice; see the table)"
    attempt=2
done

step "disconnect"
disconnect
scenario_end
