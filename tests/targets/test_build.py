"""Rules every stack must keep, checked on the whole program under Pulumi's mocks."""

import ipaddress
import json
import re
from urllib.parse import urlsplit

import pulumi
import pytest
import yaml
from conftest import (
    CANARIES,
    DOCKER_STACKS,
    MINIMAL_CATALOG,
    MINIMAL_ENV,
    container_of,
    containers,
    make_project,
    minimal_config,
    resources,
)

from components.core.names import SERVICE_LABEL, TYPE_PREFIX
from components.core.types import image_tag
from components.model.settings import Tier
from components.operate.plan import plan, use_mocks
from components.services import clickhouse, edge, gateway, ollama, prometheus
from components.services.clickhouse import SERVICE as CLICKHOUSE
from components.services.edge import SERVICE as EDGE
from components.services.gateway import SERVICE as GATEWAY
from components.services.grafana import SERVICE as GRAFANA
from components.services.ollama import SERVICE as OLLAMA
from components.services.prometheus import SERVICE as PROMETHEUS
from components.services.ui import SERVICE as UI
from components.stack.deployment import rendered_files
from components.stack.loader import load
from components.targets.build import build


def test_expected_resources(plans, deployments, stack):
    """The program declares exactly what the service plans say: a network and provider per host used, each
    plan's volumes and container."""
    desired, deployment = plans[stack], deployments[stack]
    spec, planned = deployment.spec, deployment.plans.values()
    hosts_used = {p.placement.host for p in planned}
    assert len(resources(desired, "network:Network")) == len(hosts_used)
    assert len(resources(desired, "providers:docker")) == len(hosts_used)
    assert sorted(v["inputs"]["name"] for v in resources(desired, "volume:Volume")) == sorted(
        f"{spec.name_prefix}-{volume.docker_name}" for p in planned for volume in p.volumes if not volume.adopted
    )
    # A rolling container (the gateway behind the edge) ends in a random generation, new on each replacement.
    named = sorted(re.sub(r"-[0-9a-f]{8}$", "", name) for name in containers(desired))
    assert named == sorted(p.container_name(spec.name_prefix) for p in planned if p.image)
    rolling = [re.sub(r"-[0-9a-f]{8}$", "", n) for n in containers(desired) if re.search(r"-[0-9a-f]{8}$", n)]
    assert rolling == [p.container_name(spec.name_prefix) for p in planned if p.rolling]
    components = sorted(
        r["type"].removeprefix(f"{TYPE_PREFIX}:") for r in desired["resources"] if r["type"].startswith(TYPE_PREFIX)
    )
    assert components == sorted(["DockerHost"] * len(hosts_used) + [p.component for p in planned])


def test_images_are_pinned_and_never_latest_outside_dev(plans, deployments, stack):
    for image in resources(plans[stack], "remoteImage:RemoteImage"):
        tag = image_tag(image["inputs"]["name"])
        assert tag and (tag != "latest" or deployments[stack].spec.tier == Tier.dev)
    for container in containers(plans[stack]).values():
        assert container["inputs"]["image"] in {i["inputs"]["name"] for i in resources(plans[stack], "RemoteImage")}


def test_only_the_spec_ports_are_published_each_on_its_bind_address(plans, deployments, stack):
    spec = deployments[stack].spec
    for service in spec.deployed_services:
        if service.container is None:
            continue
        ports = container_of(plans[stack], service.role)["inputs"].get("ports", [])
        placement = spec.placement(service)
        # Each on its own address: the service's bind address, or loopback for the edge's plain face.
        expected = [{"internal": p.internal, "external": p.external, "ip": p.ip} for p in placement.ports]
        assert ports == expected
        assert {p.ip for p in placement.ports} <= {spec.bind_address(service), "127.0.0.1"}
        if placement.published is not None:
            assert ports[0]["external"] == placement.published


def test_every_port_published_beyond_loopback_belongs_to_a_service_that_authenticates(plans, deployments, stack):
    """The rule of issue 13, over the whole program's resources: nothing answers strangers unasked."""
    planned = deployments[stack].plans
    for container in containers(plans[stack]).values():
        for port in container["inputs"].get("ports", []):
            if not ipaddress.ip_address(port["ip"]).is_loopback:
                assert planned[role(container)].authentication, (role(container), port)


