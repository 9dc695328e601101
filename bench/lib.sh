# bench/lib.sh — what bench/run.sh, bench/vm.sh and bench/density.sh share (sourced, not run).

# usage: the running script's header comment (from its second line to the first line that is not a comment).
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }

have_cmd() { command -v "$1" >/dev/null 2>&1; }

# require COMMAND PACKAGE: PACKAGE is installed by install_required when COMMAND is missing.
required=()
require() { have_cmd "$1" || required+=("$2"); }

# install_required NAME [APT-INSTALL-OPTION...]: apt-get install what require collected, as root or with sudo.
install_required() {
  [ ${#required[@]} -gt 0 ] || return 0
  local sudo_cmd=""
  echo "$1: installing ${required[*]}" >&2
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq >/dev/null
  # iperf3 asks whether to start a daemon; the answer is no.
  echo "iperf3 iperf3/start_daemon boolean false" | $sudo_cmd debconf-set-selections 2>/dev/null || true
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${@:2}" "${required[@]}" >/dev/null
}

commands=()   # what note_cmd recorded
note_cmd() { # records (uses $tmp and $repo) a command for BENCHMARKS.md (once), with the work directory and the repository left out
  local c line="$*"
  line=${line//"$tmp/"/}
  line=${line//"$repo/"/./}
  for c in "${commands[@]}"; do [ "$c" = "$line" ] && return 0; done
  commands+=("$line")
}

# commands_details: the commands a run recorded (array `commands`) as a collapsed block for BENCHMARKS.md.
commands_details() {
  echo "<details><summary>Commands</summary>"
  echo
  echo '```sh'
  printf '%s\n' "${commands[@]}"
  echo '```'
  echo
  echo "</details>"
}

listening() { # PORT: true when a socket listens on it (read from /proc/net/tcp: probing with a connect would
  # count as iperf3's one client)
  awk -v p="$(printf '%04X' "$1")" '$4 == "0A" && substr($2, index($2, ":") + 1) == p { found = 1 } END { exit !found }' /proc/net/tcp
}
pick_port() { # a free TCP port near $1
  local p=$1
  while listening "$p"; do p=$((p + 1)); done
  echo "$p"
}
cpu_ticks() { # utime + stime (fields 14 and 15; the name in field 2 may hold spaces)
  awk '{ i = index($0, ") "); split(substr($0, i + 2), f, " "); print f[12] + f[13] }' "/proc/$1/stat"
}

# bench_option SCRIPT ARGS...: the options every suite takes: --time SECONDS (or --time=), --no-record, --dir DIR, --help.
# Sets run_seconds, record or work_parent, and SHIFT (the arguments it used); refuses anything else (exit 2).
# The defaults: results recorded, work directories under $EDGEBLOCK_BENCH_DIR or /var/tmp.
record=1
work_parent="${EDGEBLOCK_BENCH_DIR:-/var/tmp}"
bench_option() {
  local script=$1; shift
  SHIFT=1
  case "$1" in
    --time) run_seconds="${2%s}"; SHIFT=2 ;;
    --time=*) run_seconds="${1#--time=}"; run_seconds="${run_seconds%s}" ;;
    --no-record) record=0 ;;
    --dir) work_parent="$2"; SHIFT=2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "$script: unknown option '$1'" >&2; usage >&2; exit 2 ;;
  esac
}
