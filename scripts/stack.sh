#!/usr/bin/env bash
# The embedded default stack of imodel-sync, no Docker needed:
#   temporal  – Temporal CLI dev server (SQLite file, UI), built by scripts/ensure-tools.sh
#   ferretdb  – FerretDB 1.x with its SQLite backend, the MongoDB-wire server
#   worker    – node --import tsx worker/main.ts (WORKERS=n: worker, worker-2 … worker-n)
#   api       – node --import tsx api/server.ts (APIS=n: api, api-2 … api-n)
#
# Usage: scripts/stack.sh <command>
#   up [servers]                 start everything (or only temporal + ferretdb); idempotent
#   down                         stop everything started from $DATA_DIR/run (TERM, then KILL)
#   status                       state and health of each process, its own pid and its supervisor's
#                                (exit 0 = all up, 3 = none, 1 = partly)
#   restart <worker|api|temporal|ferretdb|worker-<i>|api-<i>>
#   logs [name] [-f]             last $LOG_LINES (100) lines of $DATA_DIR/logs/<name>.log, or follow
#   env                          the export lines the apps use (eval "$(scripts/stack.sh env)")
#
# Settings (env): DATA_DIR (<project>/data), TEMPORAL_PORT (7233), TEMPORAL_UI_PORT (TEMPORAL_PORT+1000 = 8233),
#   FERRETDB_PORT (27017), FERRETDB_DEBUG_ADDR ("-" = off, or host:port for /metrics), FERRETDB_LOG_LEVEL (warn),
#   API_PORT (3000), TEMPORAL_NAMESPACE (default), TEMPORAL_TASK_QUEUE (imodel-sync), SOURCE_ROOTS
#   (<project>/samples:$DATA_DIR/sources), LOG_LEVEL (info), TEMPORAL_ADDRESS / MONGODB_URI (when set: use that
#   server and start none), timeouts TEMPORAL_START_TIMEOUT (60), FERRETDB_START_TIMEOUT (30),
#   API_START_TIMEOUT (90), WORKER_START_TIMEOUT (60: until it polls its task queue), STOP_TIMEOUT (20) in seconds.
#   ADMIN_API_KEY (default: generated once into $DATA_DIR/admin-api-key, mode 600), ADMIN_EMAIL, SMTP_URL (empty:
#   mail goes to .eml files in MAIL_OUTBOX_DIR, default $DATA_DIR/outbox), MAIL_FROM, PUBLIC_API_URL,
#   DISK_FREE_MIN_MB (500: /health reports less free space as degraded), CHANGE_LISTS_KEPT (20: runs per connection
#   whose change list is kept).
#   Metrics and webhooks: WORKER_METRICS_HOST (127.0.0.1) and WORKER_METRICS_PORT (API_PORT+1): the worker's GET
#   /metrics; TEMPORAL_SDK_METRICS_PORT (WORKER_METRICS_PORT+1): the Temporal SDK's own listener, appended to the worker's
#   /metrics; WEBHOOK_ALLOWED_HOSTS (empty: no webhooks): the hosts webhook URLs may name (README.md "Webhooks").
#   WORKER_NODE_ARGS (empty): more arguments for the worker's node, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof" (the
#   profile is written when the worker stops; `make bench` sets it with BENCH_CPU_PROFILE).
#   Several processes: WORKERS (1) worker processes and APIS (1) API processes. The first of each keeps the names, files
#   and ports above (worker, api); instance i >= 2 is named worker-<i> / api-<i> (own pid file $DATA_DIR/run/<name>.pid,
#   log $DATA_DIR/logs/<name>.log, supervisor) and takes each port of the first plus 10*(i-1): api-<i> listens on
#   API_PORT+10*(i-1), worker-<i> serves metrics on WORKER_METRICS_PORT+10*(i-1) and the SDK's on
#   TEMPORAL_SDK_METRICS_PORT+10*(i-1) (defaults: api-2 3010, worker-2 3011 and 3012). Every worker gets its instance
#   number as WORKER_INSTANCE (1-based). All ports of the stack must differ, and be free (checked before a start).
#   `env` prints API_URLS and WORKER_METRICS_URLS (space-separated, all instances); an `up` with fewer instances
#   stops the ones left over.
#   Supervision (scripts/supervise.sh runs each process and restarts it when it dies): RESTART_LIMIT (5) restarts
#   within RESTART_WINDOW (600) s, then it gives up (shown by `status`); backoff 1 s doubling up to
#   RESTART_BACKOFF_MAX (30) s. `down` and `restart` stop the supervisor first, so nothing respawns during a stop.
# The settings of an `up` are saved in $DATA_DIR/run/stack.env and reused by later commands until `down`
# (values set in the environment win).
set -euo pipefail
# Everything the stack creates (DATA_DIR, iModels, databases, logs, outbox, keys) is for this user only.
umask 077

PROJECT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SCRIPTS="$PROJECT/scripts"

die() { echo "error: $*" >&2; exit 1; }
info() { echo "$*" >&2; }

# ---------------------------------------------------------------- configuration
DATA_DIR="${DATA_DIR:-$PROJECT/data}"
mkdir -p "$DATA_DIR"
DATA_DIR="$(cd "$DATA_DIR" && pwd)"
# A DATA_DIR made by an earlier release (or by hand) may be readable by others: only its owner may enter it.
[ -O "$DATA_DIR" ] && chmod 700 "$DATA_DIR"
RUN_DIR="$DATA_DIR/run"
LOG_DIR="$DATA_DIR/logs"
SAVED_ENV="$RUN_DIR/stack.env"

CONFIG_VARS=(TEMPORAL_PORT TEMPORAL_UI_PORT FERRETDB_PORT FERRETDB_DEBUG_ADDR FERRETDB_LOG_LEVEL API_PORT
  TEMPORAL_NAMESPACE TEMPORAL_TASK_QUEUE SOURCE_ROOTS LOG_LEVEL TEMPORAL_ADDRESS MONGODB_URI TEMPORAL_UI_URL
  ADMIN_API_KEY ADMIN_EMAIL SMTP_URL MAIL_FROM MAIL_OUTBOX_DIR PUBLIC_API_URL DISK_FREE_MIN_MB CHANGE_LISTS_KEPT
  WORKER_METRICS_HOST WORKER_METRICS_PORT TEMPORAL_SDK_METRICS_PORT WEBHOOK_ALLOWED_HOSTS WORKERS APIS)
MAIL_VARS=(ADMIN_EMAIL SMTP_URL MAIL_FROM MAIL_OUTBOX_DIR PUBLIC_API_URL DISK_FREE_MIN_MB CHANGE_LISTS_KEPT)

# Values from the last `up` for everything the caller did not set.
if [ -f "$SAVED_ENV" ]; then
  while IFS= read -r line; do
    name="${line%%=*}"
    case " ${CONFIG_VARS[*]} " in *" $name "*) ;; *) continue ;; esac
    if [ -z "${!name+x}" ]; then eval "$line"; fi
  done <"$SAVED_ENV"
fi

# Set by the user (or saved as such) = external server, start none.
TEMPORAL_EXTERNAL=""; [ -n "${TEMPORAL_ADDRESS:-}" ] && TEMPORAL_EXTERNAL=1
MONGODB_EXTERNAL=""; [ -n "${MONGODB_URI:-}" ] && MONGODB_EXTERNAL=1