def test_the_ui_is_published_only_through_the_edges_login(plans, deployments, stack):
    spec = deployments[stack].spec
    if not (spec.deployed(UI) and spec.deployed(EDGE) and spec.edge.serve_ui):
        return
    assert container_of(plans[stack], UI.role)["inputs"].get("ports", []) == []
    edge_ports = container_of(plans[stack], EDGE.role)["inputs"]["ports"]
    assert spec.ui.port in [p["external"] for p in edge_ports]


def seed_alias(spec, service) -> str:
    """The seed's hostname of each service; behind the edge the gateway moves to its internal alias."""
    return edge.GATEWAY_BEHIND_EDGE_ALIAS if service == GATEWAY and spec.deployed(EDGE) else service.alias


def test_containers_answer_to_the_seed_hostnames(plans, deployments, stack):
    spec = deployments[stack].spec
    for service in spec.deployed_services:
        if service.container:
            network = container_of(plans[stack], service.role)["inputs"]["networksAdvanced"][0]
            # The edge on PMOVES's networks also takes, on the stack's network alone, the name its metrics answer at.
            own = [edge.OWN_NETWORK_ALIAS] if service == EDGE and edge.own_network_alias(spec) else []
            assert network == {"name": f"{spec.name_prefix}-tensorzero", "aliases": [seed_alias(spec, service), *own]}


def test_every_container_has_a_healthcheck_its_image_can_run(plans, deployments, stack):
    """Each service module states what its image ships (from FACTS.md); its healthcheck runs one of those."""
    for container in containers(plans[stack]).values():
        planned = deployments[stack].plans[role(container)]
        check = container["inputs"]["healthcheck"]["tests"]
        assert check[0] == "CMD" and check[1] in planned.image_tools, (planned.image, check)
        assert container["inputs"]["wait"] is True  # `pulumi up` waits until healthy


def test_data_volumes_are_protected_outside_dev(plans, deployments, stack):
    protected = deployments[stack].spec.tier != Tier.dev
    volumes = resources(plans[stack], "volume:Volume")
    assert volumes and all(v["protect"] is protected for v in volumes)
    assert not any(r["protect"] for r in plans[stack]["resources"] if not r["type"].endswith("volume:Volume"))


def test_credentials_never_appear_in_the_plan(plans, deployments, stack):
    text = json.dumps(plans[stack])
    assert not [name for name, value in CANARIES.items() if value in text]
    for role in (CLICKHOUSE.role, GATEWAY.role):
        planned = {variable.name: variable for variable in deployments[stack].plans[role].env}
        # Pulumi marks the whole list secret; the plan masks each credential in it and shows the rest.
        for entry in container_of(plans[stack], role)["inputs"]["envs"]:
            name, shown = entry.split("=", 1)
            if planned[name].secret:
                assert shown == "[secret]" or (":[secret]@" in shown and shown.count("[secret]") == 1), entry
            else:
                assert shown == planned[name].value
    assert plans[stack]["outputs"]["clickhouse_url"] == "[secret]"


def test_start_order_follows_dependencies(plans, stack):
    desired = plans[stack]
    assert container_of(desired, CLICKHOUSE.role)["urn"] in container_of(desired, GATEWAY.role)["dependencies"]
    assert container_of(desired, GATEWAY.role)["urn"] in container_of(desired, UI.role)["dependencies"]
    assert container_of(desired, GATEWAY.role)["urn"] in container_of(desired, EDGE.role)["dependencies"]


def test_component_contract(plans, stack):
    by_urn = {r["urn"]: r for r in plans[stack]["resources"]}
    for resource in plans[stack]["resources"]:
        parent = by_urn.get(resource["parent"])
        if resource["type"].startswith(f"{TYPE_PREFIX}:"):
            assert parent is None  # components hang off the stack
        else:
            assert parent is not None and parent["type"].startswith(f"{TYPE_PREFIX}:"), resource["urn"]
            assert resource["name"].startswith(parent["name"] + "-"), resource["urn"]


