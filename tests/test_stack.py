"""Rules every stack must keep, checked on the whole program under Pulumi's mocks."""

import json
from urllib.parse import urlsplit

import pulumi
import pytest
from conftest import CANARIES, STACKS, container_of, containers, resources

from components import gateway
from components.names import CLICKHOUSE, GATEWAY, OLLAMA, OLLAMA_API_PATH, SERVICES, TYPE_PREFIX, UI
from components.plan import use_mocks
from components.spec import Tier
from components.stack import build
from components.types import image_tag

# From FACTS.md: what each image ships that a healthcheck can run.
IMAGE_TOOLS = {
    "clickhouse/clickhouse-server": {"wget"},
    "tensorzero/gateway": {"wget"},
    "tensorzero/ui": {"wget"},
    "ollama/ollama": {"ollama"},
}


def test_expected_resources(plans, deployments, stack):
    desired, spec = plans[stack], deployments[stack].spec
    hosts_used = {spec.service_spec(s).host for s in SERVICES if spec.deployed(s)}
    assert len(resources(desired, "network:Network")) == len(hosts_used)
    assert len(resources(desired, "providers:docker")) == len(hosts_used)
    assert sorted(v["inputs"]["name"] for v in resources(desired, "volume:Volume")) == sorted(
        [f"{spec.name_prefix}-tensorzero-clickhouse-data"]
        + ([f"{spec.name_prefix}-ollama-models"] if spec.deployed(OLLAMA) else [])
    )
    assert sorted(containers(desired)) == sorted(
        f"{spec.name_prefix}-{s.container}" for s in SERVICES if spec.deployed(s)
    )


def test_images_are_pinned_and_never_latest_outside_dev(plans, deployments, stack):
    for image in resources(plans[stack], "remoteImage:RemoteImage"):
        tag = image_tag(image["inputs"]["name"])
        assert tag and (tag != "latest" or deployments[stack].spec.tier == Tier.dev)
    for container in containers(plans[stack]).values():
        assert container["inputs"]["image"] in {i["inputs"]["name"] for i in resources(plans[stack], "RemoteImage")}


def test_only_the_spec_ports_are_published_on_the_bind_address(plans, deployments, stack):
    spec = deployments[stack].spec
    for service in SERVICES:
        if not spec.deployed(service):
            continue
        ports = container_of(plans[stack], service.role)["inputs"].get("ports", [])
        expected = (
            []
            if spec.service_spec(service).port is None
            else [{"internal": service.port, "external": spec.service_spec(service).port, "ip": spec.bind_address}]
        )
        assert ports == expected


def test_containers_answer_to_the_seed_hostnames(plans, deployments, stack):
    spec = deployments[stack].spec
    for service in SERVICES:
        if spec.deployed(service):
            [network] = container_of(plans[stack], service.role)["inputs"]["networksAdvanced"]
            assert network == {"name": f"{spec.name_prefix}-tensorzero", "aliases": [service.alias]}


def test_every_container_has_a_healthcheck_its_image_can_run(plans, stack):
    for container in containers(plans[stack]).values():
        repository = container["inputs"]["image"].rsplit(":", 1)[0]
        check = container["inputs"]["healthcheck"]["tests"]
        assert check[0] == "CMD" and check[1] in IMAGE_TOOLS[repository], (repository, check)
        assert container["inputs"]["wait"] is True  # `pulumi up` waits until healthy


def test_data_volumes_are_protected_outside_dev(plans, deployments, stack):
    protected = deployments[stack].spec.tier != Tier.dev
    volumes = resources(plans[stack], "volume:Volume")
    assert volumes and all(v["protect"] is protected for v in volumes)
    assert not any(r["protect"] for r in plans[stack]["resources"] if not r["type"].endswith("volume:Volume"))


def test_credentials_never_appear_in_the_plan(plans, stack):
    text = json.dumps(plans[stack])
    assert not [name for name, value in CANARIES.items() if value in text]
    for role in (CLICKHOUSE.role, GATEWAY.role):
        assert all(e.endswith("=[secret]") for e in container_of(plans[stack], role)["inputs"]["envs"])
    assert plans[stack]["outputs"]["clickhouse_url"] == "[secret]"


def test_start_order_follows_dependencies(plans, stack):
    desired = plans[stack]
    assert container_of(desired, CLICKHOUSE.role)["urn"] in container_of(desired, GATEWAY.role)["dependencies"]
    assert container_of(desired, GATEWAY.role)["urn"] in container_of(desired, UI.role)["dependencies"]


def test_component_contract(plans, stack):
    by_urn = {r["urn"]: r for r in plans[stack]["resources"]}
    for resource in plans[stack]["resources"]:
        parent = by_urn.get(resource["parent"])
        if resource["type"].startswith(f"{TYPE_PREFIX}:"):
            assert parent is None  # components hang off the stack
        else:
            assert parent is not None and parent["type"].startswith(f"{TYPE_PREFIX}:"), resource["urn"]
            assert resource["name"].startswith(parent["name"] + "-"), resource["urn"]


@pytest.mark.parametrize("stack_name", STACKS)
def test_wiring_is_built_from_component_attributes(stack_name, deployments):
    deployment = deployments[stack_name]
    spec = deployment.spec
    use_mocks(stack_name)

    @pulumi.runtime.test
    def check():
        built = build(deployment)
        store, gate = built.services[CLICKHOUSE], built.services[GATEWAY]

        def assert_wiring(args):
            gateway_envs, ui_envs, store_networks, gateway_networks = args
            url = urlsplit(dict(e.split("=", 1) for e in gateway_envs)["TENSORZERO_CLICKHOUSE_URL"])
            assert (url.hostname, url.port) == (store_networks[0]["aliases"][0], CLICKHOUSE.port)
            assert url.path == f"/{spec.clickhouse.database}"
            assert (url.username, url.password) == (spec.clickhouse.user, CANARIES["TENSORZERO_CLICKHOUSE_PASSWORD"])
            ui_url = urlsplit(dict(e.split("=", 1) for e in ui_envs)["TENSORZERO_GATEWAY_URL"])
            assert (ui_url.hostname, ui_url.port) == (gateway_networks[0]["aliases"][0], GATEWAY.port)

        if spec.deployed(OLLAMA):
            ollama_url = built.services[OLLAMA].endpoint_from(spec.gateway.host).url + OLLAMA_API_PATH
            config = gateway.config_file(deployment).content
            assert f'api_base = "{ollama_url}"' in config
        return pulumi.Output.all(
            gate.container.envs,
            built.services[UI].container.envs,
            store.container.networks_advanced,
            gate.container.networks_advanced,
        ).apply(assert_wiring)

    check()


@pytest.mark.parametrize("stack_name", STACKS)
def test_credentials_reach_containers_and_outputs_as_pulumi_secrets(stack_name, deployments):
    use_mocks(stack_name)

    async def assert_secrets(built):
        for service in (CLICKHOUSE, GATEWAY):
            assert await built.services[service].container.envs.is_secret()
        assert await pulumi.Output.from_input(built.outputs["clickhouse_url"]).is_secret()
        for key in ("endpoints", "internal_urls", "containers", "models"):
            output = pulumi.Output.from_input(built.outputs[key])
            assert not await output.is_secret()
            assert not [v for v in CANARIES.values() if v in json.dumps(await output.future())]

    @pulumi.runtime.test
    def check():
        return pulumi.Output.from_input(assert_secrets(build(deployments[stack_name])))

    check()
