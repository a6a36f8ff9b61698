"""The registry: a service is one module and one registry line; every command, target and rule reads its plan.

The throwaway services here exist in this test only. Registering them changes no other module, and the
stack then declares, renders, lists, places, wires and monitors them like the services the package ships.
"""

from typing import Optional

import pytest
import yaml
from conftest import MINIMAL_CATALOG, MINIMAL_ENV, STACKS, make_project, minimal_config, resources
from pydantic import Field

from components.core.names import METRICS_PATH, SERVICE_LABEL, TYPE_PREFIX
from components.core.plans import Monitoring, Scrape, ServicePlan, Volume
from components.core.render import RenderedFile
from components.core.types import EnvName, ImageRef, Port
from components.model.environment import ServiceDefinition
from components.model.settings import ServiceSpec
from components.operate.cli import container_environments
from components.operate.plan import plan
from components.stack.deployment import rendered_files
from components.stack.loader import load
from components.stack.registry import REGISTRY

CACHE_PASSWORD = "cache-canary-pw-81d0"


class CacheSpec(ServiceSpec):
    image: ImageRef = Field("valkey/valkey:8.0.1", description="Pinned image.")
    port: Optional[Port] = Field(None, description="Published port.")
    password_var: EnvName = Field("CACHE_PASSWORD", description="Variable holding its password.")


def cache_plan(ctx) -> ServicePlan:
    password = ctx.credential("cache.password_var")
    return ServicePlan(
        command=("valkey-server", "/etc/valkey/valkey.conf"),
        env=(password,),
        files=(
            RenderedFile("cache/valkey.conf", "cache-config", "cache", "/etc/valkey/valkey.conf", "maxmemory 64mb\n"),
        ),
        volumes=(Volume("data", "cache-data", "/data"),),
        healthcheck=("valkey-cli", "ping"),
        image_tools=frozenset({"valkey-cli"}),
        # Published beyond loopback (on its own host), so it must say how callers authenticate.
        authentication="Valkey password (CACHE_PASSWORD)",
    )


CACHE = ServiceDefinition(
    role="cache",
    component="Cache",
    plan=cache_plan,
    description="A cache.",
    spec=CacheSpec,
    container="cache",
    alias="pmoves-cache",
    port=6379,
    monitoring=lambda spec: Monitoring(scrapes=(Scrape("cache", METRICS_PATH),), probe="/health"),
)


class WorkerSpec(ServiceSpec):
    image: ImageRef = Field("python:3.12.7-slim", description="Pinned image.")
    port: Optional[Port] = Field(None, description="Published port.")


def worker_plan(ctx) -> ServicePlan:
    from components.core.envfiles import Variable

    url = ctx.reach(CACHE).url
    return ServicePlan(
        env=(Variable("CACHE_URL", url, "tests/stack/test_registry.py", False),),
        healthcheck=("python", "-c", "print()"),
        waits_for=(CACHE.role,),
        image_tools=frozenset({"python"}),
    )


WORKER = ServiceDefinition(
    role="worker", component="Worker", plan=worker_plan, description="Uses the cache.", spec=WorkerSpec,
    container="worker", alias="pmoves-worker", port=8000,
)  # fmt: skip
EXTENDED = REGISTRY.with_service(CACHE, after="gateway").with_service(WORKER, after="cache")


@pytest.fixture(scope="module")
def extended(tmp_path_factory):
    """A two-host stack: the cache on its own host, published; the worker and Prometheus on main."""
    config = minimal_config(
        hosts={"main": {}, "data": {"url": "ssh://ops@data-host", "address": "10.0.0.9", "bind_address": "0.0.0.0"}},
        cache={"host": "data", "port": 16379},
        worker={},
    )
    env = MINIMAL_ENV + f"CACHE_PASSWORD={CACHE_PASSWORD}\n"
    project = make_project(
        tmp_path_factory.mktemp("registry"), config, {"catalog.toml": MINIMAL_CATALOG, "env/env.shared": env}
    )
    deployment = load("test", project_dir=project, registry=EXTENDED)
    return deployment, plan(deployment)


def container(desired: dict, role: str) -> dict:
    [found] = [r for r in resources(desired, "container:Container") if r["name"] == f"{role}-container"]
    return found


