"""The seed's URLs on the host PMOVES runs on, as prod publishes them: plain HTTP on loopback, HTTPS beyond it.

What the seed's runbook calls on its host: `http://localhost:3030` (the edge's plain listener, keys still
asked for inference) and `curl http://localhost:8123/ping` (ClickHouse's HTTP port, on loopback only). The
edge's answers on those listeners are run on real nginx in tests/services/test_edge_access.py.
"""

import ipaddress
import os

import pytest
from conftest import (
    MINIMAL_CATALOG,
    MINIMAL_ENV,
    container_of,
    load_minimal,
    make_project,
    minimal_config,
    resources,
)

from components.core.errors import ConfigError
from components.core.names import SEED_CONTAINERS
from components.core.plans import Endpoint
from components.model.settings import can_bind
from components.operate.plan import plan
from components.services import clickhouse, edge
from components.services.clickhouse import SERVICE as CLICKHOUSE
from components.services.edge import GATEWAY_BEHIND_EDGE_ALIAS
from components.services.edge import SERVICE as EDGE
from components.services.gateway import SERVICE as GATEWAY
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


ONE_ENGINE_OTHERWISE_SPELT = ["unix:///var/run//docker.sock", "unix:///var/run/./docker.sock"] + (
    ["unix:///run/docker.sock"] if os.path.realpath("/var/run") == "/run" else []  # Debian's /var/run is a link
)


@pytest.mark.parametrize("url", ONE_ENGINE_OTHERWISE_SPELT)
def test_one_engine_spelt_otherwise_is_the_same_engine(tmp_path, url):
    """Docker answers `Conflict. The container name is already in use` whatever the socket's spelling."""
    with pytest.raises(ConfigError) as refused:
        load("test", project_dir=seeded_project(tmp_path, {"url": url}))
    assert [p.key for p in refused.value.problems] == ["seed_container_names"]


def test_the_seeds_names_claimed_in_the_pulumi_clis_text_are_claimed(tmp_path):
    """`pulumi config set seed_container_names true` writes the text "true", which the model reads as true."""
    project = seeded_project(tmp_path, None)
    make_project(tmp_path, minimal_config(name_prefix="pmoves-other", seed_container_names="true"), {}, "other")
    with pytest.raises(ConfigError) as refused:
        load("test", project_dir=project)
    assert [p.key for p in refused.value.problems] == ["seed_container_names"]


@pytest.mark.parametrize(
    ("other", "key", "said"),
    [
        ({"name_prefix": "pmoves-test"}, "name_prefix", "uses the same name_prefix"),
        ({"name_prefix": "pmoves-other", "volume_prefix": "pmoves-test"}, "name_prefix", "would share data"),
    ],
    ids=["same-name-prefix", "same-volume-names"],
)
def test_two_stacks_claiming_one_prefix_on_one_engine_are_refused(tmp_path, other, key, said):
    """A dev stack given prod's name_prefix on prod's engine would take prod's names, and share its volumes."""
    files = {"catalog.toml": MINIMAL_CATALOG, "env/env.shared": MINIMAL_ENV}
    project = make_project(tmp_path, minimal_config(), files, stack="test")
    make_project(tmp_path, minimal_config(**other), {}, stack="other")
    with pytest.raises(ConfigError) as refused:
        load("test", project_dir=project)
    [problem] = [p for p in refused.value.problems if p.key == key]
    assert "stack 'other'" in problem.message and said in problem.message
    # On another engine, no clash.
    make_project(tmp_path, minimal_config(**other, hosts={"main": {"url": "ssh://pmoves@other-host"}}), {}, "other")
    load("test", project_dir=project)


