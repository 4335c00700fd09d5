#!/usr/bin/env bash
# Builds the embedded stack's servers from their Go modules into a per-user cache keyed by version,
# so later runs (and CI on the same machine) reuse them. Prints the paths of the binaries.
#
# Usage: scripts/ensure-tools.sh [temporal] [ferretdb] [docker-compose] [temporal-test-server] [chromium] [schemathesis]
#                                [temporal-server] [postgresql]
#   (no argument = temporal ferretdb; temporal-server (the Temporal server proper, its SQL schema tool and the
#   PostgreSQL schema files, from the module go.temporal.io/server) and postgresql (Debian's server package) only by
#   the production topology, scripts/topology.sh; docker-compose is only needed by test/compose.test.ts; temporal-test-server,
#   the time-skipping Java test server from Maven Central, only by test/owner-token.test.ts; chromium, Debian's
#   browser, only by the portal's browser tests, test/portal.test.ts; schemathesis, the API fuzzer from PyPI in a
#   virtual environment, only by test/fuzz.test.ts)
# Env: TEMPORAL_CLI_VERSION (default v1.5.1), FERRETDB_VERSION (default v1.24.2), TEMPORAL_SERVER_VERSION (default
#      v1.29.1, the server the CLI's dev server embeds),
#      TEMPORAL_TEST_SERVER_VERSION (default 1.31.0), IMODEL_SYNC_CACHE (default ~/.cache/imodel-sync)
#
# Output (stdout, one per requested tool): TEMPORAL_BIN=…, FERRETDB_BIN=…, DOCKER_COMPOSE_BIN=…,
#   TEMPORAL_TEST_SERVER_BIN=…, CHROMIUM_BIN=…, SCHEMATHESIS_BIN=…, TEMPORAL_SERVER_BIN=… TEMPORAL_SQL_TOOL_BIN=…
#   TEMPORAL_SCHEMA_DIR=… (the module's schema/ folder), PG_BIN_DIR=… (initdb, pg_ctl, postgres)
# Progress and errors go to stderr. Concurrent callers are serialized by a lock, so a tool is built once.
set -euo pipefail
TEMPORAL_CLI_VERSION="${TEMPORAL_CLI_VERSION:-v1.5.1}"
FERRETDB_VERSION="${FERRETDB_VERSION:-v1.24.2}"
TEMPORAL_SERVER_VERSION="${TEMPORAL_SERVER_VERSION:-v1.29.1}"
TEMPORAL_TEST_SERVER_VERSION="${TEMPORAL_TEST_SERVER_VERSION:-1.31.0}"
SCHEMATHESIS_VERSION="${SCHEMATHESIS_VERSION:-4.32.5}"
CACHE="${IMODEL_SYNC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/imodel-sync}"
TOOLS="$CACHE/tools"

need() {
  command -v "$1" >/dev/null 2>&1 || { echo "error: '$1' is required but not installed ($2)" >&2; exit 2; }
}

# A cached binary counts only if it runs (a broken build, e.g. an unstamped FerretDB, is rebuilt).
usable() { [ -x "$1" ] && "$1" --version >/dev/null 2>&1; }

# Serialize builders (several `make` targets, test setups, CI steps may call this at once).
LOCK_HELD=""
lock() {
  [ -n "$LOCK_HELD" ] && return 0
  mkdir -p "$TOOLS"
  if command -v flock >/dev/null 2>&1; then
    exec 9>"$TOOLS/.lock"
    if ! flock -n 9; then
      echo "another process is building the tools; waiting for it..." >&2
      flock 9
    fi
  else # portable fallback: a lock directory (removed on exit)
    local waited=0
    until mkdir "$TOOLS/.lock.d" 2>/dev/null; do
      [ "$waited" = 0 ] && echo "another process is building the tools; waiting for it..." >&2
      waited=$((waited + 1)); sleep 2
      if [ "$waited" -gt 1800 ]; then echo "error: stale lock $TOOLS/.lock.d (remove it)" >&2; exit 4; fi
    done
    trap 'rmdir "$TOOLS/.lock.d" 2>/dev/null || true' EXIT
  fi
  LOCK_HELD=1
}