def test_a_registered_service_is_declared_on_its_host_with_its_volume(extended):
    deployment, desired = extended
    [component] = [r for r in desired["resources"] if r["type"] == f"{TYPE_PREFIX}:Cache"]
    children = {r["name"]: r for r in desired["resources"] if r["parent"] == component["urn"]}
    assert set(children) == {"cache-image", "cache-data", "cache-container"}
    inputs = children["cache-container"]["inputs"]
    assert inputs["name"] == "pmoves-test-cache" and inputs["image"] == "valkey/valkey:8.0.1"
    assert {"label": SERVICE_LABEL, "value": "cache"} in inputs["labels"]
    assert inputs["ports"] == [{"internal": 6379, "external": 16379, "ip": "0.0.0.0"}]
    assert inputs["volumes"] == [{"containerPath": "/data", "volumeName": "pmoves-test-cache-data"}]
    assert inputs["envs"] == ["CACHE_PASSWORD=[secret]"]
    # Placed on its own host: the data host's provider and network, not main's.
    assert children["cache-container"]["provider"].endswith("::host-data-provider")
    assert [n["name"] for n in inputs["networksAdvanced"]] == ["pmoves-test-tensorzero"]
    assert container(desired, "gateway")["provider"].endswith("::host-main-provider")


def test_a_registered_service_is_rendered_and_listed_by_env(extended):
    deployment, _ = extended
    assert ("cache/valkey.conf", "/etc/valkey/valkey.conf") in {(f.path, f.mount) for f in rendered_files(deployment)}
    listed = container_environments(deployment)
    assert listed["cache"][0] == "pmoves-test-cache" and listed["worker"][0] == "pmoves-test-worker"
    assert [(v.name, v.shown) for v in listed["cache"][1]] == [("CACHE_PASSWORD", "[secret]")]


def test_its_dependents_reach_it_by_the_endpoint_rule_and_start_after_it(extended):
    deployment, desired = extended
    # The worker is on main and the cache on the data host: the cache's published address, not its alias.
    assert container(desired, "worker")["inputs"]["envs"] == ["CACHE_URL=http://10.0.0.9:16379"]
    assert container(desired, "cache")["urn"] in container(desired, "worker")["dependencies"]
    assert deployment.plans["worker"].reaches == ("cache",)


def test_prometheus_scrapes_it_and_the_blackbox_exporter_probes_it(extended):
    deployment, _ = extended
    [config] = [f for f in deployment.plans["prometheus"].files if f.kind == "prometheus-config"]
    jobs = {job["job_name"]: job for job in yaml.safe_load(config.content)["scrape_configs"]}
    assert jobs["cache"]["static_configs"] == [{"targets": ["10.0.0.9:16379"], "labels": {"service": "cache"}}]
    probed = {group["labels"]["service"]: group["targets"] for group in jobs["blackbox-http"]["static_configs"]}
    assert probed["cache"] == ["http://10.0.0.9:16379/health"]
    assert "cache" in deployment.plans["prometheus"].reaches and "cache" in deployment.plans["blackbox"].reaches


def test_an_unreachable_placement_of_it_is_refused_naming_the_key(tmp_path):
    from components.core.errors import ConfigError

    config = minimal_config(hosts={"main": {}, "data": {"address": "10.0.0.9"}}, cache={"host": "data"}, worker={})
    env = MINIMAL_ENV + f"CACHE_PASSWORD={CACHE_PASSWORD}\n"
    project = make_project(tmp_path, config, {"catalog.toml": MINIMAL_CATALOG, "env/env.shared": env})
    with pytest.raises(ConfigError) as failure:
        load("test", project_dir=project, registry=EXTENDED)
    lines = str(failure.value).splitlines()
    assert any(line.startswith("stacks/Pulumi.test.yaml: cache.port: worker runs on host 'main'") for line in lines)


@pytest.mark.parametrize("stack", STACKS)
def test_waits_follow_registry_order_and_reaches_are_deployed_services(deployments, stack):
    """The registry lists services in start order: a service waits only for services listed before it."""
    deployment = deployments[stack]
    order = [plan.role for plan in deployment.plans.values()]
    for planned in deployment.plans.values():
        earlier = order[: order.index(planned.role)]
        assert set(planned.waits_for) <= set(earlier), planned.role
        assert set(planned.reaches) <= set(order) - {planned.role}, planned.role
        for shot in planned.one_shots:
            assert {shot.image_of, *shot.after} <= set(earlier) | {planned.role}, (planned.role, shot.name)
