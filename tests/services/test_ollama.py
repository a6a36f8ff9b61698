"""Ollama: the stack's own and its further instances, each on its host with its models volume, GPU, a
healthcheck its image can run, and exactly the catalog models routed to it pulled into it."""

import pytest
import yaml
from conftest import container_of, load_minimal, resources

from components.core.errors import ConfigError
from components.core.names import SERVICE_LABEL
from components.operate.plan import plan
from components.services import ollama, ollama_guard
from components.services.blackbox import PROBE_PATH
from components.services.gateway import SERVICE as GATEWAY
from components.services.ollama import SERVICE as OLLAMA

TWO_OLLAMAS = """
[providers.jetson]
type = "ollama"
base_url = "http://jetson-ollama:11434"

[models.local_chat]
provider = "ollama"
model = "qwen2.5:0.5b"

[models.edge_chat]
provider = "jetson"
model = "mistral:7b-instruct"
fallbacks = ["local_chat"]

[models.gemma_embed_local]
provider = "ollama"
model = "gemma:2b"
type = "embedding"
"""


def pulls(desired: dict, role: str = OLLAMA.role) -> list[dict]:
    """One Ollama's one-shot containers (the ClickHouse schema container is another service's one-shot)."""
    return [
        r
        for r in resources(desired, "container:Container")
        if r["inputs"].get("attach") and {"label": SERVICE_LABEL, "value": role} in r["inputs"]["labels"]
    ]


def deploy(tmp_path, catalog: str, **sections):
    return load_minimal(tmp_path, catalog, **sections)


@pytest.fixture(scope="module")
def two_hosts(tmp_path_factory):
    """The stack's own Ollama on main and `jetson` on the GPU host, as prod runs them."""
    deployment = deploy(
        tmp_path_factory.mktemp("two-ollamas"),
        TWO_OLLAMAS,
        hosts={"main": {}, "gpu": {"url": "ssh://ops@jetson", "address": "10.0.0.7", "bind_address": "10.0.0.7"}},
        ollama={"instances": {"jetson": {"host": "gpu", "port": 21434, "gpu": True}}},
        # Ollama has no authentication: beyond loopback, the guard publishes the instance's port.
        ollama_guard={"enabled": True, "host": "gpu", "ollama": "jetson", "allow": ["10.0.0.1/32"]},
    )
    return deployment, plan(deployment)


def test_each_ollama_pulls_exactly_its_models_on_its_own_host(plans, deployments, stack):
    desired, deployment = plans[stack], deployments[stack]
    servers = ollama.servers(deployment.spec)
    assert servers and sorted(deployment.translation.ollama_pulls) == sorted(s.alias for s in servers)
    for server in servers:
        container = container_of(desired, server.role)
        mine = pulls(desired, server.role)
        assert sorted(p["inputs"]["command"][1] for p in mine) == sorted(
            deployment.translation.ollama_pulls[server.alias]
        )
        for pull in mine:
            assert pull["inputs"]["entrypoints"] == ["/bin/ollama"] and pull["inputs"]["command"][0] == "pull"
            assert pull["inputs"]["envs"] == [f"OLLAMA_HOST={server.alias}:{OLLAMA.port}"]
            assert container["urn"] in pull["dependencies"]
            assert pull["provider"] == container["provider"]  # pulled on the host that serves them
    assert desired["outputs"]["ollama_models"] == {
        s.role: list(deployment.translation.ollama_pulls[s.alias]) for s in servers
    }


def test_models_persist_on_a_volume_of_their_ollama(plans, deployments, stack):
    spec = deployments[stack].spec
    for server in ollama.servers(spec):
        [mount] = container_of(plans[stack], server.role)["inputs"]["volumes"]
        adopted = spec.section(server).adopt_volumes.get("models")
        if adopted:
            assert mount == {"containerPath": adopted.mount or ollama.MODELS_PATH, "volumeName": adopted.name}
        else:
            assert mount == {
                "containerPath": ollama.MODELS_PATH,
                "volumeName": f"{spec.name_prefix}-{server.container}-models",
            }


def test_gpu_is_requested_only_where_the_spec_asks(plans, deployments, stack):
    spec = deployments[stack].spec
    for server in ollama.servers(spec):
        requests = container_of(plans[stack], server.role)["inputs"].get("deviceRequests")
        if spec.section(server).gpu:
            assert requests == [{"capabilities": ["gpu"], "count": -1, "driver": "nvidia"}]
        else:
            assert requests is None


