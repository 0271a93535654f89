#!/usr/bin/env bash
# libvirtd peer: scripts/peers/libvirtd.sh start|stop|status (as root, idempotent).
#
# start: virtlogd + monolithic libvirtd on /var/run/libvirt/libvirt-sock (no systemd needed), a dir
# pool "default" on /var/lib/libvirt/images, network hvkit-net (bridge hvkitbr0, or QEMU user
# networking where no bridge can be made), a running OS-less QEMU guest hvkit-guest1 (KVM when
# /dev/kvm works, else TCG), a test-driver node XML; writes .peers/libvirtd.env.
# Knobs: HVKIT_PEERS_ACCEL=auto|kvm|tcg, HVKIT_PEERS_TEST_DOMAINS (default 10).
set -euo pipefail
PEER=libvirtd
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

STATE="$PEERS_DIR/libvirtd"
URI=qemu:///system
SOCK=/var/run/libvirt/libvirt-sock
LIBVIRTD_PID=/var/run/libvirtd.pid
VIRTLOGD_PID=/var/run/virtlogd.pid
LIBVIRTD_LOG=/var/log/libvirt/libvirtd.log
VIRTLOGD_LOG=/var/log/libvirt/virtlogd.log
IMAGES=/var/lib/libvirt/images
GUEST=hvkit-guest1
GUEST_UUID=68766b69-7431-4000-8000-000000000001
GUEST_MAC=52:54:00:68:76:01
DISK="$IMAGES/$GUEST.qcow2"
NET=hvkit-net
BRIDGE=hvkitbr0
POOL=default
NODE_XML="$STATE/test-node.xml"
TEST_DOMAINS=${HVKIT_PEERS_TEST_DOMAINS:-10}
ACCEL_WANTED=${HVKIT_PEERS_ACCEL:-auto}

virsh_() { timeout 30 virsh -q -c "$URI" "$@"; }
daemon_ok() { timeout 5 virsh -q -c "$URI" uri >/dev/null 2>&1; }
guest_state() { virsh_ domstate "$GUEST" 2>/dev/null | head -n1; }
# info_field KEY VIRSH-ARGS...: the value of "KEY: value" in virsh's output (pool-info, net-info, ...).
info_field() {
  local key=$1 line
  shift
  while IFS= read -r line; do
    if [[ $line =~ ^$key:[[:space:]]*(.*)$ ]]; then
      printf '%s' "${BASH_REMATCH[1]}"
      return 0
    fi
  done < <(virsh_ "$@" 2>/dev/null)
}
systemd_managed() { [[ -d /run/systemd/system ]] && systemctl is-active --quiet "$1" 2>/dev/null; }

fail() {
  log "ERROR: $*"
  log_tail "$LIBVIRTD_LOG"
  [[ -s /var/log/libvirt/qemu/$GUEST.log ]] && log_tail "/var/log/libvirt/qemu/$GUEST.log" 15
  exit 1
}

prepare_host() {
  getent group kvm >/dev/null || groupadd --system kvm
  getent group libvirt-qemu >/dev/null || groupadd --system libvirt-qemu
  if ! id libvirt-qemu >/dev/null 2>&1; then
    useradd --system --no-create-home --home-dir /var/lib/libvirt --shell /usr/sbin/nologin \
      --gid libvirt-qemu --groups kvm libvirt-qemu
  elif [[ " $(id -nG libvirt-qemu) " != *" kvm "* ]]; then
    usermod -a -G kvm libvirt-qemu
  fi
  if [[ -c /dev/kvm ]]; then
    chgrp kvm /dev/kvm
    chmod 660 /dev/kvm
  fi
  mkdir -p /var/log/libvirt/qemu /var/run/libvirt /var/lib/libvirt/qemu "$IMAGES" "$STATE"
}

start_daemons() {
  if ! pid_alive "$VIRTLOGD_PID" virtlogd; then
    log "starting virtlogd"
    virtlogd -d || {
      log_tail "$VIRTLOGD_LOG"
      die "virtlogd -d failed"
    }
    touch "$STATE/virtlogd.ours"
    wait_until 10 "virtlogd socket" test -S /var/run/libvirt/virtlogd-sock || {
      log_tail "$VIRTLOGD_LOG"
      die "virtlogd did not come up"
    }
  fi
  if daemon_ok; then
    log "libvirtd already answering on $SOCK"
    return 0
  fi
  if ! pid_alive "$LIBVIRTD_PID" libvirtd; then
    log "starting libvirtd"
    libvirtd -d || fail "libvirtd -d failed"
    touch "$STATE/libvirtd.ours"
  fi
  wait_until 30 "libvirtd on $SOCK" daemon_ok || fail "libvirtd is not answering on $SOCK"
}

