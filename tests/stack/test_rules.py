"""A setting that would be silently ignored is refused: a service's own bind_address where it publishes nothing,
named with where its port is published instead and the key that moves it (components/stack/rules.py)."""

import pytest
from conftest import MINIMAL_CATALOG, MINIMAL_ENV, make_project, minimal_config

from components.core.errors import ConfigError
from components.stack.loader import load

# Beyond dev the credentials must be strong; the UI's login and the edge's key too (edge.keys).
STRONG_ENV = (
    "TENSORZERO_CLICKHOUSE_PASSWORD=c-0123456789abcdef\nGRAFANA_ADMIN_PASSWORD=g-0123456789abcdef\n"
    "TENSORZERO_CLICKHOUSE_READONLY_PASSWORD=r-0123456789abcdef\nTENSORZERO_UI_PASSWORD=u-0123456789abcdef\n"
    "TENSORZERO_API_KEY=5f3e9b21c4d8a6f07e3bc915d2a40a7d5f3e9b21c4d8a6f07e3bc915d2a40a7d\n"
)


def load_stack(root, tier="dev", **sections):
    beyond_dev = {"clickhouse": {"user": "pmoves"}} if tier != "dev" else {}
    config = minimal_config(tier=tier, **(beyond_dev | sections))
    env = MINIMAL_ENV if tier == "dev" else STRONG_ENV
    return load(
        "test", project_dir=make_project(root, config, {"catalog.toml": MINIMAL_CATALOG, "env/env.shared": env})
    )


def problems(root, **kwargs) -> list[str]:
    with pytest.raises(ConfigError) as failure:
        load_stack(root, **kwargs)
    return [f"{p.key}: {p.message}" for p in failure.value.problems]


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
