"""The CI workflows (.github/workflows) and the Makefile targets they run.

Proven with the real programs: every workflow against check-jsonschema's bundled GitHub workflow
schema; every `run:` line by GNU make expanding it (`make -n`) for each stack it runs with; the CI
targets by running them in a throwaway git copy of the project: `ci-env` writes a layer that
python-dotenv and the package's loader read back, `plan-diff` builds the base commit's plan in a
real git worktree. The Pulumi CLI cannot be installed here, so `up` and `smoke` meet a stand-in
`pulumi` that records how it was called (named as such below).
"""

import json
import os
import re
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import CANARIES, copy_project
from dotenv import dotenv_values

from components.core.names import PROJECT
from components.model.settings import Tier
from components.operate import ci
from components.stack.loader import PROJECT_DIR

WORKFLOW_DIR = PROJECT_DIR / ".github" / "workflows"
WORKFLOWS = sorted(WORKFLOW_DIR.glob("*.yml"))
CHECK_JSONSCHEMA = Path(sys.executable).parent / "check-jsonschema"
VENV = Path(sys.executable).parent.parent
STACK_FILES = {path.name.split(".")[1]: path for path in (PROJECT_DIR / "stacks").glob("Pulumi.*.yaml")}
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
SECRET_EXPRESSION = re.compile(r"secrets\.([A-Z][A-Z0-9_]*)")
# Shell lines a workflow may run besides `make <target>`: none so far.
ALLOWED_SHELL: set[str] = set()
# Expressions a `run:` line may contain: the stack, from a matrix or a reusable workflow's caller.
RUN_EXPRESSIONS = {"matrix.stack", "inputs.stack"}
PROTECTED_ENVIRONMENT = "production"
# Variables of the developer's shell that would change what make does.
MAKE_NOISE = (
    "MAKEFLAGS MFLAGS MAKELEVEL STACK BASE OUTPUTS JUNIT ENV_DIR VENV CLI GITHUB_STEP_SUMMARY "
    "PULUMI_BACKEND_URL PULUMI_CONFIG_PASSPHRASE PULUMI_CONFIG_PASSPHRASE_FILE"
).split()
CI_CANARIES = {
    "TENSORZERO_CLICKHOUSE_PASSWORD": "ci-canary-clickhouse-3f70",
    "TENSORZERO_CLICKHOUSE_READONLY_PASSWORD": "ci-canary-readonly-6b1e",
    "GRAFANA_ADMIN_PASSWORD": "ci-canary-grafana-0d94",
    "TENSORZERO_UI_PASSWORD": "ci-canary-ui-41c7",
    # Quotes, a backslash and a dollar: the layer must keep them literally.
    "ANTHROPIC_API_KEY": "ci-canary-anthropic-'a7c3' \\x $HOME \"q\"",
    "OPENAI_API_KEY": "ci-canary-openai-58f0",
    "VENICE_API_KEY": "ci-canary-venice-e2d9",
    "PULUMI_CONFIG_PASSPHRASE": "ci-canary-passphrase-91ab",
}


def load(path: Path) -> dict:
    document = yaml.safe_load(path.read_text())
    # YAML 1.1 reads the key `on` as True.
    if True in document:
        document["on"] = document.pop(True)
    return document


DOCUMENTS = {path.name: load(path) for path in WORKFLOWS}


def jobs() -> list[tuple[str, str, dict]]:
    return [(name, job_id, job) for name, document in DOCUMENTS.items() for job_id, job in document["jobs"].items()]


def steps() -> list[tuple[str, str, dict, dict]]:
    return [(name, job_id, job, step) for name, job_id, job in jobs() for step in job.get("steps", [])]


def callers(workflow: str) -> list[dict]:
    """The jobs of any workflow that call `workflow` as a reusable workflow."""
    return [job for _, _, job in jobs() if job.get("uses") == f"./.github/workflows/{workflow}"]


def matrix_values(job: dict, key: str) -> list[str]:
    matrix = job.get("strategy", {}).get("matrix", {})
    return list(matrix.get(key, [])) + [entry[key] for entry in matrix.get("include", []) if key in entry]


def stacks_of(workflow: str, job: dict, expression: str) -> list[str]:
    if expression == "matrix.stack":
        return matrix_values(job, "stack")
    return [caller["with"]["stack"] for caller in callers(workflow)]


def tier(stack: str) -> Tier:
    return Tier(yaml.safe_load(STACK_FILES[stack].read_text())["config"][f"{PROJECT}:tier"])


