"""The end-to-end deploy (tests/e2e, `make e2e`) cannot run here: no Pulumi CLI, no image registry. What can be
checked here is: that it says so (and fails under CI), that the stack it deploys is one the loader and
TensorZero's loader accept, and that its one-model change is one `diff` predicts precisely."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from e2e import ephemeral

from components.stack.loader import PROJECT_DIR, load

VENV = Path(sys.executable).parent.parent


def make_e2e(**env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("CI", "MAKEFLAGS", "MAKELEVEL")}
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(PROJECT_DIR), f"VENV={VENV}", "e2e"],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_make_e2e_says_why_it_cannot_run_here_and_fails_under_ci():
    reason = ephemeral.why_not_here()
    if reason is None:
        pytest.skip("this machine can deploy the real images: `make e2e` runs the deploy itself")
    here = make_e2e()
    assert here.returncode == 0, here.stdout + here.stderr
    assert "SKIPPED [1] tests/e2e/test_deploy.py" in here.stdout and reason in here.stdout
    assert "4 skipped" in here.stdout  # every stage says it, none passes
    under_ci = make_e2e(CI="true")
    assert under_ci.returncode != 0
    assert f"e2e: cannot run under CI: {reason}" in under_ci.stdout


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    return ephemeral.make_project(tmp_path_factory.mktemp("e2e-project"), "e2e-check")


def test_the_ephemeral_stack_is_valid_and_its_own(project):
    deployment = load("e2e-check", project_dir=project)
    spec = deployment.spec
    assert spec.name_prefix == "pmoves-e2e-check" and spec.tier.value == "dev"
    assert not spec.protected  # destroy must be able to remove its volumes
    assert deployment.translation.ollama_pulls == {"pmoves-ollama": ("smollm:135m", "all-minilm:22m")}
    assert deployment.translation.variables == []  # no hosted key
    # Every host port it publishes (the edge publishes the gateway's and the UI's) is its own, chosen free.
    ports = [p.external for service in spec.deployed_services for p in spec.placement(service).ports]
    assert len(set(ports)) == len(ports)
    assert set(ports) == {spec.section(role).port for role in ephemeral.PUBLISHED}
    done = subprocess.run(
        [sys.executable, "-m", "components", "validate", "e2e-check"],
        cwd=project,
        env={**os.environ, "PYTHONPATH": str(project)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr  # TensorZero's own loader included


def test_the_one_model_change_is_predicted_precisely(project, tmp_path):
    copy = ephemeral.make_project(tmp_path / "project", "e2e-check")
    before = ephemeral.offline_plan(copy, "e2e-check")
    ephemeral.change_one_model(copy)
    after = ephemeral.offline_plan(copy, "e2e-check")
    # Sampling defaults: the gateway gets a function, the edge sends bare names to it; nothing else moves.
    assert ephemeral.predicted(before, after) == {("replace", "gateway-container"), ("replace", "edge-container")}


def test_engine_steps_read_as_diff_names_them():
    steps = [
        ("same", "urn:pulumi:s::p::tensorzero:stack:Gateway::gateway"),
        ("create-replacement", "urn:pulumi:s::p::tensorzero:stack:Gateway$docker:index/container:Container::gw"),
        ("replace", "urn:pulumi:s::p::tensorzero:stack:Gateway$docker:index/container:Container::gw"),
        ("delete-replaced", "urn:pulumi:s::p::tensorzero:stack:Gateway$docker:index/container:Container::gw"),
        ("update", "urn:pulumi:s::p::docker:index/container:Container::ui"),
    ]
    assert ephemeral.engine_changes(steps) == {("replace", "gw"), ("update", "ui")}


def test_leftovers_asks_docker_for_the_stacks_objects():
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        pytest.fail("no Docker engine: .ci/system-deps starts one")
    assert ephemeral.leftovers("pmoves-e2e-none-such") == {"containers": [], "networks": [], "volumes": []}