ensure_pool() {
  if ! virsh_ pool-info "$POOL" >/dev/null 2>&1; then
    virsh_ pool-define-as "$POOL" dir --target "$IMAGES" >/dev/null || {
      log "warning: could not define pool $POOL on $IMAGES"
      POOL=
      return 0
    }
  fi
  if [[ $(info_field State pool-info "$POOL") != running ]]; then
    virsh_ pool-start "$POOL" >/dev/null || {
      log "warning: could not start pool $POOL"
      POOL=
      return 0
    }
  fi
}

# Sets NIC_XML and NETWORK: a libvirt network over a bridge we create, else QEMU user networking.
ensure_network() {
  NETWORK=
  NIC_XML="<interface type='user'>
      <mac address='$GUEST_MAC'/>
      <model type='virtio'/>
      <rom enabled='no'/>
    </interface>"
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link add "$BRIDGE" type bridge 2>/dev/null || {
      log "no bridge possible here; the guest uses QEMU user networking"
      return 0
    }
  fi
  ip link set "$BRIDGE" up 2>/dev/null || true
  if ! virsh_ net-info "$NET" >/dev/null 2>&1; then
    printf "<network>\n  <name>%s</name>\n  <forward mode='bridge'/>\n  <bridge name='%s'/>\n</network>\n" \
      "$NET" "$BRIDGE" >"$STATE/$NET.xml"
    virsh_ net-define "$STATE/$NET.xml" >/dev/null || {
      log "warning: net-define $NET failed; using user networking"
      return 0
    }
  fi
  if [[ $(info_field Active net-info "$NET") != yes ]]; then
    virsh_ net-start "$NET" >/dev/null || {
      log "warning: net-start $NET failed; using user networking"
      return 0
    }
  fi
  NETWORK=$NET
  NIC_XML="<interface type='network'>
      <mac address='$GUEST_MAC'/>
      <source network='$NET'/>
      <model type='virtio'/>
      <rom enabled='no'/>
    </interface>"
}

guest_xml() {
  cat <<EOF
<domain type='$1'>
  <name>$GUEST</name>
  <uuid>$GUEST_UUID</uuid>
  <title>hvkit live peer guest</title>
  <description>OS-less QEMU guest started by scripts/peers/libvirtd.sh for hvkit live tests</description>
  <memory unit='MiB'>128</memory>
  <currentMemory unit='MiB'>128</currentMemory>
  <vcpu placement='static'>2</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <boot dev='hd'/>
    <bios rebootTimeout='-1'/>
  </os>
  <features><acpi/></features>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='$DISK'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    $NIC_XML
    <serial type='pty'/>
    <console type='pty'/>
  </devices>
</domain>
EOF
}

# define_and_start TYPE: (re)define the guest with <domain type=TYPE> and start it.
define_and_start() {
  guest_xml "$1" >"$STATE/$GUEST.xml"
  virsh_ define "$STATE/$GUEST.xml" >/dev/null || return 1
  virsh_ start "$GUEST" >"$STATE/start.out" 2>&1 || {
    log "starting $GUEST as type=$1 failed: $(tr '\n' ' ' <"$STATE/start.out")"
    return 1
  }
  wait_until 15 "$GUEST to run" bash -c "[[ \$(timeout 5 virsh -q -c $URI domstate $GUEST) == running ]]" || return 1
  log "started $GUEST (domain type $1)"
}

