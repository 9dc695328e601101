#!/bin/sh
# /sbin/init of the ext4 root file system image-boot puts in its qcow2 (see run.sh). It runs with the root's own
# busybox, chrooted into the root mounted from the attached volume, in the phases guest.sh names:
#   check   every file of the image matches /etc/image.sums (reads of blocks the copy may not have reached)
#   write   4 files of 2 MiB of random data into /written, their SHA-256 in /written/SUMS, synced
#   window  20 files of 256 KiB, each synced, twice a second: the host restarts the daemon meanwhile
#   after   /etc/image.sums and /written/SUMS check, then 2 more files written and synced
set -eu
PATH=/bin
cd /
say() { echo "root: $*"; }

# new_file NAME KIB: random data, its SHA-256 appended to /written/SUMS, synced.
new_file() {
    dd if=/dev/urandom of="written/$1" bs=1K count="$2" 2>/dev/null
    sha256sum "written/$1" >>written/SUMS
    sync
}

case ${1:?phase} in
    check)
        sha256sum -c -s etc/image.sums || { say "files of the image differ from /etc/image.sums"; exit 1; }
        say "$(wc -l <etc/image.sums) files of the image read back intact"
        ;;
    write)
        mkdir -p written
        for i in 1 2 3 4; do new_file "before-$i.bin" 2048; done
        say "4 files written before the restart"
        ;;
    window)
        i=0
        while [ $i -lt 20 ]; do
            i=$((i + 1))
            new_file "window-$i.bin" 256
            sleep 0.5
        done
        say "20 files written across the restart"
        ;;
    after)
        sha256sum -c -s etc/image.sums || { say "files of the image differ after the restart"; exit 1; }
        sha256sum -c -s written/SUMS || { say "files written during the copy differ after the restart"; exit 1; }
        n=$(wc -l <written/SUMS)
        for i in 1 2; do new_file "after-$i.bin" 1024; done
        say "$n written files intact, 2 more written after the restart"
        ;;
    *) say "unknown phase $1"; exit 1 ;;
esac
