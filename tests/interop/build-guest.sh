#!/usr/bin/env bash
# build-guest.sh — build the interop test guest from Debian's stock packages.
#
# Produces, in ${EDGEBLOCK_CACHE:-$HOME/.cache/edgeblock}/guest/:
#   vmlinuz          the kernel of the linux-image-6.1.0-*-amd64 that linux-image-amd64
#                    depends on (Debian's stock kernel, unmodified)
#   vmlinux          the same kernel decompressed (ELF): QEMU boots it directly through
#                    its PVH entry point, which skips the ~5 s xz decompression under TCG
#   base.cpio        initramfs: busybox-static + nvme-cli, e2fsprogs and util-linux tools
#                    with their shared libraries, the kernel modules the tests need (and
#                    their dependencies), and /init (guest/init)
#   fio.cpio         a layer with fio and the libraries base.cpio lacks (84 MB: Debian's
#                    fio links ceph, gluster, ICU...), appended only for scenarios that
#                    use fio
#   kernel-version   the kernel's release string
#   stamp            the inputs the build was made from
#
# The archives are cpio newc, not compressed: measured under TCG, gunzip in the guest
# costs more than loading the bigger file (full image: 8.5 s to /init's end uncompressed,
# 11 s gzipped). The runner concatenates base + layers + the scenario's own archive; the
# kernel unpacks them in order.
#
# Idempotent: when the stamp matches the current inputs (package versions, the host
# binaries and libraries copied in, this script and guest/init) nothing is rebuilt.
#
# GUEST_KERNEL=SERIES (e.g. 6.12) builds the same guest with Debian 12's linux-image-SERIES-amd64
# instead (6.12 has CONFIG_NVME_HOST_AUTH=y: DH-HMAC-CHAP, and ublk_drv), in ${EDGEBLOCK_CACHE}/guest-SERIES/.
#
# Usage: [GUEST_KERNEL=SERIES] build-guest.sh [--force]
set -euo pipefail

INTEROP_PROG=build-guest
# shellcheck source-path=SCRIPTDIR source=lib/host-common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/host-common.sh"

FORCE=0
case "${1:-}" in
    --force) FORCE=1 ;;
    "") ;;
    -h | --help) sed -n '2,20p' "$0"; exit 0 ;;
    *) die "unknown argument: $1 (usage: build-guest.sh [--force])" ;;
esac

# Modules to load in the guest; their dependencies come from modules.dep.
GUEST_MODULES=(
    configfs
    virtio_pci virtio_net virtio_blk                    # QEMU devices
    nvme_tcp                                            # the NVMe/TCP host (+fabrics, core)
    crc32c_intel crc32c_generic                         # NVMe/TCP header/data digests, ext4
    crct10dif_pclmul crct10dif_generic crc64_rocksoft_generic # T10-PI helpers of nvme-core
    ext4                                                # + jbd2, mbcache, crc16
    nvmet nvmet_tcp null_blk                            # reference target (in-guest nvmet)
)
# NVMe in-band authentication (kernels that have it): the host's DH-HMAC-CHAP library and the
# crypto it allocates by name (modprobe finds them through modules.alias). Built-in ones are skipped.
OPTIONAL_MODULES=()
KERNEL_META=linux-image-amd64
if [[ -n ${GUEST_KERNEL:-} ]]; then
    KERNEL_META=linux-image-$GUEST_KERNEL-amd64
    OPTIONAL_MODULES=(nvme_auth nvme_keyring hmac sha256_generic sha512_generic dh_generic)
    # ublk (Linux >= 6.0; not in 6.1's Debian build): host block devices served by our daemon.
    OPTIONAL_MODULES+=(ublk_drv)
fi

