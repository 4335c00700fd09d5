#!/usr/bin/env bash
# Builds the embedded stack's servers from their Go modules into a per-user cache keyed by version,
# so later runs (and CI on the same machine) reuse them. Prints the paths of the binaries.
#   TEMPORAL_CLI_VERSION (default v1.5.1), FERRETDB_VERSION (default v1.24.2), IMODEL_SYNC_CACHE (default ~/.cache/imodel-sync)
set -euo pipefail
TEMPORAL_CLI_VERSION="${TEMPORAL_CLI_VERSION:-v1.5.1}"
FERRETDB_VERSION="${FERRETDB_VERSION:-v1.24.2}"
CACHE="${IMODEL_SYNC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/imodel-sync}"

need() {
  command -v "$1" >/dev/null 2>&1 || { echo "error: '$1' is required but not installed ($2)" >&2; exit 2; }
}

build() { # name module version binary
  local name="$1" module="$2" version="$3" bin="$4"
  local dir="$CACHE/tools/$name-$version"
  if [ -x "$dir/$bin" ]; then return 0; fi
  need go "install Go 1.22+ from https://go.dev/dl or your package manager"
  echo "building $name $version from $module (first run only, a few minutes)..." >&2
  mkdir -p "$dir.tmp"
  if ! GOBIN="$dir.tmp" GOFLAGS="${GOFLAGS:-} -trimpath" go install "$module@$version" >&2; then
    echo "error: could not build $module@$version; see the output above (is the Go module proxy reachable?)" >&2
    rm -rf "$dir.tmp"; exit 3
  fi
  rm -rf "$dir"; mv "$dir.tmp" "$dir"
}

build temporal github.com/temporalio/cli/cmd/temporal "$TEMPORAL_CLI_VERSION" temporal
build ferretdb github.com/FerretDB/FerretDB/cmd/ferretdb "$FERRETDB_VERSION" ferretdb
echo "TEMPORAL_BIN=$CACHE/tools/temporal-$TEMPORAL_CLI_VERSION/temporal"
echo "FERRETDB_BIN=$CACHE/tools/ferretdb-$FERRETDB_VERSION/ferretdb"
