#!/usr/bin/env bash
# The production topology of imodel-sync, started without Docker (the same services as docker-compose.yml):
#   postgresql       Debian's PostgreSQL server, a cluster of its own under $DATA_DIR/postgresql (databases temporal,
#                    temporal_visibility, ferretdb), loopback TCP on PG_PORT and a unix socket in that folder
#   temporal-server  the Temporal server proper (go.temporal.io/server, all four services in one process), persistence
#                    postgres12 for history and visibility, schema set up and updated by Temporal's temporal-sql-tool
#   ferretdb         FerretDB with its PostgreSQL handler (database ferretdb)
#   workers, APIs    scripts/stack.sh up with TEMPORAL_ADDRESS and MONGODB_URI set (it starts no servers of its own),
#                    WORKERS and APIS passed through (default 2 each)
#
# Usage: scripts/topology.sh up|down|status|env
#   up      build what is missing (scripts/ensure-tools.sh temporal temporal-server postgresql ferretdb), start
#           everything; idempotent
#   down    stop the apps (scripts/stack.sh down), then FerretDB, the Temporal server and PostgreSQL
#   status  each server's state, then scripts/stack.sh status (exit 0 = all up)
#   env     the export lines for clients (TEMPORAL_ADDRESS, MONGODB_URI, API_URL, ADMIN_API_KEY, PG_URL)
#
# Settings (env): DATA_DIR (<project>/data-topology), PG_PORT (15432), TEMPORAL_PORT (17233; the server's other
#   services use TEMPORAL_PORT+1..+6 for gRPC and +100..+106 for membership, its HTTP API +10), FERRETDB_PORT (27117),
#   API_PORT (3300), WORKERS (2), APIS (2), TEMPORAL_NAMESPACE (default), TOPOLOGY_START_TIMEOUT (90 s).
#   Other stack.sh settings (SOURCE_ROOTS, LOG_LEVEL, ...) reach it unchanged.
# As root, PostgreSQL (which refuses to run as root) runs as PG_OS_USER (postgres, else nobody) with the capability
# to traverse the root-only DATA_DIR (setpriv --ambient-caps +dac_read_search); its cluster folder is that user's.
set -euo pipefail
umask 077

PROJECT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SCRIPTS="$PROJECT/scripts"
die() { echo "error: $*" >&2; exit 1; }
info() { echo "$*" >&2; }

DATA_DIR="${DATA_DIR:-$PROJECT/data-topology}"
mkdir -p "$DATA_DIR"
DATA_DIR="$(cd "$DATA_DIR" && pwd)"
[ -O "$DATA_DIR" ] && chmod 700 "$DATA_DIR"
RUN_DIR="$DATA_DIR/run"
LOG_DIR="$DATA_DIR/logs"
PG_ROOT="$DATA_DIR/postgresql"
PG_DATA="$PG_ROOT/data"
PG_SOCKET_DIR="$PG_ROOT/socket"
PG_PASSWORD_FILE="$DATA_DIR/postgresql-password"
TEMPORAL_CONFIG_DIR="$DATA_DIR/temporal-server/config"
mkdir -p "$RUN_DIR" "$LOG_DIR"

PG_PORT="${PG_PORT:-15432}"
TEMPORAL_PORT="${TEMPORAL_PORT:-17233}"
FERRETDB_PORT="${FERRETDB_PORT:-27117}"
API_PORT="${API_PORT:-3300}"
WORKERS="${WORKERS:-2}"
APIS="${APIS:-2}"
TEMPORAL_NAMESPACE="${TEMPORAL_NAMESPACE:-default}"
TOPOLOGY_START_TIMEOUT="${TOPOLOGY_START_TIMEOUT:-90}"
PG_USER=imodelsync
for v in PG_PORT TEMPORAL_PORT FERRETDB_PORT API_PORT; do
  [[ "${!v}" =~ ^[0-9]+$ ]] && [ "${!v}" -ge 1 ] && [ "${!v}" -le 65000 ] || die "$v must be a TCP port number (got '${!v}')"
done
TEMPORAL_ADDRESS="127.0.0.1:$TEMPORAL_PORT"