# Temporal CLI: a plain `go install` of the module.
build_temporal() {
  local dir="$TOOLS/temporal-$TEMPORAL_CLI_VERSION" module=github.com/temporalio/cli/cmd/temporal
  usable "$dir/temporal" && return 0
  lock
  usable "$dir/temporal" && return 0 # built by the process we waited for
  need go "install Go 1.22+ from https://go.dev/dl or your package manager"
  echo "building temporal $TEMPORAL_CLI_VERSION from $module (first run only, a few minutes)..." >&2
  local start=$SECONDS
  rm -rf "$dir.tmp"; mkdir -p "$dir.tmp"
  # -X stamps the version (a plain `go install` reports "0.0.0-DEV")
  if ! GOBIN="$dir.tmp" GOFLAGS="${GOFLAGS:-} -trimpath" go install \
    -ldflags "-X github.com/temporalio/cli/temporalcli.Version=${TEMPORAL_CLI_VERSION#v}" \
    "$module@$TEMPORAL_CLI_VERSION" >&2; then
    echo "error: could not build $module@$TEMPORAL_CLI_VERSION; see the output above (is the Go module proxy reachable?)" >&2
    rm -rf "$dir.tmp"; exit 3
  fi
  rm -rf "$dir"; mv "$dir.tmp" "$dir"
  echo "built temporal in $((SECONDS - start)) s" >&2
}

# FerretDB: `go install` builds a binary that panics at start ("Invalid build/version/version.txt"): the
# released module lacks the generated build/version/version.txt that the main package requires. So build from
# a copy of the module source with that file written (and commit.txt from the module's origin).
build_ferretdb() {
  local dir="$TOOLS/ferretdb-$FERRETDB_VERSION" module=github.com/FerretDB/FerretDB
  usable "$dir/ferretdb" && return 0
  lock
  usable "$dir/ferretdb" && return 0
  need go "install Go 1.22+ from https://go.dev/dl or your package manager"
  echo "building ferretdb $FERRETDB_VERSION from $module (first run only, a minute or two)..." >&2
  local start=$SECONDS json src commit work
  if ! json="$(cd / && go mod download -json "$module@$FERRETDB_VERSION")"; then
    echo "$json" >&2
    echo "error: could not download $module@$FERRETDB_VERSION (is the Go module proxy reachable?)" >&2; exit 3
  fi
  src="$(printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p' | sed -n 1p)"
  commit="$(printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"Hash": "\([0-9a-f]*\)",*$/\1/p' | sed -n 1p)"
  [ -d "$src" ] || { echo "error: module source of $module@$FERRETDB_VERSION not found ($src)" >&2; exit 3; }
  work="$dir.tmp"
  rm -rf "$work"; mkdir -p "$work"
  cp -R "$src" "$work/src"; chmod -R u+w "$work/src"
  echo "$FERRETDB_VERSION" >"$work/src/build/version/version.txt"
  [ -n "$commit" ] && echo "$commit" >"$work/src/build/version/commit.txt"
  echo "go-build" >"$work/src/build/version/package.txt"
  if ! (cd "$work/src" && GOFLAGS="${GOFLAGS:-} -trimpath" go build -o "$work/ferretdb" ./cmd/ferretdb >&2); then
    echo "error: could not build $module@$FERRETDB_VERSION; see the output above" >&2
    rm -rf "$work"; exit 3
  fi
  rm -rf "$work/src"
  usable "$work/ferretdb" || { echo "error: the built ferretdb does not run:" >&2; "$work/ferretdb" --version >&2 || true; exit 3; }
  rm -rf "$dir"; mv "$work" "$dir"
  echo "built ferretdb in $((SECONDS - start)) s" >&2
}

