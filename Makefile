# pmoves-tensorzero: the TensorZero stack of PMOVES.AI.
#
# Everything but `up`, `preview`, `smoke` (without OUTPUTS) and `e2e` works offline, without the Pulumi CLI.
# Examples:  make test | make validate STACK=staging ENV_DIR=/path/to/env | make up STACK=dev YES=0

STACK ?= dev
VENV ?= .venv
PYTHON = $(VENV)/bin/python
# Interpreter the virtualenv is created from.
PYTHON3 ?= python3
# Optional: read the stack's env layers from this directory (the CLI's --env-dir).
ENV_DIR ?=
# `make up` applies without asking on dev only; elsewhere it asks, unless YES=1 (or CI is set). YES=0 always asks.
YES ?=
# Repetitions of `make bench`.
BENCH_N ?= 5

# `make plan-diff`: the git ref (commit, branch, tag) whose plan is the "before" side, and the stacks (default: all).
BASE ?=
STACKS ?=
# `make smoke`: read the stack's outputs from this JSON file instead of `pulumi stack output`.
OUTPUTS ?=
# `make restore`: the backup to restore (a name `make backups` lists); REPLACE=1 over a database holding rows,
# OFFSITE=1 from the off-host copy (also for `make restore-drill`).
FROM ?=
REPLACE ?=
OFFSITE ?=

# `make logs|exec|restart`: the service (a role such as gateway, or the seed's compose name such as
# tensorzero-clickhouse); `make exec` runs CMD in it (default: a shell); FOLLOW=1 follows the logs.
SERVICE ?=
CMD ?=
FOLLOW ?=

OUT = out
PY_SOURCES = __main__.py components tests benchmarks
PLAN_DIFF_DIR = $(OUT)/plan-diff
SMOKE_DIR = $(OUT)/smoke
# `make smoke`: where the JUnit report goes, and the seconds the whole run may take.
JUNIT ?= $(SMOKE_DIR)/$(STACK).junit.xml
SMOKE_BUDGET ?= 60
# `make smoke INSIDE=1`: run from inside the stack's network (a pod in a cluster stack's namespace).
INSIDE ?=
SMOKE_INSIDE = $(if $(INSIDE),--inside)
STATE_DIR = $(CURDIR)/.pulumi-state
CLI = $(PYTHON) -m components
CLI_ENV_DIR = $(if $(ENV_DIR),--env-dir "$(ENV_DIR)")
# pip's own progress lines show (a first install takes about 30 s, the test requirements a few minutes).
PIP = $(PYTHON) -m pip install --disable-pip-version-check --progress-bar off
# Marker files: a venv is (re)installed only when its requirements change.
VENV_MARKER = $(VENV)/.installed
TEST_MARKER = $(VENV)/.installed-test
SMOKE_MARKER = $(VENV)/.installed-smoke
CHECKOV_VENV = .venv-checkov
CHECKOV_MARKER = $(CHECKOV_VENV)/.installed

# The Pulumi CLI `make pulumi-cli` installs when none is on PATH (the CI workflows' PULUMI_VERSION), from where.
PULUMI_VERSION = 3.255.0
PULUMI_PLATFORM ?= linux-x64
PULUMI_TARBALL = pulumi-v$(PULUMI_VERSION)-$(PULUMI_PLATFORM).tar.gz
PULUMI_URL ?= https://get.pulumi.com/releases/sdk/$(PULUMI_TARBALL)
PULUMI_SHA256_FILE = .ci/pulumi.sha256
PULUMI_SHA256 ?= $(shell awk '$$2 == "$(PULUMI_TARBALL)" {print $$1}' $(PULUMI_SHA256_FILE) 2>/dev/null)
PULUMI_BIN = $(VENV)/bin/pulumi

# Shared by `up`, `preview` and `smoke`, written once: the state backend and the passphrase.
# A local file backend inside the project unless PULUMI_BACKEND_URL is set (CI sets it); an empty
# passphrase unless PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE is set (even to "").
define PULUMI_ENV
set -e; \
export PATH="$$PATH:$(abspath $(VENV))/bin"; \
if [ -z "$${PULUMI_BACKEND_URL:-}" ]; then \
	mkdir -p "$(STATE_DIR)"; \
	export PULUMI_BACKEND_URL="file://$(STATE_DIR)"; \
	echo "pulumi backend: $$PULUMI_BACKEND_URL (local state; set PULUMI_BACKEND_URL to use another)"; \
