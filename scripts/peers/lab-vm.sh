#!/usr/bin/env bash
# Lab VM peer: a small Debian 12 guest under QEMU, a real remote Linux host (sshd, device-mapper with
# lvm2 and thin-provisioning-tools, cgroup v2) for the live tests of @hvkit/lvm, @hvkit/cgroups and
# @hvkit/ssh. Facts: ../../shared notes lab-vm.md; image recipe: lab-vm/build.sh and lab-vm/packages.txt.
#
#   scripts/peers/lab-vm.sh start    idempotent; builds or restores the image, boots, waits for ssh,
#                                    checks the guest, prints and writes the env file
#   scripts/peers/lab-vm.sh stop     powers the guest off over ssh, waits for its PID, kills it as a fallback
#   scripts/peers/lab-vm.sh status   exits 0 when the guest runs and answers over ssh
#   scripts/peers/lab-vm.sh build    only fills the image cache
#
# Image cache (outside the clone): $HVKIT_LAB_CACHE_DIR (default /var/cache/hvkit-lab)/<key>/image.tar.zst,
# key = sha256 of build.sh and packages.txt. The tarball holds root.img, kernel, initrd, the client key pair
# and the guest's host public key (generated at build time, so the pinned key always matches the image).
#
# State: $HVKIT_LAB_STATE_DIR (default .peers/lab-vm/): the unpacked image, pidfile, console log, keys,
# known_hosts and lab-vm.env. With the default state dir, start also writes .peers/lab-vm.env (merged into
# .peers/env by scripts/peers/start); a private instance (another state dir) leaves .peers/ alone.
# The disk is attached with snapshot=on: the image is never modified and every boot starts clean. A second,
# empty disk (scratch.qcow2 in the state dir, sparse, HVKIT_LAB_SCRATCH_SIZE, default 8G) is made new at each
# boot and removed at stop; the guest sees it as /dev/disk/by-id/virtio-hvkit-scratch (HVKIT_LAB_SCRATCH_DISK).
#
# Knobs: HVKIT_LAB_ACCEL=kvm|tcg (default: kvm only where kvm_intel or kvm_amd is loaded and kvm_pvm is
# not), HVKIT_LAB_MEMORY (MiB, default 1024), HVKIT_LAB_CPUS (default 2), HVKIT_LAB_BOOT_TIMEOUT (seconds
# to ssh-ready, default 120), HVKIT_LAB_MIRROR, HVKIT_LAB_BOOTSTRAP (see lab-vm/build.sh).
set -euo pipefail
PEER=lab-vm
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RECIPE="$PEERS_LIB_DIR/lab-vm"
DEFAULT_STATE="$PEERS_DIR/lab-vm"
STATE=${HVKIT_LAB_STATE_DIR:-$DEFAULT_STATE}
[[ $STATE == /* ]] || STATE="$PWD/$STATE"
STATE=${STATE%/}
CACHE_ROOT=${HVKIT_LAB_CACHE_DIR:-/var/cache/hvkit-lab}
IMAGE="$STATE/image"
SCRATCH="$STATE/scratch.qcow2"
SCRATCH_SIZE=${HVKIT_LAB_SCRATCH_SIZE:-8G}
# The scratch disk inside the guest (udev names virtio disks by their serial).
SCRATCH_DEVICE=/dev/disk/by-id/virtio-hvkit-scratch
PIDFILE="$STATE/qemu.pid"
CONSOLE="$STATE/console.log"
QEMU_LOG="$STATE/qemu.log"
PORT_FILE="$STATE/port"
KEY="$STATE/client_ed25519"
KNOWN_HOSTS="$STATE/known_hosts"
STATE_ENV="$STATE/lab-vm.env"
QEMU=${HVKIT_LAB_QEMU:-qemu-system-x86_64}
BOOT_TIMEOUT=${HVKIT_LAB_BOOT_TIMEOUT:-120}
MEMORY=${HVKIT_LAB_MEMORY:-1024}
CPUS=${HVKIT_LAB_CPUS:-2}

cache_key() {
  cat "$RECIPE/build.sh" "$RECIPE/packages.txt" | sha256sum | cut -c1-16
}

# running_pid: the PID of this state dir's QEMU (its command line names our pidfile), or fail.
running_pid() {
  local pid
  pid=$(pid_from "$PIDFILE")
  [[ -n $pid ]] && pid_running "$pid" || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$PIDFILE" || return 1
  printf '%s\n' "$pid"
}

# guest_ssh COMMAND...: one ssh command to the guest with the pinned host key, no prompts, bounded by
# SSH_LIMIT seconds (default 60).
guest_ssh() {
  local port
  port=$(cat "$PORT_FILE" 2>/dev/null) || return 255
  timeout --kill-after=5 "${SSH_LIMIT:-60}" ssh -q -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile="$KNOWN_HOSTS" \
    -o GlobalKnownHostsFile=/dev/null -o IdentitiesOnly=yes -o IdentityAgent=none -o ConnectTimeout=10 \
    -o ServerAliveInterval=5 -o ServerAliveCountMax=3 -o LogLevel=ERROR \
    -i "$KEY" -p "$port" root@127.0.0.1 "$@"
}

# guest_check: prints the guest's kernel release after checking, in one ssh round trip (each costs about
# a second under TCG), what the live tests rely on: cgroup v2, device-mapper snapshot and thin targets,
# loop devices, lvm2, thin-provisioning-tools and SFTP. Fails with what is missing.
guest_check() {
  local out
  # shellcheck disable=SC2016 # expanded by the guest's shell
  out=$(guest_ssh 'uname -r
    [ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ] || echo "missing: cgroup v2 at /sys/fs/cgroup"
    for m in dm_snapshot dm_thin_pool loop; do [ -d /sys/module/$m ] || echo "missing: module $m"; done
    for t in lvcreate thin_delta /usr/lib/openssh/sftp-server; do
      command -v $t >/dev/null || echo "missing: $t"
    done') || { log "ssh check of the guest failed"; return 1; }
  if grep -q '^missing: ' <<<"$out"; then
    log "the guest lacks what the live tests need: $(grep '^missing: ' <<<"$out" | tr '\n' ';')"
    return 1
  fi
  head -n1 <<<"$out"
}

# ensure_cache: the image tarball for the current recipe, built once (a lock keeps concurrent starts from
# building twice). Prints its path.
ensure_cache() {
  local key dir tarball t0
  key=$(cache_key)
  dir="$CACHE_ROOT/$key"
  tarball="$dir/image.tar.zst"
  mkdir -p "$CACHE_ROOT"
  chmod 700 "$CACHE_ROOT"
  exec 8>"$CACHE_ROOT/$key.lock"
  flock -w 900 8 || die "timed out waiting for another build of $tarball"
  if [[ ! -s $tarball ]]; then
    command -v zstd >/dev/null || die "zstd not found (apt-get install zstd)"
    log "no cached image for key $key; building (about a minute)"
    t0=$(now_ms)
    local out="$dir.build"
    rm -rf "$out"
    mkdir -p "$out"
    if ! timeout 900 bash "$RECIPE/build.sh" "$out"; then
      rm -rf "$out"
      die "image build failed"
    fi
    mkdir -p "$dir"
    tar --sparse -C "$out" -I 'zstd -T0 -3 -q' -cf "$tarball.tmp" \
      root.img vmlinuz initrd.img kernel-release client_ed25519 client_ed25519.pub ssh_host_ed25519_key.pub
    mv -f "$tarball.tmp" "$tarball"
    rm -rf "$out"
    log "built and cached $tarball ($(du -h "$tarball" | cut -f1)) in $(($(now_ms) - t0)) ms"
  fi
  exec 8>&-
  printf '%s\n' "$tarball"
}

# ensure_image: the unpacked image in the state dir matches the current recipe.
ensure_image() {
  local key tarball t0
  key=$(cache_key)
  if [[ $(cat "$IMAGE/key" 2>/dev/null) == "$key" && -s $IMAGE/root.img ]]; then return 0; fi
  tarball=$(ensure_cache)
  t0=$(now_ms)
  rm -rf "$IMAGE"
  mkdir -p "$IMAGE"
  tar -C "$IMAGE" -I 'zstd -q' -xf "$tarball"
  printf '%s\n' "$key" >"$IMAGE/key"
  log "restored image $key in $(($(now_ms) - t0)) ms"
}

accel_args() {
  local accel=${HVKIT_LAB_ACCEL:-}
  if [[ -z $accel ]]; then
    accel=tcg
    # kvm_pvm (pagetable-based, no VMX/SVM) cannot run a stock Debian kernel; only real VMX/SVM will do.
    if [[ -r /dev/kvm && -w /dev/kvm && ! -d /sys/module/kvm_pvm ]] &&
      [[ -d /sys/module/kvm_intel || -d /sys/module/kvm_amd ]]; then
      accel=kvm
    fi
  fi
  case $accel in
    kvm) printf '%s\n' -accel kvm -cpu host ;;
    tcg) printf '%s\n' -accel tcg -cpu max ;;
    *) die "HVKIT_LAB_ACCEL must be kvm or tcg, not '$accel'" ;;
  esac
}

write_lab_env() {
  local port=$1 kernel=$2 fp
  fp=$(ssh-keygen -l -E sha256 -f "$IMAGE/ssh_host_ed25519_key.pub" | awk '{print $2}')
  {
    env_line HVKIT_LAB_SSH_HOST 127.0.0.1
    env_line HVKIT_LAB_SSH_PORT "$port"
    env_line HVKIT_LAB_SSH_USER root
    env_line HVKIT_LAB_SSH_KEY "$KEY"
    env_line HVKIT_LAB_SSH_KNOWN_HOSTS "$KNOWN_HOSTS"
    env_line HVKIT_LAB_SSH_HOST_FINGERPRINT "$fp"
    env_line HVKIT_LAB_KERNEL "$kernel"
    env_line HVKIT_LAB_SCRATCH_DISK "$SCRATCH_DEVICE"
  } >"$STATE_ENV.tmp"
  mv -f "$STATE_ENV.tmp" "$STATE_ENV"
  [[ $STATE != "$DEFAULT_STATE" ]] || write_env lab-vm <"$STATE_ENV"
}

# wait_ssh SECONDS: until an ssh command succeeds; fails early when QEMU exits.
wait_ssh() {
  local limit=$1 deadline
  deadline=$(($(now_ms) + limit * 1000))
  until SSH_LIMIT=15 guest_ssh true 2>/dev/null; do
    running_pid >/dev/null || { log "QEMU exited while booting"; return 1; }
    if (($(now_ms) >= deadline)); then
      log "timed out after ${limit}s waiting for ssh"
      return 1
    fi
    sleep 0.5
  done
}

# launch PORT: boot QEMU in the background (it daemonizes once its devices are up). The lock fds are
# closed for it, or the daemon would hold the locks for its lifetime.
launch() {
  local port=$1
  local -a accel
  mapfile -t accel < <(accel_args)
  rm -f "$PIDFILE"
  : >"$CONSOLE"
  # An empty scratch disk per boot (sparse qcow2; the guest sees it as $SCRATCH_DEVICE): room for volumes
  # larger than the root disk's free 1.5 GiB (bench/lvm-backup.ts), on a block device of its own.
  rm -f "$SCRATCH"
  qemu-img create -q -f qcow2 "$SCRATCH" "$SCRATCH_SIZE" >"$QEMU_LOG" 2>&1 || return 1
  "$QEMU" -name hvkit-lab-vm -nodefaults -display none -vga none -monitor none \
    "${accel[@]}" -smp "$CPUS" -m "$MEMORY" \
    -kernel "$IMAGE/vmlinuz" -initrd "$IMAGE/initrd.img" \
    -append "root=/dev/vda rw console=ttyS0 quiet systemd.unified_cgroup_hierarchy=1" \
    -drive "file=$IMAGE/root.img,if=virtio,format=raw,snapshot=on" \
    -drive "file=$SCRATCH,if=none,id=scratch,format=qcow2" \
    -device virtio-blk-pci,drive=scratch,serial=hvkit-scratch,addr=0x1f \
    -netdev "user,id=net0,hostfwd=tcp:127.0.0.1:$port-:22" \
    -device virtio-net-pci,netdev=net0,romfile= \
    -device virtio-rng-pci \
    -serial "file:$CONSOLE" \
    -daemonize -pidfile "$PIDFILE" >"$QEMU_LOG" 2>&1 8>&- 9>&-
}

# lock_state: one start or stop at a time per state dir (fd 9, released when the script exits).
lock_state() {
  mkdir -p "$STATE"
  chmod 700 "$STATE"
  exec 9>"$STATE/lock"
  flock -w 300 9 || die "timed out waiting for another start or stop of $STATE"
}

start() {
  require_root
  command -v "$QEMU" >/dev/null || die "$QEMU not found (apt-get install qemu-system-x86)"
  command -v qemu-img >/dev/null || die "qemu-img not found (apt-get install qemu-utils)"
  command -v ssh >/dev/null || die "ssh not found (apt-get install openssh-client)"
  lock_state
  local pid port kernel t0
  if pid=$(running_pid); then
    port=$(cat "$PORT_FILE")
    if wait_ssh "$BOOT_TIMEOUT"; then
      # Left running when the check fails: someone may be using it.
      kernel=$(guest_check) || die "the running guest (pid $pid) fails its check"
      write_lab_env "$port" "$kernel"
      log "already running (pid $pid, port $port)"
      cat "$STATE_ENV"
      return 0
    fi
    log "running (pid $pid) but not answering over ssh; restarting"
    stop || true
  fi
  ensure_image
  install -m 600 "$IMAGE/client_ed25519" "$KEY"
  install -m 644 "$IMAGE/client_ed25519.pub" "$KEY.pub"
  local attempt
  for attempt in 1 2 3; do
    port=$(free_port) || die 'no free port found'
    printf '%s\n' "$port" >"$PORT_FILE"
    # The pinned host key from the image (never trust on first use).
    printf '[127.0.0.1]:%s %s\n' "$port" "$(cut -d' ' -f1-2 "$IMAGE/ssh_host_ed25519_key.pub")" >"$KNOWN_HOSTS"
    t0=$(now_ms)
    if ! launch "$port"; then
      log "QEMU failed to start on port $port (attempt $attempt)"
      log_tail "$QEMU_LOG" 10
      continue
    fi
    if wait_ssh "$BOOT_TIMEOUT"; then
      if ! kernel=$(guest_check); then
        stop || true
        die "the guest booted but fails its check (rebuild: remove $CACHE_ROOT/$(cache_key))"
      fi
      write_lab_env "$port" "$kernel"
      log "running (pid $(running_pid), port $port, kernel $kernel, $(accel_args | sed -n 2p)); ssh ready $(($(now_ms) - t0)) ms after launch"
      cat "$STATE_ENV"
      return 0
    fi
    log_tail "$CONSOLE" 30
    stop || true
    die "the guest did not answer over ssh on port $port"
  done
  die "could not start QEMU; see $QEMU_LOG"
}

stop() {
  local pid t0
  [[ -d $STATE ]] && lock_state
  if ! pid=$(running_pid); then
    log 'not running'
    rm -f "$PIDFILE" "$STATE_ENV"
    [[ $STATE != "$DEFAULT_STATE" ]] || rm -f "$PEERS_DIR/lab-vm.env"
    return 0
  fi
  t0=$(now_ms)
  # The connection usually drops as the guest goes down (ssh exits 255 then too). When the command could
  # not even start (no ssh yet, a hung guest), waiting long for a clean poweroff is pointless: the disk is
  # a throw-away snapshot, so QEMU is simply ended soon.
  local grace=30
  if ! SSH_LIMIT=20 guest_ssh systemctl poweroff >/dev/null 2>&1; then
    grace=5
  fi
  if ! wait_until "$grace" "the guest to power off" pid_gone "$pid"; then
    # running_pid checked that the pid is our QEMU; only that pid is signalled.
    log "killing QEMU (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_until 10 "QEMU to exit" pid_gone "$pid"; then
      kill -KILL "$pid" 2>/dev/null || true
      wait_until 5 "QEMU to die" pid_gone "$pid" || die "QEMU (pid $pid) does not die"
    fi
  fi
  rm -f "$PIDFILE" "$STATE_ENV" "$SCRATCH"
  [[ $STATE != "$DEFAULT_STATE" ]] || rm -f "$PEERS_DIR/lab-vm.env"
  log "stopped (pid $pid) in $(($(now_ms) - t0)) ms"
}

status() {
  local pid
  if ! pid=$(running_pid); then
    log 'not running'
    return 1
  fi
  if SSH_LIMIT=15 guest_ssh true 2>/dev/null; then
    log "running (pid $pid, port $(cat "$PORT_FILE"))"
    return 0
  fi
  log "QEMU running (pid $pid, port $(cat "$PORT_FILE")) but ssh does not answer"
  return 1
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  build) require_root; ensure_cache >/dev/null ;;
  *) echo "usage: $0 start|stop|status|build" >&2; exit 2 ;;
esac