@pytest.mark.parametrize("stack_name", DOCKER_STACKS)
def test_wiring_is_built_from_component_attributes(stack_name, deployments):
    deployment = deployments[stack_name]
    spec = deployment.spec
    use_mocks(stack_name)

    @pulumi.runtime.test
    def check():
        built = build(deployment)
        store, gate = built.services[CLICKHOUSE.role], built.services[GATEWAY.role]

        def assert_wiring(args):
            gateway_envs, ui_envs, store_networks, gateway_networks = args
            url = urlsplit(dict(e.split("=", 1) for e in gateway_envs)["TENSORZERO_CLICKHOUSE_URL"])
            assert (url.hostname, url.port) == (store_networks[0]["aliases"][0], CLICKHOUSE.port)
            assert url.path == f"/{spec.clickhouse.database}"
            assert (url.username, url.password) == (spec.clickhouse.user, CANARIES["TENSORZERO_CLICKHOUSE_PASSWORD"])
            ui_url = urlsplit(dict(e.split("=", 1) for e in ui_envs)["TENSORZERO_GATEWAY_URL"])
            assert (ui_url.hostname, ui_url.port) == (gateway_networks[0]["aliases"][0], GATEWAY.port)

        if spec.deployed(OLLAMA):
            ollama_url = spec.endpoint(OLLAMA, seen_from=spec.gateway.host).url + ollama.API_PATH
            config = gateway.config_file(deployment).content
            assert f'api_base = "{ollama_url}"' in config
        return pulumi.Output.all(
            gate.container.envs,
            built.services[UI.role].container.envs,
            store.container.networks_advanced,
            gate.container.networks_advanced,
        ).apply(assert_wiring)

    check()


@pytest.mark.parametrize("stack_name", DOCKER_STACKS)
def test_credentials_reach_containers_and_outputs_as_pulumi_secrets(stack_name, deployments):
    use_mocks(stack_name)

    async def assert_secrets(built):
        for service in (CLICKHOUSE, GATEWAY, GRAFANA):
            assert await built.services[service.role].container.envs.is_secret()
        secret = {"clickhouse_url", "grafana_admin", "edge_key"}
        for key, value in built.outputs.items():
            output = pulumi.Output.from_input(value)
            assert await output.is_secret() is (key in secret), key
            if key not in secret:
                assert not [v for v in CANARIES.values() if v in json.dumps(await output.future())], key

    @pulumi.runtime.test
    def check():
        return pulumi.Output.from_input(assert_secrets(build(deployments[stack_name])))

    check()


def test_every_rendered_file_is_uploaded_where_its_manifest_says(plans, deployments, stack):
    uploads = {
        (label["value"], upload["file"], upload["content"])
        for container in resources(plans[stack], "container:Container")
        for label in container["inputs"]["labels"]
        if label["label"] == SERVICE_LABEL
        for upload in container["inputs"].get("uploads", [])
    }
    rendered = {(f.container, f.mount, f.content) for f in rendered_files(deployments[stack])}
    assert uploads == rendered


# --- the compatibility edge (issue 5): who owns the seed's gateway address ----------------------------

# Throwaway stacks besides the repository's (all of which deploy the edge with no port of its own).
EDGE_VARIANTS = {"no-edge": {"enabled": False}, "edge-own-port": {"port": 3031}}


@pytest.fixture(scope="module")
def edge_variants(tmp_path_factory) -> dict:
    built = {}
    for name, variant in EDGE_VARIANTS.items():
        project = make_project(
            tmp_path_factory.mktemp(name),
            minimal_config(edge=variant),
            {"catalog.toml": MINIMAL_CATALOG, "env/env.shared": MINIMAL_ENV},
        )
        deployment = load("test", project_dir=project)
        built[name] = (deployment, plan(deployment))
    return built


@pytest.fixture(params=[*DOCKER_STACKS, *EDGE_VARIANTS])
def any_stack(request, deployments, plans):
    """(deployment, plan) of every repository stack and of each throwaway edge variant."""
    if request.param in DOCKER_STACKS:
        return deployments[request.param], plans[request.param]
    return request.getfixturevalue("edge_variants")[request.param]


def role(container: dict) -> str:
    [value] = [label["value"] for label in container["inputs"]["labels"] if label["label"] == SERVICE_LABEL]
    return value


def aliases(container: dict) -> list[str]:
    """Every hostname the container answers to, on whichever network (joined networks repeat them)."""
    found = [alias for network in container["inputs"]["networksAdvanced"] for alias in network.get("aliases", [])]
    return list(dict.fromkeys(found))