ensure_guest() {
  if [[ $(guest_state) == running ]]; then
    log "$GUEST already running"
    return 0
  fi
  if virsh_ dominfo "$GUEST" >/dev/null 2>&1; then
    # paused, crashed, in shutdown...: stop it so it can be replaced.
    virsh_ destroy "$GUEST" >/dev/null 2>&1 || true
    virsh_ undefine "$GUEST" --managed-save --snapshots-metadata --checkpoints-metadata >/dev/null ||
      fail "could not undefine the old $GUEST"
  fi
  # A fresh blank disk every cold start: nothing left over from earlier snapshots or backups.
  rm -f "$IMAGES/$GUEST".*
  qemu-img create -q -f qcow2 "$DISK" 64M || fail "qemu-img create $DISK failed"
  local kvm_ok=0
  [[ -c /dev/kvm && -r /dev/kvm && -w /dev/kvm ]] && kvm_ok=1
  case $ACCEL_WANTED in
  kvm) define_and_start kvm || fail "$GUEST does not start under KVM" ;;
  tcg) define_and_start qemu || fail "$GUEST does not start under TCG" ;;
  *)
    if ((kvm_ok)) && define_and_start kvm; then
      :
    else
      ((kvm_ok)) && log "falling back to TCG"
      virsh_ destroy "$GUEST" >/dev/null 2>&1 || true
      define_and_start qemu || fail "$GUEST does not start under TCG either"
    fi
    ;;
  esac
  virsh_ pool-refresh "$POOL" >/dev/null 2>&1 || true
}

guest_accel() {
  if [[ $(virsh_ dumpxml "$GUEST") == "<domain type='kvm'"* ]]; then echo kvm; else echo tcg; fi
}

ensure_test_node() {
  node "$PEERS_LIB_DIR/gen-test-node.mjs" "$TEST_DOMAINS" "$NODE_XML.tmp" || die "gen-test-node.mjs failed"
  if cmp -s "$NODE_XML.tmp" "$NODE_XML"; then rm -f "$NODE_XML.tmp"; else mv -f "$NODE_XML.tmp" "$NODE_XML"; fi
}

# A second QEMU guest, defined and never started (no disk): setting a security label needs an inactive
# guest. Redefined at every start, so a label a test left on it is gone. Its static DAC label is one
# `labels.set` can write back.
STOPPED_GUEST=hvkit-guest2
ensure_stopped_guest() {
  if virsh_ dominfo "$STOPPED_GUEST" >/dev/null 2>&1; then
    virsh_ destroy "$STOPPED_GUEST" >/dev/null 2>&1 || true
    virsh_ undefine "$STOPPED_GUEST" --snapshots-metadata --checkpoints-metadata >/dev/null ||
      fail "could not undefine the old $STOPPED_GUEST"
  fi
  local xml="$STATE/$STOPPED_GUEST.xml"
  printf '%s\n' "<domain type='qemu'>" "  <name>$STOPPED_GUEST</name>" "  <memory unit='MiB'>64</memory>" \
    "  <vcpu>1</vcpu>" "  <os><type arch='x86_64' machine='pc'>hvm</type></os>" \
    "  <seclabel type='static' model='dac' relabel='no'><label>+0:+0</label></seclabel>" \
    "</domain>" >"$xml"
  virsh_ define "$xml" >/dev/null || fail "could not define $STOPPED_GUEST"
}

# A stopped LXC container (never started): the LXC driver has no CONNECT_GET_ALL_DOMAIN_STATS, so the
# adapter's fallback (list + state per domain) runs against a real driver. Skipped when the driver is absent.
LXC_URI=lxc:///system
LXC_GUEST=hvkit-lxc1
ensure_lxc_guest() {
  timeout 15 virsh -q -c "$LXC_URI" list --all --name >/dev/null 2>&1 || return 1
  if ! timeout 15 virsh -q -c "$LXC_URI" dominfo "$LXC_GUEST" >/dev/null 2>&1; then
    local xml="$STATE/$LXC_GUEST.xml"
    printf '%s\n' "<domain type='lxc'>" "  <name>$LXC_GUEST</name>" "  <memory unit='MiB'>64</memory>" \
      "  <os><type>exe</type><init>/bin/sh</init></os>" "  <devices><console type='pty'/></devices>" \
      "</domain>" >"$xml"
    timeout 15 virsh -q -c "$LXC_URI" define "$xml" >/dev/null || return 1
  fi
}

test_uri_ok() {
  local names
  names=$(timeout 15 virsh -q -c "$1" list --all --name 2>/dev/null) && [[ -n $names ]]
}