# The Temporal time-skipping test server (Java, io.temporal:temporal-test-server from Maven Central): Maven copies
# the jar and its dependencies into the cache, and a small executable wrapper runs it. @temporalio/testing starts an
# `existing-path` test server as `<path> <port> [extraArgs...]`, which is exactly the Java main class's usage.
build_test_server() {
  local dir="$TOOLS/temporal-test-server-$TEMPORAL_TEST_SERVER_VERSION"
  local jar="$dir/lib/slf4j-nop-1.7.36.jar" # the last file the fetch adds
  [ -x "$dir/temporal-test-server" ] && [ -f "$jar" ] && return 0
  lock
  [ -x "$dir/temporal-test-server" ] && [ -f "$jar" ] && return 0
  need java "install a JDK 11+ (e.g. 'apt-get install default-jdk-headless')"
  need mvn "install Maven (e.g. 'apt-get install maven')"
  echo "fetching io.temporal:temporal-test-server:$TEMPORAL_TEST_SERVER_VERSION with Maven (first run only)..." >&2
  local start=$SECONDS work="$dir.tmp"
  rm -rf "$work"; mkdir -p "$work"
  printf '%s\n' \
    '<project xmlns="http://maven.apache.org/POM/4.0.0">' \
    '  <modelVersion>4.0.0</modelVersion>' \
    '  <groupId>local.imodel-sync</groupId><artifactId>temporal-test-server-fetch</artifactId><version>1</version>' \
    '  <packaging>pom</packaging>' \
    '  <dependencies><dependency>' \
    "    <groupId>io.temporal</groupId><artifactId>temporal-test-server</artifactId><version>$TEMPORAL_TEST_SERVER_VERSION</version>" \
    '  </dependency><dependency>' \
    '    <!-- a no-op SLF4J binding: no "Failed to load class org.slf4j.impl.StaticLoggerBinder" lines in test output -->' \
    '    <groupId>org.slf4j</groupId><artifactId>slf4j-nop</artifactId><version>1.7.36</version>' \
    '  </dependency></dependencies>' \
    '</project>' >"$work/pom.xml"
  if ! (cd "$work" && mvn -B -q dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$work/lib" >&2); then
    echo "error: Maven could not fetch io.temporal:temporal-test-server:$TEMPORAL_TEST_SERVER_VERSION (is Maven Central reachable?)" >&2
    rm -rf "$work"; exit 3
  fi
  printf '%s\n' \
    '#!/usr/bin/env bash' \
    "# Temporal's time-skipping test server (Java). Usage: temporal-test-server <port> [--enable-time-skipping]" \
    'here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"' \
    'exec java ${TEMPORAL_TEST_SERVER_JAVA_OPTS:--Xms64m -Xmx512m -XX:+UseSerialGC} -cp "$here/lib/*" io.temporal.testserver.TestServer "$@"' \
    >"$work/temporal-test-server"
  chmod +x "$work/temporal-test-server"
  rm -f "$work/pom.xml"
  rm -rf "$dir"; mv "$work" "$dir"
  echo "fetched the temporal test server in $((SECONDS - start)) s" >&2
}

# docker-compose (only to validate docker-compose.yml; no Docker engine is needed for `config`).
# Installs Debian's package with apt-get when missing and we are root (or have password-less sudo).
ensure_compose() {
  if command -v docker-compose >/dev/null 2>&1; then
    echo "DOCKER_COMPOSE_BIN=$(command -v docker-compose)"; return 0
  fi
  if command -v docker >/dev/null 2>&1 && docker compose version >/dev/null 2>&1; then
    echo "DOCKER_COMPOSE_BIN=docker compose"; return 0
  fi
  local sudo=""
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo -n"; fi
  fi
  if command -v apt-get >/dev/null 2>&1 && { [ "$(id -u)" = 0 ] || [ -n "$sudo" ]; }; then
    lock
    if ! command -v docker-compose >/dev/null 2>&1; then
      echo "installing docker-compose with apt-get (needed by test/compose.test.ts)..." >&2
      $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || true
      if ! $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-compose >&2; then
        echo "warning: 'apt-get install docker-compose' failed; test/compose.test.ts will fail" >&2
        return 0
      fi
    fi
    echo "DOCKER_COMPOSE_BIN=$(command -v docker-compose)"; return 0
  fi
  echo "warning: docker-compose is not installed; test/compose.test.ts will fail." \
    "Install it, e.g. 'sudo apt-get install docker-compose' (Debian/Ubuntu) or the Docker Compose plugin." >&2
}

# Chromium (Debian's `chromium` package) for the portal's browser tests: browser downloads are not possible, so the
# tests drive the system browser with playwright-core. Installed with apt-get when missing and we are root (or have
# password-less sudo).
ensure_chromium() {
  local bin
  for bin in /usr/bin/chromium /usr/bin/chromium-browser; do
    if [ -x "$bin" ]; then echo "CHROMIUM_BIN=$bin"; return 0; fi
  done
  local sudo=""
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo -n"; fi
  fi
  if command -v apt-get >/dev/null 2>&1 && { [ "$(id -u)" = 0 ] || [ -n "$sudo" ]; }; then
    lock
    if [ ! -x /usr/bin/chromium ]; then
      echo "installing chromium with apt-get (needed by the portal's browser tests)..." >&2
      $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || true
      if ! $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >&2; then
        echo "warning: 'apt-get install chromium' failed; test/portal.test.ts will fail" >&2
        return 0
      fi
    fi
    echo "CHROMIUM_BIN=/usr/bin/chromium"; return 0
  fi
  echo "warning: chromium is not installed; test/portal.test.ts will fail." \
    "Install it, e.g. 'sudo apt-get install chromium' (Debian/Ubuntu)." >&2
}

# Schemathesis (PyPI) in its own virtual environment under the cache, pinned; needs python3 with venv.
build_schemathesis() {
  local dir="$TOOLS/schemathesis-$SCHEMATHESIS_VERSION"
  usable "$dir/bin/st" && return 0
  lock
  usable "$dir/bin/st" && return 0
  need python3 "install Python 3.9+ with the venv module (Debian: python3-venv)"
  echo "installing schemathesis $SCHEMATHESIS_VERSION from PyPI into $dir (first run only)..." >&2
  rm -rf "$dir"
  python3 -m venv "$dir" >&2
  "$dir/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION" >&2
  usable "$dir/bin/st" || { echo "error: schemathesis did not install into $dir" >&2; exit 3; }
}

# The Temporal server proper and its SQL schema tool (temporal-sql-tool), both from the module go.temporal.io/server,
# with the module's schema/ folder (schema/postgresql/v12/{temporal,visibility}/versioned/...) copied next to them
# from the module cache: the sql tool's update-schema reads those versioned directories.
build_temporal_server() {
  local dir="$TOOLS/temporal-server-$TEMPORAL_SERVER_VERSION" module=go.temporal.io/server
  usable "$dir/temporal-server" && [ -x "$dir/temporal-sql-tool" ] && [ -d "$dir/schema/postgresql" ] && return 0
  lock
  usable "$dir/temporal-server" && [ -x "$dir/temporal-sql-tool" ] && [ -d "$dir/schema/postgresql" ] && return 0
  need go "install Go 1.22+ from https://go.dev/dl or your package manager"
  echo "building the temporal server $TEMPORAL_SERVER_VERSION and temporal-sql-tool from $module (first run only, several minutes)..." >&2
  local start=$SECONDS json src work="$dir.tmp"
  if ! json="$(cd / && go mod download -json "$module@$TEMPORAL_SERVER_VERSION")"; then
    echo "$json" >&2
    echo "error: could not download $module@$TEMPORAL_SERVER_VERSION (is the Go module proxy reachable?)" >&2; exit 3
  fi
  src="$(printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p' | sed -n 1p)"
  [ -d "$src/schema/postgresql" ] || { echo "error: no schema/postgresql in the module source ($src)" >&2; exit 3; }
  rm -rf "$work"; mkdir -p "$work/bin"
  if ! GOBIN="$work/bin" GOFLAGS="${GOFLAGS:-} -trimpath" go install -ldflags "-s -w" \
    "$module/cmd/server@$TEMPORAL_SERVER_VERSION" "$module/cmd/tools/sql@$TEMPORAL_SERVER_VERSION" >&2; then
    echo "error: could not build $module@$TEMPORAL_SERVER_VERSION; see the output above" >&2
    rm -rf "$work"; exit 3
  fi
  mv "$work/bin/server" "$work/temporal-server"; mv "$work/bin/sql" "$work/temporal-sql-tool"; rmdir "$work/bin"
  cp -R "$src/schema" "$work/schema"; chmod -R u+w "$work/schema"
  usable "$work/temporal-server" || { echo "error: the built temporal server does not run:" >&2; "$work/temporal-server" --version >&2 || true; exit 3; }
  rm -rf "$dir"; mv "$work" "$dir"
  echo "built the temporal server and temporal-sql-tool in $((SECONDS - start)) s ($(du -sh "$dir" | cut -f1))" >&2
}

# PostgreSQL server binaries (Debian's `postgresql` package): installed with apt-get when missing and we are root (or
# have password-less sudo). Prints the folder of initdb, pg_ctl and postgres.
pg_bin_dir() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -x "$d/initdb" ] && [ -x "$d/postgres" ] && { echo "$d"; return 0; }
  done
  d="$(dirname "$(command -v initdb 2>/dev/null || echo /nonexistent/x)")"
  [ -x "$d/initdb" ] && [ -x "$d/postgres" ] && { echo "$d"; return 0; }
  return 1
}
ensure_postgresql() {
  local bin
  if bin="$(pg_bin_dir)"; then echo "PG_BIN_DIR=$bin"; return 0; fi
  local sudo=""
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo -n"; fi
  fi
  if command -v apt-get >/dev/null 2>&1 && { [ "$(id -u)" = 0 ] || [ -n "$sudo" ]; }; then
    lock
    if ! pg_bin_dir >/dev/null; then
      echo "installing postgresql with apt-get (needed by the production topology, scripts/topology.sh)..." >&2
      $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || true
      if ! $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >&2; then
        echo "error: 'apt-get install postgresql' failed" >&2; exit 3
      fi
    fi
    bin="$(pg_bin_dir)" || { echo "error: postgresql installed but initdb/postgres not found" >&2; exit 3; }
    echo "PG_BIN_DIR=$bin"; return 0
  fi
  echo "error: PostgreSQL's server (initdb, postgres) is not installed. Install it, e.g. 'sudo apt-get install postgresql'." >&2
  exit 2
}