TEMPORAL_PORT="${TEMPORAL_PORT:-7233}"
TEMPORAL_UI_PORT="${TEMPORAL_UI_PORT:-$((TEMPORAL_PORT + 1000))}"
FERRETDB_PORT="${FERRETDB_PORT:-27017}"
FERRETDB_DEBUG_ADDR="${FERRETDB_DEBUG_ADDR:--}"
FERRETDB_LOG_LEVEL="${FERRETDB_LOG_LEVEL:-warn}"
API_PORT="${API_PORT:-3000}"
TEMPORAL_NAMESPACE="${TEMPORAL_NAMESPACE:-default}"
TEMPORAL_TASK_QUEUE="${TEMPORAL_TASK_QUEUE:-imodel-sync}"
SOURCE_ROOTS="${SOURCE_ROOTS:-$PROJECT/samples:$DATA_DIR/sources}"
LOG_LEVEL="${LOG_LEVEL:-info}"
TEMPORAL_ADDRESS="${TEMPORAL_ADDRESS:-127.0.0.1:$TEMPORAL_PORT}"
MONGODB_URI="${MONGODB_URI:-mongodb://127.0.0.1:$FERRETDB_PORT/imodelsync}"
API_URL="http://127.0.0.1:$API_PORT"
TEMPORAL_UI_URL="${TEMPORAL_UI_URL:-http://127.0.0.1:$TEMPORAL_UI_PORT}"
WORKER_METRICS_HOST="${WORKER_METRICS_HOST:-127.0.0.1}"
WORKER_METRICS_PORT="${WORKER_METRICS_PORT:-$((API_PORT + 1))}"
TEMPORAL_SDK_METRICS_PORT="${TEMPORAL_SDK_METRICS_PORT:-$((WORKER_METRICS_PORT + 1))}"
WEBHOOK_ALLOWED_HOSTS="${WEBHOOK_ALLOWED_HOSTS:-}"
WORKER_NODE_ARGS="${WORKER_NODE_ARGS:-}"
WORKERS="${WORKERS:-1}"
APIS="${APIS:-1}"

# The admin's API key (api/auth.ts bootstraps the admin user with it): from the environment, else generated once
# into $DATA_DIR/admin-api-key (readable by its owner only) and reused by every later start on that DATA_DIR.
ADMIN_KEY_FILE="$DATA_DIR/admin-api-key"
if [ -z "${ADMIN_API_KEY:-}" ]; then
  if [ ! -s "$ADMIN_KEY_FILE" ]; then
    (umask 077 && printf 'isk_%s\n' "$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')" >"$ADMIN_KEY_FILE.tmp.$$" &&
      mv "$ADMIN_KEY_FILE.tmp.$$" "$ADMIN_KEY_FILE")
  fi
  ADMIN_API_KEY="$(head -n1 "$ADMIN_KEY_FILE")"
fi
for v in "${MAIL_VARS[@]}"; do printf -v "$v" '%s' "${!v:-}"; done

TEMPORAL_START_TIMEOUT="${TEMPORAL_START_TIMEOUT:-60}"
FERRETDB_START_TIMEOUT="${FERRETDB_START_TIMEOUT:-30}"
API_START_TIMEOUT="${API_START_TIMEOUT:-90}"
WORKER_START_TIMEOUT="${WORKER_START_TIMEOUT:-60}"
STOP_TIMEOUT="${STOP_TIMEOUT:-20}"
export RESTART_LIMIT="${RESTART_LIMIT:-5}" RESTART_WINDOW="${RESTART_WINDOW:-600}"
export RESTART_BACKOFF_MAX="${RESTART_BACKOFF_MAX:-30}"

for v in TEMPORAL_PORT TEMPORAL_UI_PORT FERRETDB_PORT API_PORT WORKER_METRICS_PORT TEMPORAL_SDK_METRICS_PORT; do
  [[ "${!v}" =~ ^[0-9]+$ ]] && [ "${!v}" -ge 1 ] && [ "${!v}" -le 65535 ] || die "$v must be a TCP port number (got '${!v}')"
done
for v in WORKERS APIS; do
  [[ "${!v}" =~ ^[1-9][0-9]*$ ]] && [ "${!v}" -le 100 ] || die "$v must be a number of processes from 1 to 100 (got '${!v}')"
done

# ---------------------------------------------------------------- instances
# kind_of <name>: worker or api for worker, worker-<i>, api, api-<i>; else the name itself (temporal, ferretdb).
kind_of() {
  case "$1" in worker | worker-[1-9]*) echo worker ;; api | api-[1-9]*) echo api ;; *) echo "$1" ;; esac
}
# instance_of <name>: 1 for worker and api, <i> for worker-<i> and api-<i>.
instance_of() { case "$1" in *-[1-9]*) echo "${1##*-}" ;; *) echo 1 ;; esac; }
# instance_name <kind> <i>: worker, worker-2, … (the first keeps the plain name).
instance_name() { if [ "$2" = 1 ]; then echo "$1"; else echo "$1-$2"; fi; }
# Ports of instance <i>: each port of the first plus 10*(i-1).
api_port_of() { echo $((API_PORT + 10 * ($1 - 1))); }
worker_metrics_port_of() { echo $((WORKER_METRICS_PORT + 10 * ($1 - 1))); }
sdk_metrics_port_of() { echo $((TEMPORAL_SDK_METRICS_PORT + 10 * ($1 - 1))); }
api_url_of() { echo "http://127.0.0.1:$(api_port_of "$1")"; }

WORKER_NAMES=() API_NAMES=()
for ((i = 1; i <= WORKERS; i++)); do WORKER_NAMES+=("$(instance_name worker "$i")"); done
for ((i = 1; i <= APIS; i++)); do API_NAMES+=("$(instance_name api "$i")"); done
SERVICES=(temporal ferretdb "${WORKER_NAMES[@]}" "${API_NAMES[@]}")

# leftover_names <kind>: instances of <kind> beyond the configured number that still have a pid file (started by an
# earlier `up` with more of them), in instance order.
leftover_names() {
  local kind="$1" count f n
  [ "$kind" = worker ] && count="$WORKERS" || count="$APIS"
  for f in "$RUN_DIR/$kind"-*.pid; do
    [ -f "$f" ] || continue
    n="${f##*/}"; n="${n%.pid}"; n="${n#"$kind"-}"
    [[ "$n" =~ ^[1-9][0-9]*$ ]] && [ "$n" -gt "$count" ] && echo "$n"
  done | sort -n | while read -r n; do echo "$kind-$n"; done
}

# all_services: the configured processes and any leftover instance (what `status`, `down` and `logs` cover).
all_services() {
  local n
  for n in "${SERVICES[@]}"; do echo "$n"; done
  leftover_names worker; leftover_names api
}
for v in "$(api_port_of "$APIS")" "$(worker_metrics_port_of "$WORKERS")" "$(sdk_metrics_port_of "$WORKERS")"; do
  [ "$v" -le 65535 ] || die "WORKERS=$WORKERS and APIS=$APIS need ports above 65535 (instance i uses the first's ports + 10*(i-1)); lower API_PORT, WORKER_METRICS_PORT or TEMPORAL_SDK_METRICS_PORT"
done