def test_prod_runs_pmoves_ollama_on_main_and_jetson_ollama_on_the_gpu_host(plans, deployments):
    desired, spec = plans["prod"], deployments["prod"].spec
    main, jetson = container_of(desired, OLLAMA.role), container_of(desired, "ollama-jetson")
    assert main["provider"] == container_of(desired, GATEWAY.role)["provider"]
    gpu_provider = next(r for r in resources(desired, "providers:docker") if r["urn"] == jetson["provider"])
    assert gpu_provider["inputs"]["host"] == spec.hosts["gpu"].url
    assert [n["aliases"] for n in jetson["inputs"]["networksAdvanced"]] == [["jetson-ollama"]]
    assert deployments["prod"].translation.ollama_pulls["jetson-ollama"] == ("mistral:7b-instruct",)
    # The gateway reaches the GPU host's Ollama only through the guard on that host: it publishes nothing itself.
    guard = container_of(desired, ollama_guard.SERVICE.role)
    assert guard["provider"] == jetson["provider"] and not jetson["inputs"].get("ports")
    assert [p["ip"] for p in guard["inputs"]["ports"]] == [spec.hosts["gpu"].bind_address]


def test_an_instance_is_a_container_of_its_own_with_its_defaults(two_hosts):
    deployment, desired = two_hosts
    spec = deployment.spec
    jetson = spec.definition("ollama-jetson")
    assert (jetson.container, jetson.alias, spec.key(jetson)) == (
        "ollama-jetson",
        "jetson-ollama",
        "ollama.instances.jetson",
    )
    inputs = container_of(desired, jetson.role)["inputs"]
    assert inputs["name"] == "pmoves-test-ollama-jetson"
    assert inputs["image"] == spec.ollama.image  # an instance takes the section's image unless it names one
    assert "ports" not in inputs or not inputs["ports"]  # its guard publishes its port
    guard = container_of(desired, ollama_guard.SERVICE.role)
    assert guard["provider"] == container_of(desired, jetson.role)["provider"]
    assert guard["inputs"]["ports"] == [{"internal": OLLAMA.port, "external": 21434, "ip": "10.0.0.7"}]
    assert [p["inputs"]["name"] for p in pulls(desired, jetson.role)] == [
        "pmoves-test-ollama-jetson-pull-mistral-7b-instruct"
    ]


def test_the_catalog_routes_each_model_to_its_ollama_by_hostname(two_hosts):
    deployment, _ = two_hosts
    translation = deployment.translation
    [edge] = [m for m in translation.models if m.name == "edge_chat"]
    # Across hosts: the GPU host's address and the instance's published port; the fallback on main by alias.
    assert [b.fields["api_base"] for b in edge.providers] == [
        "http://10.0.0.7:21434/v1",
        "http://pmoves-ollama:11434/v1",
    ]
    assert translation.ollama_pulls == {
        "jetson-ollama": ("mistral:7b-instruct",),
        "pmoves-ollama": ("qwen2.5:0.5b", "gemma:2b"),
    }
    assert set(deployment.plans[GATEWAY.role].reaches) >= {"ollama", "ollama-jetson"}
    assert set(deployment.plans[GATEWAY.role].waits_for) >= {"ollama", "ollama-jetson"}


def test_prometheus_probes_each_ollama(two_hosts):
    deployment, _ = two_hosts
    [config] = [f for f in deployment.plans["prometheus"].files if f.kind == "prometheus-config"]
    jobs = {job["job_name"]: job for job in yaml.safe_load(config.content)["scrape_configs"]}
    probed = {g["labels"]["service"]: g["targets"] for g in jobs["blackbox-http"]["static_configs"]}
    assert probed["ollama"] == [f"http://{OLLAMA.alias}:{OLLAMA.port}{ollama.VERSION_PATH}"]
    assert probed["ollama-jetson"] == [f"http://10.0.0.7:21434{ollama.VERSION_PATH}"]
    assert jobs["blackbox-http"]["metrics_path"] == PROBE_PATH


@pytest.mark.parametrize(
    ("sections", "key", "message"),
    [
        ({"ollama": {"instances": {"pull-gemma-2b": {"port": None}}}},
         "ollama.instances.pull-gemma-2b", "its container ollama-pull-gemma-2b is also that of ollama"),
        ({"ollama": {"instances": {"guard": {"port": None}}},
          "ollama_guard": {"enabled": True, "allow": ["10.0.0.0/8"]}},
         "ollama_guard", "its container ollama-guard is also that of ollama.instances.guard"),
    ],
    ids=["a-pull-one-shot", "the-guard"],
)  # fmt: skip
def test_an_instance_whose_container_name_is_taken_is_refused(tmp_path, sections, key, message):
    """Docker refuses a second container of one name on a host: `pulumi up` would fail half-way."""
    with pytest.raises(ConfigError) as failure:
        deploy(tmp_path, TWO_OLLAMAS.replace("jetson-ollama", "pmoves-ollama"), **sections)
    assert any(p.key == key and message in p.message for p in failure.value.problems), failure.value


def test_instances_run_without_the_stacks_own_ollama(tmp_path):
    catalog = TWO_OLLAMAS.replace('fallbacks = ["local_chat"]\n', "")
    catalog = catalog[: catalog.index("[models.local_chat]")] + catalog[catalog.index("[models.edge_chat]") :]
    catalog = catalog.replace('provider = "ollama"\nmodel = "gemma:2b"', 'provider = "jetson"\nmodel = "gemma:2b"')
    deployment = deploy(tmp_path, catalog, ollama={"enabled": False, "instances": {"jetson": {"port": 21434}}})
    assert [s.role for s in ollama.servers(deployment.spec)] == ["ollama-jetson"]
    assert deployment.translation.ollama_pulls == {"jetson-ollama": ("mistral:7b-instruct", "gemma:2b")}


