#!/usr/bin/env bash
# vcsim peer: scripts/peers/vcsim.sh start|stop|status (idempotent).
#
# Builds tools/vcsim (govmomi's simulator from Debian's source; cached by source hash) and runs two
# instances on 127.0.0.1, each on a free port:
#   vpx: a vCenter model (1 datacenter, 2 clusters x 1 host + 1 standalone host, 3 VMs per resource
#        pool = 3 hosts, 9 VMs) on https, plus the same model on plain http;
#   esx: a single ESX host with 2 VMs on https.
# Both use one self-signed certificate (.peers/vcsim/cert.pem) and the same test login, and expire
# sessions idle for HVKIT_PEERS_VCSIM_IDLE (default 30m, like vCenter). Writes .peers/vcsim.env.
set -euo pipefail
PEER=vcsim
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

STATE="$PEERS_DIR/vcsim"
BIN="$STATE/vcsim"
CERT="$STATE/cert.pem"
KEY="$STATE/key.pem"
VCSIM_USER='hvkit@vsphere.local'
# A fixed, test-only password (also listed in scripts/peers/test-secrets.txt for leak checks).
VCSIM_PASSWORD='hvkit-vcsim-Test-7c21d9'
IDLE=${HVKIT_PEERS_VCSIM_IDLE:-30m}
VPX_ARGS=(-model vpx -dc 1 -cluster 2 -host 1 -standalone-host 1 -vm 3 -http-listen 127.0.0.1:0)
VPX_HOSTS=3
VPX_VMS=9
ESX_ARGS=(-model esx -vm 2)
ESX_VMS=2
INSTANCES=(vpx esx)

# ready_value INSTANCE KEY: a value from the instance's ready file (url, http_url, thumbprint).
ready_value() { sed -n "s/^$2=//p" "$STATE/$1/ready" 2>/dev/null; }

answers() {
  local url
  url=$(ready_value "$1" url)
  [[ -n $url ]] && curl -fsS --max-time 5 --cacert "$CERT" -o /dev/null "$url/vimServiceVersions.xml"
}

running() { pid_alive "$STATE/$1/pid" vcsim && answers "$1"; }

start_instance() {
  local name=$1 dir="$STATE/$1"
  shift
  if running "$name"; then
    log "$name already running (pid $(pid_from "$dir/pid"))"
    return 0
  fi
  stop_pidfile "$dir/pid" "vcsim $name" 10 vcsim || true
  rm -rf "$dir"
  mkdir -p "$dir/tmp"
  # setsid: the simulator outlives this script and ignores the caller's terminal signals.
  TMPDIR="$dir/tmp" setsid "$BIN" "$@" -listen 127.0.0.1:0 -tls -cert "$CERT" -key "$KEY" \
    -username "$VCSIM_USER" -password "$VCSIM_PASSWORD" -idle-timeout "$IDLE" \
    -ready-file "$dir/ready" </dev/null >"$dir/vcsim.log" 2>&1 &
  echo $! >"$dir/pid"
  if ! wait_until 30 "vcsim $name to listen" test -s "$dir/ready" ||
    ! wait_until 15 "vcsim $name to answer /sdk/vimServiceVersions.xml" answers "$name"; then
    log_tail "$dir/vcsim.log"
    stop_pidfile "$dir/pid" "vcsim $name" 5 vcsim || true
    die "vcsim $name did not come up"
  fi
  log "$name listening on $(ready_value "$name" url) (pid $(pid_from "$dir/pid"))"
}

start() {
  command -v curl >/dev/null || die "curl is needed (apt-get install curl)"
  mkdir -p "$STATE"
  local t0
  t0=$(now_ms)
  "$REPO_ROOT/tools/vcsim/build.sh" "$BIN" >/dev/null || die "building tools/vcsim failed"
  log "binary ready in $(($(now_ms) - t0)) ms"
  t0=$(now_ms)
  start_instance vpx "${VPX_ARGS[@]}"
  start_instance esx "${ESX_ARGS[@]}"
  log "instances ready in $(($(now_ms) - t0)) ms"
  local thumb esx_thumb
  thumb=$(ready_value vpx thumbprint)
  esx_thumb=$(ready_value esx thumbprint)
  [[ $thumb == "$esx_thumb" ]] || die "vpx and esx serve different certificates"
  {
    env_line HVKIT_VCSIM_URL "$(ready_value vpx url)"
    env_line HVKIT_VCSIM_HTTP_URL "$(ready_value vpx http_url)"
    env_line HVKIT_VCSIM_ESX_URL "$(ready_value esx url)"
    env_line HVKIT_VCSIM_USER "$VCSIM_USER"
    env_line HVKIT_VCSIM_PASSWORD "$VCSIM_PASSWORD"
    env_line HVKIT_VCSIM_THUMBPRINT "$thumb"
    env_line HVKIT_VCSIM_CA "$CERT"
    env_line HVKIT_VCSIM_HOSTS "$VPX_HOSTS"
    env_line HVKIT_VCSIM_VMS "$VPX_VMS"
    env_line HVKIT_VCSIM_ESX_VMS "$ESX_VMS"
    env_line HVKIT_VCSIM_BIN "$BIN"
  } | write_env vcsim
}

stop() {
  rm -f "$PEERS_DIR/vcsim.env"
  local name rc=0
  for name in "${INSTANCES[@]}"; do
    stop_pidfile "$STATE/$name/pid" "vcsim $name" 10 vcsim || rc=1
  done
  return "$rc"
}

status() {
  local name rc=0 out=()
  for name in "${INSTANCES[@]}"; do
    if running "$name"; then
      out+=("$name pid $(pid_from "$STATE/$name/pid") $(ready_value "$name" url)")
    else
      out+=("$name down")
      rc=1
    fi
  done
  local joined
  printf -v joined '%s; ' "${out[@]}"
  echo "${joined%; }"
  return "$rc"
}

case ${1:-} in
start | stop | status) "$1" ;;
*)
  echo "usage: $0 start|stop|status" >&2
  exit 2
  ;;
esac