want=("$@")
[ ${#want[@]} -eq 0 ] && want=(temporal ferretdb)
for t in "${want[@]}"; do
  case "$t" in
    temporal) build_temporal; echo "TEMPORAL_BIN=$TOOLS/temporal-$TEMPORAL_CLI_VERSION/temporal" ;;
    ferretdb) build_ferretdb; echo "FERRETDB_BIN=$TOOLS/ferretdb-$FERRETDB_VERSION/ferretdb" ;;
    docker-compose|compose) ensure_compose ;;
    temporal-test-server) build_test_server; echo "TEMPORAL_TEST_SERVER_BIN=$TOOLS/temporal-test-server-$TEMPORAL_TEST_SERVER_VERSION/temporal-test-server" ;;
    chromium) ensure_chromium ;;
    schemathesis) build_schemathesis; echo "SCHEMATHESIS_BIN=$TOOLS/schemathesis-$SCHEMATHESIS_VERSION/bin/st" ;;
    temporal-server)
      build_temporal_server
      echo "TEMPORAL_SERVER_BIN=$TOOLS/temporal-server-$TEMPORAL_SERVER_VERSION/temporal-server"
      echo "TEMPORAL_SQL_TOOL_BIN=$TOOLS/temporal-server-$TEMPORAL_SERVER_VERSION/temporal-sql-tool"
      echo "TEMPORAL_SCHEMA_DIR=$TOOLS/temporal-server-$TEMPORAL_SERVER_VERSION/schema"
      ;;
    postgresql) ensure_postgresql ;;
    *) echo "error: unknown tool '$t' (known: temporal ferretdb docker-compose temporal-test-server chromium schemathesis temporal-server postgresql)" >&2; exit 2 ;;
  esac
done
