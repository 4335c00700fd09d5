# imodel-sync — developer entry points. `make help` lists the targets.
# Needs only Go, Node.js 20 (npm) and GNU make; the servers are built from source on first use
# (scripts/ensure-tools.sh) and run without Docker (scripts/stack.sh).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.PHONY: help deps tools compose-tool test-server chromium portal dev up servers demo down status logs env test lint format \
        typecheck build bench bench-scale bench-schedules compose-config clean topology topology-tools

STACK := bash scripts/stack.sh
TSX := node_modules/.bin/tsx
LINT_SOURCES := 'api/**/*.ts' 'activities/**/*.ts' 'workflows/**/*.ts' 'domain/**/*.ts' 'lib/**/*.ts' 'worker/**/*.ts' \
  'scripts/**/*.ts' 'test/**/*.ts' 'web/src/**/*.ts' 'web/src/**/*.tsx'

help: ## list the targets
	@echo "usage: make <target>   (settings via env, e.g. API_PORT=3100 make dev; see scripts/stack.sh --help)"
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-15s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

deps: ## npm ci when node_modules is missing or older than package-lock.json
	@if [ ! -d node_modules ] || [ ! -e node_modules/.package-lock.json ] || \
	    [ package-lock.json -nt node_modules/.package-lock.json ]; then \
	  command -v npm >/dev/null || { echo "error: npm is required (install Node.js 20)" >&2; exit 2; }; \
	  echo "npm ci"; npm ci; \
	fi

tools: ## build the Temporal CLI and FerretDB into ~/.cache/imodel-sync (first run only)
	@bash scripts/ensure-tools.sh >/dev/null

compose-tool: # docker-compose for test/compose.test.ts (apt-get when missing and root)
	@bash scripts/ensure-tools.sh docker-compose >/dev/null

test-server: # Temporal's time-skipping Java test server for test/owner-token.test.ts (Maven Central, cached)
	@bash scripts/ensure-tools.sh temporal-test-server >/dev/null

chromium: # Debian's chromium for test/portal.test.ts (apt-get when missing and root)
	@bash scripts/ensure-tools.sh chromium >/dev/null

fuzzer: # Schemathesis (PyPI, in a virtual environment in the cache) for test/fuzz.test.ts
	@bash scripts/ensure-tools.sh schemathesis >/dev/null

portal: deps ## build the web portal (web/) into web/dist, which the API serves at /
	@$(TSX) scripts/portal.ts

dev: deps tools ## start Temporal, FerretDB, worker and API in the background (stop: make down)
	@$(STACK) up

up: dev ## same as dev

servers: tools ## start only Temporal and FerretDB
	@$(STACK) up servers

demo: deps tools ## build the portal when missing, start the stack and run scripts/demo.ts (DEMO_EXIT=1, default under CI: stop afterwards)
	@$(TSX) scripts/portal.ts --if-stale
	@$(STACK) up
	@eval "$$($(STACK) env)"; \
	if [ -z "$${DEMO_EXIT:-}" ] && [ -n "$${CI:-}" ]; then export DEMO_EXIT=1; fi; \
	if [ "$${DEMO_EXIT:-}" = 1 ]; then \
	  rc=0; $(TSX) scripts/demo.ts || rc=$$?; \
	  $(STACK) down; exit $$rc; \
	else \
	  trap '$(STACK) down' EXIT; trap 'exit 130' INT; trap 'exit 143' TERM; \
	  $(TSX) scripts/demo.ts; \
	fi

down: ## stop everything the stack started
	@$(STACK) down

status: ## show the stack's processes and health
	@$(STACK) status

logs: ## show the last lines of every log (one: scripts/stack.sh logs <name> [-f])
	@$(STACK) logs

env: ## print the export lines the apps use
	@$(STACK) env

test: deps tools compose-tool test-server chromium fuzzer lint ## lint, then run the test suite (vitest; it starts its own stack on other ports)
	@node_modules/.bin/vitest run

lint: deps ## ESLint (determinism rules for workflows/), Prettier check, import cycles, type check
	@node_modules/.bin/eslint --cache --cache-location node_modules/.cache/eslint/ --max-warnings 0 .
	@node_modules/.bin/prettier --cache --check --log-level warn .
	@node_modules/.bin/dpdm --no-warning --no-tree --exit-code circular:1 $(LINT_SOURCES) >/dev/null 2>&1 || \
	  { node_modules/.bin/dpdm --no-warning --no-tree $(LINT_SOURCES); exit 1; }
	@node_modules/.bin/tsc -p tsconfig.json --noEmit
	@node_modules/.bin/tsc -p web/tsconfig.json
	@echo "lint: clean"

format: deps ## apply Prettier and ESLint's fixes to the whole tree
	@node_modules/.bin/eslint --fix . || true
	@node_modules/.bin/prettier --write --log-level warn .

typecheck: deps ## tsc --noEmit (the service and the portal)
	@node_modules/.bin/tsc -p tsconfig.json --noEmit
	@node_modules/.bin/tsc -p web/tsconfig.json

build: deps ## compile to dist/ (what the Docker image runs)
	@npm run build

bench: deps tools ## run scripts/bench.ts
	@$(TSX) scripts/bench.ts

bench-scale: deps tools ## run scripts/bench-scale.ts: 4 iModels x 50 files with 1, then 2 worker processes
	@$(TSX) scripts/bench-scale.ts

topology-tools: # the production topology's tools: Temporal server and temporal-sql-tool (Go module, cached), PostgreSQL (apt-get)
	@bash scripts/ensure-tools.sh temporal ferretdb temporal-server postgresql >/dev/null

topology: deps topology-tools ## start the production topology (scripts/topology.sh), check a sync, a schedule trigger, a worker kill and a delete job on it, stop it
	@$(TSX) scripts/topology-check.ts

bench-schedules: deps tools ## run scripts/bench-schedules.ts: 10 iModels x 100 scheduled connections, all fired at once
	@$(TSX) scripts/bench-schedules.ts

compose-config: compose-tool ## validate docker-compose.yml
	@docker-compose -f docker-compose.yml config -q && echo "docker-compose.yml is valid"

clean: ## stop the stack and remove data/
	@if [ -d data ]; then DATA_DIR="$(CURDIR)/data" $(STACK) down >/dev/null 2>&1 || true; fi
	rm -rf data
