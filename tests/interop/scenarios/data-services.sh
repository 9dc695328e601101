#!/bin/sh
# data-services: a volume with lz4 compression and crc32c checksums (stored as 16 KiB chunks,
# redirect-on-write) under the kernel's host. The host hook creates pool ds and volume ds/v
# (256M, --compress lz4 --checksum on) and exports it as namespace 1.
#  - fio verify (crc32c, libaio, O_DIRECT): random data at 4k (does not compress: stored
#    raw), then fio's text pattern at 4k (parts of compressed chunks rewritten: read, merge,
#    compress again) and at 64k from 4 KiB into a chunk (each write spans five chunks);
#  - ext4: mkfs, a generated text corpus (~26 MB of logs and word lists) plus random files,
#    sync, checksums, unmount, mount, compare, e2fsck -fn clean;
#  - the host hook: `volume show --json` reports a compression ratio above 1.5 and no
#    checksum errors, the daemon logged no errors, and `pool check` is clean.
# Reference mode runs the guest side against nvmet (nothing compressed there; the host
# actions are skipped): that checks the scenario itself.
set -eu
. /interop-lib.sh
scenario_begin
: "${FIO_SIZE:=16M}"

step "host: edgeblock pool create ds + volume create ds/v --compress lz4 --checksum on + namespace add"
host_action setup
if [ "$REFERENCE" != 1 ]; then
    : "${DS_NQN:?DS_NQN is not set (see data-services.conf)}"
    NQN=$DS_NQN
fi

step "connect to $NQN"
connect -i 2
if [ "$REFERENCE" != 1 ]; then
    [ "$(blockdev --getsize64 "$NS")" = 268435456 ] || fail "ds/v ($NS) is $(blockdev --getsize64 "$NS") bytes, created 256M"
fi

# fio's buffers: random bytes unless a pattern is given; the block's offset (%o) in the
# pattern gives each block data of its own, as random bytes would.
PATTERN='"EdgeBlock data services: lz4 + crc32c, block at "%o'
fio_verify "$NS" random-4k 4k 0 "$FIO_SIZE" 16
fio_verify "$NS" text-4k 4k 32M "$FIO_SIZE" 16 --verify_pattern="$PATTERN"
fio_verify "$NS" text-64k 64k $(((64 << 20) + 4096)) "$FIO_SIZE" 16 --verify_pattern="$PATTERN"

# The text corpus: pieces of ~1 MiB made by awk (log lines of a made-up daemon with
# sequential fields and one line of random words in 16: lz4 packs a 16 KiB chunk of it into
# one 4 KiB sector; and lists of random words, which barely compress), put together into
# files of ~3 MiB. Pieces, because busybox awk under TCG makes well under 1 MB/s.
cat >/tmp/corpus.awk <<'AWK'
BEGIN {
    srand(seed)
    n = split("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu", w, " ")
    split("read write flush discard", op, " ")
    for (i = 0; i < lines; i++) {
        if (words || i % 16 == 15) {
            line = sprintf("%07d", i)
            k = 4 + int(rand() * 10)
            for (j = 0; j < k; j++) line = line " " w[1 + int(rand() * n)]
            print line "."
        } else
            printf "2026-11-%02d %02d:%02d:%02d edgeblock[%d]: %s lba %d len 8 on ds/%s: ok\n", 1 + int(i / 86400) % 28, int(i / 3600) % 24, int(i / 60) % 60, i % 60, 4000 + seed, op[1 + int(rand() * 2)], i * 8, w[1 + int(i / 1000) % n]
    }
}
AWK
# corpus_pieces KIND SEED LINES WORDS: pieces KIND-SEED and KIND-(SEED+1) in /tmp/corpus,
# two awk at once (the guest has 2 CPUs).
corpus_pieces() {
    awk -v seed="$2" -v lines="$3" -v words="$4" -f /tmp/corpus.awk >"/tmp/corpus/$1-$2" &
    cp_pid=$!
    cp_rc=0
    awk -v seed=$(($2 + 1)) -v lines="$3" -v words="$4" -f /tmp/corpus.awk >"/tmp/corpus/$1-$(($2 + 1))" || cp_rc=$?
    wait "$cp_pid" && [ "$cp_rc" = 0 ]
}
# corpus DIR: the corpus under DIR/text: log-1..8 (three log pieces each, in turn) and
# words-1..2, each file with its own first line. Called by ext4_roundtrip in an `||` context,
# where set -e is off: each command checks itself.
corpus() {
    mkdir -p /tmp/corpus "$1/text" || return 1
    for s in 1 3 5 7; do corpus_pieces log "$s" 13500 0 || return 1; done
    corpus_pieces words 1 8000 1 || return 1
    for s in 1 2 3 4 5 6 7 8; do
        { echo "log-$s" && cat /tmp/corpus/log-$s /tmp/corpus/log-$((s % 8 + 1)) /tmp/corpus/log-$(((s + 1) % 8 + 1)); } >"$1/text/log-$s.txt" || return 1
    done
    { echo words-1 && cat /tmp/corpus/words-1 /tmp/corpus/words-2; } >"$1/text/words-1.txt" || return 1
    { echo words-2 && cat /tmp/corpus/words-2 /tmp/corpus/words-1; } >"$1/text/words-2.txt" || return 1
    rm -rf /tmp/corpus
    log "corpus: $(cat "$1"/text/* | wc -c) bytes of text in $(find "$1/text" -type f | wc -l) files"
}

# Random files of 1 and 2 MiB (and ext4_roundtrip's 64 small ones): mostly text, so the
# volume's ratio must show compression.
# shellcheck disable=SC2034 # read by ext4_roundtrip
EXT4_RANDOM_MIB="1 2"
ext4_roundtrip "$NS" corpus

step "host: volume show --json: compression ratio > 1.5, no checksum errors; daemon log; pool check"
host_action check

step "disconnect"
disconnect
scenario_end