# Real (non-busybox) programs copied from the host, with the libraries ldd finds.
# Format: layer:command:destination-in-guest. Layer "base" goes into base.cpio, any other
# layer NAME into NAME.cpio (with only the files base.cpio does not already have).
GUEST_PROGRAMS=(
    base:nvme:/usr/sbin/nvme
    base:mke2fs:/usr/sbin/mke2fs
    base:e2fsck:/usr/sbin/e2fsck
    base:blkdiscard:/usr/sbin/blkdiscard
    base:blockdev:/usr/sbin/blockdev
    base:cmp:/usr/bin/cmp
    fio:fio:/usr/bin/fio
)
GUEST_LAYERS=(fio)
# Extra names pointing at the programs above (mke2fs picks the fs type from argv[0]).
GUEST_ALIASES=(
    /usr/sbin/mkfs.ext4:mke2fs
    /usr/sbin/fsck.ext4:e2fsck
)

start=$(now)

# Host tools ------------------------------------------------------------------------------
ensure_commands apt-get:apt apt-cache:apt dpkg-deb:dpkg depmod:kmod cpio:cpio xz:xz-utils \
    ldd:libc-bin sha256sum:coreutils \
    nvme:nvme-cli fio:fio mke2fs:e2fsprogs e2fsck:e2fsprogs \
    blkdiscard:util-linux blockdev:util-linux cmp:diffutils
DEPMOD=$(command_path depmod)

# Package resolution ----------------------------------------------------------------------

# One apt-cache call (each costs about a second): the candidate records of the kernel
# metapackage and of busybox-static.
apt_records() { apt-cache show --no-all-versions "$KERNEL_META" busybox-static 2>/dev/null || true; }
# field PACKAGE FIELD: a field of PACKAGE's record in $APT_RECORDS.
field() {
    awk -v pkg="$1" -v fld="$2:" '
        /^Package: / { cur = $2 }
        cur == pkg && $1 == fld { sub(/^[^:]*: /, ""); print; exit }' <<<"$APT_RECORDS"
}

APT_RECORDS=$(apt_records)
if [[ -z $(field "$KERNEL_META" Depends) ]]; then
    apt_update_once # fresh machines (containers) have empty apt lists
    APT_RECORDS=$(apt_records)
fi
# "Depends: linux-image-6.1.0-56-amd64 (= 6.1.192-2)" -> package and exact version.
read -r KERNEL_PKG KERNEL_VER < <(field "$KERNEL_META" Depends | tr ',' '\n' |
    sed -n 's/^ *\(linux-image-[0-9][^ ]*-amd64\) *(= *\([^)]*\)).*/\1 \2/p' | head -n 1) || true
BUSYBOX_VER=$(field busybox-static Version)
[[ -n ${KERNEL_PKG:-} && -n ${KERNEL_VER:-} ]] ||
    die "cannot resolve the kernel package (and version) that $KERNEL_META depends on"
[[ -n $BUSYBOX_VER ]] || die "apt knows no version of busybox-static"

# Host programs and their libraries ---------------------------------------------------------

