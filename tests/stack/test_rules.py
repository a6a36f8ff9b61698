"""A setting that would be silently ignored is refused: a service's own bind_address where it publishes nothing,
named with where its port is published instead and the key that moves it (components/stack/rules.py)."""

import pytest
from conftest import MINIMAL_CATALOG, MINIMAL_ENV, STRONG_ENV, make_project, minimal_config, refusals

from components.stack.loader import load


def load_stack(root, tier="dev", **sections):
    beyond_dev = {"clickhouse": {"user": "pmoves"}} if tier != "dev" else {}
    config = minimal_config(tier=tier, **(beyond_dev | sections))
    env = MINIMAL_ENV if tier == "dev" else STRONG_ENV
    return load(
        "test", project_dir=make_project(root, config, {"catalog.toml": MINIMAL_CATALOG, "env/env.shared": env})
    )


def problems(root, **kwargs) -> list[str]:
    return refusals(lambda: load_stack(root, **kwargs))


@pytest.mark.parametrize("tier", ["dev", "staging"])
def test_the_uis_bind_address_behind_the_edge_is_refused_naming_the_edges(tmp_path, tier):
    assert problems(tmp_path, tier=tier, ui={"bind_address": "0.0.0.0"}) == [
        "ui.bind_address: 0.0.0.0 has no effect: the ui publishes no port of its own; the edge publishes it on "
        "127.0.0.1:4000: set edge.bind_address instead"
    ]


def test_every_face_the_edge_publishes_the_ui_on_is_named(tmp_path):
    edge = {"bind_address": "10.0.0.5", "tls_terminated_by": "caddy on the main host"}
    found = problems(tmp_path, tier="staging", edge=edge, ui={"bind_address": "0.0.0.0"})
    assert found == [
        "ui.bind_address: 0.0.0.0 has no effect: the ui publishes no port of its own; the edge publishes it on "
        "10.0.0.5:4000: set edge.bind_address instead"
    ], found


def test_the_gateways_bind_address_behind_the_edge_is_refused_too(tmp_path):
    assert problems(tmp_path, gateway={"bind_address": "0.0.0.0"}) == [
        "gateway.bind_address: 0.0.0.0 has no effect: the gateway publishes no port of its own; the edge publishes "
        "it on 127.0.0.1:3030: set edge.bind_address instead"
    ]


def test_a_bind_address_without_a_port_is_refused(tmp_path):
    assert problems(tmp_path, prometheus={"port": None, "bind_address": "127.0.0.1"}) == [
        "prometheus.bind_address: 127.0.0.1 has no effect: prometheus.port is null, so the prometheus publishes nothing"
    ]


def test_where_the_ui_publishes_its_own_port_its_bind_address_takes_effect(tmp_path):
    """Without the edge serving it, the UI's own port is published, on its own bind_address: in Pulumi's plan."""
    from components.operate.plan import plan

    deployment = load_stack(tmp_path, edge={"serve_ui": False}, ui={"bind_address": "127.0.0.2"})
    (ui,) = [r for r in plan(deployment)["resources"] if r["name"] == "ui-container"]
    assert ui["inputs"]["ports"] == [{"external": 4000, "internal": 4000, "ip": "127.0.0.2"}]
    edge_plan = load_stack(tmp_path / "edge", edge={"bind_address": "127.0.0.3"})
    assert [(p.ip, p.external) for p in edge_plan.spec.placement("edge").ports if p.origin == "ui"] == [
        ("127.0.0.3", 4000)
    ]
