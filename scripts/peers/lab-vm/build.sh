#!/usr/bin/env bash
# Builds the lab VM image (a small Debian 12 guest) from Debian's mirror alone:
#
#   scripts/peers/lab-vm/build.sh OUTDIR
#
# OUTDIR receives root.img (ext4, 2 GiB sparse), vmlinuz, initrd.img, kernel-release, the generated client
# key pair client_ed25519{,.pub} (root's authorized key in the guest) and the guest's host public key
# ssh_host_ed25519_key.pub (generated here, so the image and its pinned key always travel together).
# The image holds the packages of packages.txt; sshd takes root by key only; systemd-networkd runs DHCP on
# QEMU user networking; dm-snapshot, dm-thin-pool and loop are loaded at boot; cgroup v2 (unified) is
# systemd's default. Called by lab-vm.sh, which caches OUTDIR keyed by a hash of this file and
# packages.txt. Needs root, mmdebstrap (or debootstrap), e2fsprogs (mkfs.ext4 -d) and ssh-keygen.
#
# Knobs: HVKIT_LAB_MIRROR (default http://deb.debian.org/debian), HVKIT_LAB_BOOTSTRAP=mmdebstrap|debootstrap.
set -euo pipefail

OUT=${1:?usage: build.sh OUTDIR}
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
MIRROR=${HVKIT_LAB_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
IMAGE_SIZE=2G

say() { printf '[lab-vm build] %s\n' "$*" >&2; }
ms() { date +%s%3N; }

[[ $(id -u) -eq 0 ]] || { say "must run as root"; exit 1; }
mapfile -t PACKAGES < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' "$HERE/packages.txt" | grep -v '^$')
((${#PACKAGES[@]})) || { say "no packages in $HERE/packages.txt"; exit 1; }

tool=${HVKIT_LAB_BOOTSTRAP:-}
if [[ -z $tool ]]; then
  if command -v mmdebstrap >/dev/null; then tool=mmdebstrap; else tool=debootstrap; fi
fi
command -v "$tool" >/dev/null || { say "$tool not found (apt-get install mmdebstrap or debootstrap)"; exit 1; }
command -v mkfs.ext4 >/dev/null || { say "mkfs.ext4 not found (apt-get install e2fsprogs)"; exit 1; }

mkdir -p "$OUT"
WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/hvkit-lab-build.XXXXXX")
ROOTFS="$WORK/rootfs"
MOUNTED=()
cleanup() {
  local m
  for ((i = ${#MOUNTED[@]} - 1; i >= 0; i--)); do umount -l "${MOUNTED[i]}" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

# Written before the kernel is installed, so its first initrd already has only what the boot needs
# (virtio_pci and virtio_blk are modules in Debian's kernels): about 8 MB instead of 18 MB.
initramfs_config() {
  local root=$1
  mkdir -p "$root/etc/initramfs-tools/conf.d" "$root/usr/share/initramfs-tools/modules.d"
  printf 'MODULES=list\n' >"$root/etc/initramfs-tools/conf.d/hvkit-lab.conf"
  printf '%s\n' virtio_pci virtio_blk virtio_net ext4 >"$root/usr/share/initramfs-tools/modules.d/hvkit-lab.conf"
}

t0=$(ms)
mkdir -p "$ROOTFS"
if [[ $tool == mmdebstrap ]]; then
  say "mmdebstrap $SUITE from $MIRROR"
  rmdir "$ROOTFS"
  # mmdebstrap keeps daemons from starting in the chroot (policy-rc.d) and removes apt's caches. The
  # setup hook runs before any package is installed.
  mmdebstrap --mode=root --variant=minbase --format=directory --quiet \
    --setup-hook="$(declare -f initramfs_config); initramfs_config \"\$1\"" \
    --include="$(IFS=,; echo "${PACKAGES[*]}")" \
    --aptopt='Apt::Install-Recommends "false"' \
    "$SUITE" "$ROOTFS" "deb $MIRROR $SUITE main" >&2
else
  say "debootstrap $SUITE from $MIRROR"
  debootstrap --variant=minbase "$SUITE" "$ROOTFS" "$MIRROR" >&2
  initramfs_config "$ROOTFS"
  for m in proc sys dev; do
    mount --bind "/$m" "$ROOTFS/$m"
    MOUNTED+=("$ROOTFS/$m")
  done
  printf '#!/bin/sh\nexit 101\n' >"$ROOTFS/usr/sbin/policy-rc.d"
  chmod 755 "$ROOTFS/usr/sbin/policy-rc.d"
  printf 'deb %s %s main\n' "$MIRROR" "$SUITE" >"$ROOTFS/etc/apt/sources.list"
  cp /etc/resolv.conf "$ROOTFS/etc/resolv.conf"
  chroot "$ROOTFS" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  # zstd first: the kernel's initrd is compressed with it.
  chroot "$ROOTFS" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends zstd >&2
  chroot "$ROOTFS" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${PACKAGES[@]}" >&2
  rm -f "$ROOTFS/usr/sbin/policy-rc.d"
  for ((i = ${#MOUNTED[@]} - 1; i >= 0; i--)); do umount -l "${MOUNTED[i]}"; done
  MOUNTED=()
fi
say "bootstrap took $(($(ms) - t0)) ms"

t1=$(ms)
# --- configuration -------------------------------------------------------------------------------------
printf 'hvkit-lab\n' >"$ROOTFS/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 hvkit-lab\n::1 localhost ip6-localhost ip6-loopback\n' >"$ROOTFS/etc/hosts"
printf '/dev/vda / ext4 rw,errors=remount-ro 0 1\n' >"$ROOTFS/etc/fstab"
rm -f "$ROOTFS/etc/resolv.conf"
# QEMU user networking's DNS; the build host's resolv.conf means nothing inside.
printf 'nameserver 10.0.2.3\n' >"$ROOTFS/etc/resolv.conf"
printf 'deb %s %s main\n' "$MIRROR" "$SUITE" >"$ROOTFS/etc/apt/sources.list"
: >"$ROOTFS/etc/machine-id"

mkdir -p "$ROOTFS/etc/systemd/network"
cat >"$ROOTFS/etc/systemd/network/10-dhcp.network" <<'EOF'
[Match]
Name=en* eth*

[Network]
DHCP=ipv4
EOF

printf '%s\n' dm_snapshot dm_thin_pool loop >"$ROOTFS/etc/modules-load.d/hvkit-lab.conf"

# Serial console: root logs in without a password (console=ttyS0 in the kernel command line).
mkdir -p "$ROOTFS/etc/systemd/system/serial-getty@ttyS0.service.d"
cat >"$ROOTFS/etc/systemd/system/serial-getty@ttyS0.service.d/autologin.conf" <<'EOF'
[Service]
ExecStart=
ExecStart=-/sbin/agetty --autologin root --keep-baud 115200,57600,38400,9600 %I $TERM
EOF

chroot "$ROOTFS" systemctl enable systemd-networkd.service >/dev/null 2>&1
# Units that only slow a short-lived test VM down (wait-online would hold boot for 2 minutes).
chroot "$ROOTFS" systemctl mask systemd-networkd-wait-online.service apt-daily.timer \
  apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer >/dev/null 2>&1

# sshd: the one host key is generated here and its public half is exported (pinned by the image cache).
rm -f "$ROOTFS"/etc/ssh/ssh_host_*
ssh-keygen -q -t ed25519 -N '' -C 'hvkit-lab-host' -f "$ROOTFS/etc/ssh/ssh_host_ed25519_key"
cat >"$ROOTFS/etc/ssh/sshd_config.d/hvkit-lab.conf" <<'EOF'
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
MaxSessions 64
MaxStartups 64:30:128
EOF
rm -f "$OUT/client_ed25519" "$OUT/client_ed25519.pub"
ssh-keygen -q -t ed25519 -N '' -C 'hvkit-lab-client' -f "$OUT/client_ed25519"
install -d -m 700 "$ROOTFS/root/.ssh"
install -m 600 "$OUT/client_ed25519.pub" "$ROOTFS/root/.ssh/authorized_keys"
cp "$ROOTFS/etc/ssh/ssh_host_ed25519_key.pub" "$OUT/ssh_host_ed25519_key.pub"

# Kernel and initrd boot from outside the image.
kver=$(basename "$(ls -d "$ROOTFS"/lib/modules/*/ | sort -V | tail -n1)")
[[ -f $ROOTFS/boot/vmlinuz-$kver && -f $ROOTFS/boot/initrd.img-$kver ]] || {
  say "kernel or initrd for $kver missing in $ROOTFS/boot"
  exit 1
}
cp "$ROOTFS/boot/vmlinuz-$kver" "$OUT/vmlinuz"
cp "$ROOTFS/boot/initrd.img-$kver" "$OUT/initrd.img"
printf '%s\n' "$kver" >"$OUT/kernel-release"

# Caches, lists and leftover debs: about 150 MB nobody needs in the image.
rm -rf "$ROOTFS"/var/cache/apt/*.bin "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/* \
  "$ROOTFS"/var/cache/debconf/*-old "$ROOTFS"/var/log/*.log "$ROOTFS"/tmp/* 2>/dev/null || true
say "configuration took $(($(ms) - t1)) ms (kernel $kver)"

t2=$(ms)
rm -f "$OUT/root.img"
truncate -s "$IMAGE_SIZE" "$OUT/root.img"
mkfs.ext4 -q -F -L hvkit-lab -d "$ROOTFS" "$OUT/root.img"
say "mkfs.ext4 -d took $(($(ms) - t2)) ms; image uses $(du -sh "$OUT/root.img" | cut -f1)"
say "built in $(($(ms) - t0)) ms"
