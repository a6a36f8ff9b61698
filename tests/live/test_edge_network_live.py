"""The edge's metrics port answers only on the stack's own network, on the real Docker engine.

A stack whose edge joins a second, PMOVES-like network (`<prefix>-pmoves_api`): the edge runs from the stand-in
OpenResty image (pmoves-test/openresty: Debian's nginx + Lua, tests/live/images/openresty) with its rendered
files, command and environment, joined to exactly the networks, with exactly the aliases, that the Docker
target declares for it (its program run under Pulumi's mocks). A second edge container beside it plays the
rolling swap, when two edges answer to the same names. Clients are containers on each network; Docker's own
resolver answers them and the edges. No gateway runs: the metrics server and the edge's health need none.
"""

import json

import pytest
from conftest import MINIMAL_CATALOG, MINIMAL_ENV, container_of, make_project, minimal_config

from components.core.monitoring import EDGE_DURATION, EDGE_REQUESTS
from components.operate.plan import plan
from components.services import edge
from components.services.edge import SERVICE as EDGE
from components.stack.loader import load

from .engine import docker, fleet_of
from .livestack import env_of, uploads

# Each URL asked until it answers 200 or the time is up; prints {url: status or error, url + " body": text}.
CLIENT = """
import json, sys, time, urllib.error, urllib.request
urls, patience = json.loads(sys.argv[1]), float(sys.argv[2])
seen = {}
for url in urls:
    deadline = time.monotonic() + patience
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                seen[url], seen[url + " body"] = answer.status, answer.read().decode()
        except urllib.error.HTTPError as error:
            seen[url] = error.code
        except OSError as error:
            seen[url] = type(error).__name__ + ": " + str(getattr(error, "reason", error))
        if seen[url] == 200 or time.monotonic() >= deadline:
            break
        time.sleep(0.2)
print(json.dumps(seen))
"""
PATIENCE_S = 20  # on the stack's network: until the edges have resolved their own-network alias


def ask(network: str, urls: list[str], patience: float) -> dict:
    """GET each URL from a fresh container on `network` (the stand-ins' Python image)."""
    output = docker(
        "run", "--rm", "--network", network, "--entrypoint", "python3", "pmoves-test/python", "-c", CLIENT,
        json.dumps(urls), str(patience),
    )  # fmt: skip
    return json.loads(output)


@pytest.fixture(scope="module")
def two_networks(live_images, tmp_path_factory):
    """The fleet with the stack's network, a PMOVES-like one, and the stack's deployment joining both."""
    with fleet_of("edge-net", network="tensorzero") as fleet:  # the stack's: `<name_prefix>-tensorzero`
        shared = fleet.create_network("pmoves_api")
        config = minimal_config(
            name_prefix=fleet.prefix, hosts={"main": {"networks": [shared]}}, edge={"networks": [shared]}
        )
        files = {"catalog.toml": MINIMAL_CATALOG, "env/env.shared": MINIMAL_ENV}
        project = make_project(tmp_path_factory.mktemp("edge-net"), config, files)
        deployment = load("test", project_dir=project)
        assert deployment.spec.network_name == fleet.network
        yield fleet, deployment, shared


def run_edge(fleet, deployment, name: str, networks: list[dict]):
    """One edge container as the Docker target declares it: its first network at create, the rest joined before it
    starts (as the engine does for `networks_advanced`), each with its aliases."""
    planned = deployment.plans[EDGE.role]
    first, *others = networks
    return fleet.run(
        name,
        "pmoves-test/openresty",
        aliases=first["aliases"],
        network=first["name"],
        command=list(planned.command),
        env=env_of(planned.env),
        files=uploads(planned.files),
        healthcheck=edge.HEALTHCHECK,
        joins=[(network["name"], network["aliases"]) for network in others],
    )


def test_the_metrics_port_answers_on_the_stacks_network_only(two_networks):
    fleet, deployment, shared = two_networks
    desired = plan(deployment)
    networks = container_of(desired, EDGE.role)["inputs"]["networksAdvanced"]
    # What the Docker target declares: the own-network alias on the stack's network alone.
    assert networks == [
        {"name": fleet.network, "aliases": [EDGE.alias, edge.OWN_NETWORK_ALIAS]},
        {"name": shared, "aliases": [EDGE.alias]},
    ]
    edges = [run_edge(fleet, deployment, name, networks) for name in ("edge-old", "edge-new")]  # a swap's two
    for container in edges:
        container.wait_healthy(timeout=60)

    def metrics(host: str) -> str:
        return f"http://{host}:{edge.METRICS_PORT}{edge.OWN_METRICS_PATH}"

    hosts = [EDGE.alias, edge.OWN_NETWORK_ALIAS, *(container.name for container in edges)]
    inside = ask(fleet.network, [metrics(host) for host in hosts], PATIENCE_S)
    for host in hosts:
        assert inside[metrics(host)] == 200, (host, inside, fleet.logs())
        body = inside[metrics(host) + " body"]
        assert f"# TYPE {EDGE_DURATION} histogram" in body and f"# TYPE {EDGE_REQUESTS} counter" in body

    # Both edges have resolved their own addresses by now (each answered above): what the other network gets is
    # the check's answer, not a lookup still to come. The API port still answers there.
    api_health = f"http://{EDGE.alias}:{EDGE.port}{edge.HEALTH_PATH}"
    outside_hosts = [EDGE.alias, *(container.name for container in edges)]
    outside = ask(shared, [api_health, *(metrics(host) for host in outside_hosts)], 0)
    assert outside[api_health] == 200, outside
    for host in outside_hosts:
        assert outside[metrics(host)] == 404, (host, outside)
        assert EDGE_REQUESTS not in outside.get(metrics(host) + " body", "")
    # The own-network alias is not a name on the other network at all.
    unknown = ask(shared, [metrics(edge.OWN_NETWORK_ALIAS)], 0)[metrics(edge.OWN_NETWORK_ALIAS)]
    assert isinstance(unknown, str) and unknown.startswith("URLError"), unknown
    # Refused there without asking a key: no failed authentication logged by either edge.
    for container in edges:
        assert "pmoves_edge: failed" not in container.logs(200)