def triggers(document: dict) -> set[str]:
    on = document["on"]
    return {on} if isinstance(on, str) else set(on)


def clean_env(**extra: str) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if k not in MAKE_NOISE and k not in CI_CANARIES}, **extra}


def make(project: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(project), f"VENV={VENV}", *args],
        env=env or clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_there_are_the_three_workflows():
    assert set(DOCUMENTS) == {"pull-request.yml", "deploy.yml", "deploy-stack.yml"}


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_validates_against_the_github_workflow_schema(path):
    result = subprocess.run(
        [str(CHECK_JSONSCHEMA), "--builtin-schema", "vendor.github-workflows", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("workflow", "old", "new", "error"),
    [
        (
            "pull-request.yml",
            "runs-on: [self-hosted, debian-12]",
            "runs_on: [self-hosted, debian-12]",
            "'runs-on' is a required property",
        ),
        ("deploy-stack.yml", "cancel-in-progress: false", "cancel-in-progress: sometimes", "is not of type 'boolean'"),
    ],
)
def test_the_schema_check_catches_a_broken_workflow(workflow, old, new, error, tmp_path):
    text = (WORKFLOW_DIR / workflow).read_text()
    assert old in text
    broken = tmp_path / workflow
    broken.write_text(text.replace(old, new, 1))
    result = subprocess.run(
        [str(CHECK_JSONSCHEMA), "--builtin-schema", "vendor.github-workflows", str(broken)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0 and error in result.stdout, result.stdout


def run_steps() -> list[tuple[str, str, dict, dict]]:
    return [(name, job_id, job, step) for name, job_id, job, step in steps() if "run" in step]


def secret_name(value) -> str | None:
    """NAME when `value` is exactly `${{ secrets.NAME }}`."""
    expression = EXPRESSION.fullmatch(value) if isinstance(value, str) else None
    secret = expression and SECRET_EXPRESSION.fullmatch(expression.group(1))
    return secret.group(1) if secret else None


def test_workflows_run_something():
    commands = {shlex.split(EXPRESSION.sub("x", step["run"]))[1] for *_, step in run_steps()}
    assert {"test", "plan-diff", "ci-deps", "ci-env", "validate", "up", "smoke"} <= commands


@pytest.mark.parametrize(
    ("workflow", "job_id", "job", "step"),
    run_steps(),
    ids=[f"{name}:{job_id}:{step['run'].strip()}" for name, job_id, _, step in run_steps()],
)
def test_every_run_line_is_a_make_target_that_expands(workflow, job_id, job, step):
    """`make -n` proves the target exists and expands for every stack the line runs with, with
    canary values standing for the step's secrets: no recipe may expand a secret itself."""
    line = step["run"].strip()
    if line in ALLOWED_SHELL:
        return
    expressions = set(EXPRESSION.findall(line))
    assert expressions <= RUN_EXPRESSIONS, f"{workflow}:{job_id}: {line!r} uses {expressions - RUN_EXPRESSIONS}"
    assert "\n" not in line and not re.search(r"[;&|<>`$]", EXPRESSION.sub("x", line)), line
    # Secrets become canaries; any other expression (the base commit) a ref that exists.
    step_env = {
        key: CI_CANARIES.get(key, f"ci-canary-{key}") if secret_name(value) else "HEAD"
        for key, value in step.get("env", {}).items()
    }
    stacks = stacks_of(workflow, job, expressions.pop()) if expressions else [""]
    assert stacks, f"{workflow}:{job_id}: no stack to run {line!r} with"
    phony = re.search(r"^\.PHONY:((?:.*\\\n)*.*)$", (PROJECT_DIR / "Makefile").read_text(), re.M).group(1).split()
    for stack in stacks:
        argv = shlex.split(EXPRESSION.sub(stack, line))
        assert argv[0] == "make" and not argv[1].startswith("-"), line
        assert all(re.fullmatch(r"[A-Z_]+=[\w.-]+", arg) for arg in argv[2:]), line
        assert argv[1] in phony, f"make target {argv[1]} is not .PHONY"
        result = make(PROJECT_DIR, "-n", *argv[1:], env=clean_env(**step_env))
        assert result.returncode == 0, f"{workflow}:{job_id}: `{' '.join(argv)}`: {result.stderr}"
        assert result.stdout.strip(), f"`{' '.join(argv)}` expands to nothing"
        leaked = [name for name, value in step_env.items() if name in CI_CANARIES and value in result.stdout]
        assert leaked == [], f"`{' '.join(argv)}` expands the secret(s) {leaked} into its recipe"


def test_make_dry_run_refuses_a_target_that_does_not_exist():
    result = make(PROJECT_DIR, "-n", "no-such-target")
    assert result.returncode != 0 and "No rule to make target 'no-such-target'" in result.stderr


def test_preview_matrix_covers_every_stack_file():
    [(job, step)] = [
        (job, step)
        for _, _, job, step in steps()
        if step.get("uses", "").startswith("pulumi/actions@") and step.get("with", {}).get("command") == "preview"
    ]
    assert sorted(matrix_values(job, "stack")) == sorted(STACK_FILES)
    assert step["with"]["stack-name"] == "${{ matrix.stack }}"


def test_preview_comments_a_diff_on_the_pull_request_after_installing_requirements():
    document = DOCUMENTS["pull-request.yml"]
    assert triggers(document) == {"pull_request"}
    job = document["jobs"]["preview"]
    uses = [step.get("uses", "") for step in job["steps"]]
    runs = [step.get("run", "") for step in job["steps"]]
    preview = next(i for i, u in enumerate(uses) if u.startswith("pulumi/actions@"))
    assert any(u.startswith("actions/setup-python@") for u in uses[:preview])
    assert "make ci-deps" in runs[:preview] and "make ci-env STACK=${{ matrix.stack }}" in runs[:preview]
    options = job["steps"][preview]["with"]
    assert (options["command"], options["comment-on-pr"], options["diff"]) == ("preview", True, True)
    assert options["cloud-url"] == "${{ secrets.PULUMI_BACKEND_URL }}"
    assert job["steps"][preview]["env"] == {"PULUMI_CONFIG_PASSPHRASE": "${{ secrets.PULUMI_CONFIG_PASSPHRASE }}"}
    assert job["permissions"]["pull-requests"] == "write"


def test_the_offline_job_runs_the_test_command_and_publishes_the_plan_diff():
    job = DOCUMENTS["pull-request.yml"]["jobs"]["test-and-diff"]
    runs = [step.get("run") for step in job["steps"] if "run" in step]
    # The same command .ci/run runs.
    assert "make test" in (PROJECT_DIR / ".ci" / "run").read_text()
    assert runs == ["make system-deps", "make test", "make plan-diff"]
    [diff_step] = [step for step in job["steps"] if step.get("run") == "make plan-diff"]
    assert diff_step["env"]["BASE"] == "${{ github.event.pull_request.base.sha }}"
    assert job["steps"][0]["with"]["fetch-depth"] == 0  # the base commit must be in the clone
    [comment] = [step for step in job["steps"] if "sticky-pull-request-comment" in step.get("uses", "")]
    assert comment["with"]["path"] == "out/plan-diff/comment.md"


def deploy_jobs() -> dict[str, tuple[str, dict]]:
    """deploy.yml's jobs by the stack each deploys."""
    return {job["with"]["stack"]: (job_id, job) for job_id, job in DOCUMENTS["deploy.yml"]["jobs"].items()}


def test_deploy_runs_every_stack_in_promotion_order():
    document = DOCUMENTS["deploy.yml"]
    assert triggers(document) == {"push", "workflow_dispatch"}
    assert document["on"]["push"]["branches"] == ["main"]
    deploys = deploy_jobs()
    assert sorted(deploys) == sorted(STACK_FILES)
    order = sorted(deploys, key=lambda stack: list(Tier).index(tier(stack)))
    for position, stack in enumerate(order):
        job_id, job = deploys[stack]
        assert job["uses"] == "./.github/workflows/deploy-stack.yml" and job["secrets"] == "inherit"
        earlier = {deploys[s][0] for s in order[:position]}
        # Every earlier stack, not only the previous one: a failure two steps back must stop this one too.
        assert set(job.get("needs", [])) == earlier, f"{stack} needs {job.get('needs')}"
        if earlier:
            assert "!contains(needs.*.result, 'failure')" in job["if"]
        assert stack in document["on"]["workflow_dispatch"]["inputs"]
        assert f"inputs.{stack}" in job["if"]


def test_prod_deploys_behind_the_protected_environment_and_nothing_else_does():
    for stack, (_, job) in deploy_jobs().items():
        environment = job["with"]["environment"]
        assert (environment == PROTECTED_ENVIRONMENT) == (tier(stack) == Tier.prod), stack
    [up] = DOCUMENTS["deploy-stack.yml"]["jobs"].values()
    assert up["environment"] == "${{ inputs.environment }}"
    # A pull request's code must never run in the protected environment.
    pull_request_environments = {
        value
        for name, _, job in jobs()
        if "pull_request" in triggers(DOCUMENTS[name])
        for value in matrix_values(job, "environment") + [job.get("environment", "")]
    }
    assert PROTECTED_ENVIRONMENT not in pull_request_environments


def test_each_deploy_is_followed_by_smoke_and_the_junit_upload_one_at_a_time_per_stack():
    [up] = DOCUMENTS["deploy-stack.yml"]["jobs"].values()
    assert up["concurrency"] == {"group": "deploy-${{ inputs.stack }}", "cancel-in-progress": False}
    runs = [step.get("run") for step in up["steps"]]
    assert runs.index("make up STACK=${{ inputs.stack }}") < runs.index("make smoke STACK=${{ inputs.stack }}")
    upload = up["steps"][-1]
    assert upload["uses"] == "actions/upload-artifact@v4" and upload["if"] == "always()"
    junit = make(PROJECT_DIR, "-s", "--eval=print-junit: ; @echo $(JUNIT)", "print-junit", "STACK=prod").stdout.strip()
    assert upload["with"]["path"].replace("${{ inputs.stack }}", "prod") == junit


def test_actions_are_pinned_to_release_tags():
    for name, _, _, step in steps():
        if "uses" in step:
            assert re.fullmatch(r"[\w.-]+/[\w.-]+@(v\d+(\.\d+){0,2}|[0-9a-f]{40})", step["uses"]), (name, step["uses"])


def test_the_pulumi_cli_matches_the_sdk_pinned_in_requirements():
    [sdk] = re.findall(r"^pulumi==(\S+)$", (PROJECT_DIR / "requirements.txt").read_text(), re.M)
    pulumi_steps = [(name, step) for name, _, _, step in steps() if step.get("uses", "").startswith("pulumi/actions@")]
    assert pulumi_steps
    for name, step in pulumi_steps:
        assert step["with"]["pulumi-version"] == "${{ env.PULUMI_VERSION }}", name
        assert DOCUMENTS[name]["env"]["PULUMI_VERSION"] == sdk, name


def leaves(node, path=()):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from leaves(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from leaves(value, (*path, index))
    else:
        yield path, node


def test_secrets_are_read_only_from_the_secrets_context_into_a_step_env_or_input():
    seen = set()
    for name, document in DOCUMENTS.items():
        for path, value in leaves(document):
            if path[-1] == "secrets":
                assert (path[0], len(path), value) == ("jobs", 3, "inherit"), (name, path)
            if not isinstance(value, str) or not any("secrets" in e for e in EXPRESSION.findall(value)):
                continue
            where = f"{name}: {'.'.join(map(str, path))}"
            secret = secret_name(value)
            assert secret, f"{where}: {value!r} is not exactly one `${{{{ secrets.NAME }}}}`"
            # Only into the one step that needs it: never a run line, a job's or the workflow's env.
            assert path[-4] == "steps" and path[-2] in ("env", "with"), where
            if path[-2] == "env":
                assert path[-1] == secret, f"{where}: a secret under another name"
            seen.add(secret)
    assert {"PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE"} <= seen


def template_variables(stack: str, empty_only: bool) -> set[str]:
    names = set()
    for template in (PROJECT_DIR / "envfiles" / stack).glob("*.example"):
        for name, value in dotenv_values(template).items():
            if not empty_only or not value:
                names.add(name)
    return names


def test_ci_env_is_given_every_variable_a_stack_template_leaves_empty():
    ci_env_steps = [(name, step) for name, _, _, step in steps() if step.get("run", "").startswith("make ci-env ")]
    assert len(ci_env_steps) == 2
    for stack in STACK_FILES:
        needed = template_variables(stack, empty_only=True)
        for name, step in ci_env_steps:
            assert needed <= set(step["env"]), f"{name}: {stack} needs {sorted(needed - set(step['env']))}"


# --- the CI targets, run for real in a throwaway copy ---------------------------------------------


def ci_project(root: Path) -> Path:
    """The project as CI checks it out: a git clone with the Makefile, on one commit."""
    project = copy_project(root)
    requirements = ("requirements.txt", "requirements-test.txt", "requirements-smoke.txt", "pyproject.toml")
    for name in ("Makefile", "__main__.py", ".gitignore", *requirements):
        shutil.copy(PROJECT_DIR / name, project / name)
    for name in requirements:
        os.utime(project / name, (0, 0))  # older than the venv's markers: make installs nothing
    for layer in project.glob("envfiles/*/*"):
        if layer.suffix != ".example":
            layer.unlink()
    git(project, "init", "--quiet", "--initial-branch=main")
    commit(project, "base")
    return project


def git(project: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", "-c", "user.name=ci", "-c", "user.email=ci@example.invalid", *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def commit(project: Path, message: str) -> None:
    git(project, "add", "--all")
    git(project, "commit", "--quiet", "--message", message)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_ci_env_writes_the_secrets_into_the_layer_without_printing_them(tmp_path):
    project = ci_project(tmp_path / "project")
    result = make(project, "ci-env", "STACK=staging", env=clean_env(PULUMI_BACKEND_URL="file:///state", **CI_CANARIES))
    assert result.returncode == 0, result.stderr
    layer = project / "envfiles" / "staging" / ".env.local"
    assert stat.S_IMODE(layer.stat().st_mode) == 0o600
    # python-dotenv, the parser the package uses, reads every value back exactly.
    assert dotenv_values(layer) == {k: v for k, v in CI_CANARIES.items() if k in template_variables("staging", False)}
    assert not any(value in result.stdout + result.stderr for value in CI_CANARIES.values())
    assert "(values not shown)" in result.stdout
    # The package's own loader accepts the stack from these layers (the templates alone leave it invalid).
    validate = subprocess.run(
        [sys.executable, "-m", "components", "validate", "staging"],
        cwd=project,
        env={**clean_env(), "PYTHONPATH": str(project)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert validate.returncode == 0, validate.stderr
    assert not any(value in validate.stdout + validate.stderr for value in CI_CANARIES.values())


def test_ci_env_names_a_missing_secret_and_never_overwrites_an_operator_layer(tmp_path):
    project = ci_project(tmp_path / "project")
    without = make(project, "ci-env", "STACK=prod", env=clean_env(PULUMI_BACKEND_URL="file:///state"))
    assert without.returncode != 0
    assert "environment: PULUMI_CONFIG_PASSPHRASE: stack prod needs this secret" in without.stderr
    assert not (project / "envfiles" / "prod" / ".env.local").exists()
    (project / "envfiles" / "dev" / ".env.local").write_text("MY_OWN=1\n")
    kept = make(project, "ci-env", "STACK=dev", env=clean_env(PULUMI_BACKEND_URL="file:///state"))
    assert kept.returncode != 0 and "was not written by ci-env; not overwriting it" in kept.stderr
    assert (project / "envfiles" / "dev" / ".env.local").read_text() == "MY_OWN=1\n"


def test_plan_diff_builds_the_base_in_a_worktree_and_names_what_changes(tmp_path):
    project = ci_project(tmp_path / "project")
    base = git(project, "rev-parse", "--short", "HEAD").strip()
    # One change per stack: a model added to dev, a port changed in staging; prod untouched; a new stack.
    (project / "catalog" / "models.toml").write_text(
        (project / "catalog" / "models.toml").read_text()
        + '\n[models.nomic_embed]\nprovider = "ollama"\nmodel = "nomic-embed-text"\ntype = "embedding"\n'
    )
    edit(
        project / "stacks" / "Pulumi.dev.yaml",
        "      - gemma_embed_local",
        "      - gemma_embed_local\n      - nomic_embed",
    )
    edit(project / "stacks" / "Pulumi.staging.yaml", "port: 14000", "port: 14400")
    shutil.copy(project / "stacks" / "Pulumi.dev.yaml", project / "stacks" / "Pulumi.qa.yaml")
    edit(project / "stacks" / "Pulumi.qa.yaml", "name_prefix: pmoves-dev", "name_prefix: pmoves-qa")
    shutil.copytree(project / "envfiles" / "dev", project / "envfiles" / "qa")
    commit(project, "change")
    summary = tmp_path / "step-summary.md"
    result = make(project, "plan-diff", f"BASE={base}", env=clean_env(GITHUB_STEP_SUMMARY=str(summary)))
    assert result.returncode == 0, result.stderr
    sections = re.split(r"^(\w+): \w+ -> working tree$", result.stdout, flags=re.M)

    def diff_of(stack: str) -> list[str]:
        return sections[sections.index(stack) + 1].strip().splitlines()

    # A new model: the gateway serves it, the edge maps its bare names, the `requests` view learns it.
    assert diff_of("dev") == [
        "1 to create, 3 to replace",
        "+- replace docker:index/container:Container clickhouse-schema-apply (uploads)",
        "+- replace docker:index/container:Container edge-container (uploads)",
        "+- replace docker:index/container:Container gateway-container (uploads)",
        "+  create  docker:index/container:Container ollama-pull-nomic-embed-text",
    ]
    # The UI's port is published by the edge, behind the UI's login.
    assert diff_of("staging") == [
        "1 to replace",
        "+- replace docker:index/container:Container edge-container (ports)",
    ]
    assert diff_of("prod") == ["no changes"]
    warning, *created = diff_of("qa")
    assert created[0].endswith("to create") and all(line.startswith("+  create") for line in created[1:])
    assert warning == f"warning: stack qa does not exist at {base}: everything is new"
    # The job summary and the PR comment show every stack file, in promotion order first.
    comment = (project / "out" / "plan-diff" / "comment.md").read_text()
    headings = re.findall(r"^### `(\w+)`: (.*)$", comment, re.M)
    assert headings == [
        ("dev", "1 to create, 3 to replace"),
        ("staging", "1 to replace"),
        ("prod", "no changes"),
        ("cluster", "no changes"),
        ("qa", created[0]),
    ]
    assert summary.read_text() in comment
    # docs/ci.md shows this very change's comment: its blocks are what the command wrote.
    documented = (PROJECT_DIR / "docs" / "ci.md").read_text().split("````markdown\n", 1)[1].split("\n````", 1)[0]
    for stack in ("dev", "staging", "prod"):
        assert code_block(documented, stack) == code_block(comment, stack), stack
    # The base worktree is gone; the clone is as it was.
    assert git(project, "worktree", "list", "--porcelain").count("worktree ") == 1
    assert git(project, "status", "--porcelain") == ""


def code_block(markdown: str, stack: str) -> str:
    """The fenced block under the comment's `### `stack`` heading."""
    section = markdown.split(f"### `{stack}`", 1)[1]
    return section.split("```\n", 1)[1].split("\n```", 1)[0]


def test_ctrl_c_during_a_diff_against_a_ref_leaves_no_worktree_behind(tmp_path):
    project = ci_project(tmp_path / "project")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    running = subprocess.Popen(
        [sys.executable, "-m", "components", "diff", "--against", "HEAD"],
        cwd=project,
        env={**os.environ, "TMPDIR": str(scratch)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while len(git(project, "worktree", "list").splitlines()) < 2:  # the base's worktree is there: planning
        assert running.poll() is None and time.monotonic() < deadline, running.communicate()
        time.sleep(0.05)
    running.send_signal(signal.SIGINT)
    out, err = running.communicate(timeout=60)
    assert running.returncode == 130, err
    assert err.splitlines() == ["python -m components: interrupted"], err
    assert len(git(project, "worktree", "list").splitlines()) == 1
    assert not list(scratch.glob(f"{ci.DIFF_SCRATCH_PREFIX}*"))


def test_plan_diff_refuses_an_unknown_base(tmp_path):
    project = ci_project(tmp_path / "project")
    result = make(project, "plan-diff", "BASE=no-such-ref", "STACKS=dev")
    assert result.returncode != 0 and "no-such-ref: not a commit in this clone" in result.stderr
    unnamed = make(project, "plan-diff")
    assert unnamed.returncode != 0 and "name the git ref to compare with" in unnamed.stderr


STANDIN = """#!{python}
# Stand-in for the Pulumi CLI, which cannot be installed here: records each call and its backend.
import json, os, sys
with open(os.environ["STANDIN_LOG"], "a") as log:
    log.write(json.dumps({{"argv": sys.argv[1:], "backend": os.environ.get("PULUMI_BACKEND_URL"),
                          "passphrase": os.environ.get("PULUMI_CONFIG_PASSPHRASE")}}) + "\\n")
if sys.argv[1:3] == ["stack", "output"]:
    sys.stdout.write(os.environ["STANDIN_OUTPUTS"])
"""
SMOKE_STANDIN = """#!{python}
# Stand-in for `python -m components` (the smoke suite is tested elsewhere): records the outputs file it is given.
import json, os, sys
args = sys.argv[1:]
outputs = args[args.index("--outputs") + 1]
record = {{"argv": args, "outputs": open(outputs).read(), "mode": oct(os.stat(outputs).st_mode & 0o777)}}
open(os.environ["STANDIN_LOG"], "a").write(json.dumps(record) + "\\n")
open(args[args.index("--junit") + 1], "w").write("<testsuites/>")
"""


def standins(tmp_path: Path) -> tuple[Path, Path, Path]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for path, text in ((bin_dir / "pulumi", STANDIN), (tmp_path / "smoke-cli", SMOKE_STANDIN)):
        path.write_text(text.format(python=sys.executable))
        path.chmod(0o755)
    return bin_dir, tmp_path / "smoke-cli", tmp_path / "calls.jsonl"


def calls(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_up_uses_the_backend_and_passphrase_from_the_environment(tmp_path):
    project = ci_project(tmp_path / "project")
    bin_dir, _, log = standins(tmp_path)
    env = clean_env(
        PATH=f"{bin_dir}:{os.environ['PATH']}",
        STANDIN_LOG=str(log),
        PULUMI_BACKEND_URL="s3://pmoves-state",
        PULUMI_CONFIG_PASSPHRASE=CI_CANARIES["PULUMI_CONFIG_PASSPHRASE"],
    )
    result = make(project, "up", "STACK=dev", env=env)
    assert result.returncode == 0, result.stderr
    assert [(c["argv"], c["backend"], c["passphrase"]) for c in calls(log)] == [
        (["stack", "select", "dev", "--create"], "s3://pmoves-state", CI_CANARIES["PULUMI_CONFIG_PASSPHRASE"]),
        (["up", "--stack", "dev", "--yes"], "s3://pmoves-state", CI_CANARIES["PULUMI_CONFIG_PASSPHRASE"]),
    ]
    assert CI_CANARIES["PULUMI_CONFIG_PASSPHRASE"] not in result.stdout + result.stderr
    # Without the variable, the local file backend inside the project, as before.
    log.unlink()
    local = make(project, "up", "STACK=dev", env=clean_env(PATH=env["PATH"], STANDIN_LOG=str(log)))
    assert local.returncode == 0, local.stderr
    assert {c["backend"] for c in calls(log)} == {f"file://{project}/.pulumi-state"}


def filled_layers(project: Path, stack: str) -> None:
    """The stack's credentials in its `.env.local`, as an operator fills them in (canary values)."""
    (project / "envfiles" / stack / ".env.local").write_text("".join(f"{k}={v}\n" for k, v in CANARIES.items()))


@pytest.mark.parametrize(
    ("given", "asks"),
    [({}, True), ({"YES": "1"}, False), ({"CI": "true"}, False), ({"CI": "true", "YES": "0"}, True)],
    ids=["default-asks", "YES=1", "CI", "CI-but-YES=0"],
)
def test_up_outside_dev_asks_unless_told_not_to(given, asks, tmp_path):
    project = ci_project(tmp_path / "project")
    filled_layers(project, "staging")
    bin_dir, _, log = standins(tmp_path)
    passphrase = CI_CANARIES["PULUMI_CONFIG_PASSPHRASE"]
    env = clean_env(PATH=f"{bin_dir}:{os.environ['PATH']}", STANDIN_LOG=str(log), PULUMI_CONFIG_PASSPHRASE=passphrase)
    env.pop("CI", None)
    env.update({k: v for k, v in given.items() if k == "CI"})
    result = make(project, "up", "STACK=staging", *(f"{k}={v}" for k, v in given.items() if k == "YES"), env=env)
    assert result.returncode == 0, result.stderr
    up = calls(log)[-1]["argv"]
    assert up == (["up", "--stack", "staging"] if asks else ["up", "--stack", "staging", "--yes"])


@pytest.mark.parametrize("passphrase", [None, ""], ids=["unset", "empty"])
def test_up_outside_dev_refuses_an_empty_passphrase(passphrase, tmp_path):
    project = ci_project(tmp_path / "project")
    filled_layers(project, "staging")
    bin_dir, _, log = standins(tmp_path)
    env = clean_env(PATH=f"{bin_dir}:{os.environ['PATH']}", STANDIN_LOG=str(log), YES="1")
    if passphrase is not None:
        env["PULUMI_CONFIG_PASSPHRASE"] = passphrase
    result = make(project, "up", "STACK=staging", env=env)
    assert result.returncode != 0
    assert "error: stack staging is not dev: its secrets need a passphrase" in result.stderr
    assert not log.exists()  # Pulumi never ran
    # dev keeps its empty passphrase, saying so.
    dev = make(project, "up", "STACK=dev", env=env)
    assert dev.returncode == 0, dev.stderr
    assert "note: using an empty secrets passphrase, as dev does" in dev.stdout
    assert {c["passphrase"] for c in calls(log)} == {""}


def test_env_layers_of_a_stack_that_does_not_exist_fails(tmp_path):
    result = make(ci_project(tmp_path / "project"), "env-layers", "STACK=qa")
    assert result.returncode != 0
    assert "stacks/Pulumi.qa.yaml: no such stack (stacks here: dev, staging, prod, cluster)" in result.stderr


def test_smoke_reads_the_stack_outputs_through_pulumi_into_a_private_file_it_removes(tmp_path):
    project = ci_project(tmp_path / "project")
    bin_dir, smoke_cli, log = standins(tmp_path)
    outputs = json.dumps({"clickhouse_url": "http://u:ci-canary-outputs-pw@ch:8123/tensorzero"})
    env = clean_env(
        PATH=f"{bin_dir}:{os.environ['PATH']}",
        STANDIN_LOG=str(log),
        STANDIN_OUTPUTS=outputs,
        PULUMI_BACKEND_URL="s3://pmoves-state",
        PULUMI_CONFIG_PASSPHRASE="p",
    )
    result = make(project, "smoke", "STACK=staging", f"CLI={smoke_cli}", "SMOKE_BUDGET=45", env=env)
    assert result.returncode == 0, result.stderr
    pulumi_call, smoke_call = calls(log)
    assert pulumi_call["argv"] == ["stack", "output", "--stack", "staging", "--json", "--show-secrets"]
    assert pulumi_call["backend"] == "s3://pmoves-state"
    assert smoke_call["argv"] == [
        "smoke",
        "staging",
        "--outputs",
        "out/smoke/staging.outputs.json",
        "--junit",
        "out/smoke/staging.junit.xml",
        "--budget",
        "45",
    ]
    assert (smoke_call["outputs"], smoke_call["mode"]) == (outputs, "0o600")
    assert not (project / "out" / "smoke" / "staging.outputs.json").exists()
    assert (project / "out" / "smoke" / "staging.junit.xml").read_text() == "<testsuites/>"
    assert "ci-canary-outputs-pw" not in result.stdout + result.stderr
    # With OUTPUTS=file, no Pulumi at all (offline use).
    log.unlink()
    given = tmp_path / "outputs.json"
    given.write_text(outputs)
    offline = make(project, "smoke", "STACK=dev", f"CLI={smoke_cli}", f"OUTPUTS={given}", env=env)
    assert offline.returncode == 0, offline.stderr
    [only] = calls(log)
    assert only["argv"][:4] == ["smoke", "dev", "--outputs", str(given)]


def test_the_e2e_job_installs_the_pulumi_cli_then_deploys_through_make_e2e():
    """The main job where it can run: a GitHub-hosted runner (registry access), the CLI installed by
    pulumi/actions with no command, then `make e2e`; no secret at all."""
    job = DOCUMENTS["pull-request.yml"]["jobs"]["e2e"]
    assert job["runs-on"].startswith("ubuntu-")
    uses = [step.get("uses", "") for step in job["steps"]]
    install = next(i for i, u in enumerate(uses) if u.startswith("pulumi/actions@"))
    assert "command" not in job["steps"][install]["with"]
    assert job["steps"][install]["with"]["pulumi-version"] == "${{ env.PULUMI_VERSION }}"
    runs = [step.get("run") for step in job["steps"] if "run" in step]
    assert runs == ["make e2e"] and [step.get("run") for step in job["steps"]].index("make e2e") > install
    assert "secrets." not in json.dumps(job)
    assert "e2e:" in (PROJECT_DIR / "Makefile").read_text()


def test_slow_make_steps_say_what_they_do_and_show_pips_progress(tmp_path):
    """A first `make` spends tens of seconds in pip: each step is announced and pip's own lines are shown."""
    fresh = tmp_path / "venv"
    dry = subprocess.run(
        ["make", "-n", "--no-print-directory", "-C", str(PROJECT_DIR), f"VENV={fresh}", "test-venv"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert dry.returncode == 0, dry.stderr
    installs = [line for line in dry.stdout.splitlines() if " -m pip install " in line and " -r " in line]
    into_fresh = [line for line in installs if line.startswith(f"{fresh}/bin/python ")]
    assert len(into_fresh) == 3  # requirements, smoke, test (checkov's own venv is made once, apart)
    assert not [line for line in installs if "--quiet" in line or " -q " in line]
    announced = [line for line in dry.stdout.splitlines() if line.startswith('echo "+ ')]
    assert len(announced) >= len(installs) + 1  # the venv's creation too


def test_no_job_runs_a_forks_code_on_a_self_hosted_runner():
    """`make test` runs as root on a self-hosted runner: a fork's pull request must never reach it."""
    same_repository = "github.event.pull_request.head.repo.full_name == github.repository"
    for name, job in DOCUMENTS["pull-request.yml"]["jobs"].items():
        runs_on = job["runs-on"]
        if "self-hosted" in (runs_on if isinstance(runs_on, list) else [runs_on]):
            assert same_repository in job.get("if", ""), name
