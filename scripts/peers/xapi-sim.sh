#!/usr/bin/env bash
# xapi-sim peer: scripts/peers/xapi-sim.sh start|stop|status (idempotent).
#
# No XAPI server (XenServer, XCP-ng) runs here, so the Xen peer is the XAPI simulator that
# @hvkit/xen-xapi ships (@hvkit/xen-xapi/simulator), serving its seed database
# (packages/xen-xapi/simulator/seed-db.xml, XAPI's /pool/xmldbdump format) on 127.0.0.1 over plain
# http: XML-RPC on / and /RPC2, JSON-RPC on /jsonrpc. Writes .peers/xapi-sim.env (HVKIT_XAPI_*).
set -euo pipefail
PEER=xapi-sim
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

STATE="$PEERS_DIR/xapi-sim"
XAPI_USER=root
# A fixed, test-only password (also listed in scripts/peers/test-secrets.txt for leak checks).
XAPI_PASSWORD='hvkit-xapi-Test-3b8e51'
DB="$REPO_ROOT/packages/xen-xapi/simulator/seed-db.xml"

ready_url() { sed -n 's/^url=//p' "$STATE/ready" 2>/dev/null; }

answers() {
  local url
  url=$(ready_url)
  [[ -n $url ]] && curl -fsS --max-time 5 -o /dev/null -H 'content-type: application/json' \
    --data '{"jsonrpc":"2.0","method":"system.listMethods","params":[],"id":1}' "$url/jsonrpc"
}

running() { pid_alive "$STATE/pid" node && answers; }

start() {
  command -v curl >/dev/null || die "curl is needed (apt-get install curl)"
  command -v node >/dev/null || die "node is needed"
  if running; then
    log "already running (pid $(pid_from "$STATE/pid")) on $(ready_url)"
  else
    stop_pidfile "$STATE/pid" xapi-sim 10 node || true
    rm -rf "$STATE"
    mkdir -p "$STATE"
    # setsid: the simulator outlives this script and ignores the caller's terminal signals.
    cd "$REPO_ROOT"
    HVKIT_XAPI_USERNAME="$XAPI_USER" HVKIT_XAPI_PASSWORD="$XAPI_PASSWORD" setsid node \
      --conditions=@hvkit/source --import tsx packages/xen-xapi/test/xapi-sim-cli.ts \
      --db "$DB" --ready "$STATE/ready" </dev/null >"$STATE/xapi-sim.log" 2>&1 &
    echo $! >"$STATE/pid"
    if ! wait_until 30 "xapi-sim to listen" test -s "$STATE/ready" ||
      ! wait_until 15 "xapi-sim to answer system.listMethods" answers; then
      log_tail "$STATE/xapi-sim.log"
      stop_pidfile "$STATE/pid" xapi-sim 5 node || true
      die "xapi-sim did not come up"
    fi
    log "listening on $(ready_url) (pid $(pid_from "$STATE/pid"))"
  fi
  {
    env_line HVKIT_XAPI_URL "$(ready_url)"
    env_line HVKIT_XAPI_USERNAME "$XAPI_USER"
    env_line HVKIT_XAPI_PASSWORD "$XAPI_PASSWORD"
    env_line HVKIT_XAPI_DB "$DB"
  } | write_env xapi-sim
}

stop() {
  rm -f "$PEERS_DIR/xapi-sim.env"
  stop_pidfile "$STATE/pid" xapi-sim 10 node
}

status() {
  if running; then
    echo "pid $(pid_from "$STATE/pid") $(ready_url)"
  else
    echo "down"
    return 1
  fi
}

case ${1:-} in
start | stop | status) "$1" ;;
*)
  echo "usage: $0 start|stop|status" >&2
  exit 2
  ;;
esac