save_env() {
  mkdir -p "$RUN_DIR"
  local tmp="$SAVED_ENV.tmp.$$" v
  ( umask 077; : >"$tmp" ) # it holds the admin key
  {
    echo "# settings of the last 'stack.sh up' (removed by 'stack.sh down')"
    for v in TEMPORAL_PORT TEMPORAL_UI_PORT FERRETDB_PORT FERRETDB_DEBUG_ADDR FERRETDB_LOG_LEVEL API_PORT \
      TEMPORAL_NAMESPACE TEMPORAL_TASK_QUEUE SOURCE_ROOTS LOG_LEVEL WORKER_METRICS_HOST WORKER_METRICS_PORT \
      TEMPORAL_SDK_METRICS_PORT WEBHOOK_ALLOWED_HOSTS WORKERS APIS; do
      printf '%s=%q\n' "$v" "${!v}"
    done
    [ -n "$TEMPORAL_EXTERNAL" ] && printf 'TEMPORAL_ADDRESS=%q\n' "$TEMPORAL_ADDRESS"
    [ -n "$MONGODB_EXTERNAL" ] && printf 'MONGODB_URI=%q\n' "$MONGODB_URI"
    [ -n "$TEMPORAL_EXTERNAL" ] && printf 'TEMPORAL_UI_URL=%q\n' "$TEMPORAL_UI_URL"
    printf 'ADMIN_API_KEY=%q\n' "$ADMIN_API_KEY"
    for v in "${MAIL_VARS[@]}"; do [ -n "${!v}" ] && printf '%s=%q\n' "$v" "${!v}"; done
    true
  } >>"$tmp"
  mv "$tmp" "$SAVED_ENV"
}

# ---------------------------------------------------------------- helpers
label() {
  case "$1" in
    temporal) echo "Temporal" ;; temporal-ui) echo "Temporal UI" ;; ferretdb) echo "FerretDB" ;;
    ferretdb-debug) echo "FerretDB debug/metrics" ;; api) echo "API" ;; api-*) echo "API ${1#api-}" ;; *) echo "$1" ;;
  esac
}

# Is something accepting connections on 127.0.0.1:<port>?
port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/${2:-127.0.0.1}/$1" 2>/dev/null; }

# port <port> <what> <setting>: fail with one clear line when the port is taken. A process that has just ended (a
# worker killed with SIGKILL while its threads wind down) may hold its ports a moment longer: wait up to 10 s first.
require_free_port() {
  local waited=0
  while port_open "$1"; do
    [ "$waited" -ge 10 ] && die "port $1 ($2) is already in use; set $3 or stop the other process"
    sleep 1; waited=$((waited + 1))
  done
}

cmdline_of() {
  if [ -r "/proc/$1/cmdline" ]; then tr '\0' ' ' <"/proc/$1/cmdline"
  else ps -o command= -p "$1" 2>/dev/null || true
  fi
}

pid_of() { # prints the pid from the pidfile of <name>, if any
  local f="$RUN_DIR/$1.pid"
  [ -f "$f" ] || return 1
  local pid; pid="$(head -n1 "$f" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  echo "$pid"
}

marker_of() {
  case "$1" in
    temporal) echo "server start-dev" ;; ferretdb) echo "ferretdb" ;;
    worker | worker-*) echo "worker/main.ts" ;; api | api-*) echo "api/server.ts" ;;
  esac
}

# running <name>: our process (group) from the pidfile is alive. Prints the pid.
running() {
  local pid marker; pid="$(pid_of "$1")" || return 1
  marker="$(marker_of "$1")"
  # the leader (the supervisor, or the process an earlier release started without one) runs our command: not a
  # recycled pid
  if alive_as "$pid" "$marker"; then echo "$pid"; return 0; fi
  # leader gone (e.g. a supervisor killed on its own, maybe left a zombie), but our process may still run in its group
  if group_runs "$pid" "$marker"; then echo "$pid"; return 0; fi
  return 1
}

# alive_as <pid> <text>: the process exists and its command line holds <text> (not a recycled pid, nor a zombie:
# a zombie's command line is empty).
alive_as() {
  kill -0 "$1" 2>/dev/null || return 1
  case "$(cmdline_of "$1")" in *"$2"*) return 0 ;; esac
  return 1
}

# service_pids <name>: who is who of a service started from $RUN_DIR. Its pidfile holds the pid of its supervisor
# (scripts/supervise.sh, the leader of the process group); the process itself is the supervisor's child, whose pid
# the supervisor writes into its state file. Sets
#   SVC_PID        the process's own pid while it runs (a process an earlier release started without a supervisor:
#                  the pidfile's pid), else empty;
#   SVC_LAST       the process's last known pid (the state file's child, or the pidfile's pid), empty when unknown;
#   SVC_SUP        the supervisor's pid, empty for a process started without one;
#   SVC_SUP_ALIVE  1 while that supervisor runs, else empty (killed, or exited after giving up).
# A supervisor killed with SIGKILL leaves its process running in the same process group, unsupervised; the state
# file then still names that process. Returns 1 when there is no pidfile (never started, or stopped by `down`).
service_pids() {
  local name="$1" leader marker child
  SVC_PID="" SVC_LAST="" SVC_SUP="" SVC_SUP_ALIVE=""
  leader="$(pid_of "$name")" || return 1
  marker="$(marker_of "$name")"
  if [ -f "$RUN_DIR/$name.supervisor" ] || alive_as "$leader" supervise.sh; then
    SVC_SUP="$leader"
    if alive_as "$leader" "supervise.sh $name "; then SVC_SUP_ALIVE=1; fi
    child="$(supervisor_field "$name" child)"
    if [[ "$child" =~ ^[0-9]+$ ]]; then
      SVC_LAST="$child"
      # our process: its command, in the supervisor's process group (a recycled pid is in another one)
      if alive_as "$child" "$marker" && [ "$(pgid_of "$child")" = "$leader" ]; then SVC_PID="$child"; fi
    fi
  else
    SVC_LAST="$leader"
    if alive_as "$leader" "$marker"; then SVC_PID="$leader"; fi
  fi
  return 0
}

# pids_text <name>: "pid <process>, supervisor pid <supervisor>" for messages, as far as service_pids knows them.
pids_text() {
  service_pids "$1" || { echo "no pidfile"; return 0; }
  local t="${SVC_PID:+pid $SVC_PID}"
  if [ -n "$SVC_SUP" ]; then
    t="${t:+$t, }supervisor pid $SVC_SUP"
    [ -n "$SVC_SUP_ALIVE" ] || t="$t (dead)"
  fi
  echo "${t:-not running}"
}

STARTED=() # processes this invocation started

# group_runs <pgid> <text>: a process of that process group runs (no zombie) with <text> in its command line.
group_runs() {
  local table
  table="$(ps -A -o pgid= -o stat= -o args= 2>/dev/null || true)"
  if [ -n "$table" ]; then
    printf '%s\n' "$table" | awk -v g="$1" -v t="$2" '$1 == g && $2 !~ /^Z/ && index($0, t) { found = 1 } END { exit !found }'
    return
  fi
  kill -0 -- "-$1" 2>/dev/null # no ps: any member counts
}

# group_alive <pid>: the process or a member of its process group exists, zombies included (`down` waits until
# they are collected).
group_alive() { kill -0 -- "-$1" 2>/dev/null || kill -0 "$1" 2>/dev/null; }

