#!/bin/sh
# Guest side of tools/nvmet-daemon.sh: export /dev/vda (the data dir's default.img) with
# the in-kernel NVMe/TCP target on all guest addresses, announce readiness, then idle
# until QEMU is stopped.
set -eu
. /interop-lib.sh
reference_target_start
echo "NVMET-TARGET-READY"
while :; do sleep 3600; done