def test_the_edge_owns_the_public_gateway_port_and_the_seed_hostname(any_stack):
    deployment, desired = any_stack
    spec = deployment.spec
    every = resources(desired, "container:Container")  # one-shot containers included
    on_gateway_port = [
        role(c) for c in every if any(p["external"] == spec.gateway.port for p in c["inputs"].get("ports", []))
    ]
    answering_as_gateway = [role(c) for c in every if GATEWAY.alias in aliases(c)]
    gateway = container_of(desired, GATEWAY.role)["inputs"]
    gateway_bind = spec.bind_address(GATEWAY)
    if not spec.deployed(EDGE):
        assert (on_gateway_port, answering_as_gateway) == ([GATEWAY.role], [GATEWAY.role])
        assert gateway["ports"] == [{"internal": GATEWAY.port, "external": spec.gateway.port, "ip": gateway_bind}]
        assert aliases(container_of(desired, GATEWAY.role)) == [GATEWAY.alias]
        return
    front = container_of(desired, EDGE.role)
    own = [edge.OWN_NETWORK_ALIAS] if edge.own_network_alias(spec) else []  # its metrics' name (stack's network)
    assert answering_as_gateway == [EDGE.role] and aliases(front) == [GATEWAY.alias, *own]
    assert aliases(container_of(desired, GATEWAY.role)) == [edge.GATEWAY_BEHIND_EDGE_ALIAS]
    edge_port = spec.edge.port or spec.gateway.port
    # With TLS on, the published port reaches the HTTPS listener; the plain port stays on the stack's network.
    internal = edge.TLS_PORTS[EDGE.port] if spec.edge.tls.enabled else EDGE.port
    assert front["inputs"]["ports"][0] == {"internal": internal, "external": edge_port, "ip": spec.bind_address(EDGE)}
    if spec.edge.port is None:
        # The seed's `localhost:3030` reaches the edge; the real gateway is reachable only inside.
        assert on_gateway_port == [EDGE.role]
        assert gateway.get("ports", []) == []
    else:  # an edge on a port of its own leaves the gateway where it was
        assert on_gateway_port == [GATEWAY.role]
        assert gateway["ports"] == [{"internal": GATEWAY.port, "external": spec.gateway.port, "ip": gateway_bind}]


def test_the_ui_and_prometheus_reach_the_real_gateway_and_prometheus_scrapes_the_edge(any_stack):
    deployment, desired = any_stack
    spec = deployment.spec
    assert spec.prometheus.host == spec.ui.host == spec.gateway.host  # so every address below is an alias
    real_gateway = f"{seed_alias(spec, GATEWAY)}:{GATEWAY.port}"
    assert container_of(desired, UI.role)["inputs"]["envs"] == [f"TENSORZERO_GATEWAY_URL=http://{real_gateway}"]
    [config] = [
        u["content"]
        for u in container_of(desired, PROMETHEUS.role)["inputs"]["uploads"]
        if u["file"] == prometheus.CONFIG_PATH
    ]
    jobs = {job["job_name"]: job for job in yaml.safe_load(config)["scrape_configs"]}

    def scraped(job: dict) -> list[str]:
        return [target for group in job["static_configs"] for target in group["targets"]]

    assert scraped(jobs["tensorzero"]) == [real_gateway]  # the seed's job name: the gateway's own /metrics
    if not spec.deployed(EDGE):
        assert "tensorzero-edge" not in jobs
        return
    # The edge's own metrics port, never published: open on the stack's network, keyed on the public port. Where
    # the edge joins PMOVES's networks too, scraped at the name only the stack's network has.
    host = edge.own_network_alias(spec) or GATEWAY.alias
    assert scraped(jobs["tensorzero-edge"]) == [f"{host}:{edge.METRICS_PORT}"]
    assert jobs["tensorzero-edge"]["metrics_path"] == edge.OWN_METRICS_PATH
    # ...and the edge itself forwards to the real gateway.
    [conf] = [
        u["content"] for u in container_of(desired, EDGE.role)["inputs"]["uploads"] if u["file"] == edge.CONFIG_PATH
    ]
    [settings] = [
        u["content"]
        for u in container_of(desired, EDGE.role)["inputs"]["uploads"]
        if u["file"].endswith("/settings.json")
    ]
    upstream = json.loads(settings)["upstream"]
    assert f"{upstream['host']}:{upstream['port']}" == real_gateway
    assert f"upstream {edge.UPSTREAM} {{" in conf