# spawn <name> <command...>: start in a new session (survives the launching shell; `down` kills the group), under
# scripts/supervise.sh, which restarts the command when it dies; the pidfile holds the supervisor's pid (the group).
spawn() {
  local name="$1"; shift
  local pidfile="$RUN_DIR/$name.pid" log="$LOG_DIR/$name.log"
  mkdir -p "$RUN_DIR" "$LOG_DIR"
  rm -f "$pidfile" "$RUN_DIR/$name.spec" "$RUN_DIR/$name.supervisor"
  set -- bash "$SCRIPTS/supervise.sh" "$name" "$RUN_DIR/$name.supervisor" "$@"
  [ -f "$log" ] && mv -f "$log" "$log.1" # one previous generation is kept
  printf '=== %s start %s: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$name" "$*" >"$log"
  local wrapper='echo $$ >"$0"; exec "$@"'
  if command -v setsid >/dev/null 2>&1; then
    (cd "$PROJECT" && exec setsid bash -c "$wrapper" "$pidfile" "$@" </dev/null >>"$log" 2>&1 &)
  else # e.g. macOS without util-linux
    (cd "$PROJECT" && exec perl -MPOSIX -e 'POSIX::setsid(); exec @ARGV or die "exec: $!"' -- \
      bash -c "$wrapper" "$pidfile" "$@" </dev/null >>"$log" 2>&1 &)
  fi
  local i
  for i in $(seq 1 100); do [ -s "$pidfile" ] && break; sleep 0.05; done
  [ -s "$pidfile" ] || die "could not start $name (see $log)"
  printf '%s\n' "$SPEC" >"$RUN_DIR/$name.spec"
  STARTED+=("$name")
}

# stop_many <name...>: TERM each process group, wait up to STOP_TIMEOUT s for all, then KILL what is left.
stop_many() {
  local name pid pids=() names=()
  for name in "$@"; do
    if pid="$(running "$name")"; then
      info "stopping $name ($(pids_text "$name"))"
      # The supervisor passes TERM on to its process and exits without a restart; a process started without one
      # (by an earlier release), or whose supervisor was killed (maybe a zombie now), gets it directly, with its group.
      if [ -f "$RUN_DIR/$name.supervisor" ] && alive_as "$pid" "supervise.sh $name "; then
        kill -TERM "$pid" 2>/dev/null || true
      else
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
      fi
      pids+=("$pid"); names+=("$name")
    fi
  done
  local deadline=$((SECONDS + STOP_TIMEOUT)) left i
  while :; do
    left=0
    for i in "${!pids[@]}"; do group_alive "${pids[$i]}" && left=1; done
    [ "$left" = 0 ] && break
    if [ "$SECONDS" -ge "$deadline" ]; then
      for i in "${!pids[@]}"; do
        if group_alive "${pids[$i]}"; then
          info "${names[$i]} did not stop within ${STOP_TIMEOUT}s; killing it"
          kill -KILL -- "-${pids[$i]}" 2>/dev/null || kill -KILL "${pids[$i]}" 2>/dev/null || true
        fi
      done
      sleep 0.5; break
    fi
    sleep 0.2
  done
  for name in "$@"; do rm -f "$RUN_DIR/$name.pid" "$RUN_DIR/$name.spec" "$RUN_DIR/$name.supervisor"; done
}

# supervisor_field <name> <field>: a field of the supervisor's state file (see scripts/supervise.sh), or empty.
supervisor_field() {
  local f="$RUN_DIR/$1.supervisor"
  [ -f "$f" ] && sed -n "s/^$2=//p" "$f" 2>/dev/null | sed -n 1p
  return 0
}

tail_log() { # name [lines]
  local log="$LOG_DIR/$1.log"
  if [ -f "$log" ]; then
    echo "----- last ${2:-30} lines of $log -----" >&2
    tail -n "${2:-30}" "$log" >&2
    echo "-----" >&2
  fi
}

need_node() {
  command -v node >/dev/null 2>&1 || die "'node' is required but not installed (install Node.js 20, e.g. from https://nodejs.org or your package manager)"
}

TEMPORAL_BIN="${TEMPORAL_BIN:-}"
FERRETDB_BIN="${FERRETDB_BIN:-}"
ensure_tools() { # tool names
  [ $# -eq 0 ] && return 0
  local out line
  out="$(bash "$SCRIPTS/ensure-tools.sh" "$@")" || die "could not provide $* (see the messages above)"
  while IFS= read -r line; do
    case "$line" in
      TEMPORAL_BIN=*) TEMPORAL_BIN="${line#TEMPORAL_BIN=}" ;;
      FERRETDB_BIN=*) FERRETDB_BIN="${line#FERRETDB_BIN=}" ;;
    esac
  done <<<"$out"
}

# The temporal binary if it is already built (no build just for a health check).
temporal_cli() {
  if [ -z "$TEMPORAL_BIN" ]; then
    local guess="${IMODEL_SYNC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/imodel-sync}/tools/temporal-${TEMPORAL_CLI_VERSION:-v1.5.1}/temporal"
    [ -x "$guess" ] && TEMPORAL_BIN="$guess"
  fi
  [ -n "$TEMPORAL_BIN" ] && [ -x "$TEMPORAL_BIN" ]
}

# ---------------------------------------------------------------- health checks
temporal_healthy() {
  if temporal_cli; then
    "$TEMPORAL_BIN" operator cluster health --address "$TEMPORAL_ADDRESS" --command-timeout 3s >/dev/null 2>&1 &&
      "$TEMPORAL_BIN" operator namespace describe --address "$TEMPORAL_ADDRESS" --command-timeout 3s \
        -n "$TEMPORAL_NAMESPACE" >/dev/null 2>&1
  else
    local hp="${TEMPORAL_ADDRESS##*://}"; port_open "${hp##*:}" "${hp%:*}"
  fi
}

