"""The seed's URLs on the host PMOVES runs on, as prod publishes them: plain HTTP on loopback, HTTPS beyond it.

What the seed's runbook calls on its host: `http://localhost:3030` (the edge's plain listener, keys still
asked for inference) and `curl http://localhost:8123/ping` (ClickHouse's HTTP port, on loopback only). The
edge's answers on those listeners are run on real nginx in tests/services/test_edge_access.py.
"""

import ipaddress

import pytest
from conftest import MINIMAL_CATALOG, MINIMAL_ENV, make_project, minimal_config, resources

from components.core.errors import ConfigError
from components.core.names import SEED_CONTAINERS
from components.operate.plan import plan
from components.services import clickhouse, edge
from components.services.clickhouse import SERVICE as CLICKHOUSE
from components.services.edge import SERVICE as EDGE
from components.stack.loader import load


def test_prod_publishes_the_seeds_urls_on_loopback_and_only_https_beyond(deployments):
    spec = deployments["prod"].spec
    ports = {(p.ip, p.external): p.internal for p in spec.placement(EDGE).ports}
    outside = spec.bind_address(EDGE)
    assert not ipaddress.ip_address(outside).is_loopback
    assert ports[("127.0.0.1", 3030)] == edge.PORT  # http://localhost:3030, as the seed writes it
    assert ports[(outside, 3030)] == edge.TLS_PORTS[edge.PORT]
    # Beyond loopback, only the HTTPS listeners.
    assert {internal for (ip, _), internal in ports.items() if ip != "127.0.0.1"} == set(edge.TLS_PORTS.values())


def test_prod_publishes_clickhouse_http_on_loopback_only(deployments):
    spec = deployments["prod"].spec
    [published] = spec.placement(CLICKHOUSE).ports
    assert (published.ip, published.external, published.internal) == ("127.0.0.1", 8123, clickhouse.PORT)


def seeded_project(tmp_path, other_host: dict | None):
    files = {"catalog.toml": MINIMAL_CATALOG, "env/env.shared": MINIMAL_ENV}
    project = make_project(tmp_path, minimal_config(seed_container_names=True), files, stack="test")
    if other_host is not None:
        other = minimal_config(name_prefix="pmoves-other", seed_container_names=True, hosts={"main": other_host})
        make_project(tmp_path, other, {}, stack="other")
    return project


def test_the_seeds_container_names_on_one_engine(tmp_path):
    """`docker exec -it tensorzero-clickhouse ...` as the seed writes it: the stack's containers carry the seed's
    names, in the plan Pulumi applies too."""
    deployment = load("test", project_dir=seeded_project(tmp_path / "one", None))
    prefix = deployment.spec.name_prefix
    names = {role: deployment.plans[role].container_name(prefix) for role in SEED_CONTAINERS}
    assert names == SEED_CONTAINERS
    declared = {r["inputs"]["name"] for r in resources(plan(deployment), "container:Container")}
    assert set(SEED_CONTAINERS.values()) <= declared
    assert f"{prefix}-tensorzero-grafana" in declared  # the others keep the prefix


def test_two_stacks_claiming_the_seeds_names_on_one_engine_are_refused(tmp_path):
    with pytest.raises(ConfigError) as refused:
        load("test", project_dir=seeded_project(tmp_path / "same", {}))
    [problem] = [p for p in refused.value.problems if p.key == "seed_container_names"]
    assert "stack 'other'" in problem.message and "unix:///var/run/docker.sock" in problem.message
    # On another engine, no clash.
    load("test", project_dir=seeded_project(tmp_path / "elsewhere", {"url": "ssh://pmoves@other-host"}))
