"""The environment spec: the contract between stack files, Pulumi.yaml and the components."""

import pytest
import yaml
from conftest import MINIMAL_CATALOG, MINIMAL_ENV, make_project, minimal_config
from pydantic import BaseModel

from components.core.errors import ConfigError
from components.core.plans import Endpoint
from components.services import edge
from components.services.clickhouse import SERVICE as CLICKHOUSE
from components.services.edge import SERVICE as EDGE
from components.services.gateway import SERVICE as GATEWAY
from components.services.ollama import SERVICE as OLLAMA
from components.services.ui import SERVICE as UI
from components.stack.loader import PROJECT_DIR, load
from components.stack.registry import Environment

BASE = {"tier": "dev", "name_prefix": "t", "env_files": {"dir": "env"}, "catalog": {"files": ["c.toml"]}}
# Defaults from the tier or from name_prefix, kubernetes null on Docker stacks: Pulumi.yaml may only declare
# keys every stack sets.
OPTIONAL_UNDECLARED = {"protect_data", "volume_prefix", "seed_container_names", "data_loss_confirmations", "kubernetes"}
DOCKER_ONLY = {"hosts"}  # a stack on a cluster has no Docker hosts


def spec(**overrides) -> Environment:
    return Environment.model_validate({**BASE, **overrides})


def test_pulumi_yaml_declares_every_spec_key():
    declared = yaml.safe_load((PROJECT_DIR / "Pulumi.yaml").read_text())["config"]
    assert set(declared) == set(Environment.model_fields) - OPTIONAL_UNDECLARED
    for key, declaration in declared.items():
        assert declaration["description"]
        annotation = Environment.model_fields[key].annotation
        if declaration.get("type") == "string":
            assert annotation is str or issubclass(annotation, str)


def _fields(model: type[BaseModel], path=""):
    for name, field in model.model_fields.items():
        yield f"{path}{name}", field
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from _fields(annotation, f"{path}{name}.")


def test_every_field_is_documented():
    undocumented = [name for name, field in _fields(Environment) if not field.description]
    assert undocumented == []


def test_every_stack_file_sets_every_declared_key():
    declared = set(yaml.safe_load((PROJECT_DIR / "Pulumi.yaml").read_text())["config"])
    for path in sorted((PROJECT_DIR / "stacks").glob("Pulumi.*.yaml")):
        keys = {k.split(":", 1)[1] for k in yaml.safe_load(path.read_text())["config"]}
        needed = declared - DOCKER_ONLY if "kubernetes" in keys else declared
        assert needed <= keys, (path.name, needed - keys)


@pytest.mark.parametrize(("tier", "protected"), [("dev", False), ("staging", True), ("prod", True)])
def test_data_protection_defaults_from_the_tier(tier, protected):
    overrides = {"clickhouse": {"user": "pmoves"}} if tier != "dev" else {}
    assert spec(tier=tier, **overrides).protected is protected
    assert spec(tier=tier, protect_data=not protected, **overrides).protected is (not protected)


def test_endpoints_follow_placement():
    two_hosts = spec(
        hosts={"main": {}, "gpu": {"url": "ssh://ops@jetson", "address": "jetson-ollama", "bind_address": "0.0.0.0"}},
        ollama={"host": "gpu", "port": 21434},
    )
    assert two_hosts.endpoint(OLLAMA, seen_from="main") == Endpoint("jetson-ollama", 21434)
    assert two_hosts.endpoint(OLLAMA, seen_from="gpu") == Endpoint(OLLAMA.alias, OLLAMA.port)
    assert two_hosts.endpoint(CLICKHOUSE, seen_from="main") == Endpoint(CLICKHOUSE.alias, CLICKHOUSE.port)
    # The edge (on by default) takes the gateway's public port and hostname; the gateway moves inside.
    assert two_hosts.published_endpoint(EDGE) == Endpoint("127.0.0.1", 3030)
    assert two_hosts.published_endpoint(GATEWAY) is None
    assert two_hosts.endpoint(EDGE, seen_from="main") == Endpoint(GATEWAY.alias, EDGE.port)
    assert two_hosts.endpoint(GATEWAY, seen_from="main") == Endpoint(edge.GATEWAY_BEHIND_EDGE_ALIAS, GATEWAY.port)


def test_without_the_edge_the_gateway_keeps_its_port_and_hostname():
    bare = spec(edge={"enabled": False})
    assert not bare.deployed(EDGE) and bare.published_endpoint(EDGE) is None
    assert bare.published_endpoint(GATEWAY) == Endpoint("127.0.0.1", 3030)
    assert bare.endpoint(GATEWAY, seen_from="main") == Endpoint(GATEWAY.alias, GATEWAY.port)


def test_an_edge_with_its_own_port_leaves_the_gateway_published():
    both = spec(edge={"port": 3031})
    assert both.published_endpoint(EDGE) == Endpoint("127.0.0.1", 3031)
    assert both.published_endpoint(GATEWAY) == Endpoint("127.0.0.1", 3030)
    assert both.endpoint(GATEWAY, seen_from="main") == Endpoint(edge.GATEWAY_BEHIND_EDGE_ALIAS, GATEWAY.port)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"hosts": {"main": {}, "gpu": {}}, "ollama": {"host": "gpu"}},
            "ollama.port: gateway runs on host 'main' and reaches ollama on host 'gpu'",
        ),
        (
            {
                "hosts": {"main": {}, "data": {"bind_address": "10.0.0.7"}},
                "clickhouse": {"host": "data", "port": None},
            },
            "clickhouse.port must be set",
        ),
        ({"ui": {"port": 3030}}, "ui.port: 3030 is already published by gateway.port on host 'main'"),
        (
            {"edge": {"serve_ui": False}, "ui": {"port": 3030}},
            "ui.port: 3030 is already published by gateway.port on host 'main'",
        ),
        (
            {"edge": {"enabled": False}, "ui": {"port": 3030}},
            "ui.port: 3030 is already published by gateway.port on host 'main'",
        ),
        (
            {"hosts": {"main": {}, "other": {"bind_address": "10.0.0.8"}}, "edge": {"host": "other", "port": 3031}},
            "edge.host: 'other' must be the gateway's host 'main'",
        ),
        ({"ollama": {"host": "edge"}}, "ollama.host: 'edge' is not one of hosts (main)"),
        ({"bind_address": "0.0.0.0"}, "the stack-wide bind_address is gone: set hosts.<host>.bind_address"),
    ],
)
def test_impossible_placements_are_refused(overrides, message, tmp_path):
    project = make_project(
        tmp_path, minimal_config(**overrides), {"catalog.toml": MINIMAL_CATALOG, "env/env.shared": MINIMAL_ENV}
    )
    with pytest.raises(ConfigError) as failure:
        load("test", project_dir=project)
    assert message in str(failure.value)


def test_disabled_services_need_no_placement():
    assert not spec(ui={"enabled": False, "host": "nowhere"}).deployed(UI)