mongo_ping() { # succeeds when the MongoDB-wire server answers ping (TCP check without node_modules)
  if command -v node >/dev/null 2>&1 && [ -d "$PROJECT/node_modules/mongodb" ]; then
    (cd "$PROJECT" && MONGODB_URI="$MONGODB_URI" timeout 10 node -e '
      const { MongoClient } = require("mongodb");
      const c = new MongoClient(process.env.MONGODB_URI, { serverSelectionTimeoutMS: 2000, connectTimeoutMS: 2000 });
      c.connect().then(() => c.db().command({ ping: 1 })).then(() => c.close().then(() => process.exit(0)),
        () => process.exit(1));' >/dev/null 2>&1)
  elif [ -z "$MONGODB_EXTERNAL" ]; then
    port_open "$FERRETDB_PORT"
  else
    return 0 # external URI and no driver to check it with
  fi
}

api_healthy() { # [url]: the API at url (default: the first, $API_URL) answers /health with 200
  local url="${1:-$API_URL}"
  if command -v curl >/dev/null 2>&1; then
    [ "$(curl -s -o /dev/null -m 3 -w '%{http_code}' "$url/health" 2>/dev/null)" = 200 ]
  else
    (cd "$PROJECT" && timeout 5 node -e '
      fetch(process.argv[1]).then((r) => process.exit(r.status === 200 ? 0 : 1), () => process.exit(1));' \
      "$url/health" >/dev/null 2>&1)
  fi
}

# wait_for <name> <timeout s> <check> [also watch...]: poll until healthy; fail early if a process dies. <check> is a
# function name, maybe with arguments separated by spaces (e.g. "api_healthy http://127.0.0.1:3010").
wait_for() {
  local name="$1" timeout="$2" check="$3"; shift 3
  local start=$SECONDS w
  local check_cmd; read -r -a check_cmd <<<"$check"
  while ! "${check_cmd[@]}"; do
    for w in "$name" "$@"; do
      # dead, or restarted by its supervisor: the start failed
      if [ -f "$RUN_DIR/$w.pid" ] && { ! running "$w" >/dev/null || [ "$(supervisor_field "$w" restarts)" -gt 0 ] 2>/dev/null; }; then
        echo "error: $w exited during start-up" >&2
        return 1
      fi
    done
    if [ $((SECONDS - start)) -ge "$timeout" ]; then
      echo "error: $(label "$name") did not become healthy within ${timeout}s" >&2
      return 1
    fi
    sleep 0.5
  done
  info "$name is ready ($((SECONDS - start)) s)"
}

# ---------------------------------------------------------------- services
temporal_cmd() {
  CMD=("$TEMPORAL_BIN" server start-dev
    --ip 127.0.0.1 --port "$TEMPORAL_PORT" --ui-port "$TEMPORAL_UI_PORT"
    --db-filename "$DATA_DIR/temporal/temporal.db"
    --namespace "$TEMPORAL_NAMESPACE"
    --log-level warn
    --search-attribute ConnectionId=Keyword
    --search-attribute IModelId=Keyword
    --search-attribute RunTrigger=Keyword
    --dynamic-config-value frontend.enableUpdateWorkflowExecution=true
    --dynamic-config-value frontend.enableExecuteMultiOperation=true
    --dynamic-config-value frontend.enableUpdateWorkflowExecutionAsyncAccepted=true)
}

ferretdb_cmd() {
  CMD=("$FERRETDB_BIN"
    --handler=sqlite
    "--sqlite-url=file:$DATA_DIR/ferretdb/sqlite/"
    "--state-dir=$DATA_DIR/ferretdb"
    "--listen-addr=127.0.0.1:$FERRETDB_PORT"
    "--debug-addr=$FERRETDB_DEBUG_ADDR"
    --telemetry=disable
    "--log-level=$FERRETDB_LOG_LEVEL")
}

app_cmd() { # worker|worker-<i>|api|api-<i>
  local kind i script; kind="$(kind_of "$1")"; i="$(instance_of "$1")"
  [ "$kind" = worker ] && script=worker/main.ts || script=api/server.ts
  local node_args=() instance_env=()
  [ "$kind" = worker ] && [ -n "$WORKER_NODE_ARGS" ] && read -r -a node_args <<<"$WORKER_NODE_ARGS"
  # A worker knows its instance (its own task queue, activities/worker-queue.ts); an API its own port. Workers keep
  # API_PORT of the first API (the default of PUBLIC_API_URL for links in mails).
  local api_port="$API_PORT"
  if [ "$kind" = worker ]; then instance_env=(WORKER_INSTANCE="$i")
  else api_port="$(api_port_of "$i")"
  fi
  CMD=(env TEMPORAL_ADDRESS="$TEMPORAL_ADDRESS" TEMPORAL_NAMESPACE="$TEMPORAL_NAMESPACE"
    TEMPORAL_TASK_QUEUE="$TEMPORAL_TASK_QUEUE" MONGODB_URI="$MONGODB_URI" DATA_DIR="$DATA_DIR"
    API_PORT="$api_port" SOURCE_ROOTS="$SOURCE_ROOTS" LOG_LEVEL="$LOG_LEVEL" TEMPORAL_UI_URL="$TEMPORAL_UI_URL"
    ADMIN_EMAIL="$ADMIN_EMAIL" MAIL_FROM="$MAIL_FROM" MAIL_OUTBOX_DIR="$MAIL_OUTBOX_DIR" PUBLIC_API_URL="$PUBLIC_API_URL"
    DISK_FREE_MIN_MB="$DISK_FREE_MIN_MB" CHANGE_LISTS_KEPT="$CHANGE_LISTS_KEPT" WORKER_METRICS_HOST="$WORKER_METRICS_HOST"
    WORKER_METRICS_PORT="$(worker_metrics_port_of "$i")" TEMPORAL_SDK_METRICS_PORT="$(sdk_metrics_port_of "$i")"
    WEBHOOK_ALLOWED_HOSTS="$WEBHOOK_ALLOWED_HOSTS" ${instance_env[@]+"${instance_env[@]}"} node ${node_args[@]+"${node_args[@]}"} --import "file://${PROJECT// /%20}/node_modules/tsx/dist/loader.mjs" "$PROJECT/$script")
  # One node process per app (no tsx wrapper process): the supervisor's child (`status` shows its pid).
  # Secrets reach the apps through the environment, not the command line that spawn writes into the log.
  export ADMIN_API_KEY SMTP_URL
}

# The settings a running process was started with; `up` reuses it only when they match.
spec_of() {
  case "$1" in
    temporal) echo "port=$TEMPORAL_PORT ui=$TEMPORAL_UI_PORT db=$DATA_DIR/temporal/temporal.db ns=$TEMPORAL_NAMESPACE" ;;
    ferretdb) echo "port=$FERRETDB_PORT dir=$DATA_DIR/ferretdb debug=$FERRETDB_DEBUG_ADDR" ;;
    worker | api | worker-* | api-*) local i; i="$(instance_of "$1")"
      [ "$i" = 1 ] || printf 'instance=%s ports=%s,%s,%s ' "$i" "$(api_port_of "$i")" "$(worker_metrics_port_of "$i")" "$(sdk_metrics_port_of "$i")"
      echo "temporal=$TEMPORAL_ADDRESS ns=$TEMPORAL_NAMESPACE tq=$TEMPORAL_TASK_QUEUE mongo=$MONGODB_URI data=$DATA_DIR api=$API_PORT sources=$SOURCE_ROOTS log=$LOG_LEVEL secrets=$(printf '%s|' "$ADMIN_API_KEY" "$SMTP_URL" | cksum | cut -d' ' -f1) mail=$MAIL_FROM|$MAIL_OUTBOX_DIR|$PUBLIC_API_URL|$ADMIN_EMAIL disk=$DISK_FREE_MIN_MB changes=$CHANGE_LISTS_KEPT metrics=$WORKER_METRICS_HOST:$WORKER_METRICS_PORT,$TEMPORAL_SDK_METRICS_PORT webhooks=$WEBHOOK_ALLOWED_HOSTS node=$WORKER_NODE_ARGS" ;;
  esac
}

is_external() {
  case "$1" in
    temporal) [ -n "$TEMPORAL_EXTERNAL" ] ;; ferretdb) [ -n "$MONGODB_EXTERNAL" ] ;; *) return 1 ;;
  esac
}

