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

# `make plan-diff`: the git ref (commit, branch, tag) whose plan is the "before" side.
BASE ?=
# `make smoke`: read the stack's outputs from this JSON file instead of `pulumi stack output`.
OUTPUTS ?=

OUT = out
PY_SOURCES = __main__.py components tests benchmarks
# Every stack, one per stack file, in promotion order (then any others): what `plan-diff-all` covers.
STACK_FILES = $(sort $(patsubst stacks/Pulumi.%.yaml,%,$(wildcard stacks/Pulumi.*.yaml)))
ALL_STACKS = $(foreach s,dev staging prod,$(filter $(s),$(STACK_FILES))) $(filter-out dev staging prod,$(STACK_FILES))
PLAN_DIFF_DIR = $(OUT)/plan-diff
SMOKE_DIR = $(OUT)/smoke
# `make smoke`: where the JUnit report goes, and the seconds the whole run may take.
JUNIT ?= $(SMOKE_DIR)/$(STACK).junit.xml
SMOKE_BUDGET ?= 60
STATE_DIR = $(CURDIR)/.pulumi-state
CLI = $(PYTHON) -m components
CLI_ENV_DIR = $(if $(ENV_DIR),--env-dir "$(ENV_DIR)")
PIP = $(PYTHON) -m pip install --quiet --disable-pip-version-check
# Marker files: a venv is (re)installed only when its requirements change.
VENV_MARKER = $(VENV)/.installed
TEST_MARKER = $(VENV)/.installed-test

# Shared by `up`, `preview` and `smoke`, written once: the state backend and the passphrase.
# A local file backend inside the project unless PULUMI_BACKEND_URL is set (CI sets it); an empty
# passphrase unless PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE is set (even to "").
define PULUMI_ENV
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
.PHONY: help venv test-venv lint test env-layers render plan plan-json validate env check-pulumi up up-tensorzero preview bench clean \
	ci-deps system-deps ci-env plan-diff plan-diff-all smoke

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

test: system-deps lint ## install system packages and start dockerd if needed, lint, then run every test
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
		echo "error: the Pulumi CLI is needed for 'make up', 'make preview' and 'make smoke', and 'pulumi' is not on PATH."; \
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

# CI (.github/workflows, docs/ci.md). Secrets reach a job as environment variables; these
# targets write or pass them on without ever printing a value.

ci-deps: venv ## CI: install what the Pulumi program imports (.venv, requirements.txt)

# The real programs the test suite proves rendered files with: promtool, nginx with its Lua module.
system-deps: ## the Debian packages the tests run real programs from, and a running dockerd (.ci/system-deps)
	@if [ "$$(id -u)" = 0 ]; then bash .ci/system-deps; else sudo bash .ci/system-deps; fi

