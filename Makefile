# pmoves-tensorzero: the TensorZero stack of PMOVES.AI.
#
# Everything but `up` and `preview` works offline, without the Pulumi CLI or Docker.
# Examples:  make test | make validate STACK=staging ENV_DIR=/path/to/env | make up STACK=dev YES=0

STACK ?= dev
VENV ?= .venv
PYTHON = $(VENV)/bin/python
# Interpreter the virtualenv is created from.
PYTHON3 ?= python3
# Optional: read the stack's env layers from this directory (the CLI's --env-dir).
ENV_DIR ?=
# `make up YES=0` asks before applying.
YES ?= 1
# Repetitions of `make bench`.
BENCH_N ?= 5

OUT = out
PY_SOURCES = __main__.py components tests benchmarks
STATE_DIR = $(CURDIR)/.pulumi-state
CLI = $(PYTHON) -m components
CLI_ENV_DIR = $(if $(ENV_DIR),--env-dir "$(ENV_DIR)")
PIP = $(PYTHON) -m pip install --quiet --disable-pip-version-check
# Marker files: a venv is (re)installed only when its requirements change.
VENV_MARKER = $(VENV)/.installed
TEST_MARKER = $(VENV)/.installed-test

# Shared by `up` and `preview`, written once: the state backend, the passphrase and the stack.
# A local file backend inside the project unless PULUMI_BACKEND_URL is set; an empty passphrase
# unless PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE is set (even to "").
define PULUMI_SETUP
set -e; \
if [ -z "$${PULUMI_BACKEND_URL:-}" ]; then \
	mkdir -p "$(STATE_DIR)"; \
	export PULUMI_BACKEND_URL="file://$(STATE_DIR)"; \
	echo "pulumi backend: $$PULUMI_BACKEND_URL (local state; set PULUMI_BACKEND_URL to use another)"; \
else \
	echo "pulumi backend: $$PULUMI_BACKEND_URL (from the environment)"; \
fi; \
if [ -z "$${PULUMI_CONFIG_PASSPHRASE+set}" ] && [ -z "$${PULUMI_CONFIG_PASSPHRASE_FILE+set}" ]; then \
	export PULUMI_CONFIG_PASSPHRASE=""; \
	echo "note: using an empty secrets passphrase, as dev does; set PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE for real secrets."; \
	if [ "$(STACK)" != "dev" ]; then echo "warning: stack $(STACK) is not dev; its secrets would be encrypted with an empty passphrase."; fi; \
fi; \
if [ "$(VENV)" != ".venv" ]; then echo "warning: Pulumi runs the program in .venv (Pulumi.yaml), not in VENV=$(VENV)."; fi; \
echo "+ pulumi stack select $(STACK) --create"; \
pulumi stack select "$(STACK)" --create
endef

.DEFAULT_GOAL := help
.PHONY: help venv test-venv lint test env-layers render plan plan-json validate env check-pulumi up up-tensorzero preview bench clean

help: ## list the targets (this text)
	@echo "Usage: make <target> [STACK=dev|staging|prod] [ENV_DIR=dir] [VENV=.venv] [YES=0]"
	@echo
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

venv: $(VENV_MARKER) ## create the virtualenv (VENV, default .venv) with requirements.txt

$(VENV_MARKER): requirements.txt
	@test -x "$(PYTHON)" || { echo "+ $(PYTHON3) -m venv $(VENV)"; $(PYTHON3) -m venv "$(VENV)"; }
	$(PIP) -r requirements.txt
	@touch "$@"

test-venv: $(TEST_MARKER) ## venv plus requirements-test.txt

$(TEST_MARKER): requirements-test.txt requirements.txt $(VENV_MARKER)
	$(PIP) -r requirements-test.txt
	@touch "$@"

lint: test-venv ## ruff: lint and formatting of the Python code
	$(VENV)/bin/ruff check $(PY_SOURCES)
	$(VENV)/bin/ruff format --check $(PY_SOURCES)

test: lint ## lint, then run the test suite (tests/)
	$(PYTHON) -m pytest -q tests

# The env layers of a stack start as copies of its committed *.example templates; a copy is
# made only where the layer is missing, so an operator's edits are never overwritten.
env-layers: ## create missing env layers of envfiles/<STACK>/ from their *.example templates
	@for template in envfiles/$(STACK)/*.example; do \
		[ -e "$$template" ] || continue; layer="$${template%.example}"; \
		[ -e "$$layer" ] || { cp "$$template" "$$layer"; echo "created $$layer from $$template"; }; \
	done

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

check-pulumi:
	@command -v pulumi >/dev/null 2>&1 || { \
		echo "error: the Pulumi CLI is needed for 'make up' and 'make preview', and 'pulumi' is not on PATH."; \
		echo "       Install it: https://www.pulumi.com/docs/install/"; \
		echo "       Without it, 'make render', 'make plan' and 'make validate' work offline."; \
		exit 1; } >&2

# What `pulumi up` itself will read: the spec's env dir, so ENV_DIR does not apply here.
define VALIDATE_FOR_PULUMI
$(if $(ENV_DIR),@echo "warning: ENV_DIR is ignored here; Pulumi reads the env dir the stack file names.")
$(CLI) validate $(STACK)
endef

# check-pulumi comes first: without the CLI nothing is installed.
up: check-pulumi venv env-layers ## deploy the stack with Pulumi (YES=0 to confirm interactively)
	$(VALIDATE_FOR_PULUMI)
	@$(PULUMI_SETUP); \
	if [ "$(YES)" = "0" ]; then \
		echo "+ pulumi up --stack $(STACK)"; pulumi up --stack "$(STACK)"; \
	else \
		echo "+ pulumi up --stack $(STACK) --yes"; pulumi up --stack "$(STACK)" --yes; \
	fi

up-tensorzero: up ## alias of up

preview: check-pulumi venv env-layers ## what `up` would change (pulumi preview --diff)
	$(VALIDATE_FOR_PULUMI)
	@$(PULUMI_SETUP); \
	echo "+ pulumi preview --diff --stack $(STACK)"; \
	pulumi preview --diff --stack "$(STACK)"

bench: venv ## time validate + plan of dev, staging and prod (BENCH_N runs, default 5)
	$(PYTHON) benchmarks/bench_plan.py $(BENCH_N)

clean: ## remove out/ and caches (keeps the venv and .pulumi-state)
	rm -rf "$(OUT)" .pytest_cache __pycache__
	find $(wildcard components benchmarks tests) -type d -name __pycache__ -prune -exec rm -rf {} +
