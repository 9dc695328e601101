#!/usr/bin/env bash
# Installs what the tests need, builds with warnings as errors, runs the unit tests and the
# guest-based interop suite, and ends with one line: "N passed, N failed".
#
#   ./test.sh                 everything
#   EDGEBLOCK_SKIP_INTEROP=1 ./test.sh   no guest scenarios (quick local loop)
#   EDGEBLOCK_SKIP_FUZZ=1 ./test.sh      no fuzzing (EDGEBLOCK_FUZZ_SECONDS=N: per target, 60 by default)
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
root=$(pwd)
log_dir="$root/artifacts/test-logs"
mkdir -p "$log_dir"

passed=0
failed=0
note() { printf '\n== %s\n' "$*"; }

# ---- dependencies -------------------------------------------------------------
apt_packages=(qemu-system-x86 qemu-utils fio nvme-cli busybox-static e2fsprogs cpio kmod util-linux iproute2 procps)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  note "installing: ${missing[*]}"
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >"$log_dir/apt.log" 2>&1 \
    || { echo "apt-get install failed (see $log_dir/apt.log)"; echo "0 passed, 1 failed"; exit 1; }
fi
# Ceph for the RBD tests (issue J): a throwaway single-node cluster per run. Optional: when the packages cannot
# be installed or the cluster does not come up, the Ceph tests are skipped with the reason (one line here).
ceph_packages=(ceph-mon ceph-osd ceph-common librbd1 uuid-runtime)
ceph_missing=()
for p in "${ceph_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || ceph_missing+=("$p")
done
if [ ${#ceph_missing[@]} -gt 0 ]; then
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  { $sudo_cmd apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${ceph_missing[@]}"; } >"$log_dir/apt-ceph.log" 2>&1 \
    || export EDGEBLOCK_SKIP_CEPH="apt-get install ${ceph_missing[*]} failed (see $log_dir/apt-ceph.log)"
fi
if ! command -v dotnet >/dev/null 2>&1; then
  echo "the .NET 10 SDK (dotnet) is required"; echo "0 passed, 1 failed"; exit 1
fi

# ---- build --------------------------------------------------------------------
note "build (Release, warnings as errors)"
if ! dotnet build EdgeBlock.sln -c Release -warnaserror --nologo -v q -clp:NoSummary >"$log_dir/build.log" 2>&1; then
  grep -E "error|warn" "$log_dir/build.log" | sort -u | head -50
  echo "build failed (see $log_dir/build.log)"
  echo "0 passed, 1 failed"
  exit 1
fi
echo "build ok"

# ---- unit and integration tests (xunit) ------------------------------------------
# Prints each failed test of a dotnet test log: its name, message and stack (at most 40 lines each).
print_failures() {
  awk '/^[[:space:]]+Failed [^ ]/ { on = 1; n = 0 }
       /^[[:space:]]+(Passed|Skipped) [^ ]/ { on = 0 }
       on && n++ < 40 { print }' "$1"
}
# The Ceph cluster the RBD tests share (tests/ceph/cluster.sh; on disk: BlueStore needs O_DIRECT).
if [ -z "${EDGEBLOCK_SKIP_CEPH:-}" ]; then
  note "ceph test cluster"
  ceph_dir=$(mktemp -u /var/tmp/edgeblock-ceph.XXXXXX)
  if tests/ceph/cluster.sh start "$ceph_dir" >"$log_dir/ceph-cluster.log" 2>&1; then
    export EDGEBLOCK_CEPH_DIR=$ceph_dir
    trap 'tests/ceph/cluster.sh stop "$ceph_dir" >/dev/null 2>&1' EXIT
    tail -1 "$log_dir/ceph-cluster.log"
  else
    export EDGEBLOCK_SKIP_CEPH="the test cluster did not come up: $(tail -1 "$log_dir/ceph-cluster.log") (logs in $ceph_dir/out)"
  fi
fi
[ -n "${EDGEBLOCK_SKIP_CEPH:-}" ] && echo "Ceph tests skipped: $EDGEBLOCK_SKIP_CEPH"
for proj in tests/*/*.csproj; do
  name=$(basename "$proj" .csproj)
  note "$name"
  out="$log_dir/$name.log"
  # The console logger at normal verbosity writes each failed test's message and stack trace.
  dotnet test "$proj" -c Release --no-build --nologo -v q --logger "console;verbosity=normal" >"$out" 2>&1
  # Normal verbosity ends with "Total tests: N", "Passed: N" and, when some failed, "Failed: N".
  total=$(sed -nE 's/^Total tests: *([0-9]+).*/\1/p' "$out" | tail -1)
  if [ -z "$total" ]; then
    tail -30 "$out"; echo "$name: no test summary (see $out)"; failed=$((failed + 1)); continue
  fi
  p=$(sed -nE 's/^ +Passed: *([0-9]+).*/\1/p' "$out" | tail -1)
  f=$(sed -nE 's/^ +Failed: *([0-9]+).*/\1/p' "$out" | tail -1)
  p=${p:-0}; f=${f:-0}
  echo "$name: $p passed, $f failed of $total"
  passed=$((passed + p)); failed=$((failed + f))
  [ "$f" -gt 0 ] && print_failures "$out"
done

# Adds the "NAME: N passed, N failed" summary line of LOG to the counts; a missing summary counts as one failure.
add_summary() {
  local name=$1 log=$2 summary p f
  summary=$(grep -E "^$name: [0-9]+ passed, [0-9]+ failed" "$log" | tail -1)
  if [ -z "$summary" ]; then
    echo "$name: no summary (see $log)"; failed=$((failed + 1)); return
  fi
  p=$(sed -E "s/$name: ([0-9]+) passed.*/\1/" <<<"$summary")
  f=$(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"$summary")
  passed=$((passed + p)); failed=$((failed + f))
}

# ---- fuzzing: AFL++ over the parsers of hostile input (tests/fuzz/README.md) ---------------
# A bounded campaign per target; a crash, hang or unbounded allocation fails it (inputs in artifacts/fuzz/).
if [ "${EDGEBLOCK_SKIP_FUZZ:-0}" != 1 ]; then
  note "fuzz (AFL++ with SharpFuzz, ${EDGEBLOCK_FUZZ_SECONDS:-60} s per target)"
  tests/fuzz/run.sh all "${EDGEBLOCK_FUZZ_SECONDS:-60}" 2>&1 | tee "$log_dir/fuzz.log"
  add_summary fuzz "$log_dir/fuzz.log"
fi

# ---- interop: the Linux kernel's NVMe/TCP host in a stock Debian guest -------------
if [ "${EDGEBLOCK_SKIP_INTEROP:-0}" != 1 ]; then
  note "interop (Linux nvme-tcp host in a QEMU guest)"
  tests/interop/run-all.sh 2>&1 | tee "$log_dir/interop.log"
  add_summary interop "$log_dir/interop.log"
fi

echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
