"""The UI: it needs only the gateway's address."""

import pytest
from conftest import MINIMAL_CATALOG, MINIMAL_ENV, container_of, containers, make_project, minimal_config, planned_env

from components.operate.plan import plan
from components.services import edge
from components.services.edge import SERVICE as EDGE
from components.services.gateway import SERVICE as GATEWAY
from components.services.ui import SERVICE as UI
from components.stack.loader import load


def real_gateway_url(spec) -> str:
    """The UI talks to the gateway itself: behind the edge, at the gateway's internal alias."""
    alias = edge.GATEWAY_BEHIND_EDGE_ALIAS if spec.deployed(EDGE) else GATEWAY.alias
    return f"http://{alias}:{GATEWAY.port}"


def test_ui_is_told_only_where_the_gateway_is(deployments, stack):
    deployment = deployments[stack]
    env = planned_env(deployment, UI.role)
    assert [(v.name, v.value) for v in env] == [("TENSORZERO_GATEWAY_URL", real_gateway_url(deployment.spec))]


def test_ui_health_is_its_own_health_endpoint(plans, deployments, stack):
    inputs = container_of(plans[stack], UI.role)["inputs"]
    assert inputs["healthcheck"]["tests"][1:] == [
        "wget",
        "--spider",
        "--tries",
        "1",
        f"http://localhost:{UI.port}/health",
    ]
    assert inputs["envs"] == [f"TENSORZERO_GATEWAY_URL={real_gateway_url(deployments[stack].spec)}"]


@pytest.fixture
def without_ui(tmp_path):
    project = make_project(
        tmp_path,
        minimal_config(ui={"enabled": False}),
        {"catalog.toml": MINIMAL_CATALOG, "env/env.shared": MINIMAL_ENV},
    )
    return plan(load("test", project_dir=project))


def test_a_disabled_ui_declares_nothing(without_ui):
    assert "pmoves-test-tensorzero-ui" not in containers(without_ui)
    assert "ui" not in without_ui["outputs"]["endpoints"]