check_ports() { # name: ports of a service we are about to start must be free
  case "$1" in
    temporal)
      require_free_port "$TEMPORAL_PORT" "Temporal" TEMPORAL_PORT
      require_free_port "$TEMPORAL_UI_PORT" "Temporal UI" TEMPORAL_UI_PORT ;;
    ferretdb)
      require_free_port "$FERRETDB_PORT" "FerretDB" FERRETDB_PORT
      if [ "$FERRETDB_DEBUG_ADDR" != - ] && [ -n "$FERRETDB_DEBUG_ADDR" ]; then
        require_free_port "${FERRETDB_DEBUG_ADDR##*:}" "FerretDB debug/metrics" FERRETDB_DEBUG_ADDR
      fi ;;
    api) require_free_port "$API_PORT" "API" API_PORT ;;
    worker)
      require_free_port "$WORKER_METRICS_PORT" "worker metrics" WORKER_METRICS_PORT
      require_free_port "$TEMPORAL_SDK_METRICS_PORT" "Temporal SDK metrics" TEMPORAL_SDK_METRICS_PORT ;;
    api-*) local i; i="$(instance_of "$1")"
      require_free_port "$(api_port_of "$i")" "$1" "API_PORT (api-<i> uses API_PORT+10*(i-1))" ;;
    worker-*) local i; i="$(instance_of "$1")"
      require_free_port "$(worker_metrics_port_of "$i")" "$1 metrics" "WORKER_METRICS_PORT (worker-<i> uses WORKER_METRICS_PORT+10*(i-1))"
      require_free_port "$(sdk_metrics_port_of "$i")" "$1 Temporal SDK metrics" "TEMPORAL_SDK_METRICS_PORT (worker-<i> uses TEMPORAL_SDK_METRICS_PORT+10*(i-1))" ;;
  esac
}

# check_distinct_ports: no two listeners of the stack share a port (e.g. WORKER_METRICS_PORT set to api-2's port).
check_distinct_ports() {
  local entries=() i e f seen=" "
  if ! is_external temporal; then entries+=("$TEMPORAL_PORT:TEMPORAL_PORT" "$TEMPORAL_UI_PORT:TEMPORAL_UI_PORT"); fi
  is_external ferretdb || entries+=("$FERRETDB_PORT:FERRETDB_PORT")
  for ((i = 1; i <= APIS; i++)); do entries+=("$(api_port_of "$i"):$(instance_name api "$i")"); done
  for ((i = 1; i <= WORKERS; i++)); do
    entries+=("$(worker_metrics_port_of "$i"):$(instance_name worker "$i") metrics" "$(sdk_metrics_port_of "$i"):$(instance_name worker "$i") SDK metrics")
  done
  for e in "${entries[@]}"; do
    case "$seen" in *" ${e%%:*}:"*)
      f="${seen#*" ${e%%:*}:"}"; f="${f%%|*}"
      die "port ${e%%:*} is given to both $f and ${e#*:}; set the ports apart (instance i uses the first's ports + 10*(i-1))" ;;
    esac
    seen="$seen${e%%:*}:${e#*:}| "
  done
}

# plan <names...>: sets TO_START (not running) after checking reuse and ports, before anything starts.
plan() {
  TO_START=()
  local name pid
  for name in "$@"; do
    is_external "$name" && continue
    if pid="$(running "$name")"; then
      local want have; want="$(spec_of "$name")"; have="$(cat "$RUN_DIR/$name.spec" 2>/dev/null || true)"
      if [ "$want" = "$have" ]; then
        info "$name is already running ($(pids_text "$name"))"
        continue
      fi
      case "$name" in
        worker | api | worker-* | api-*) info "$name is running with other settings; restarting it"; stop_many "$name" ;;
        *) die "$name is already running ($(pids_text "$name")) with other settings ($have); run 'scripts/stack.sh down' first or 'scripts/stack.sh restart $name'" ;;
      esac
    else
      rm -f "$RUN_DIR/$name.pid" "$RUN_DIR/$name.spec" # stale
    fi
    check_ports "$name"
    TO_START+=("$name")
  done
}

start_servers() { # names (subset of temporal ferretdb) that must be started
  local name tools=()
  for name in "$@"; do tools+=("$name"); done
  ensure_tools "${tools[@]}"
  mkdir -p "$DATA_DIR/temporal" "$DATA_DIR/ferretdb/sqlite" "$DATA_DIR/sources"
  for name in "$@"; do
    case "$name" in temporal) temporal_cmd ;; ferretdb) ferretdb_cmd ;; esac
    SPEC="$(spec_of "$name")"
    spawn "$name" "${CMD[@]}"
    info "started $name under its supervisor (pid $(pid_of "$name")), log $LOG_DIR/$name.log"
  done
}

wait_servers() {
  local ok=1
  if ! is_external temporal; then
    wait_for temporal "$TEMPORAL_START_TIMEOUT" temporal_healthy || { tail_log temporal; stop_many temporal; ok=0; }
  else
    wait_for temporal "$TEMPORAL_START_TIMEOUT" temporal_healthy || { echo "error: Temporal at $TEMPORAL_ADDRESS is not reachable" >&2; ok=0; }
  fi
  if ! is_external ferretdb; then
    wait_for ferretdb "$FERRETDB_START_TIMEOUT" mongo_ping || { tail_log ferretdb; stop_many ferretdb; ok=0; }
    [ "$ok" = 1 ] && { index_ferretdb || ok=0; }
  else
    wait_for ferretdb "$FERRETDB_START_TIMEOUT" mongo_ping || { echo "error: MongoDB at $MONGODB_URI is not reachable" >&2; ok=0; }
  fi
  [ "$ok" = 1 ] || exit 1
}

# The embedded FerretDB answers a lookup by _id with a scan of the whole collection unless its SQLite table has an
# index on the expression the lookup uses: scripts/ferretdb-indexes.ts adds it (docs/architecture.md "Queries
# FerretDB serves by _id"). Idempotent; about 2 s.
index_ferretdb() {
  [ -x "$PROJECT/node_modules/.bin/tsx" ] || { info "node_modules is missing: FerretDB's _id lookups not indexed"; return 0; }
  local out
  if ! out="$(node --import "file://${PROJECT// /%20}/node_modules/tsx/dist/loader.mjs" "$PROJECT/scripts/ferretdb-indexes.ts" \
    "$MONGODB_URI" "$DATA_DIR/ferretdb/sqlite" 2>&1)"; then
    echo "error: $out" >&2
    return 1
  fi
  info "$out"
}

start_apps() { # names (workers and APIs)
  [ -x "$PROJECT/node_modules/.bin/tsx" ] || die "node_modules is missing; run 'make deps' (npm ci) first"
  local name
  for name in "$@"; do
    app_cmd "$name"
    SPEC="$(spec_of "$name")"
    spawn "$name" "${CMD[@]}"
    info "started $name under its supervisor (pid $(pid_of "$name")), log $LOG_DIR/$name.log"
  done
}

