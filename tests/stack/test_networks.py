"""Joined networks: existing Docker networks (PMOVES's) that containers join by name, never resources of the stack.

PMOVES's callers (Agent Zero, Hi-RAG, Archon, ...) live on PMOVES's own networks and call
`http://tensorzero-gateway:3000`; a container of the stack that joins such a network answers there to the
same hostname as on the stack's own network.
"""

import pytest
from conftest import container_of, containers, load_minimal, resources

from components.core.errors import ConfigError
from components.core.names import SERVICE_LABEL
from components.operate.plan import plan
from components.services.clickhouse import SERVICE as CLICKHOUSE
from components.services.edge import SERVICE as EDGE
from components.services.gateway import SERVICE as GATEWAY

# What PMOVES's callers use, and the network each of them calls from (PMOVES's compose).
PMOVES_CALLS = [
    ("pmoves_api", GATEWAY.alias, 3000),
    ("pmoves_monitoring", GATEWAY.alias, 3000),
    ("pmoves_data", CLICKHOUSE.alias, 8123),
    ("pmoves_monitoring", CLICKHOUSE.alias, 8123),
]


def joined(container: dict, network: str) -> list[str]:
    """The aliases a container answers to on `network`; [] when it does not join it."""
    found = [n["aliases"] for n in container["inputs"]["networksAdvanced"] if n["name"] == network]
    return found[0] if found else []


def role_of(container: dict) -> str:
    return next(label["value"] for label in container["inputs"]["labels"] if label["label"] == SERVICE_LABEL)


def test_joined_networks_carry_the_hostnames_and_are_no_resource_of_the_stack(plans, deployments, stack):
    desired, spec = plans[stack], deployments[stack].spec
    owned = {r["inputs"]["name"] for r in resources(desired, "network:Network")}
    assert owned == {spec.network_name}
    for container in containers(desired).values():
        section = spec.section(role_of(container))
        networks = container["inputs"]["networksAdvanced"]
        # The stack's own network first, then each joined network under the same hostname; the names a plan takes
        # on the stack's network alone (the edge's, where its metrics answer) only there.
        own = list(deployments[stack].plans[role_of(container)].own_network_aliases)
        assert [n["name"] for n in networks] == [spec.network_name, *section.networks]
        assert all(n["aliases"] + own == networks[0]["aliases"] for n in networks[1:])
        assert not own or section.networks  # only beside a joined network
        assert not set(section.networks) & owned
    one_shots = [r for r in resources(desired, "container:Container") if r["inputs"].get("attach")]
    assert one_shots and all(
        [n["name"] for n in r["inputs"]["networksAdvanced"]] == [spec.network_name] for r in one_shots
    )


@pytest.mark.parametrize(("network", "hostname", "port"), PMOVES_CALLS)
def test_prod_answers_pmoves_callers_on_pmoves_networks(plans, deployments, network, hostname, port):
    """Exactly one container of prod answers to each hostname PMOVES's callers use, on their network."""
    desired = plans["prod"]
    answering = [c for c in containers(desired).values() if hostname in joined(c, network)]
    assert len(answering) == 1, [c["inputs"]["name"] for c in answering]
    role = role_of(answering[0])
    assert deployments["prod"].spec.placement(role).port == port


def test_prod_puts_the_edge_not_the_real_gateway_under_the_callers_hostname(plans):
    desired = plans["prod"]
    assert joined(container_of(desired, EDGE.role), "pmoves_api") == [GATEWAY.alias]
    assert joined(container_of(desired, GATEWAY.role), "pmoves_api") == []


@pytest.mark.parametrize(
    ("hosts", "gateway", "message"),
    [
        ({"main": {}}, {"networks": ["pmoves_api"]}, "'pmoves_api' is not declared in hosts.main.networks (none)"),
        (
            {"main": {"networks": ["pmoves_api"]}},
            {"networks": ["pmoves_api", "pmoves_api"]},
            "'pmoves_api' is listed twice",
        ),
        (
            {"main": {"networks": ["pmoves-test-tensorzero"]}},
            {"networks": ["pmoves-test-tensorzero"]},
            "'pmoves-test-tensorzero' is the stack's own network",
        ),
    ],
    ids=["undeclared", "twice", "own-network"],
)
def test_a_network_the_host_does_not_declare_is_refused(tmp_path, hosts, gateway, message):
    with pytest.raises(ConfigError) as failure:
        load_minimal(tmp_path, hosts=hosts, gateway=gateway)
    assert any(p.key == "gateway.networks" and p.message.startswith(message) for p in failure.value.problems), (
        failure.value
    )


def test_a_network_of_another_host_is_refused(tmp_path):
    """Docker networks belong to one engine: a service joins only what its own host declares."""
    gpu = {"url": "ssh://ops@gpu", "address": "10.0.0.7", "bind_address": "10.0.0.7"}
    hosts = {"main": {"networks": ["pmoves_api"]}, "gpu": gpu}
    guard = {"enabled": True, "host": "gpu", "allow": ["10.0.0.1/32"]}
    with pytest.raises(ConfigError) as failure:
        load_minimal(tmp_path, hosts=hosts, ollama={"host": "gpu", "networks": ["pmoves_api"]}, ollama_guard=guard)
    assert [p.key for p in failure.value.problems] == ["ollama.networks"]
    assert "hosts.gpu.networks (none)" in failure.value.problems[0].message


def test_a_throwaway_stack_joins_without_declaring_a_network(tmp_path):
    desired = plan(
        load_minimal(tmp_path, hosts={"main": {"networks": ["shared_net"]}}, grafana={"networks": ["shared_net"]})
    )
    assert joined(container_of(desired, "grafana"), "shared_net") == ["tensorzero-grafana"]
    assert [r["inputs"]["name"] for r in resources(desired, "network:Network")] == ["pmoves-test-tensorzero"]