def test_prods_placeholder_address_is_told_where_this_machine_does_not_hold_it(deployments):
    """prod's edge.bind_address is the operator's to set: validate on the host says when the host lacks it."""
    [told] = [n for n in deployments["prod"].notices if "edge.bind_address: 100.101.0.1" in n]
    if can_bind("100.101.0.1"):
        pytest.skip("this machine holds prod's placeholder address")
    assert told.startswith("stacks/Pulumi.prod.yaml: edge.bind_address: 100.101.0.1 is not an address of this machine")
    assert "`make up` from here fails" in told and "docs/exposure.md" in told


@pytest.mark.parametrize(
    ("bind", "told"),
    [("192.0.2.1", True), ("127.0.0.1", False), ("0.0.0.0", False)],
    ids=["not-held", "loopback", "every-address"],
)
def test_a_bind_address_the_local_engines_host_lacks_is_told_not_refused(tmp_path, bind, told):
    """192.0.2.1 is TEST-NET-1 (RFC 5737): never a machine's address. Grafana authenticates (its login), so dev
    publishes it there; only the address is in question."""
    deployment = load_minimal(tmp_path, grafana={"bind_address": bind})
    notices = [n for n in deployment.notices if "grafana.bind_address" in n]
    assert bool(notices) is told, deployment.notices
    assert not told or notices[0].startswith(f"stacks/Pulumi.test.yaml: grafana.bind_address: {bind} is not an address")


def test_an_address_on_another_engine_is_not_judged_here(deployments):
    """prod's GPU host is reached over ssh: this machine's addresses say nothing about its 100.101.0.2."""
    spec = deployments["prod"].spec
    assert spec.hosts["gpu"].url.startswith("ssh://") and spec.hosts["gpu"].bind_address == "100.101.0.2"
    assert not [n for n in deployments["prod"].notices if "100.101.0.2" in n]


def test_callers_reach_the_gateway_by_the_seeds_hostname_on_pmoves_networks(deployments, plans):
    """The gateway keeps a generated container name (each config change starts the next one beside it: the
    zero-downtime swap), so `tensorzero-gateway` is a network alias: the edge's, on every network prod joins it
    to, where `http://tensorzero-gateway:3000` and `:3030` (the seed's two URLs) are the edge's plain listeners.
    No other container answers to that name; the gateway itself is `tensorzero-gateway-core`, on the stack's
    network only."""
    desired = plans["prod"]
    edge_container, gateway_container = container_of(desired, EDGE.role), container_of(desired, GATEWAY.role)
    aliases = {n["name"]: n["aliases"] for n in edge_container["inputs"]["networksAdvanced"]}
    spec = deployments["prod"].spec
    assert set(aliases) == {spec.network_name, "pmoves_api", "pmoves_monitoring"}
    # On the stack's network it also takes the name its metrics answer at (edge.py: OWN_NETWORK_ALIAS).
    assert aliases.pop(spec.network_name) == [GATEWAY.alias, edge.OWN_NETWORK_ALIAS]
    assert all(found == [GATEWAY.alias] for found in aliases.values())
    assert GATEWAY.alias == "tensorzero-gateway"
    gateway_networks = gateway_container["inputs"]["networksAdvanced"]
    assert [(n["name"], n["aliases"]) for n in gateway_networks] == [(spec.network_name, [GATEWAY_BEHIND_EDGE_ALIAS])]
    assert gateway_container["inputs"]["name"].startswith(f"{spec.name_prefix}-tensorzero-gateway-")
    others = [r for r in resources(desired, "container:Container") if r is not edge_container]
    assert not [r["inputs"]["name"] for r in others for n in r["inputs"].get("networksAdvanced", [])
                if GATEWAY.alias in n.get("aliases", [])]  # fmt: skip
    # The seed's two ports answer inside: the edge's plain API listener and the gateway's published port.
    conf = next(f for f in edge.config_files(deployments["prod"], Endpoint(GATEWAY_BEHIND_EDGE_ALIAS, 3000))
                if f.mount == edge.CONFIG_PATH).content  # fmt: skip
    assert {f"listen {edge.PORT};", f"listen {spec.gateway.port};"} <= {line.strip() for line in conf.splitlines()}
