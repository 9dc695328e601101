# shellcheck shell=bash disable=SC2154 # eb, api, tmp, img, port, bytes, size, rounds, now come from bench/images.sh
# bench/images-attach.sh — the --attach mode of bench/images.sh (sourced by it, with eb, api, tmp, img, port, bytes,
# size, rounds and now set): time from `image attach` to the first read served, for a 1 GiB image and one of SIZE.
nqn=nqn.2026-11.io.edgeblock:attach-bench
sock="$tmp/d/api.sock"
post() { curl -sS --fail-with-body --unix-socket "$sock" -H 'content-type: application/json' -X POST -d "$2" "http://edgeblock$1" >"$tmp/post.out" || { cat "$tmp/post.out" >&2; return 1; }; }
"$eb" subsystem create "$nqn" --allow-any-host "${api[@]}" >/dev/null
sizes=("1G:$((1 << 30))" "$size:$bytes")
for entry in "${sizes[@]}"; do
  name=${entry%%:*} b=${entry#*:}
  # 1 MiB of data every 256 MiB: attaching reads the header, the L1 table and the identity, never the data.
  cmds=()
  for ((off = 0; off < b; off += 256 << 20)); do cmds+=(-c "write -P 0x5a $off 1M"); done
  qemu-img create -q -f qcow2 "$img/attach-$name.qcow2" "$name"
  qemu-io -f qcow2 "${cmds[@]}" "$img/attach-$name.qcow2" >/dev/null
done
echo "   images: $(for e in "${sizes[@]}"; do n=${e%%:*}; printf '%s qcow2 %s on disk; ' "$n" "$(du -h "$img/attach-$n.qcow2" | cut -f1)"; done)" >&2
rows=()
nsid=1
for r in $(seq "$rounds"); do
  for entry in "${sizes[@]}"; do
    name=${entry%%:*} vol="a-${entry%%:*}-$r"
    t0=$(now)
    post /v1/pools/tank/images/attach "{\"file\": \"$img/attach-$name.qcow2\", \"name\": \"$vol\", \"io_share\": 0.01}"
    t1=$(now)
    post "/v1/subsystems/$nqn/namespaces" "{\"backend\": \"volume:tank/$vol\", \"nsid\": $nsid}"
    t2=$(now)
    "$eb" bench --addr "127.0.0.1:$port" --nqn "$nqn" --nsid "$nsid" --rw randread --qd 1 --time 5s --io-limit 4096 --json >"$tmp/read.json"
    t3=$(now)
    python3 -c 'import json, sys; j = json.load(open(sys.argv[1])); sys.exit(0 if j["run_ios"] >= 1 and j["error_count"] == 0 else 1)' "$tmp/read.json" ||
      { echo "images: the first read of tank/$vol failed: $(cat "$tmp/read.json")" >&2; exit 1; }
    rows+=("$name $(echo "$t1 - $t0" | bc) $(echo "$t2 - $t1" | bc) $(echo "$t3 - $t2" | bc) $(echo "$t3 - $t0" | bc)")
    "$eb" namespace remove "$nqn" "$nsid" "${api[@]}" >/dev/null
    "$eb" volume delete "tank/$vol" "${api[@]}" >/dev/null
    nsid=$((nsid + 1))
  done
done
printf '%s\n' "${rows[@]}" | python3 -c '
import sys, statistics
rows = {}
for line in sys.stdin:
    name, *v = line.split()
    rows.setdefault(name, []).append([float(x) for x in v])
print("| image (virtual) | attach call s | namespace add s | first read (bench: start, connect, read) s | attach to first read s (median) | runs (s) |")
print("|---|---:|---:|---:|---:|---|")
for name, v in rows.items():
    med = [statistics.median(x[i] for x in v) for i in range(4)]
    print(f"| {name} | {med[0]:.3f} | {med[1]:.3f} | {med[2]:.2f} | {med[3]:.2f} | " + ", ".join("%.2f" % x[3] for x in v) + " |")
'