wait_apps() { # [api names]: each API answers /health (default: all of them), then every worker polls
  local name url
  [ $# -gt 0 ] || set -- "${API_NAMES[@]}"
  for name in "$@"; do
    url="$(api_url_of "$(instance_of "$name")")"
    if ! wait_for "$name" "$API_START_TIMEOUT" "api_healthy $url" "${WORKER_NAMES[@]}"; then
      echo "error: API health check $url/health failed" >&2
      tail_log "$name" 40; for w in "${WORKER_NAMES[@]}"; do tail_log "$w" 40; done
      exit 1
    fi
  done
  wait_worker "${WORKER_NAMES[@]}"
}

wait_worker() { # [worker names] (default: worker)
  local name
  [ $# -gt 0 ] || set -- worker
  for name in "$@"; do
    if ! wait_for "$name" "$WORKER_START_TIMEOUT" "worker_polling $name"; then
      if running "$name" >/dev/null; then
        echo "warning: $name runs but does not poll task queue $TEMPORAL_TASK_QUEUE yet (see scripts/stack.sh logs $name)" >&2
      else
        echo "error: $name is not running" >&2; tail_log "$name" 40; exit 1
      fi
    fi
  done
}

pgid_of() {
  if [ -r "/proc/$1/stat" ]; then sed 's/.*) //' "/proc/$1/stat" | awk '{print $3}'
  else ps -o pgid= -p "$1" 2>/dev/null | tr -d ' '
  fi
}

# worker_polling [name]: the worker (default: worker; or worker-<i>) polls the shared task queue: a poller whose
# identity (default "<pid>@<host>") is a process of its own process group (its supervisor's, from its pid file).
worker_polling() {
  temporal_cli || return 0 # no CLI to ask (external Temporal, tools not built): do not wait
  local pgid json p
  pgid="$(pid_of "${1:-worker}")" || return 1
  json="$("$TEMPORAL_BIN" task-queue describe --address "$TEMPORAL_ADDRESS" --namespace "$TEMPORAL_NAMESPACE" \
    --task-queue "$TEMPORAL_TASK_QUEUE" --command-timeout 3s -o json 2>/dev/null)" || return 1
  for p in $(printf '%s\n' "$json" | sed -n 's/.*"identity": *"\([0-9][0-9]*\)@.*/\1/p'); do
    [ "$(pgid_of "$p")" = "$pgid" ] && return 0
  done
  return 1
}

print_urls() {
  echo
  echo "imodel-sync stack is up (data in $DATA_DIR)"
  [ "${1:-}" = all ] && echo "  API:          $API_URL   (health: $API_URL/health, metrics: $API_URL/metrics with an admin key)"
  [ "${1:-}" = all ] && [ "$APIS" -gt 1 ] && echo "  APIs:         $(api_urls)   (APIS=$APIS)"
  [ "${1:-}" = all ] && echo "  Worker:       metrics http://$WORKER_METRICS_HOST:$WORKER_METRICS_PORT/metrics"
  [ "${1:-}" = all ] && [ "$WORKERS" -gt 1 ] && echo "  Workers:      metrics $(worker_metrics_urls)   (WORKERS=$WORKERS)"
  [ "${1:-}" = all ] && echo "  Admin key:    $([ -s "$ADMIN_KEY_FILE" ] && [ "$(head -n1 "$ADMIN_KEY_FILE")" = "$ADMIN_API_KEY" ] && echo "in $ADMIN_KEY_FILE" || echo "ADMIN_API_KEY from the environment")   (eval \"\$(scripts/stack.sh env)\" exports it)"
  local smtp_host="${SMTP_URL#*://}"; smtp_host="${smtp_host##*@}"
  [ "${1:-}" = all ] && echo "  Mail:         $([ -n "$SMTP_URL" ] && echo "SMTP server $smtp_host" || echo ".eml files in ${MAIL_OUTBOX_DIR:-$DATA_DIR/outbox}")"
  if is_external temporal; then echo "  Temporal:     $TEMPORAL_ADDRESS (external)"
  else echo "  Temporal UI:  $TEMPORAL_UI_URL   (gRPC $TEMPORAL_ADDRESS, namespace $TEMPORAL_NAMESPACE)"; fi
  echo "  MongoDB URI:  $MONGODB_URI$([ -n "$MONGODB_EXTERNAL" ] && echo ' (external)')"
  echo "  Logs:         $LOG_DIR   (scripts/stack.sh logs <name>)"
  echo "Stop it with: make down   (or scripts/stack.sh down)"
}

# An address equal to the one this script gives its own server (typically left in the shell by
# `eval "$(scripts/stack.sh env)"`) does not make that server external, unless another process listens there.
if [ -n "$TEMPORAL_EXTERNAL" ]; then
  case "$TEMPORAL_ADDRESS" in "127.0.0.1:$TEMPORAL_PORT" | "localhost:$TEMPORAL_PORT")
    if running temporal >/dev/null || ! port_open "$TEMPORAL_PORT"; then TEMPORAL_EXTERNAL=""; fi ;;
  esac
fi
if [ -n "$MONGODB_EXTERNAL" ]; then
  case "$MONGODB_URI" in "mongodb://127.0.0.1:$FERRETDB_PORT/imodelsync" | "mongodb://localhost:$FERRETDB_PORT/imodelsync")
    if running ferretdb >/dev/null || ! port_open "$FERRETDB_PORT"; then MONGODB_EXTERNAL=""; fi ;;
  esac
fi