# The stack's env layers from their templates, plus `.env.local` holding every variable the
# templates list that the job's environment sets (from secrets). Refuses to run without the
# backend secret, or without a passphrase for any stack but dev, naming what is missing.
ci-env: env-layers ## CI: check the Pulumi secrets, write envfiles/<STACK>/.env.local from the environment
	@set -e; missing=""; \
	[ -n "$${PULUMI_BACKEND_URL:-}" ] || missing="$$missing PULUMI_BACKEND_URL"; \
	if [ "$(STACK)" != "dev" ] && [ -z "$${PULUMI_CONFIG_PASSPHRASE:-}" ] && [ -z "$${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ]; then \
		missing="$$missing PULUMI_CONFIG_PASSPHRASE"; fi; \
	[ -z "$$missing" ] || { echo "error: stack $(STACK) needs the secret(s)$$missing (see docs/ci.md)" >&2; exit 1; }; \
	layer="envfiles/$(STACK)/.env.local"; marker="# written by make ci-env"; \
	if [ -e "$$layer" ] && [ "$$(head -n 1 "$$layer")" != "$$marker" ]; then \
		echo "error: $$layer exists and was not written by ci-env; not overwriting it" >&2; exit 1; fi; \
	umask 077; printf '%s\n' "$$marker" > "$$layer.tmp"; written=""; \
	for name in $$(cat /dev/null envfiles/$(STACK)/*.example 2>/dev/null | sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)=.*/\1/p' | sort -u); do \
		value="$$(printenv "$$name" || true)"; [ -n "$$value" ] || continue; \
		printf "%s='%s'\n" "$$name" "$$(printf '%s' "$$value" | sed -e 's/\\/\\\\/g' -e "s/'/\\\\'/g")" >> "$$layer.tmp"; \
		written="$$written $$name"; \
	done; \
	mv "$$layer.tmp" "$$layer"; echo "wrote $$layer:$${written:- no variables} (values not shown)"

# The desired-state diff of a change: the offline plan of BASE, built in a throwaway git worktree,
# against the plan of the working tree. Plans mask credentials, so each side reads its own
# templates with a placeholder for every value they leave empty: no secret is needed. A stack
# missing at BASE, or whose plan fails there, is diffed against nothing (all creates).
plan-diff: venv ## desired-state diff of STACK from git ref BASE to the working tree (out/plan-diff/<STACK>/)
	@test -n "$(BASE)" || { echo "error: name the git ref to compare with: make plan-diff BASE=<ref> STACK=$(STACK)" >&2; exit 2; }
	@set -e; dir="$(abspath $(PLAN_DIFF_DIR))/$(STACK)"; tree="$$dir/base-tree"; \
	base="$$(git rev-parse --verify --quiet "$(BASE)^{commit}")" \
		|| { echo "error: BASE=$(BASE) is not a commit in this clone (fetch it, or use fetch-depth: 0)" >&2; exit 2; }; \
	rm -rf "$$dir"; git worktree prune; mkdir -p "$$dir"; \
	git worktree add --quiet --detach "$$tree" "$$base"; trap 'git worktree remove --force "$$tree"' EXIT; \
	plan_of() { \
		root="$$1"; env="$$2"; rm -rf "$$env"; mkdir -p "$$env"; \
		for template in "$$root"/envfiles/$(STACK)/*.example; do \
			[ -e "$$template" ] || continue; name="$${template##*/}"; cp "$$template" "$$env/$${name%.example}"; \
			sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)=[[:space:]]*$$/\1=ci-placeholder-\1/p' "$$template" >> "$$env/.env.local"; \
		done; \
		(cd "$$root" && PYTHONPATH="$$root" "$(abspath $(PYTHON))" -m components plan "$(STACK)" --json --env-dir "$$env"); \
	}; \
	note=""; \
	if [ ! -e "$$tree/stacks/Pulumi.$(STACK).yaml" ]; then \
		note="stack $(STACK) does not exist at $(BASE): everything is new"; echo '{"resources": []}' > "$$dir/base.json"; \
	elif ! plan_of "$$tree" "$$dir/base-env" > "$$dir/base.json" 2> "$$dir/base.err"; then \
		cat "$$dir/base.err" >&2; note="the plan of $(STACK) fails at $(BASE) (above): diffed against nothing"; \
		echo '{"resources": []}' > "$$dir/base.json"; \
	fi; \
	[ -z "$$note" ] || echo "warning: $$note" >&2; \
	plan_of "$(CURDIR)" "$$dir/head-env" > "$$dir/head.json"; \
	$(CLI) diff "$$dir/base.json" "$$dir/head.json" > "$$dir/diff.txt"; \
	echo "$(STACK): $(BASE) -> working tree"; cat "$$dir/diff.txt"; \
	{ printf '### `%s`: %s\n\n' "$(STACK)" "$$(tail -n 1 "$$dir/diff.txt")"; \
	  printf 'base `%s` → head `%s`%s\n\n' "$$(git rev-parse --short "$$base")" "$$(git rev-parse --short HEAD)" "$${note:+ ($$note)}"; \
	  echo '```'; cat "$$dir/diff.txt"; echo '```'; echo; } > "$$dir/summary.md"; \
	if [ -n "$${GITHUB_STEP_SUMMARY:-}" ]; then cat "$$dir/summary.md" >> "$$GITHUB_STEP_SUMMARY"; fi

plan-diff-all: ## plan-diff of every stack; out/plan-diff/comment.md gathers them for the PR comment
	@test -n "$(BASE)" || { echo "error: name the git ref to compare with: make plan-diff-all BASE=<ref>" >&2; exit 2; }
	@set -e; for stack in $(ALL_STACKS); do $(MAKE) --no-print-directory plan-diff STACK=$$stack BASE="$(BASE)"; done
	@{ echo "## Desired-state diff"; echo; \
	   echo "Offline plans (\`make plan-diff\`) of the base and of this change, compared by pulumi-docker's replacement rules."; \
	   echo "\`+\` create, \`~\` update in place, \`+-\` replace, \`-\` delete; credentials are masked, so a changed secret shows only in \`pulumi preview\`."; \
	   echo; for stack in $(ALL_STACKS); do cat "$(PLAN_DIFF_DIR)/$$stack/summary.md"; done; } > "$(PLAN_DIFF_DIR)/comment.md"
	@echo "wrote $(PLAN_DIFF_DIR)/comment.md"

# After `make up`: the smoke suite against the stack's real outputs (`pulumi stack output`, which
# hold the ClickHouse password: kept in a 0600 file removed on exit), or against OUTPUTS=file.
smoke: test-venv $(if $(OUTPUTS),,check-pulumi) ## smoke-test the deployed STACK (OUTPUTS=file skips pulumi); JUnit in out/smoke/
	@set -e; mkdir -p "$(SMOKE_DIR)" "$(dir $(JUNIT))"; outputs="$(OUTPUTS)"; \
	if [ -z "$$outputs" ]; then \
		$(PULUMI_ENV); \
		outputs="$(SMOKE_DIR)/$(STACK).outputs.json"; umask 077; trap 'rm -f "$$outputs"' EXIT; \
		echo "+ pulumi stack output --stack $(STACK) --json --show-secrets > $$outputs"; \
		pulumi stack output --stack "$(STACK)" --json --show-secrets > "$$outputs"; \
	fi; \
	echo "+ $(CLI) smoke $(STACK) --outputs $$outputs --junit $(JUNIT) --budget $(SMOKE_BUDGET)"; \
	$(CLI) smoke "$(STACK)" --outputs "$$outputs" --junit "$(JUNIT)" --budget "$(SMOKE_BUDGET)"

bench: venv ## time validate + plan of dev, staging and prod (BENCH_N runs, default 5)
	$(PYTHON) benchmarks/bench_plan.py $(BENCH_N)

clean: ## remove out/ and caches (keeps the venv and .pulumi-state)
	rm -rf "$(OUT)" .pytest_cache __pycache__
	find $(wildcard components benchmarks tests) -type d -name __pycache__ -prune -exec rm -rf {} +
