"""The edge's metrics port answers only on the stack's own network (Docker target, the edge on PMOVES's networks).

nginx listens on every address of the container, and Docker assigns one per network at run time: the metrics
server answers only on the addresses Docker's resolver gives for the edge's alias on the stack's network alone
(services/edge.py, OWN_NETWORK_ALIAS). Here prod's rendered edge runs under a real nginx + Lua, and a stand-in
for Docker's resolver (tests/edge_rig.py) plays what Docker would answer; tests/live/test_edge_network_live.py
runs it on two real Docker networks.
"""

import time

import httpx
import pytest
from conftest import STACKS, container_of
from edge_rig import StandIn, docker_resolver, running_edge  # noqa: F401 (docker_resolver: a fixture)

from components.core.monitoring import EDGE_DURATION, EDGE_REQUESTS
from components.core.plans import Endpoint
from components.services import edge
from components.services.edge import SERVICE as EDGE

SETTLE_S = 10 * edge.RESOLVE_EVERY_S  # a changed answer is seen after the next lookup; generous on a busy machine
HERE = "127.0.0.1"  # the address the metrics listener takes in the rig (edge_rig.local_layout)
ELSEWHERE = "127.0.0.2"  # a loopback address nginx does not listen on: another container's, for the check


@pytest.fixture(scope="module")
def stand_in():
    upstream = StandIn()
    yield upstream
    upstream.close()


def status(running) -> int:
    return httpx.get(f"http://{running.layout.metrics}{edge.OWN_METRICS_PATH}", timeout=5).status_code


def settles_at(running, expected: int) -> None:
    deadline = time.monotonic() + SETTLE_S
    while (seen := status(running)) != expected:
        assert time.monotonic() < deadline, f"metrics answered {seen}, not {expected}, within {SETTLE_S} s"
        time.sleep(0.1)


def stays_at(running, expected: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert status(running) == expected
        time.sleep(0.1)


def test_only_a_docker_edge_on_more_networks_than_the_stacks_checks(deployments):
    checked = {stack for stack in STACKS if edge.own_network_alias(deployments[stack].spec)}
    docker_joining = {s for s in STACKS if deployments[s].spec.kubernetes is None and deployments[s].spec.edge.networks}
    assert checked == docker_joining and "prod" in checked and "dev" not in checked
    for stack in STACKS:
        conf = edge.config_files(deployments[stack], Endpoint(edge.GATEWAY_BEHIND_EDGE_ALIAS, 3000))[0].content
        # In the metrics server alone: the API's servers never pay for the check.
        metrics_server = conf[conf.index(f"listen {edge.METRICS_PORT};") :].split("\nserver {")[0]
        assert conf.count("own_network_only") == metrics_server.count("own_network_only") == (stack in checked)


def test_metrics_answer_only_on_the_own_networks_addresses(
    deployments, docker_resolver, stand_in, tmp_path, self_signed
):
    deployment = deployments["prod"]
    alias = edge.own_network_alias(deployment.spec)
    docker_resolver.answers = {}
    with running_edge(deployment, stand_in.endpoint, tmp_path, tls=self_signed) as running:
        # Nothing resolved yet: closed, not open.
        stays_at(running, 404, 1)
        docker_resolver.answers = {alias: [HERE]}
        settles_at(running, 200)
        text = httpx.get(f"http://{running.layout.metrics}{edge.OWN_METRICS_PATH}").text
        assert f"# TYPE {EDGE_DURATION} histogram" in text and f"# TYPE {EDGE_REQUESTS} counter" in text
        # A rolling swap: the old and the new edge both answer to the alias; each keeps answering on its own.
        docker_resolver.answers = {alias: [ELSEWHERE, HERE]}
        stays_at(running, 200, 2)
        # A lookup that fails keeps the last known addresses.
        docker_resolver.answers = {}
        stays_at(running, 200, 2)
        # The connection arrived on an address that is not the edge's on the stack's network: nothing there.
        docker_resolver.answers = {alias: [ELSEWHERE]}
        settles_at(running, 404)
        answer = httpx.get(f"http://{running.layout.metrics}{edge.OWN_METRICS_PATH}")
        assert EDGE_REQUESTS not in answer.text
        # Not an authentication failure: nothing throttled or logged as a failed key.
        assert "failed" not in running.log("error.log")
        docker_resolver.answers = {alias: [HERE]}
        settles_at(running, 200)
        assert 'status="404"' not in httpx.get(f"http://{running.layout.metrics}{edge.OWN_METRICS_PATH}").text


def test_the_alias_is_declared_on_the_stacks_network_only(plans, deployments):
    """What the Docker target asks of the engine: the own-network alias on the stack's network, and only there."""
    spec = deployments["prod"].spec
    networks = {n["name"]: n["aliases"] for n in container_of(plans["prod"], EDGE.role)["inputs"]["networksAdvanced"]}
    assert networks.pop(spec.network_name) == [EDGE.alias, edge.OWN_NETWORK_ALIAS]
    assert networks == {name: [EDGE.alias] for name in spec.edge.networks} and networks
    # Prometheus scrapes the edge at that name: an address it gets there is one that answers.
    assert f"{edge.OWN_NETWORK_ALIAS}:{edge.METRICS_PORT}" in deployments["prod"].plans["prometheus"].files[0].content
    dev = {n["name"]: n["aliases"] for n in container_of(plans["dev"], EDGE.role)["inputs"]["networksAdvanced"]}
    assert dev == {deployments["dev"].spec.network_name: [EDGE.alias]}