# ---------------------------------------------------------------- commands
cmd_up() {
  local what="${1:-all}"
  case "$what" in all | servers) ;; *) die "usage: stack.sh up [servers]" ;; esac
  if [ "$what" = all ]; then
    need_node
    [ -x "$PROJECT/node_modules/.bin/tsx" ] || die "node_modules is missing; run 'make deps' (npm ci) first"
    check_distinct_ports
    # Instances left over from an `up` with more of them (WORKERS or APIS lowered): stopped first.
    local extra=()
    mapfile -t extra < <(leftover_names api; leftover_names worker)
    if [ ${#extra[@]} -gt 0 ]; then
      info "not wanted any more (WORKERS=$WORKERS APIS=$APIS): ${extra[*]}"
      stop_many "${extra[@]}"
    fi
    plan temporal ferretdb "${WORKER_NAMES[@]}" "${API_NAMES[@]}"
  else
    plan temporal ferretdb
  fi
  local servers=() apps=() n
  for n in "${TO_START[@]+"${TO_START[@]}"}"; do
    case "$n" in temporal | ferretdb) servers+=("$n") ;; *) apps+=("$n") ;; esac
  done
  save_env
  # A failed `up` stops what it started, so that no stray server keeps its ports (e.g. after a test setup).
  trap 'up_failed $?' EXIT
  [ ${#servers[@]} -gt 0 ] && start_servers "${servers[@]}"
  wait_servers
  if [ "$what" = all ]; then
    [ ${#apps[@]} -gt 0 ] && start_apps "${apps[@]}"
    wait_apps
  fi
  trap - EXIT
  print_urls "$what"
}

up_failed() {
  [ "$1" = 0 ] && return 0
  if [ ${#STARTED[@]} -gt 0 ]; then
    info "up failed; stopping what it started (${STARTED[*]}); the logs stay in $LOG_DIR"
    local order=() n
    for n in "${API_NAMES[@]}" "${WORKER_NAMES[@]}" ferretdb temporal; do
      case " ${STARTED[*]} " in *" $n "*) order+=("$n") ;; esac
    done
    stop_many "${order[@]}"
  fi
  local any=""
  for n in $(all_services); do running "$n" >/dev/null && any=1; done
  [ -n "$any" ] || rm -f "$SAVED_ENV"
  exit "$1"
}

cmd_down() {
  local any="" apps=()
  for n in $(all_services); do
    running "$n" >/dev/null && any=1
    case "$n" in temporal | ferretdb) ;; *) apps+=("$n") ;; esac
  done
  [ -n "$any" ] || info "nothing is running (from $RUN_DIR)"
  stop_many "${apps[@]}" # apps first, while their servers are still up
  stop_many ferretdb temporal
  rm -f "$SAVED_ENV"
}

status_row() { printf '%-9s %-22s %-18s %-28s %s\n' "$@"; } # service state supervisor address health

cmd_status() {
  local n up=0 total=0 health sup sstate restarts
  status_row SERVICE STATE SUPERVISOR ADDRESS HEALTH
  for n in $(all_services); do
    local addr
    case "$n" in
      temporal) addr="$TEMPORAL_ADDRESS" ;; ferretdb) addr="$MONGODB_URI" ;;
      api | api-*) addr="$(api_url_of "$(instance_of "$n")")" ;; worker | worker-*) addr="queue $TEMPORAL_TASK_QUEUE" ;;
    esac
    if is_external "$n"; then
      health=down
      case "$n" in temporal) temporal_healthy && health=ok ;; ferretdb) mongo_ping && health=ok ;; esac
      status_row "$n" external - "$addr" "$health"
      continue
    fi
    total=$((total + 1))
    if ! service_pids "$n"; then
      status_row "$n" stopped - "$addr" -
      continue
    fi
    sstate="$(supervisor_field "$n" state)"; restarts="$(supervisor_field "$n" restarts)"
    if [ -z "$SVC_SUP" ]; then sup=none
    elif [ -n "$SVC_SUP_ALIVE" ]; then sup="pid $SVC_SUP"
    elif [ "$sstate" = gave-up ]; then sup="exited (gave up)"
    else sup="dead (pid $SVC_SUP)"
    fi
    if [ -n "$SVC_PID" ]; then
      up=$((up + 1)); health=-
      case "$n" in
        temporal) temporal_healthy && health=ok || health=down ;;
        ferretdb) mongo_ping && health=ok || health=down ;;
        api | api-*) api_healthy "$addr" && health=ok || health=down ;;
        worker | worker-*) worker_polling "$n" && health=polling || health="not polling" ;;
      esac
      [ "$health" = "not polling" ] && up=$((up - 1))
      [ "$health" = down ] && up=$((up - 1))
      [ -n "$restarts" ] && [ "$restarts" != 0 ] && health="$health; $restarts restart(s), last: $(supervisor_field "$n" last_exit)"
      # A supervisor killed on its own (SIGKILL) leaves its process running: nothing restarts it if it dies.
      [ -n "$SVC_SUP" ] && [ -z "$SVC_SUP_ALIVE" ] &&
        health="$health; no supervisor: not restarted if it dies ('scripts/stack.sh restart $n' supervises it again)"
      status_row "$n" "running (pid $SVC_PID)" "$sup" "$addr" "$health"
    elif [ "$sstate" = gave-up ]; then
      status_row "$n" "gave up" "$sup" "$addr" \
        "$restarts restart(s), the last $(supervisor_field "$n" recent) within ${RESTART_WINDOW} s; last: $(supervisor_field "$n" last_exit) (see scripts/stack.sh logs $n)"
    elif [ -n "$SVC_SUP_ALIVE" ]; then
      # Between two starts (backoff), or just started: the supervisor starts the process (again).
      if [ -z "$sstate" ]; then health="starting"
      else health="not running${SVC_LAST:+ (pid $SVC_LAST ended)}; its supervisor starts it again"
      fi
      [ -n "$restarts" ] && [ "$restarts" != 0 ] && health="$health; $restarts restart(s), last: $(supervisor_field "$n" last_exit)"
      status_row "$n" "$([ -z "$sstate" ] && echo starting || echo restarting)" "$sup" "$addr" "$health"
    else
      # A pidfile, but neither the process nor its supervisor runs: they died without `down`.
      health="the process${SVC_LAST:+ (pid $SVC_LAST)} is gone"
      [ -n "$SVC_SUP" ] && health="$health, and so is its supervisor"
      status_row "$n" dead "$sup" "$addr" "$health; 'scripts/stack.sh up' starts it again (see scripts/stack.sh logs $n)"
    fi
  done
  if [ "$up" = "$total" ]; then return 0; elif [ "$up" = 0 ]; then return 3; else return 1; fi
}

cmd_restart() {
  local name="${1:-}"
  case "$name" in
    temporal | ferretdb)
      is_external "$name" && die "$name is external ($([ "$name" = temporal ] && echo "TEMPORAL_ADDRESS=$TEMPORAL_ADDRESS" || echo "MONGODB_URI=$MONGODB_URI")); nothing to restart"
      stop_many "$name"
      plan "$name"; save_env
      start_servers "$name"; wait_servers ;;
    worker | api | worker-* | api-*)
      case " ${WORKER_NAMES[*]} ${API_NAMES[*]} " in
        *" $name "*) ;;
        *) die "no $name: WORKERS=$WORKERS APIS=$APIS (instances worker, worker-2 … and api, api-2 …)" ;;
      esac
      need_node
      stop_many "$name"
      plan "$name"; save_env
      start_apps "$name"
      if [ "$(kind_of "$name")" = api ]; then wait_apps "$name"
      else
        wait_worker "$name"
      fi ;;
    *) die "usage: stack.sh restart <worker|api|temporal|ferretdb|worker-<i>|api-<i>>" ;;
  esac
}

cmd_logs() {
  local name="" follow=""
  for a in "$@"; do
    case "$a" in -f | --follow) follow=1 ;; *) name="$a" ;; esac
  done
  local lines="${LOG_LINES:-100}"
  if [ -z "$name" ]; then
    local files=()
    for n in $(all_services); do [ -f "$LOG_DIR/$n.log" ] && files+=("$LOG_DIR/$n.log"); done
    [ ${#files[@]} -gt 0 ] || die "no logs in $LOG_DIR"
    if [ -n "$follow" ]; then exec tail -n "$lines" -F "${files[@]}"; else tail -n "$lines" "${files[@]}"; fi
    return
  fi
  case "$name" in
    temporal | ferretdb | worker | api | worker-[1-9]* | api-[1-9]*) ;;
    *) die "usage: stack.sh logs [worker|api|temporal|ferretdb|worker-<i>|api-<i>] [-f]" ;;
  esac
  local log="$LOG_DIR/$name.log"
  [ -f "$log" ] || die "no log for $name yet ($log)"
  if [ -n "$follow" ]; then exec tail -n "$lines" -F "$log"; else tail -n "$lines" "$log"; fi
}

shq() { printf "'%s'" "${1//\'/\'\\\'\'}"; }

api_urls() { # the URLs of all API processes, space-separated, the first first
  local i out=""
  for ((i = 1; i <= APIS; i++)); do out="$out${out:+ }$(api_url_of "$i")"; done
  echo "$out"
}
worker_metrics_urls() { # the metrics URLs of all worker processes, space-separated
  local i out=""
  for ((i = 1; i <= WORKERS; i++)); do
    out="$out${out:+ }http://$WORKER_METRICS_HOST:$(worker_metrics_port_of "$i")/metrics"
  done
  echo "$out"
}

cmd_env() {
  local v
  for v in TEMPORAL_ADDRESS TEMPORAL_NAMESPACE TEMPORAL_TASK_QUEUE MONGODB_URI DATA_DIR API_PORT API_URL \
    SOURCE_ROOTS LOG_LEVEL TEMPORAL_UI_URL ADMIN_API_KEY; do
    echo "export $v=$(shq "${!v}")"
  done
  echo "export API_URLS=$(shq "$(api_urls)")"
  echo "export WORKER_METRICS_URLS=$(shq "$(worker_metrics_urls)")"
}

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//' >&2; }

cmd="${1:-}"; [ $# -gt 0 ] && shift
case "$cmd" in
  up) cmd_up "$@" ;;
  down) cmd_down ;;
  status) cmd_status ;;
  restart) cmd_restart "$@" ;;
  logs) cmd_logs "$@" ;;
  env) cmd_env ;;
  -h | --help | help) usage ;;
  *) usage; exit 2 ;;
esac
