# shellcheck shell=sh
# vm-guest.sh — the guest side of bench/vm.sh: runs as /scenario.sh in the interop test guest
# (busybox ash, POSIX sh), started by the guest's /init with /scenario.env exported.
#
# Variables (from /scenario.env):
#   DISK_KIND   virtio: the disk is /dev/vda (virtio-blk or vhost-user-blk);
#               nvme: connect to NQN at TARGET_ADDR:TARGET_PORT over NVMe/TCP and use its namespace
#   JOBS        the fio jobs to run, in order: rr (4k randread), rw (4k randwrite), seq (128k read)
#   RUNTIME     seconds per measured job; WARMUP seconds of unmeasured 4k randread first
#   QD_RAND, QD_SEQ  fio iodepth of the random and the sequential jobs
#
# Console protocol (the host samples /proc when it sees a marker, so the window is fio's I/O phase):
#   EBVM-BEGIN <job>          printed by fio's exec_prerun, right before the job's I/O starts
#   EBVM-END <job>            printed by fio's exec_postrun, right after it stops
#   EBVM-IRQ <job> <n>        interrupts from virtio devices during the job (fio's set-up included)
#   EBVM-JSON-BEGIN <job> ... EBVM-JSON-END <job>   fio's JSON output of the job
#   EBVM-DONE                 all jobs ran
# The scenario's exit status (0 = every job ran) is printed by /init as EDGEBLOCK-SCENARIO-RESULT.

. /interop-lib.sh

: "${DISK_KIND:=virtio}" "${JOBS:=rr rw seq}" "${RUNTIME:=20}" "${WARMUP:=3}" "${QD_RAND:=32}" "${QD_SEQ:=8}"

# The markers go straight to the console: fio redirects exec_prerun/exec_postrun output into a file.
cat >/tmp/mark.sh <<'EOF'
echo "EBVM-$1 $2 uptime=$(cut -d' ' -f1 /proc/uptime)" >/dev/console
EOF

scenario_begin
case $DISK_KIND in
    virtio)
        DISK=/dev/vda
        i=0
        while [ ! -b $DISK ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
        [ -b $DISK ] || fail "no $DISK"
        log "disk $DISK: $(blockdev --getsize64 $DISK) bytes, $(cat /sys/block/vda/mq/*/nr_tags 2>/dev/null | head -n 1) tags, $(ls -d /sys/block/vda/mq/* | wc -l) queues"
        ;;
    nvme)
        step "connect over NVMe/TCP"
        connect
        DISK=$NS
        log "disk $DISK: $(ls -d /sys/block/"${NS#/dev/}"/mq/* 2>/dev/null | wc -l) queues"
        ;;
    *) fail "unknown DISK_KIND $DISK_KIND" ;;
esac

# virtio_irqs: interrupts taken so far from all virtio devices (the disk's queues; for NVMe/TCP the NIC's)
virtio_irqs() {
    awk '/virtio/ { for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) s += $i } END { print s + 0 }' /proc/interrupts
}

# fio_job NAME RW BS QD SECONDS [MARK]: one time-based fio job on the disk; with MARK, markers and JSON
# on the console.
fio_job() {
    name=$1 rw=$2 bs=$3 qd=$4 secs=$5 mark=${6:-}
    set -- --name="$name" --filename="$DISK" --ioengine=libaio --direct=1 --rw="$rw" --bs="$bs" \
        --iodepth="$qd" --time_based --runtime="$secs" --norandommap --randrepeat=0 --eta=never \
        --output-format=json --output="/tmp/$name.json"
    if [ -n "$mark" ]; then
        set -- "$@" --exec_prerun="sh /tmp/mark.sh BEGIN $name" --exec_postrun="sh /tmp/mark.sh END $name"
    fi
    irq_before=$(virtio_irqs)
    fio "$@" || return 1
    if [ -n "$mark" ]; then
        echo "EBVM-IRQ $name $(($(virtio_irqs) - irq_before))"
        echo "EBVM-JSON-BEGIN $name"
        cat "/tmp/$name.json"
        echo "EBVM-JSON-END $name"
    fi
}

if [ "$WARMUP" -gt 0 ]; then
    step "warm-up: 4k randread for ${WARMUP}s (not measured)"
    fio_job warmup randread 4k "$QD_RAND" "$WARMUP" || fail "the warm-up fio failed"
fi
for job in $JOBS; do
    case $job in
        rr) step "fio rr: 4k randread QD$QD_RAND, ${RUNTIME}s"; fio_job rr randread 4k "$QD_RAND" "$RUNTIME" mark ;;
        rw) step "fio rw: 4k randwrite QD$QD_RAND, ${RUNTIME}s"; fio_job rw randwrite 4k "$QD_RAND" "$RUNTIME" mark ;;
        seq) step "fio seq: 128k read QD$QD_SEQ, ${RUNTIME}s"; fio_job seq read 128k "$QD_SEQ" "$RUNTIME" mark ;;
        *) fail "unknown job $job" ;;
    esac || fail "fio $job failed"
done
echo "EBVM-DONE"
if [ "$DISK_KIND" = nvme ]; then disconnect; fi
scenario_end
