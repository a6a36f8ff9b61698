"""Each CLI verb imports only what it runs: a command is a fresh process, and imports are most of its time.

Not timed (timings belong to benchmarks/bench_plan.py): each verb runs in a fresh interpreter, which then
reports the modules it holds. A cluster stack's `validate` is the control that the probe sees the Kubernetes
modules when they are loaded.
"""

import json
import subprocess
import sys

import pytest
from conftest import CLUSTER_STACKS, DOCKER_STACKS

from components.core.names import PROJECT_DIR
from components.stack.stackconfig import read_stack_config

KUBERNETES = {"pulumi_kubernetes", "components.targets.kubernetes"}
PULUMI = {"pulumi", "pulumi_docker", "pulumi_random", "grpc"}
TENSORZERO = {"tensorzero", "httpx"}
ZXCVBN = {"zxcvbn"}  # rates credentials beyond dev only

PROBE = """
import contextlib, io, json, sys
from components.operate.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    code = main(sys.argv[1:])
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def imported(*args: str) -> set[str]:
    """The modules and their packages a fresh `python -m components ARGS` holds when it is done."""
    run = subprocess.run(
        [sys.executable, "-c", PROBE, *args], cwd=PROJECT_DIR, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout.splitlines()[-1])
    assert report["code"] == 0, run.stderr
    return {prefix for name in report["modules"] for prefix in (name, name.split(".")[0])}


def test_a_docker_stacks_validate_imports_no_kubernetes_module(canary_env_dirs):
    stack = DOCKER_STACKS[0]
    modules = imported("validate", stack, "--env-dir", canary_env_dirs[stack])
    assert not modules & KUBERNETES
    # It runs Pulumi's mocks itself (the probe sees what is loaded); TensorZero's loader runs in its child.
    assert modules >= PULUMI
    assert not modules & TENSORZERO
    assert not modules & ZXCVBN, "dev rates no credential"


def test_validate_beyond_dev_rates_credentials_with_zxcvbn(canary_env_dirs):
    stack = next(s for s in DOCKER_STACKS if read_stack_config(PROJECT_DIR, s)[0]["tier"] != "dev")
    assert imported("validate", stack, "--env-dir", canary_env_dirs[stack]) >= ZXCVBN


@pytest.mark.skipif(not CLUSTER_STACKS, reason="no cluster stack in stacks/")
def test_a_cluster_stacks_validate_imports_the_kubernetes_modules(canary_env_dirs):
    stack = CLUSTER_STACKS[0]
    assert "components.targets.kubernetes" in imported("validate", stack, "--env-dir", canary_env_dirs[stack])


@pytest.mark.parametrize("verb", ["render", "env"])
def test_render_and_env_import_neither_pulumi_nor_tensorzero(verb, canary_env_dirs, tmp_path):
    stack = DOCKER_STACKS[0]
    extra = ["--out", str(tmp_path)] if verb == "render" else []
    modules = imported(verb, stack, "--env-dir", canary_env_dirs[stack], *extra)
    assert not modules & (PULUMI | TENSORZERO | KUBERNETES)
    assert "components.stack.deployment" in modules


def test_plan_imports_pulumi_but_not_tensorzero(canary_env_dirs):
    stack = DOCKER_STACKS[0]
    modules = imported("plan", stack, "--env-dir", canary_env_dirs[stack])
    assert modules >= PULUMI
    assert not modules & (TENSORZERO | KUBERNETES)