else \
	echo "pulumi backend: $$PULUMI_BACKEND_URL (from the environment)"; \
fi; \
if [ -z "$${PULUMI_CONFIG_PASSPHRASE:-}" ] && [ -z "$${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ]; then \
	if [ "$(STACK)" != "dev" ]; then \
		echo "error: stack $(STACK) is not dev: its secrets need a passphrase; set PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE." >&2; \
		exit 2; \
	fi; \
	export PULUMI_CONFIG_PASSPHRASE=""; \
	echo "note: using an empty secrets passphrase, as dev does; set PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE for real secrets."; \
fi
endef

# `up` and `preview`: the backend and passphrase, then the stack, created on first use.
define PULUMI_SETUP
$(PULUMI_ENV); \
if [ "$(VENV)" != ".venv" ]; then echo "warning: Pulumi runs the program in .venv (Pulumi.yaml), not in VENV=$(VENV)."; fi; \
echo "+ pulumi stack select $(STACK) --create"; \
pulumi stack select "$(STACK)" --create
endef

.DEFAULT_GOAL := help
.PHONY: help venv test-venv smoke-venv lint test env-layers render plan plan-json validate env reference pulumi-cli up up-tensorzero preview bench clean \
	ci-deps system-deps ci-env plan-diff smoke e2e backup backups restore-args restore restore-drill bench-backup logs exec restart

help: ## list the targets (this text)
	@echo "Usage: make <target> [STACK=dev|staging|prod] [ENV_DIR=dir] [VENV=.venv] [YES=0|1]"
	@echo
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

venv: $(VENV_MARKER) ## create the virtualenv (VENV, default .venv) with requirements.txt and the pmoves-tz command

$(VENV_MARKER): requirements.txt pyproject.toml
	@test -x "$(PYTHON)" || { echo "+ $(PYTHON3) -m venv $(VENV)"; $(PYTHON3) -m venv "$(VENV)"; }
	@echo "+ pip install -r requirements.txt (a first install takes about 30 s)"
	$(PIP) -r requirements.txt
	@echo "+ pip install --no-deps -e . (the pmoves-tz command: python -m components, installed)"
	$(PIP) --quiet --no-deps -e .
	@touch "$@"

test-venv: $(TEST_MARKER) ## venv plus requirements-test.txt

$(TEST_MARKER): requirements-test.txt requirements.txt $(VENV_MARKER) $(SMOKE_MARKER) $(CHECKOV_MARKER)
	@echo "+ pip install -r requirements-test.txt (chdb, the tests' real programs: a few minutes on a first install)"
	$(PIP) -r requirements-test.txt
	@touch "$@"

# checkov in its own venv: its pins would downgrade the test venv's (requirements-checkov.txt).
$(CHECKOV_MARKER): requirements-checkov.txt
	@test -x "$(CHECKOV_VENV)/bin/python" || { echo "+ $(PYTHON3) -m venv $(CHECKOV_VENV)"; $(PYTHON3) -m venv "$(CHECKOV_VENV)"; }
	@echo "+ pip install -r requirements-checkov.txt (into $(CHECKOV_VENV))"
	$(CHECKOV_VENV)/bin/python -m pip install --disable-pip-version-check --progress-bar off -r requirements-checkov.txt
	@touch "$@"

# The smoke suite alone: a deploy job's smoke step needs neither the Pulumi program nor the test programs.
smoke-venv: $(SMOKE_MARKER) ## the virtualenv with requirements-smoke.txt only (httpx, pytest, testinfra)

$(SMOKE_MARKER): requirements-smoke.txt
	@test -x "$(PYTHON)" || { echo "+ $(PYTHON3) -m venv $(VENV)"; $(PYTHON3) -m venv "$(VENV)"; }
	@echo "+ pip install -r requirements-smoke.txt"
	$(PIP) -r requirements-smoke.txt
	@touch "$@"

lint: test-venv ## ruff: lint and formatting of the Python code
	$(VENV)/bin/ruff check $(PY_SOURCES)
	$(VENV)/bin/ruff format --check $(PY_SOURCES)

test: system-deps lint ## install system packages and start dockerd if needed, lint, then run every test
	$(PYTHON) -m pytest -q tests

# The env layers of a stack start as copies of its committed *.example templates; a copy is
# made only where the layer is missing, so an operator's edits are never overwritten.
env-layers: venv ## create missing env layers of envfiles/<STACK>/ from their *.example templates
	$(CLI) env-layers $(STACK)

render: venv $(if $(ENV_DIR),,env-layers) ## write the stack's rendered files and manifest.json to out/<STACK>/
	@rm -rf "$(OUT)/$(STACK)"
	$(CLI) render $(STACK) --out $(OUT)/$(STACK) $(CLI_ENV_DIR)

plan: venv $(if $(ENV_DIR),,env-layers) ## print the stack's desired resources (offline, Pulumi mocks)
	$(CLI) plan $(STACK) $(CLI_ENV_DIR)

plan-json: venv $(if $(ENV_DIR),,env-layers) ## write the plan as JSON to out/<STACK>.plan.json (input of `diff`)
	@mkdir -p "$(OUT)"
	$(CLI) plan $(STACK) --json $(CLI_ENV_DIR) > "$(OUT)/$(STACK).plan.json.tmp" \
		|| { status=$$?; rm -f "$(OUT)/$(STACK).plan.json.tmp"; exit $$status; }
	@mv "$(OUT)/$(STACK).plan.json.tmp" "$(OUT)/$(STACK).plan.json"
	@echo "wrote $(OUT)/$(STACK).plan.json"

validate: venv $(if $(ENV_DIR),,env-layers) ## every offline check of the stack
	$(CLI) validate $(STACK) $(CLI_ENV_DIR)

env: venv $(if $(ENV_DIR),,env-layers) ## each container's environment and where each value comes from
	$(CLI) env $(STACK) $(CLI_ENV_DIR)

# Generated from the pydantic models and the stacks' plans; the tests fail when one is stale (`--check`).
reference: venv ## regenerate stacks/stack.schema.json, docs/reference.md and docs/exposure.md's reach tables
	$(CLI) reference
	$(CLI) reach --write

# The Pulumi CLI: the one on PATH, else the pinned release in $(VENV)/bin, downloaded once and checked against
# the SHA-256 committed in $(PULUMI_SHA256_FILE) (Pulumi's published checksums); a mismatch installs nothing.
pulumi-cli: ## the Pulumi CLI: the one on PATH, else install the pinned release (SHA-256 checked) into .venv/bin
	@set -e; \
	if command -v pulumi >/dev/null 2>&1; then exit 0; fi; \
	if [ -x "$(PULUMI_BIN)" ] && [ "$$("$(PULUMI_BIN)" version 2>/dev/null)" = "v$(PULUMI_VERSION)" ]; then exit 0; fi; \
	sha="$(PULUMI_SHA256)"; \
	if [ -z "$$sha" ]; then \
		echo "error: 'pulumi' is not on PATH, and $(PULUMI_SHA256_FILE) holds no SHA-256 for $(PULUMI_TARBALL)," >&2; \
		echo "       so it is not downloaded unverified. Copy its line from Pulumi's published checksums," >&2; \
		echo "       https://get.pulumi.com/releases/sdk/pulumi-$(PULUMI_VERSION)-checksums.txt, into $(PULUMI_SHA256_FILE)," >&2; \
		echo "       or install the CLI yourself: https://www.pulumi.com/docs/install/" >&2; \
		exit 1; \
	fi; \
	command -v curl >/dev/null 2>&1 || { echo "error: downloading the Pulumi CLI needs curl" >&2; exit 1; }; \
	mkdir -p "$(VENV)/bin"; \
	scratch="$$(mktemp -d "$(VENV)/.pulumi-download.XXXXXX")"; trap 'rm -rf "$$scratch"' EXIT; \
	echo "+ curl -fsSL -o $(PULUMI_TARBALL) $(PULUMI_URL)"; \
	curl -fsSL --retry 2 --connect-timeout 20 --max-time 900 -o "$$scratch/$(PULUMI_TARBALL)" "$(PULUMI_URL)" \
		|| { echo "error: cannot download $(PULUMI_URL); nothing installed" >&2; exit 1; }; \
	got="$$(sha256sum "$$scratch/$(PULUMI_TARBALL)" | cut -d ' ' -f 1)"; \
	if [ "$$got" != "$$sha" ]; then \
		echo "error: $(PULUMI_TARBALL) from $(PULUMI_URL) has SHA-256 $$got," >&2; \
		echo "       not the $$sha committed in $(PULUMI_SHA256_FILE): not installed (nothing was)." >&2; \
		exit 1; \
	fi; \
	tar -xzf "$$scratch/$(PULUMI_TARBALL)" -C "$$scratch"; \
	test -x "$$scratch/pulumi/pulumi" || { echo "error: $(PULUMI_TARBALL) holds no pulumi/pulumi; nothing installed" >&2; exit 1; }; \
	install -m 0755 "$$scratch"/pulumi/* "$(VENV)/bin/"; \
	echo "installed the Pulumi CLI v$(PULUMI_VERSION) into $(VENV)/bin (SHA-256 checked against $(PULUMI_SHA256_FILE))"

# What `pulumi up` itself will read: the spec's env dir, so ENV_DIR does not apply here.
define VALIDATE_FOR_PULUMI
$(if $(ENV_DIR),@echo "warning: ENV_DIR is ignored here; Pulumi reads the env dir the stack file names.")
$(CLI) validate $(STACK)
endef

# pulumi-cli comes first: without the CLI (none on PATH, none verified to install) nothing else is.
# Outside dev, `pulumi up` shows its preview and asks, unless YES=1 or CI is set (a job has no one to answer).
up: pulumi-cli venv env-layers ## deploy the stack with Pulumi (asks outside dev unless YES=1; YES=0 always asks)
	$(VALIDATE_FOR_PULUMI)
	@$(PULUMI_SETUP); \
	yes="$(YES)"; \
	if [ -z "$$yes" ]; then \
		if [ "$(STACK)" = "dev" ] || [ -n "$${CI:-}" ]; then yes=1; else yes=0; fi; \
	fi; \
	if [ "$$yes" = "1" ]; then \
		echo "+ pulumi up --stack $(STACK) --yes"; pulumi up --stack "$(STACK)" --yes; \
	else \
		echo "+ pulumi up --stack $(STACK) (it asks before applying; YES=1 applies without asking)"; \
		pulumi up --stack "$(STACK)"; \
	fi

up-tensorzero: up ## alias of up

preview: pulumi-cli venv env-layers ## what `up` would change (pulumi preview --diff)
	$(VALIDATE_FOR_PULUMI)
	@$(PULUMI_SETUP); \
	echo "+ pulumi preview --diff --stack $(STACK)"; \
	pulumi preview --diff --stack "$(STACK)"

# CI (.github/workflows, docs/ci.md). Secrets reach a job as environment variables; these
# targets write or pass them on without ever printing a value.

ci-deps: venv ## CI: install what the Pulumi program imports (.venv, requirements.txt)

# The real programs the test suite proves rendered files with: promtool, nginx with its Lua module.
system-deps: ## the Debian packages the tests run real programs from, and a running dockerd (.ci/system-deps)
	@if [ "$$(id -u)" = 0 ]; then bash .ci/system-deps; else sudo bash .ci/system-deps; fi

# The stack's env layers from their templates, plus `.env.local` holding every variable the
# templates list that the job's environment sets (from secrets), never printed. Refuses to run
# without the backend secret, or without a passphrase for any stack but dev, naming what is missing.
ci-env: venv ## CI: check the Pulumi secrets, write envfiles/<STACK>/.env.local from the environment
	$(CLI) ci-env $(STACK)

# The desired-state diff of a change: the offline plan of BASE (in a throwaway git worktree, by its
# own code) against the working tree's, per stack; placeholders stand in for every credential.
plan-diff: venv ## desired-state diff from git ref BASE to the working tree (STACKS=... or every stack); PR comment in out/plan-diff/
	$(CLI) diff --against "$(BASE)" $(STACKS) --comment $(PLAN_DIFF_DIR)/comment.md

# After `make up`: the smoke suite against the stack's real outputs (`pulumi stack output`, which
# hold the ClickHouse password: kept in a 0600 file removed on exit), or against OUTPUTS=file.
smoke: smoke-venv $(if $(OUTPUTS),,pulumi-cli) ## smoke-test the deployed STACK (OUTPUTS=file skips pulumi); JUnit in out/smoke/
	@set -e; mkdir -p "$(SMOKE_DIR)" "$(dir $(JUNIT))"; outputs="$(OUTPUTS)"; \
	if [ -z "$$outputs" ]; then \
		$(PULUMI_ENV); \
		outputs="$(SMOKE_DIR)/$(STACK).outputs.json"; umask 077; trap 'rm -f "$$outputs"' EXIT; \
		echo "+ pulumi stack output --stack $(STACK) --json --show-secrets > $$outputs"; \
		pulumi stack output --stack "$(STACK)" --json --show-secrets > "$$outputs"; \
	fi; \
	echo "+ $(CLI) smoke $(STACK) --outputs $$outputs --junit $(JUNIT) --budget $(SMOKE_BUDGET) $(SMOKE_INSIDE)"; \
	$(CLI) smoke "$(STACK)" --outputs "$$outputs" --junit "$(JUNIT)" --budget "$(SMOKE_BUDGET)" $(SMOKE_INSIDE)

# The main job where it can run (a GitHub-hosted runner: the Pulumi CLI, Docker, an image registry):
# an ephemeral stack of the real images deployed, smoke-tested, re-applied, changed and destroyed through
# Pulumi's Automation API (tests/e2e). Elsewhere each test says what is missing; under CI they fail.
e2e: venv smoke-venv ## deploy an ephemeral stack with the real images and Pulumi's Automation API (tests/e2e)
	PMOVES_E2E=1 $(PYTHON) -m pytest -q -rs -p no:cacheprovider tests/e2e

# Backups of a deployed stack, run by backupctl inside its backup container (docker exec; components/operate/backups.py).
backup: venv $(if $(ENV_DIR),,env-layers) ## take a full backup of the deployed STACK now (disk, and off-host if set)
	$(CLI) backup $(STACK) $(CLI_ENV_DIR)

logs: venv $(if $(ENV_DIR),,env-layers) ## a service's logs on the deployed STACK (docker compose logs): SERVICE=gateway FOLLOW=1
	$(CLI) logs $(CLI_ENV_DIR) $(STACK) "$(SERVICE)" -- $(if $(FOLLOW),-f)

exec: venv $(if $(ENV_DIR),,env-layers) ## run CMD in a service's container (docker compose exec): SERVICE=clickhouse CMD=...
	$(CLI) exec $(CLI_ENV_DIR) $(STACK) "$(SERVICE)" -- $(CMD)

restart: venv $(if $(ENV_DIR),,env-layers) ## restart a service's container (docker compose restart): SERVICE=gateway
	$(CLI) restart $(CLI_ENV_DIR) $(STACK) "$(SERVICE)"

backups: venv $(if $(ENV_DIR),,env-layers) ## list the deployed STACK's backups, on its disk and off the host
	$(CLI) backups $(STACK) $(CLI_ENV_DIR)

# Its arguments first: a restore refused for want of one has created nothing (no venv, no env layer).
restore-args:
	@test -n "$(FROM)" || { echo "error: make restore needs FROM=<backup>: \`make backups STACK=$(STACK)\` lists them; nothing was changed" >&2; exit 2; }

restore: restore-args venv $(if $(ENV_DIR),,env-layers) ## restore FROM=<backup> into the deployed STACK (REPLACE=1, OFFSITE=1)
	$(CLI) restore $(STACK) --from "$(FROM)" $(if $(REPLACE),--replace) $(if $(OFFSITE),--offsite) $(CLI_ENV_DIR)

restore-drill: venv $(if $(ENV_DIR),,env-layers) ## back up the deployed STACK, restore beside it, compare (OFFSITE=1)
	$(CLI) restore-drill $(STACK) $(if $(OFFSITE),--offsite) $(CLI_ENV_DIR)

bench-backup: test-venv ## time backup and restore of 1 million ModelInference rows in chdb, and their size
	$(PYTHON) benchmarks/bench_backup.py

bench: venv ## time each verb of every stack as a fresh process (BENCH_N rounds, default 5)
	$(PYTHON) benchmarks/bench_plan.py $(BENCH_N)

clean: ## remove out/ and caches (keeps the venv and .pulumi-state)
	rm -rf "$(OUT)" .pytest_cache __pycache__
	find $(wildcard components benchmarks tests) -type d -name __pycache__ -prune -exec rm -rf {} +