# program_files: "layer<TAB>source-path<TAB>guest-path" for every program and every
# library it loads.
program_files() {
    local spec layer cmd dest src line lib
    for spec in "${GUEST_PROGRAMS[@]}"; do
        IFS=: read -r layer cmd dest <<<"$spec"
        src=$(command_path "$cmd") || die "program not found on the host: $cmd"
        printf '%s\t%s\t%s\n' "$layer" "$(readlink -f "$src")" "$dest"
        # ldd lines: "libx.so.1 => /lib/.../libx.so.1 (0x...)" and "/lib64/ld-linux... (0x...)".
        while IFS= read -r line; do
            case $line in
                *"not found"*) die "$cmd: missing library: $line" ;;
                *" => /"*) lib=${line#*=> }; lib=${lib%% (*} ;;
                *"=>"*) continue ;; # linux-vdso and friends: no file
                *) lib=$(echo "$line" | awk '{print $1}'); [[ $lib == /* ]] || continue ;;
            esac
            printf '%s\t%s\t%s\n' "$layer" "$(readlink -f "$lib")" "$lib"
        done < <(ldd "$src")
    done | sort -u
}

PROGRAM_FILES=$(program_files)

# The stamp: everything the result depends on.
stamp_text() {
    echo "kernel=$KERNEL_PKG $KERNEL_VER"
    echo "busybox-static=$BUSYBOX_VER"
    echo "modules=${GUEST_MODULES[*]}"
    [[ ${#OPTIONAL_MODULES[@]} -eq 0 ]] || echo "optional-modules=${OPTIONAL_MODULES[*]}"
    sha256sum "$0" "$INTEROP_DIR/guest/init" "$INTEROP_DIR/lib/host-common.sh" | awk '{print "script=" $1}'
    cut -f2 <<<"$PROGRAM_FILES" | sort -u | xargs sha256sum | awk '{print "host-file=" $1 " " $2}'
}
STAMP=$(stamp_text)

mkdir -p "$INTEROP_GUEST_DIR"
if [[ $FORCE -eq 0 && -f $INTEROP_GUEST_DIR/stamp && -f $INTEROP_GUEST_DIR/vmlinuz &&
    -f $INTEROP_GUEST_DIR/base.cpio ]] && [[ $(cat "$INTEROP_GUEST_DIR/stamp") == "$STAMP" ]]; then
    log "guest up to date in $INTEROP_GUEST_DIR ($KERNEL_PKG $KERNEL_VER; checked in $(elapsed "$start")s)"
    exit 0
fi
log "building guest in $INTEROP_GUEST_DIR ($KERNEL_PKG $KERNEL_VER, busybox-static $BUSYBOX_VER)"

WORK=$(mktemp -d "$INTEROP_GUEST_DIR/.build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
DEBS=$INTEROP_GUEST_DIR/debs
mkdir -p "$DEBS"

# fetch_deb PACKAGE VERSION: path of PACKAGE_VERSION's .deb in the cache, downloading it
# (apt-get download, no install) when it is not there yet. Older versions are dropped.
fetch_deb() {
    local pkg=$1 ver=$2 f
    for f in "$DEBS/${pkg}"_*.deb; do
        [[ -f $f ]] || continue
        if [[ $(dpkg-deb -f "$f" Package) == "$pkg" && $(dpkg-deb -f "$f" Version) == "$ver" ]]; then
            printf '%s\n' "$f"
            return 0
        fi
        rm -f "$f"
    done
    log "apt-get download $pkg=$ver"
    (cd "$WORK" && apt-get download -q "$pkg=$ver" >&2 2> >(grep -v 'Download is performed unsandboxed' >&2))
    mv "$WORK/${pkg}"_*.deb "$DEBS/"
    for f in "$DEBS/${pkg}"_*.deb; do printf '%s\n' "$f"; return 0; done
}

t=$(now)
KERNEL_DEB=$(fetch_deb "$KERNEL_PKG" "$KERNEL_VER")
BUSYBOX_DEB=$(fetch_deb busybox-static "$BUSYBOX_VER")
log "packages ready ($(elapsed "$t")s)"

# Kernel and modules ------------------------------------------------------------------------
t=$(now)
KROOT=$WORK/kernel
dpkg-deb -x "$KERNEL_DEB" "$KROOT"
KVER=$(basename "$(echo "$KROOT"/lib/modules/*)")
[[ -f $KROOT/boot/vmlinuz-$KVER ]] || die "no boot/vmlinuz-$KVER in $KERNEL_DEB"
"$DEPMOD" -b "$KROOT" "$KVER"

ROOT=$WORK/root
mkdir -p "$ROOT"/{bin,sbin,usr/bin,usr/sbin,lib,lib64,etc,proc,sys,dev,tmp,run,mnt,root}
MODDIR=lib/modules/$KVER

# Module name (dashes as underscores, no .ko suffix) -> path, and path -> its dependencies
# (modules.dep lists the full transitive set).
declare -A MOD_PATH MOD_DEPS
while IFS= read -r line; do
    path=${line%%:*}
    name=${path##*/}
    name=${name%%.ko*}
    MOD_PATH[${name//-/_}]=$path
    MOD_DEPS[$path]=${line#*:}
done <"$KROOT/$MODDIR/modules.dep"

declare -A WANT
for m in "${GUEST_MODULES[@]}"; do
    path=${MOD_PATH[$m]:-}
    if [[ -z $path ]]; then
        # Built into this kernel: nothing to copy.
        grep -Eq "/${m//_/[-_]}\.ko" "$KROOT/$MODDIR/modules.builtin" && continue
        die "module $m is neither in modules.dep nor built in ($KVER)"
    fi
    WANT[$path]=1
    for dep in ${MOD_DEPS[$path]}; do WANT[$dep]=1; done
done
for m in "${OPTIONAL_MODULES[@]}"; do
    path=${MOD_PATH[$m]:-}
    [[ -n $path ]] || continue
    WANT[$path]=1
    for dep in ${MOD_DEPS[$path]}; do WANT[$dep]=1; done
done
for path in "${!WANT[@]}"; do
    mkdir -p "$ROOT/$MODDIR/$(dirname "$path")"
    cp "$KROOT/$MODDIR/$path" "$ROOT/$MODDIR/$path"
done
cp "$KROOT/$MODDIR"/modules.{builtin,builtin.modinfo,order} "$ROOT/$MODDIR/"
# modules.dep/alias for exactly the copied modules (busybox modprobe reads them; the kernel
# asks modprobe for e.g. crypto-crc32c when a driver allocates that checksum).
"$DEPMOD" -b "$ROOT" "$KVER"
cp "$KROOT/boot/vmlinuz-$KVER" "$WORK/vmlinuz"
log "kernel $KVER: ${#WANT[@]} modules ($(elapsed "$t")s)"

# Busybox ---------------------------------------------------------------------------------
t=$(now)
BBROOT=$WORK/busybox
dpkg-deb -x "$BUSYBOX_DEB" "$BBROOT"
BUSYBOX=$BBROOT/bin/busybox
[[ -x $BUSYBOX ]] || die "no bin/busybox in $BUSYBOX_DEB"
if ldd "$BUSYBOX" >/dev/null 2>&1; then die "$BUSYBOX_DEB: busybox is not static"; fi
cp "$BUSYBOX" "$ROOT/bin/busybox"
# One symlink per applet, at the path busybox itself reports (e.g. /usr/bin/sha256sum).
while IFS= read -r applet; do
    [[ $applet == */busybox ]] && continue
    mkdir -p "$ROOT/$(dirname "$applet")"
    ln -sfn /bin/busybox "$ROOT/$applet"
done < <("$BUSYBOX" --list-full)

# Real programs -----------------------------------------------------------------------------
# Pitfall: busybox has applets with the same names (blkdiscard, blockdev, cmp, mke2fs...).
# Remove every applet link of that name first: copying onto a symlink would write through
# it and overwrite busybox itself. (Debian's busybox ash also prefers its own applets to
# PATH: the scenarios call these programs by absolute path, see guest/interop-lib.sh.)
remove_applet_links() {
    local d
    for d in bin sbin usr/bin usr/sbin; do
        if [[ -L $ROOT/$d/$1 ]]; then rm -f "$ROOT/$d/$1"; fi
    done
}
for spec in "${GUEST_PROGRAMS[@]}"; do
    IFS=: read -r _ cmd _ <<<"$spec"
    remove_applet_links "$cmd"
done
for spec in "${GUEST_ALIASES[@]}"; do remove_applet_links "$(basename "${spec%%:*}")"; done

# copy_files LAYER DESTROOT: copy the layer's programs and libraries under DESTROOT,
# skipping files base.cpio already has (identical: they come from the same host file).
copy_files() {
    local want=$1 dest_root=$2 layer src dest
    while IFS=$'\t' read -r layer src dest; do
        [[ $layer == "$want" ]] || continue
        if [[ $want != base && -e $ROOT/$dest ]]; then continue; fi
        mkdir -p "$dest_root/$(dirname "$dest")"
        rm -f "$dest_root/$dest"
        cp -L "$src" "$dest_root/$dest"
    done <<<"$PROGRAM_FILES"
}
copy_files base "$ROOT"
for spec in "${GUEST_ALIASES[@]}"; do
    ln -sfn "${spec#*:}" "$ROOT/${spec%%:*}"
done
[[ -f /etc/mke2fs.conf ]] && cp /etc/mke2fs.conf "$ROOT/etc/"
# busybox must have survived the copies (the pitfall above).
cmp -s "$BUSYBOX" "$ROOT/bin/busybox" || die "busybox was overwritten while copying programs"

install -m 0755 "$INTEROP_DIR/guest/init" "$ROOT/init"
echo "$KVER" >"$ROOT/etc/edgeblock-guest-kernel"
log "base root file system: $(du -sh "$ROOT" | cut -f1) ($(elapsed "$t")s)"

for layer in "${GUEST_LAYERS[@]}"; do
    mkdir -p "$WORK/layer-$layer"
    copy_files "$layer" "$WORK/layer-$layer"
    log "layer $layer: $(du -sh "$WORK/layer-$layer" | cut -f1)"
done

# Kernel for direct boot ------------------------------------------------------------------
# Debian's bzImage is xz-compressed; its payload is an ELF vmlinux with a PVH entry note
# (CONFIG_PVH=y), which QEMU's -kernel loads directly. Fall back to vmlinuz if that fails.
extract_vmlinux() {
    local off
    off=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$1" | head -n 1 | cut -d: -f1)
    [[ -n $off ]] || return 1
    # xz complains about the trailing data after the stream; the ELF is complete.
    tail -c +$((off + 1)) "$1" | xz -dc >"$2" 2>/dev/null || true
    [[ $(head -c 4 "$2" | od -An -c | tr -d ' ') == '177ELF' ]] &&
        grep -q '^CONFIG_PVH=y' "$KROOT/boot/config-$KVER"
}
if extract_vmlinux "$WORK/vmlinuz" "$WORK/vmlinux"; then
    log "vmlinux extracted for PVH boot ($(du -h "$WORK/vmlinux" | cut -f1))"
else
    log "warning: could not extract an ELF vmlinux; the guest boots the bzImage (slower)"
    rm -f "$WORK/vmlinux"
fi

# Archives ----------------------------------------------------------------------------------
t=$(now)
# make_cpio DIR OUT: an uncompressed newc archive of DIR's contents, owned by root.
make_cpio() {
    (cd "$1" && find . -mindepth 1 -print0 | LC_ALL=C sort -z |
        cpio --null --create --format=newc --owner=0:0 --quiet) >"$2"
}
make_cpio "$ROOT" "$WORK/base.cpio"
for layer in "${GUEST_LAYERS[@]}"; do make_cpio "$WORK/layer-$layer" "$WORK/$layer.cpio"; done
log "archives: $(cd "$WORK" && du -h ./*.cpio | awk '{printf "%s %s  ", $2, $1}')($(elapsed "$t")s)"

# Publish: the stamp goes last, so an interrupted build is redone.
rm -f "$INTEROP_GUEST_DIR/stamp" "$INTEROP_GUEST_DIR"/*.cpio "$INTEROP_GUEST_DIR/vmlinux"
for f in vmlinuz vmlinux base.cpio "${GUEST_LAYERS[@]/%/.cpio}"; do
    if [[ -f $WORK/$f ]]; then mv -f "$WORK/$f" "$INTEROP_GUEST_DIR/$f"; fi
done
echo "$KVER" >"$INTEROP_GUEST_DIR/kernel-version"
printf '%s\n' "$STAMP" >"$INTEROP_GUEST_DIR/stamp"
log "guest built in $(elapsed "$start")s: $INTEROP_GUEST_DIR"
