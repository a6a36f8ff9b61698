"""Ollama: models volume, GPU, a healthcheck its image can run, and the catalog's models pulled."""

from conftest import MINIMAL_ENV, container_of, make_project, minimal_config, resources

from components import ollama
from components.gateway import SERVICE as GATEWAY
from components.loader import load
from components.names import SERVICE_LABEL
from components.ollama import SERVICE as OLLAMA
from components.plan import plan


def pulls(desired: dict) -> list[dict]:
    """Ollama's one-shot containers (the ClickHouse schema container is another service's one-shot)."""
    return [
        r
        for r in resources(desired, "container:Container")
        if r["inputs"].get("attach") and {"label": SERVICE_LABEL, "value": OLLAMA.role} in r["inputs"]["labels"]
    ]


def test_catalog_models_served_by_the_own_ollama_are_pulled(plans, deployments, stack):
    desired, deployment = plans[stack], deployments[stack]
    server = container_of(desired, OLLAMA.role)
    assert sorted(p["inputs"]["command"][1] for p in pulls(desired)) == sorted(deployment.translation.ollama_pulls)
    for pull in pulls(desired):
        assert pull["inputs"]["entrypoints"] == ["/bin/ollama"] and pull["inputs"]["command"][0] == "pull"
        assert pull["inputs"]["envs"] == [f"OLLAMA_HOST={OLLAMA.alias}:{OLLAMA.port}"]
        assert server["urn"] in pull["dependencies"]
        assert pull["provider"] == server["provider"]  # pulled on the host that serves them


def test_models_persist_on_the_volume(plans, deployments, stack):
    [mount] = container_of(plans[stack], OLLAMA.role)["inputs"]["volumes"]
    assert mount == {
        "containerPath": ollama.MODELS_PATH,
        "volumeName": f"{deployments[stack].spec.name_prefix}-ollama-models",
    }


def test_gpu_is_requested_only_where_the_spec_asks(plans, deployments, stack):
    requests = container_of(plans[stack], OLLAMA.role)["inputs"].get("deviceRequests")
    if deployments[stack].spec.ollama.gpu:
        assert requests == [{"capabilities": ["gpu"], "count": -1, "driver": "nvidia"}]
    else:
        assert requests is None


def test_prod_runs_ollama_on_the_gpu_host(plans, deployments):
    desired, spec = plans["prod"], deployments["prod"].spec
    server, gate = container_of(desired, OLLAMA.role), container_of(desired, GATEWAY.role)
    assert server["provider"] != gate["provider"]
    gpu_provider = next(r for r in resources(desired, "providers:docker") if r["urn"] == server["provider"])
    assert gpu_provider["inputs"]["host"] == spec.hosts[spec.ollama.host].url


def test_an_external_ollama_is_used_not_pulled_into(tmp_path):
    catalog = """
[providers.ollama]
base_url = "http://jetson-ollama:11434"

[models.gemma_embed_local]
provider = "ollama"
model = "gemma:2b"
type = "embedding"
"""
    project = make_project(
        tmp_path, minimal_config(ollama={"enabled": False}), {"catalog.toml": catalog, "env/env.shared": MINIMAL_ENV}
    )
    deployment = load("test", project_dir=project)
    assert deployment.translation.embedding_models[0].providers[0].fields["api_base"] == "http://jetson-ollama:11434/v1"
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
    project = make_project(tmp_path, minimal_config(), {"catalog.toml": catalog, "env/env.shared": MINIMAL_ENV})
    desired = plan(load("test", project_dir=project))  # mocks refuse two resources under one URN
    names = {p["inputs"]["command"][1]: p["name"] for p in pulls(desired)}
    assert set(names) == {"qwen2.5:0.5b", "qwen2-5-0-5b"}
    assert len(set(names.values())) == 2
    assert all(name.startswith("ollama-pull-qwen2-5-0-5b-") for name in names.values())
    # A model whose slug no other shares keeps its plain name: existing pulls are not renamed.
    assert ollama.pull_names(("gemma:2b",)) == {"gemma:2b": "gemma-2b"}