start() {
  require_root
  prepare_host
  start_daemons
  ensure_pool
  ensure_network
  ensure_guest
  ensure_stopped_guest
  ensure_test_node
  local accel test_default='' test_node='' lxc=''
  accel=$(guest_accel)
  if ensure_lxc_guest; then lxc=$LXC_URI; else log "note: no LXC driver (libvirt-daemon-driver-lxc); the LXC tests will skip"; fi
  if test_uri_ok test+unix:///default; then test_default=test+unix:///default; else log "warning: test+unix:///default does not work"; fi
  if test_uri_ok "test+unix://$NODE_XML"; then test_node="test+unix://$NODE_XML"; else log "warning: test+unix://$NODE_XML does not work"; fi
  {
    env_line HVKIT_LIBVIRT_SOCKET "$SOCK"
    env_line HVKIT_LIBVIRT_QEMU_URI "$URI"
    env_line HVKIT_LIBVIRT_GUEST "$GUEST"
    env_line HVKIT_LIBVIRT_STOPPED_GUEST "$STOPPED_GUEST"
    env_line HVKIT_LIBVIRT_GUEST_DISK "$DISK"
    env_line HVKIT_LIBVIRT_ACCEL "$accel"
    [[ -n $NETWORK ]] && env_line HVKIT_LIBVIRT_NETWORK "$NETWORK"
    [[ -n $POOL ]] && env_line HVKIT_LIBVIRT_POOL "$POOL"
    [[ -n $test_default ]] && env_line HVKIT_LIBVIRT_TEST_URI "$test_default"
    env_line HVKIT_LIBVIRT_TEST_NODE_XML "$NODE_XML"
    [[ -n $test_node ]] && env_line HVKIT_LIBVIRT_TEST_NODE_URI "$test_node"
    env_line HVKIT_LIBVIRT_TEST_NODE_DOMAINS "$TEST_DOMAINS"
    if [[ -n $lxc ]]; then
      env_line HVKIT_LIBVIRT_LXC_URI "$lxc"
      env_line HVKIT_LIBVIRT_LXC_GUEST "$LXC_GUEST"
    fi
  } | write_env libvirtd
  log "$GUEST running ($accel); test driver: ${test_default:-none}, ${test_node:-none}"
}

stop() {
  require_root
  rm -f "$PEERS_DIR/libvirtd.env"
  if daemon_ok; then
    if [[ $(guest_state) =~ ^(running|paused|idle|in\ shutdown)$ ]]; then
      log "destroying $GUEST"
      virsh_ destroy "$GUEST" >/dev/null || log "warning: destroy $GUEST failed"
    fi
    virsh_ net-destroy "$NET" >/dev/null 2>&1 || true
  elif [[ -n $(pid_from "/var/run/libvirt/qemu/$GUEST.pid") ]]; then
    stop_pidfile "/var/run/libvirt/qemu/$GUEST.pid" "qemu ($GUEST)" 10 qemu-system-x86 || true
  fi
  if ip link show "$BRIDGE" >/dev/null 2>&1; then ip link del "$BRIDGE" 2>/dev/null || true; fi
  # Leave daemons that systemd manages alone unless we started them ourselves.
  if [[ -e $STATE/libvirtd.ours ]] || ! systemd_managed libvirtd; then
    stop_pidfile "$LIBVIRTD_PID" libvirtd 20 libvirtd || fail "libvirtd did not stop"
  fi
  if [[ -e $STATE/virtlogd.ours ]] || ! systemd_managed virtlogd; then
    stop_pidfile "$VIRTLOGD_PID" virtlogd 10 virtlogd || die "virtlogd did not stop"
  fi
  rm -f "$STATE/libvirtd.ours" "$STATE/virtlogd.ours"
}

status() {
  if ! pid_alive "$LIBVIRTD_PID" libvirtd && ! daemon_ok; then
    echo "libvirtd not running"
    return 1
  fi
  local state
  state=$(guest_state || true)
  if [[ $state != running ]]; then
    echo "libvirtd pid $(pid_from "$LIBVIRTD_PID"); $GUEST ${state:-not defined}"
    return 1
  fi
  echo "libvirtd pid $(pid_from "$LIBVIRTD_PID"); $GUEST running ($(guest_accel))"
}

case ${1:-} in
start | stop | status) "$1" ;;
*)
  echo "usage: $0 start|stop|status" >&2
  exit 2
  ;;
esac
