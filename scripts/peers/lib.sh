# Shared helpers for scripts/peers/*.sh (sourced, not executed).
# shellcheck shell=bash

PEERS_LIB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$PEERS_LIB_DIR/../.." && pwd)"
PEERS_DIR="$REPO_ROOT/.peers"
# shellcheck disable=SC2034 # used by start and status
PEER_DEFAULTS=(sshd libvirtd vcsim xapi-sim lab-vm)

# log MESSAGE...: progress to stderr, prefixed with the peer name when PEER is set.
log() { printf '[%s] %s\n' "${PEER:-peers}" "$*" >&2; }

# die MESSAGE...: print and exit 1.
die() {
  log "ERROR: $*"
  exit 1
}

# require_root: the peers manage system daemons, users and devices.
require_root() {
  [[ $(id -u) -eq 0 ]] || die "must run as root (try: sudo $0)"
}

# now_ms: wall clock in milliseconds.
now_ms() { date +%s%3N; }

# log_tail FILE [LINES]: show the end of a daemon log after a failure.
log_tail() {
  local file=$1 lines=${2:-30}
  if [[ -s $file ]]; then
    printf -- '--- last %s lines of %s ---\n' "$lines" "$file" >&2
    tail -n "$lines" "$file" >&2
    printf -- '--- end of %s ---\n' "$file" >&2
  else
    log "(log $file is empty or missing)"
  fi
}

# wait_until SECONDS DESCRIPTION COMMAND...: poll COMMAND every 0.1 s until it succeeds.
# Returns 1 (after logging) when SECONDS pass first.
wait_until() {
  local limit=$1 what=$2
  shift 2
  local deadline=$(($(now_ms) + limit * 1000))
  while ! "$@" >/dev/null 2>&1; do
    if (($(now_ms) >= deadline)); then
      log "timed out after ${limit}s waiting for $what"
      return 1
    fi
    sleep 0.1
  done
}

# pid_from FILE: the PID in a pidfile, or nothing.
pid_from() {
  [[ -r $1 ]] || return 0
  local pid
  pid=$(tr -dc '0-9' <"$1")
  [[ -n $pid ]] && printf '%s' "$pid"
}

# pid_running PID: true for a live process; a zombie (exited, not yet reaped by its parent, e.g. a
# slow PID 1 in a container) counts as gone.
pid_running() {
  kill -0 "$1" 2>/dev/null || return 1
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat:0:1} != Z ]]
}

pid_gone() { ! pid_running "$1"; }

# pid_alive FILE [COMM]: true when the pidfile names a live process (whose /proc comm is COMM, if
# given, so a recycled PID is not mistaken for the daemon).
pid_alive() {
  local pid comm
  pid=$(pid_from "$1")
  [[ -n $pid ]] && pid_running "$pid" || return 1
  [[ -z ${2:-} ]] && return 0
  comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
  [[ $comm == "$2" ]]
}

# stop_pidfile FILE NAME [SECONDS] [COMM]: SIGTERM the PID in FILE, wait, then SIGKILL that PID only.
# With COMM, a PID whose /proc comm differs is treated as stale and left alone.
stop_pidfile() {
  local file=$1 name=$2 limit=${3:-10} comm=${4:-} pid
  pid=$(pid_from "$file")
  if [[ -z $pid ]] || ! pid_alive "$file" "$comm"; then
    rm -f "$file"
    return 0
  fi
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  if ! wait_until "$limit" "$name to exit" pid_gone "$pid"; then
    log "killing $name (pid $pid)"
    kill -KILL "$pid" 2>/dev/null || true
    wait_until 5 "$name to die" pid_gone "$pid" || return 1
  fi
  rm -f "$file"
}

# env_line KEY VALUE: one KEY=value line; the value is single-quoted only when it needs it.
env_line() {
  local key=$1 value=$2
  [[ $key =~ ^[A-Z][A-Z0-9_]*$ ]] || die "bad env key: $key"
  if [[ $value =~ ^[A-Za-z0-9_./:@%+,=-]*$ ]]; then
    printf '%s=%s\n' "$key" "$value"
  else
    [[ $value != *"'"* ]] || die "env value for $key contains a single quote"
    printf "%s='%s'\n" "$key" "$value"
  fi
}

# write_env NAME: atomically write stdin to .peers/NAME.env.
write_env() {
  local file="$PEERS_DIR/$1.env"
  mkdir -p "$PEERS_DIR"
  cat >"$file.tmp"
  mv -f "$file.tmp" "$file"
}

# collect_env: concatenate every .peers/*.env (one per running peer) into .peers/env.
collect_env() {
  mkdir -p "$PEERS_DIR"
  local f
  {
    printf '# written by scripts/peers/start at %s; one block per running peer\n' "$(date -u +%FT%TZ)"
    for f in "$PEERS_DIR"/*.env; do
      [[ -e $f ]] || continue
      printf '# %s\n' "$(basename "$f" .env)"
      cat "$f"
    done
  } >"$PEERS_DIR/env.tmp"
  mv -f "$PEERS_DIR/env.tmp" "$PEERS_DIR/env"
}

# port_accepts PORT: something accepts TCP connections on 127.0.0.1:PORT.
port_accepts() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# free_port: a random port on 127.0.0.1 that nothing listens on (callers retry when they lose a race).
free_port() {
  local port _
  for _ in $(seq 1 50); do
    port=$((20000 + RANDOM % 40000))
    port_accepts "$port" && continue
    if command -v ss >/dev/null 2>&1 && ss -Htln "sport = :$port" 2>/dev/null | grep -q .; then continue; fi
    printf '%s\n' "$port"
    return 0
  done
  return 1
}

# peer_script NAME: path of scripts/peers/NAME.sh (may not exist).
peer_script() { printf '%s/%s.sh' "$PEERS_LIB_DIR" "$1"; }
