"""The main job, proven where it can run: `pulumi up` of an ephemeral stack of the real images.

Through Pulumi's Automation API with a local file backend, on this machine's Docker engine: deploy (two tiny
Ollama models, no hosted key), run the smoke suite against the stack's outputs, run `pulumi up` again and see
it change nothing, change one catalog model and see the engine touch exactly what `diff` predicted, destroy
and see no container, network or volume of the stack left.

Run by `make e2e` (the pull-request workflow's `e2e` job, on a GitHub-hosted runner). It needs the Pulumi CLI,
a Docker engine and an image registry; this project's own machines have no Pulumi CLI and no registry, so
here it skips saying which is missing; under CI it fails instead.
"""

import json
import os
import secrets
import subprocess
import sys

import pytest

from components.operate.smoke_outputs import StackOutputs
from components.stack.loader import PROJECT_DIR

from .ephemeral import (
    change_one_model,
    engine_changes,
    leftovers,
    make_project,
    offline_plan,
    predicted,
    why_not_here,
)

SMOKE_BUDGET_S = 180  # local models load on their first request
STAGES = ("deployed", "smoke", "idempotent", "changed", "destroyed")


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    """The ephemeral stack, deployed; destroyed and removed whatever the tests do."""
    if reason := why_not_here():
        if os.environ.get("CI"):
            pytest.fail(f"e2e: cannot run under CI: {reason}")
        pytest.skip(f"e2e: {reason}")
    from pulumi import automation as auto

    name = f"e2e-{secrets.token_hex(3)}"
    root = make_project(tmp_path_factory.mktemp("project"), name)
    state = tmp_path_factory.mktemp("state")
    env = {"PULUMI_BACKEND_URL": f"file://{state}", "PULUMI_CONFIG_PASSPHRASE": secrets.token_hex(16)}
    workspace = auto.LocalWorkspaceOptions(work_dir=str(root), env_vars=env)
    stack = auto.create_or_select_stack(stack_name=name, work_dir=str(root), opts=workspace)
    found = {"root": root, "stack": stack, "name": name, "prefix": f"pmoves-{name}", "done": set()}
    try:
        found["up"] = stack.up(on_output=print)
        found["done"].add("deployed")
        yield found
    finally:
        if "destroyed" not in found["done"]:
            stack.destroy(on_output=print)
        stack.workspace.remove_stack(name)


def counts(summary) -> dict[str, int]:
    return {getattr(op, "value", op): n for op, n in (summary or {}).items() if n}


def test_smoke_passes_on_the_deployed_stack(deployment, tmp_path):
    outputs = {key: value.value for key, value in deployment["up"].outputs.items()}
    assert not StackOutputs.from_document(outputs).empty
    path = tmp_path / "outputs.json"
    path.touch(mode=0o600)
    path.write_text(json.dumps(outputs))
    command = [sys.executable, "-m", "components", "smoke", deployment["name"], "--outputs", str(path)]
    command += ["--budget", str(SMOKE_BUDGET_S), "--junit", str(tmp_path / "smoke.xml")]
    done = subprocess.run(command, cwd=PROJECT_DIR)  # the suite lives in this checkout's tests/smoke
    assert done.returncode == 0
    deployment["done"].add("smoke")


def test_a_second_up_changes_nothing(deployment):
    preview = deployment["stack"].preview(on_output=print)
    assert set(counts(preview.change_summary)) == {"same"}, preview.change_summary
    again = deployment["stack"].up(on_output=print)
    assert set(counts(again.summary.resource_changes)) == {"same"}, again.summary.resource_changes
    deployment["done"].add("idempotent")


def test_one_model_changed_touches_exactly_what_diff_predicted(deployment):
    root, name = deployment["root"], deployment["name"]
    before = offline_plan(root, name)
    change_one_model(root)
    expected = predicted(before, offline_plan(root, name))
    assert expected, "the change must change something"
    steps: list[tuple[str, str]] = []

    def step(event) -> None:
        if event.resource_pre_event is not None:
            metadata = event.resource_pre_event.metadata
            steps.append((getattr(metadata.op, "value", metadata.op), metadata.urn))

    deployment["stack"].preview(on_event=step, on_output=print)
    assert engine_changes(steps) == expected
    done = deployment["stack"].up(on_output=print)
    replaced = counts(done.summary.resource_changes).get("replace", 0)
    assert replaced == sum(action == "replace" for action, _ in expected)
    deployment["done"].add("changed")


def test_destroy_leaves_nothing_of_the_stack(deployment):
    deployment["stack"].destroy(on_output=print)
    deployment["done"].add("destroyed")
    assert leftovers(deployment["prefix"]) == {"containers": [], "networks": [], "volumes": []}
    assert deployment["done"] == set(STAGES)  # every stage ran, in order
