#!/usr/bin/env bash
# Fuzzes the code that parses hostile input with AFL++ over SharpFuzz-instrumented assemblies.
#
#   tests/fuzz/run.sh TARGET|all [SECONDS]    (default 60 s per target)
#
# Installs what it needs (apt afl++, the SharpFuzz.CommandLine dotnet tool), publishes tests/fuzz/EdgeBlock.Fuzz,
# instruments the EdgeBlock assemblies under test, runs one bounded afl-fuzz campaign per target from its seed
# corpus (tests/fuzz/corpus/TARGET) and prints a line per target, then "fuzz: N passed, N failed".
# A target fails on any crash (an exception the daemon would not expect, see tests/fuzz/README.md), hang
# (an input running longer than EDGEBLOCK_FUZZ_TIMEOUT_MS), unbounded allocation (GC heap above
# DOTNET_GCHeapHardLimit, or resident set above EDGEBLOCK_FUZZ_RSS_MB after one input), or a campaign that
# did not run. Findings are copied to artifacts/fuzz/TARGET/{crashes,hangs}/ and replayed into the log.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
root=$(pwd)
targets_all=(nvme-tcp vhost-msg vhost-ring config qcow2)
target=${1:-}
seconds=${2:-60}
if [ -z "$target" ] || { [ "$target" != all ] && [[ ! " ${targets_all[*]} " =~ " $target " ]]; }; then
  echo "usage: tests/fuzz/run.sh {all|${targets_all[*]// /|}} [SECONDS]" >&2; exit 2
fi
[ "$target" = all ] && targets=("${targets_all[@]}") || targets=("$target")
out="$root/artifacts/fuzz"
bin="$out/bin"
mkdir -p "$out"

fail_all() { echo "$1"; echo "fuzz: 0 passed, ${#targets[@]} failed"; exit 1; }

# ---- tools ----------------------------------------------------------------------------------
if ! command -v afl-fuzz >/dev/null 2>&1; then
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  { $sudo_cmd apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq afl++; } >"$out/apt.log" 2>&1 \
    || fail_all "apt-get install afl++ failed (see $out/apt.log)"
fi
sharpfuzz="$out/tools/sharpfuzz"
if [ ! -x "$sharpfuzz" ]; then
  dotnet tool install SharpFuzz.CommandLine --version 2.3.0 --tool-path "$out/tools" >"$out/tool.log" 2>&1 \
    || fail_all "dotnet tool install SharpFuzz.CommandLine failed (see $out/tool.log)"
fi

# ---- build and instrument ---------------------------------------------------------------------
# A fresh copy each time: instrumentation rewrites the assemblies in place and refuses to run twice.
rm -rf "$bin"
dotnet publish tests/fuzz/EdgeBlock.Fuzz -c Release -o "$bin" --nologo -v q >"$out/build.log" 2>&1 \
  || fail_all "building the fuzz harness failed (see $out/build.log)"
for asm in EdgeBlock.Nvme EdgeBlock.Target EdgeBlock.Transports.Tcp EdgeBlock.Transports.VhostUser EdgeBlock.Api EdgeBlock.Daemon EdgeBlock.Images; do
  "$sharpfuzz" "$bin/$asm.dll" >>"$out/instrument.log" 2>&1 || fail_all "instrumenting $asm failed (see $out/instrument.log)"
done

# ---- campaigns ------------------------------------------------------------------------------
# Reads one field of afl-fuzz's fuzzer_stats.
stat() { sed -nE "s/^$1 *: *([0-9.]+).*/\1/p" "$2" | head -1; }
passed=0; failed=0
for t in "${targets[@]}"; do
  dir="$out/$t"
  # EDGEBLOCK_FUZZ_RESUME=1 goes on with the last campaign's queue and counts (afl-fuzz -i -).
  input="tests/fuzz/corpus/$t"
  if [ "${EDGEBLOCK_FUZZ_RESUME:-0}" = 1 ] && [ -f "$dir/out/default/fuzzer_stats" ]; then
    input=-; mv "$dir/afl.log" "$dir/afl.log.1" 2>/dev/null
  else
    rm -rf "$dir"; mkdir -p "$dir"
  fi
  dict=(); [ -f "tests/fuzz/dict/$t.dict" ] && dict=(-x "tests/fuzz/dict/$t.dict")
  # No CPU binding (a shared machine), no UI, .NET's startup is slow for the fork server handshake; the GC heap
  # limit turns an allocation sized by a hostile field into an OutOfMemoryException, which is a crash.
  AFL_SKIP_BIN_CHECK=1 AFL_NO_UI=1 AFL_NO_AFFINITY=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 \
  AFL_FORKSRV_INIT_TMOUT=60000 \
  DOTNET_GCHeapHardLimit=${DOTNET_GCHeapHardLimit:-0x20000000} \
    timeout $((seconds + 120)) afl-fuzz -i "$input" -o "$dir/out" -t "${EDGEBLOCK_FUZZ_TIMEOUT_MS:-2000}" -m none \
      -V "$seconds" "${dict[@]}" -- dotnet "$bin/EdgeBlock.Fuzz.dll" "$t" >"$dir/afl.log" 2>&1
  rc=$?
  stats="$dir/out/default/fuzzer_stats"
  if [ ! -f "$stats" ]; then
    tail -20 "$dir/afl.log"; echo "fuzz $t: failed (afl-fuzz exited $rc without statistics, see $dir/afl.log)"
    failed=$((failed + 1)); continue
  fi
  execs=$(stat execs_done "$stats"); rate=$(stat execs_per_sec "$stats"); paths=$(stat corpus_count "$stats")
  crashes=$(stat saved_crashes "$stats"); hangs=$(stat saved_hangs "$stats")
  crashes=${crashes:-0}; hangs=${hangs:-0}
  for kind in crashes hangs; do
    mkdir -p "$dir/$kind"
    find "$dir/out/default/$kind" -name 'id:*' -exec cp {} "$dir/$kind/" \; 2>/dev/null
  done
  line="execs $execs, execs/s $rate, paths $paths, crashes $crashes, hangs $hangs, ${seconds} s"
  if [ "$crashes" -eq 0 ] && [ "$hangs" -eq 0 ] && [ "${execs:-0}" -gt 0 ]; then
    echo "fuzz $t: passed ($line)"; passed=$((passed + 1))
  else
    echo "fuzz $t: failed ($line); inputs in $dir/crashes and $dir/hangs"
    # What the findings are: each replayed outside afl-fuzz, its exception in the log.
    [ "$crashes" -gt 0 ] && dotnet "$bin/EdgeBlock.Fuzz.dll" "$t" "$dir/crashes" 2>&1 | grep -E "^FAIL|^ +at |ran clean" | head -40
    failed=$((failed + 1))
  fi
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