def test_an_ollama_outside_the_stack_is_used_not_pulled_into(tmp_path):
    catalog = """
[providers.ollama]
base_url = "http://gpu-box.tailnet:11434"

[models.gemma_embed_local]
provider = "ollama"
model = "gemma:2b"
type = "embedding"
"""
    deployment = deploy(tmp_path, catalog, ollama={"enabled": False})
    assert (
        deployment.translation.embedding_models[0].providers[0].fields["api_base"] == "http://gpu-box.tailnet:11434/v1"
    )
    assert deployment.translation.ollama_pulls == {}
    assert pulls(plan(deployment)) == []


def test_two_models_with_one_slug_get_two_pull_containers(tmp_path):
    """`qwen2.5:0.5b` and `qwen2-5-0-5b` slug alike: each gets its own name, so their URNs differ."""
    catalog = """
[models.dotted]
provider = "ollama"
model = "qwen2.5:0.5b"

[models.dashed]
provider = "ollama"
model = "qwen2-5-0-5b"
"""
    desired = plan(load_minimal(tmp_path, catalog))  # mocks refuse two resources under one URN
    names = {p["inputs"]["command"][1]: p["name"] for p in pulls(desired)}
    assert set(names) == {"qwen2.5:0.5b", "qwen2-5-0-5b"}
    assert len(set(names.values())) == 2
    assert all(name.startswith("ollama-pull-qwen2-5-0-5b-") for name in names.values())
    # A model whose slug no other shares keeps its plain name: existing pulls are not renamed.
    assert ollama.pull_names(("gemma:2b",)) == {"gemma:2b": "gemma-2b"}


@pytest.mark.parametrize(
    ("catalog", "key", "message"),
    [
        (
            '[providers.gpu]\nbase_url = "http://gpu-box:11434"\napi_key = "none"\n'
            '[models.c]\nprovider = "gpu"\nmodel = "q"\n',
            "providers.gpu.base_url",
            "'http://gpu-box:11434' is Ollama's port without its OpenAI path: every call would be a 404; write "
            'http://gpu-box:11434/v1, or make the provider `type = "ollama"`',
        ),
        (
            '[providers.gpu]\ntype = "ollama"\nbase_url = "http://gpu-box:11434/api"\n'
            '[models.c]\nprovider = "gpu"\nmodel = "q"\n',
            "providers.gpu.base_url",
            "Ollama serves its OpenAI-compatible API under /v1, not '/api'",
        ),
    ],
    ids=["openai-compatible-without-v1", "ollama-with-another-path"],
)
def test_an_ollama_url_without_its_openai_path_is_refused(tmp_path, catalog, key, message):
    with pytest.raises(ConfigError) as failure:
        deploy(tmp_path, catalog)
    assert [(p.key, p.message) for p in failure.value.problems] == [(key, message)]


def test_an_ollama_url_with_or_without_v1_is_completed(tmp_path):
    catalog = '[providers.gpu]\ntype = "ollama"\nbase_url = "http://gpu-box:11434/"\n'
    catalog += '[models.c]\nprovider = "gpu"\nmodel = "q"\n'
    deployment = deploy(tmp_path, catalog)
    assert deployment.translation.models[0].providers[0].fields == {
        "type": "openai",
        "model_name": "q",
        "api_base": "http://gpu-box:11434/v1",
        "api_key_location": "none",
    }


@pytest.mark.parametrize(
    ("ollama_section", "key", "message"),
    [
        ({"instances": {"edge": {"alias": "tensorzero-gateway", "port": 21434}}}, "ollama.instances.edge.alias",
         "'tensorzero-gateway' is already edge's hostname"),
        ({"instances": {"a": {"alias": "box", "port": 21434}, "b": {"alias": "box", "port": 21435}}},
         "ollama.instances.b.alias", "'box' is already ollama-a's hostname"),
        ({"instances": {"edge": {"port": 11434}}}, "ollama.instances.edge.port",
         "11434 is already published by ollama.port on host 'main'"),
        ({"instances": {"edge": {"host": "jetson"}}}, "ollama.instances.edge.host", "'jetson' is not one of hosts"),
        ({"instances": {"Edge_1": {}}}, "ollama.instances.Edge_1.[key]", "is not a valid instance name"),
    ],
    ids=["alias-of-another-service", "alias-twice", "port-twice", "unknown-host", "bad-name"],
)  # fmt: skip
def test_an_instance_that_cannot_be_placed_is_refused_naming_its_key(tmp_path, ollama_section, key, message):
    with pytest.raises(ConfigError) as failure:
        deploy(tmp_path, TWO_OLLAMAS.replace("jetson-ollama", "pmoves-ollama"), ollama=ollama_section)
    assert any(p.key == key and message in p.message for p in failure.value.problems), failure.value