# ---------------------------------------------------------------- tools
tools() {
  local line
  while IFS= read -r line; do
    case "$line" in *=*) printf -v "${line%%=*}" '%s' "${line#*=}" ;; esac
  done < <(bash "$SCRIPTS/ensure-tools.sh" temporal temporal-server postgresql ferretdb)
  [ -n "${TEMPORAL_SERVER_BIN:-}" ] && [ -n "${PG_BIN_DIR:-}" ] && [ -n "${FERRETDB_BIN:-}" ] || die "tools missing"
}

# ---------------------------------------------------------------- PostgreSQL
PG_AS=()
pg_as() { # the command prefix that runs a PostgreSQL server program as a non-root user
  PG_AS=()
  [ "$(id -u)" = 0 ] || return 0
  local user="${PG_OS_USER:-}"
  [ -z "$user" ] && { id postgres >/dev/null 2>&1 && user=postgres || user=nobody; }
  command -v setpriv >/dev/null 2>&1 || die "running as root needs setpriv (util-linux) to start PostgreSQL as $user"
  PG_AS=(setpriv "--reuid=$user" "--regid=$(id -g "$user")" --init-groups --inh-caps=+dac_read_search
    --ambient-caps=+dac_read_search --)
  PG_OWNER="$user"
}

pg_password() { head -n1 "$PG_PASSWORD_FILE"; }
pg_url() { echo "postgres://$PG_USER:$(pg_password)@127.0.0.1:$PG_PORT/$1"; }
psql_do() { # db sql
  PGPASSWORD="$(pg_password)" psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" -d "$1" -Atc "$2"
}
pg_running() { [ -f "$PG_DATA/postmaster.pid" ] && "${PG_AS[@]}" "$PG_BIN_DIR/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1; }

pg_up() {
  pg_as
  if [ ! -s "$PG_PASSWORD_FILE" ]; then
    head -c 24 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n' >"$PG_PASSWORD_FILE"; echo >>"$PG_PASSWORD_FILE"
  fi
  if [ ! -f "$PG_DATA/PG_VERSION" ]; then
    info "initdb: a PostgreSQL cluster in $PG_DATA"
    rm -rf "$PG_ROOT"; mkdir -p "$PG_DATA" "$PG_SOCKET_DIR"
    (umask 077 && pg_password >"$PG_ROOT/pwfile")
    [ -n "${PG_OWNER:-}" ] && chown -R "$PG_OWNER:" "$PG_ROOT"
    "${PG_AS[@]}" "$PG_BIN_DIR/initdb" -D "$PG_DATA" -U "$PG_USER" --pwfile="$PG_ROOT/pwfile" --auth=scram-sha-256 \
      -E UTF8 --locale=C.UTF-8 >"$LOG_DIR/initdb.log" 2>&1 || { cat "$LOG_DIR/initdb.log" >&2; die "initdb failed"; }
    rm -f "$PG_ROOT/pwfile"
  fi
  if pg_running; then
    info "postgresql is already running"
  else
    rm -f "$PG_DATA/postmaster.pid"
    "${PG_AS[@]}" "$PG_BIN_DIR/pg_ctl" -D "$PG_DATA" -l "$PG_ROOT/server.log" -w -t 60 start \
      -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -c unix_socket_directories=$PG_SOCKET_DIR -c max_connections=200" \
      >/dev/null || { tail -n 30 "$PG_ROOT/server.log" >&2; die "PostgreSQL did not start"; }
    info "started postgresql on 127.0.0.1:$PG_PORT (data $PG_DATA, log $PG_ROOT/server.log)"
  fi
  local db
  for db in temporal temporal_visibility ferretdb; do
    if [ "$(psql_do postgres "SELECT 1 FROM pg_database WHERE datname = '$db'")" != 1 ]; then
      psql_do postgres "CREATE DATABASE $db" && info "created database $db"
    fi
  done
}

pg_down() {
  pg_as
  [ -f "$PG_DATA/postmaster.pid" ] || return 0
  "${PG_AS[@]}" "$PG_BIN_DIR/pg_ctl" -D "$PG_DATA" -m fast -w -t 60 stop >/dev/null 2>&1 && info "stopped postgresql" || true
}

# ---------------------------------------------------------------- Temporal's schema and config
temporal_schema() {
  local sql=("$TEMPORAL_SQL_TOOL_BIN" --plugin postgres12 --ep 127.0.0.1 -p "$PG_PORT" -u "$PG_USER") db dir
  for db in temporal temporal_visibility; do
    [ "$db" = temporal ] && dir="$TEMPORAL_SCHEMA_DIR/postgresql/v12/temporal/versioned" ||
      dir="$TEMPORAL_SCHEMA_DIR/postgresql/v12/visibility/versioned"
    if [ "$(psql_do "$db" "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_version'")" = 0 ]; then
      SQL_PASSWORD="$(pg_password)" "${sql[@]}" --db "$db" setup-schema -v 0.0 >>"$LOG_DIR/temporal-sql-tool.log" 2>&1 ||
        { tail -n 20 "$LOG_DIR/temporal-sql-tool.log" >&2; die "temporal-sql-tool setup-schema ($db) failed"; }
    fi
    SQL_PASSWORD="$(pg_password)" "${sql[@]}" --db "$db" update-schema -d "$dir" >>"$LOG_DIR/temporal-sql-tool.log" 2>&1 ||
      { tail -n 20 "$LOG_DIR/temporal-sql-tool.log" >&2; die "temporal-sql-tool update-schema ($db) failed"; }
    info "schema of $db: version $(psql_do "$db" "SELECT curr_version FROM schema_version LIMIT 1")"
  done
}

temporal_config() {
  mkdir -p "$TEMPORAL_CONFIG_DIR/dynamicconfig"
  local p="$TEMPORAL_PORT" store
  {
    echo "# written by scripts/topology.sh"
    echo "log: {stdout: true, level: warn}"
    echo "persistence:"
    echo "  defaultStore: postgres-default"
    echo "  visibilityStore: postgres-visibility"
    echo "  numHistoryShards: 4"
    echo "  datastores:"
    for store in default:temporal visibility:temporal_visibility; do
      echo "    postgres-${store%%:*}:"
      echo "      sql:"
      echo "        pluginName: postgres12"
      echo "        databaseName: ${store#*:}"
      echo "        connectAddr: 127.0.0.1:$PG_PORT"
      echo "        connectProtocol: tcp"
      echo "        user: $PG_USER"
      echo "        password: \"$(pg_password)\""
      echo "        maxConns: 20"
      echo "        maxIdleConns: 20"
      echo "        maxConnLifetime: 1h"
    done
    echo "global:"
    echo "  membership: {maxJoinDuration: 30s, broadcastAddress: 127.0.0.1}"
    echo "services:"
    echo "  frontend: {rpc: {grpcPort: $p, membershipPort: $((p + 100)), bindOnLocalHost: true, httpPort: $((p + 10))}}"
    echo "  history: {rpc: {grpcPort: $((p + 1)), membershipPort: $((p + 101)), bindOnLocalHost: true}}"
    echo "  matching: {rpc: {grpcPort: $((p + 2)), membershipPort: $((p + 102)), bindOnLocalHost: true}}"
    echo "  worker: {rpc: {grpcPort: $((p + 6)), membershipPort: $((p + 106)), bindOnLocalHost: true}}"
    echo "clusterMetadata:"
    echo "  enableGlobalNamespace: false"
    echo "  failoverVersionIncrement: 10"
    echo "  masterClusterName: active"
    echo "  currentClusterName: active"
    echo "  clusterInformation:"
    echo "    active: {enabled: true, initialFailoverVersion: 1, rpcName: frontend, rpcAddress: \"127.0.0.1:$p\", httpAddress: \"127.0.0.1:$((p + 10))\"}"
    echo "dcRedirectionPolicy: {policy: noop}"
    echo "archival: {history: {state: disabled}, visibility: {state: disabled}}"
    echo "namespaceDefaults: {archival: {history: {state: disabled}, visibility: {state: disabled}}}"
    echo "dynamicConfigClient: {filepath: \"$TEMPORAL_CONFIG_DIR/dynamicconfig/imodel-sync.yaml\", pollInterval: 10s}"
  } >"$TEMPORAL_CONFIG_DIR/production.yaml"
  # the same dynamic config as the embedded dev server (scripts/stack.sh) and docker-compose.yml
  cat >"$TEMPORAL_CONFIG_DIR/dynamicconfig/imodel-sync.yaml" <<'EOF'
frontend.enableUpdateWorkflowExecution:
  - value: true
frontend.enableUpdateWorkflowExecutionAsyncAccepted:
  - value: true
frontend.enableExecuteMultiOperation:
  - value: true
system.forceSearchAttributesCacheRefreshOnRead:
  - value: true
limit.maxIDLength:
  - value: 255
EOF
}

# ---------------------------------------------------------------- processes (under scripts/supervise.sh)
pid_of() { local p; p="$(head -n1 "$RUN_DIR/$1.pid" 2>/dev/null)" && [[ "$p" =~ ^[0-9]+$ ]] && echo "$p"; }
running() { local p; p="$(pid_of "$1")" && kill -0 "$p" 2>/dev/null && grep -qa "supervise.sh" "/proc/$p/cmdline" 2>/dev/null; }
spawn() { # name command...
  local name="$1"; shift
  local log="$LOG_DIR/$name.log" pidfile="$RUN_DIR/$name.pid"
  rm -f "$pidfile"
  [ -f "$log" ] && mv -f "$log" "$log.1"
  printf '=== %s start %s: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$name" "$*" >"$log"
  (cd "$PROJECT" && exec setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" \
    bash "$SCRIPTS/supervise.sh" "$name" "$RUN_DIR/$name.supervisor" "$@" </dev/null >>"$log" 2>&1 &)
  local i; for i in $(seq 1 100); do [ -s "$pidfile" ] && break; sleep 0.05; done
  info "started $name under its supervisor (pid $(pid_of "$name")), log $log"
}
stop() { # name
  local p i
  p="$(pid_of "$1")" || return 0
  if running "$1"; then
    kill -TERM "$p" 2>/dev/null || true
    for i in $(seq 1 100); do kill -0 -- "-$p" 2>/dev/null || break; sleep 0.2; done
    kill -KILL -- "-$p" 2>/dev/null || true
    info "stopped $1"
  fi
  rm -f "$RUN_DIR/$1.pid" "$RUN_DIR/$1.supervisor"
}
port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }
wait_until() { # seconds what command...
  local t="$1" what="$2" i; shift 2
  for ((i = 0; i < t * 2; i++)); do "$@" >/dev/null 2>&1 && return 0; sleep 0.5; done
  die "$what did not come up within $t s"
}
temporal_healthy() { "$TEMPORAL_BIN" operator cluster health --address "$TEMPORAL_ADDRESS" --command-timeout 3s 2>/dev/null | grep SERVING >/dev/null; }
tctl() { "$TEMPORAL_BIN" "$@" --address "$TEMPORAL_ADDRESS" --command-timeout 10s; }

temporal_up() {
  if running temporal-server; then info "temporal-server is already running"; else
    port_open "$TEMPORAL_PORT" && die "port $TEMPORAL_PORT (Temporal) is already in use; set TEMPORAL_PORT"
    spawn temporal-server "$TEMPORAL_SERVER_BIN" --root "$DATA_DIR/temporal-server" --config config --env production \
      --allow-no-auth start
  fi
  wait_until "$TOPOLOGY_START_TIMEOUT" "the Temporal server (log $LOG_DIR/temporal-server.log)" temporal_healthy
  # the server proper creates no namespace: register it (1 day retention), then the search attributes the workflows use
  if ! tctl operator namespace describe --namespace "$TEMPORAL_NAMESPACE" >/dev/null 2>&1; then
    tctl operator namespace create --namespace "$TEMPORAL_NAMESPACE" --retention 24h >/dev/null
    info "registered namespace $TEMPORAL_NAMESPACE"
  fi
  wait_until 60 "namespace $TEMPORAL_NAMESPACE" tctl operator search-attribute list --namespace "$TEMPORAL_NAMESPACE"
  local have name
  have="$(tctl operator search-attribute list --namespace "$TEMPORAL_NAMESPACE")"
  for name in ConnectionId IModelId RunTrigger; do
    grep -qw "$name" <<<"$have" ||
      tctl operator search-attribute create --namespace "$TEMPORAL_NAMESPACE" --name "$name" --type Keyword >/dev/null
  done
}

ferretdb_up() {
  if running ferretdb-pg; then info "ferretdb-pg is already running"; else
    port_open "$FERRETDB_PORT" && die "port $FERRETDB_PORT (FerretDB) is already in use; set FERRETDB_PORT"
    mkdir -p "$DATA_DIR/ferretdb-pg"
    # lookups by _id served by an index (scripts/ferretdb-pg-indexes.sql), set up before FerretDB opens its connections
    PGPASSWORD="$(pg_password)" psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" -d ferretdb \
      -f "$SCRIPTS/ferretdb-pg-indexes.sql" >>"$LOG_DIR/ferretdb-pg-indexes.log" 2>&1 ||
      die "setting up the _id indexes of FerretDB's database failed (log $LOG_DIR/ferretdb-pg-indexes.log)"
    # the URL (with the password) goes through the environment, not the command line that ps shows
    FERRETDB_POSTGRESQL_URL="$(pg_url ferretdb)"; export FERRETDB_POSTGRESQL_URL
    spawn ferretdb-pg "$FERRETDB_BIN" --handler=postgresql \
      "--state-dir=$DATA_DIR/ferretdb-pg" "--listen-addr=127.0.0.1:$FERRETDB_PORT" --debug-addr=- --telemetry=disable \
      --log-level=warn
    unset FERRETDB_POSTGRESQL_URL
  fi
  wait_until 30 "FerretDB (log $LOG_DIR/ferretdb-pg.log)" port_open "$FERRETDB_PORT"
}

stack() { # the apps, against these servers
  TEMPORAL_ADDRESS="$TEMPORAL_ADDRESS" MONGODB_URI="mongodb://127.0.0.1:$FERRETDB_PORT/imodelsync" DATA_DIR="$DATA_DIR" \
    API_PORT="$API_PORT" WORKERS="$WORKERS" APIS="$APIS" TEMPORAL_NAMESPACE="$TEMPORAL_NAMESPACE" \
    TEMPORAL_UI_URL="${TEMPORAL_UI_URL:-http://127.0.0.1:$((TEMPORAL_PORT + 1000))}" bash "$SCRIPTS/stack.sh" "$@"
}

cmd_up() {
  tools
  pg_up
  temporal_schema
  temporal_config
  temporal_up
  ferretdb_up
  stack up
  echo
  echo "production topology is up (data in $DATA_DIR)"
  echo "  PostgreSQL:  127.0.0.1:$PG_PORT (socket $PG_SOCKET_DIR), user $PG_USER, password in $PG_PASSWORD_FILE"
  echo "  Temporal:    $TEMPORAL_ADDRESS (server $TEMPORAL_SERVER_BIN, persistence postgres12)"
  echo "  FerretDB:    mongodb://127.0.0.1:$FERRETDB_PORT/imodelsync (PostgreSQL database ferretdb)"
  echo "  API:         http://127.0.0.1:$API_PORT (WORKERS=$WORKERS APIS=$APIS)"
  echo "Stop it with: scripts/topology.sh down"
}

cmd_down() {
  stack down || true
  stop ferretdb-pg
  stop temporal-server
  PG_BIN_DIR="$(bash "$SCRIPTS/ensure-tools.sh" postgresql 2>/dev/null | sed -n 's/^PG_BIN_DIR=//p')"
  [ -n "$PG_BIN_DIR" ] && pg_down
  return 0
}

cmd_status() {
  local rc=0 name
  PG_BIN_DIR="$(bash "$SCRIPTS/ensure-tools.sh" postgresql 2>/dev/null | sed -n 's/^PG_BIN_DIR=//p')"
  pg_as
  if [ -n "$PG_BIN_DIR" ] && pg_running; then echo "postgresql       up    127.0.0.1:$PG_PORT (pid $(head -n1 "$PG_DATA/postmaster.pid"))"
  else echo "postgresql       down"; rc=1; fi
  for name in temporal-server ferretdb-pg; do
    if running "$name"; then
      printf '%-16s up    supervisor pid %s, %s\n' "$name" "$(pid_of "$name")" "$(grep '^child=\|^restarts=' "$RUN_DIR/$name.supervisor" 2>/dev/null | tr '\n' ' ')"
    else printf '%-16s down\n' "$name"; rc=1; fi
  done
  stack status || rc=1
  return "$rc"
}

cmd_env() {
  echo "export TEMPORAL_ADDRESS=$TEMPORAL_ADDRESS"
  echo "export MONGODB_URI=mongodb://127.0.0.1:$FERRETDB_PORT/imodelsync"
  echo "export API_URL=http://127.0.0.1:$API_PORT"
  [ -s "$DATA_DIR/admin-api-key" ] && echo "export ADMIN_API_KEY=$(head -n1 "$DATA_DIR/admin-api-key")"
  [ -s "$PG_PASSWORD_FILE" ] && echo "export PG_URL=$(pg_url postgres)"
  echo "export DATA_DIR=$DATA_DIR"
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  env) cmd_env ;;
  *) sed -n '2,24p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