def test_callers_gateway_url_is_the_public_gateway_port_and_without_the_edge_nothing_of_it_exists(any_stack):
    deployment, desired = any_stack
    spec = deployment.spec
    endpoints = desired["outputs"]["endpoints"]
    # The URL callers are given: the edge's when it took the gateway's port (it passes every path through).
    scheme = "https" if spec.deployed(EDGE) and spec.edge.tls.enabled else "http"
    public = f"{scheme}://{spec.hosts[spec.gateway.host].address}:{spec.gateway.port}"
    assert endpoints["gateway"] == public
    edge_parts = [
        r["urn"]
        for r in desired["resources"]
        if r["type"] == f"{TYPE_PREFIX}:Edge"
        or (r["type"].endswith("container:Container") and role(r) == EDGE.role)
        or (r["inputs"].get("name", "").startswith("openresty/") and r["name"].startswith(f"{EDGE.role}-"))
    ]
    rendered_for_edge = [f.path for f in rendered_files(deployment) if f.container == EDGE.role]
    if spec.deployed(EDGE):
        assert len(edge_parts) == 3 and rendered_for_edge  # component, container, image; its files
        assert (
            endpoints["edge"]
            == f"{scheme}://{spec.hosts[spec.edge.host].address}:{spec.edge.port or spec.gateway.port}"
        )
    else:
        assert edge_parts == [] and rendered_for_edge == []
        assert "edge" not in endpoints and "edge" not in desired["outputs"]["containers"]


def reachable_in_plan(desired: dict, spec) -> set[tuple[str, int]]:
    """Every (host, port) a container of the plan answers on: alias and port on its network, published ports."""
    listening = {s.role: {s.port} for s in spec.all_services if s.port}
    listening[CLICKHOUSE.role].add(clickhouse.METRICS_PORT)
    listening[EDGE.role].add(edge.METRICS_PORT)
    found = set()
    for container in containers(desired).values():
        inputs = container["inputs"]
        role = next(label["value"] for label in inputs["labels"] if label["label"] == SERVICE_LABEL)
        for network in inputs["networksAdvanced"]:
            found |= {(alias, port) for alias in network["aliases"] for port in listening[role]}
        host = next(h for h in spec.hosts.values() if h.url == provider_url(desired, container))
        found |= {(host.address, port["external"]) for port in inputs.get("ports", [])}
    return found


def provider_url(desired: dict, resource: dict) -> str:
    [provider] = [r for r in desired["resources"] if r["urn"] == resource["provider"]]
    return provider["inputs"]["host"]


def uploaded(desired: dict, role: str, mount_suffix: str) -> str:
    [content] = [
        u["content"] for u in container_of(desired, role)["inputs"]["uploads"] if u["file"].endswith(mount_suffix)
    ]
    return content


def test_every_scrape_target_and_datasource_resolves_to_a_container_of_the_plan(plans, deployments, stack):
    desired, spec = plans[stack], deployments[stack].spec
    reachable = reachable_in_plan(desired, spec)
    config = yaml.safe_load(uploaded(desired, PROMETHEUS.role, "prometheus.yml"))
    addresses = []
    for job in config["scrape_configs"]:
        for group in job["static_configs"]:
            for target in group["targets"]:
                url = urlsplit(target if "://" in target else f"http://{target}")
                addresses.append((url.hostname, url.port))
        for rule in job.get("relabel_configs", []):
            if rule.get("target_label") == "__address__" and "replacement" in rule:
                addresses.append(tuple(rule["replacement"].rsplit(":", 1)))
    datasources = yaml.safe_load(uploaded(desired, GRAFANA.role, "datasources/tensorzero.yml"))["datasources"]
    for source in datasources:
        if "url" in source:
            url = urlsplit(source["url"])
            addresses.append((url.hostname, url.port))
        else:
            addresses.append((source["jsonData"]["host"], source["jsonData"]["port"]))
    addresses = [(host, int(port)) for host, port in addresses]
    assert len(addresses) > len(config["scrape_configs"])
    assert [a for a in addresses if a not in reachable] == []
