"""The gateway: its rendered tensorzero.toml as TensorZero's own loader and HTTP routes see it."""

import socket
from importlib.metadata import version

import httpx
import pytest
from conftest import (
    CANARIES,
    MINIMAL_ENV,
    STACKS,
    container_of,
    make_project,
    minimal_config,
    openai_routes,
    planned_env,
    tensorzero_gateway,
)

from components.catalog.format import BUILTIN_PROVIDERS
from components.core.types import image_tag
from components.services import gateway
from components.stack.loader import PROJECT_DIR, load

SEED_CATALOG = """
# The seed document's examples, verbatim.
[models.gemma_embed_local]
provider = "ollama"
model = "gemma:2b"
type = "embedding"

[models.claude_sonnet]
provider = "anthropic"
model = "claude-sonnet-4-5"
type = "chat"

[models.my_new_model]
provider = "openai"  # or "anthropic", "ollama", "venice"
model = "gpt-4"
type = "chat"  # or "embedding"

# Optional parameters
temperature = 0.7
max_tokens = 1000

[models.venice_chat]
provider = "venice"
model = "llama-3.3-70b"
type = "chat"

[providers.openai]
api_key = "env::OPENAI_API_KEY"

[providers.anthropic]
api_key = "env::ANTHROPIC_API_KEY"

[providers.ollama]
base_url = "http://pmoves-ollama:11434"

[providers.venice]
api_key = "env::VENICE_API_KEY"
base_url = "https://api.venice.ai/v1"
"""


def test_tensorzero_package_matches_the_gateway_and_ui_images(deployments):
    for deployment in deployments.values():
        assert image_tag(deployment.spec.gateway.image) == version("tensorzero")
        assert image_tag(deployment.spec.ui.image) == version("tensorzero")
    pins = (PROJECT_DIR / "requirements.txt").read_text()  # validate runs its loader: a runtime dependency
    assert f"tensorzero=={version('tensorzero')}" in pins


@pytest.mark.parametrize("stack", STACKS)
def test_each_stack_config_loads_in_tensorzero(stack, deployments, tmp_path, monkeypatch):
    deployment = deployments[stack]
    rendered = gateway.config_file(deployment)
    started = tensorzero_gateway(rendered.content, tmp_path, monkeypatch, CANARIES)
    functions = started.experimental_get_config().functions
    for generated in deployment.translation.functions:
        assert functions[generated.name] is not None
    for native in deployment.translation.native.get("functions", {}):
        assert functions[native] is not None


def seed_deployment(tmp_path):
    project = make_project(
        tmp_path,
        minimal_config(),
        {"catalog.toml": SEED_CATALOG, "env/.env.local": "".join(f"{k}={v}\n" for k, v in CANARIES.items())},
    )
    return load("test", project_dir=project)


def test_seed_examples_render_into_config_tensorzero_accepts(tmp_path, monkeypatch):
    deployment = seed_deployment(tmp_path)
    config = gateway.config_file(deployment).content
    tensorzero_gateway(config, tmp_path, monkeypatch, CANARIES)

    blocks = {m.name: m.providers for m in deployment.translation.models + deployment.translation.embedding_models}
    assert blocks["claude_sonnet"][0].fields["type"] == "anthropic"
    assert blocks["gemma_embed_local"][0].fields["api_base"] == "http://pmoves-ollama:11434/v1"
    # The seed's Venice URL is not where Venice serves its API; the notice says so.
    assert blocks["venice_chat"][0].fields["api_base"] == BUILTIN_PROVIDERS["venice"].base_url
    assert any("venice" in notice for notice in deployment.translation.notices)
    assert [(f.name, f.params) for f in deployment.translation.functions] == [
        ("my_new_model", {"temperature": 0.7, "max_tokens": 1000})
    ]
    assert deployment.translation.ollama_pulls == {"pmoves-ollama": ("gemma:2b",)}


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_fallback_embedding_and_sampling_through_the_real_gateway(tmp_path, monkeypatch, openai_mock):
    down = f"http://127.0.0.1:{closed_port()}/v1"
    catalog = f"""
[providers.primary]
base_url = "{down}"
api_key = "none"

[providers.backup]
base_url = "{openai_mock.url}"
api_key = "none"

[providers.ollama]
base_url = "{openai_mock.url.removesuffix("/v1")}"

[models.claude_sonnet]
provider = "primary"
model = "claude-sonnet-4-5"
fallbacks = ["backup_chat"]

[models.backup_chat]
provider = "backup"
model = "backup-model"
temperature = 0.3
max_tokens = 77

[models.gemma_embed_local]
provider = "ollama"
model = "gemma:2b"
type = "embedding"
"""
    project = make_project(
        tmp_path,
        minimal_config(ollama={"enabled": False}),
        {"catalog.toml": catalog, "env/env.shared": MINIMAL_ENV},
    )
    served = openai_routes(gateway.config_file(load("test", project_dir=project)).content, tmp_path, monkeypatch, {})
    base = str(served.base_url).rstrip("/")
    message = [{"role": "user", "content": "Hello from TensorZero!"}]

    chat = httpx.post(
        f"{base}/chat/completions", json={"model": "tensorzero::model_name::claude_sonnet", "messages": message}
    )
    assert chat.status_code == 200, chat.text
    assert chat.json()["choices"][0]["message"]["content"] == "answer from backup-model"

    embedding = httpx.post(
        f"{base}/embeddings",
        json={"model": "tensorzero::embedding_model_name::gemma_embed_local", "input": "Text to embed"},
    )
    assert embedding.status_code == 200, embedding.text
    assert embedding.json()["data"][0]["embedding"] == [0.25, -0.5, 0.75]

    sampled = httpx.post(
        f"{base}/chat/completions", json={"model": "tensorzero::function_name::backup_chat", "messages": message}
    )
    assert sampled.status_code == 200, sampled.text

    sent = {(path, body["model"]): body for path, body in openai_mock.requests}
    assert ("/v1/embeddings", "gemma:2b") in sent
    defaults = [body for path, body in openai_mock.requests if "max_completion_tokens" in body]
    assert len(defaults) == 1 and defaults[0]["max_completion_tokens"] == 77
    assert defaults[0]["temperature"] == pytest.approx(0.3)


def test_gateway_container_mounts_its_config_and_runs_it(plans, deployments, stack):
    container = container_of(plans[stack], "gateway")
    [upload] = container["inputs"]["uploads"]
    assert upload["file"] == gateway.CONFIG_PATH
    assert upload["content"] == gateway.config_file(deployments[stack]).content
    assert container["inputs"]["command"] == ["--config-file", gateway.CONFIG_PATH, "--log-format", "json"]


def test_gateway_receives_only_the_keys_its_config_names(deployments, stack):
    deployment = deployments[stack]
    env = planned_env(deployment, gateway.SERVICE.role)
    assert [v.name for v in env] == ["TENSORZERO_CLICKHOUSE_URL", *deployment.translation.variables]
    assert all(v.secret for v in env)


def test_fallbacks_on_one_provider_get_distinct_routing_names(tmp_path, monkeypatch):
    catalog = "".join(
        f'[models.{name}]\nprovider = "ollama"\nmodel = "qwen2.5:0.5b"\n{extra}\n'
        for name, extra in (("a", 'fallbacks = ["b", "c"]'), ("b", "temperature = 0.1"), ("c", ""))
    )
    project = make_project(tmp_path, minimal_config(), {"catalog.toml": catalog, "env/env.shared": MINIMAL_ENV})
    deployment = load("test", project_dir=project)
    [routed] = [m for m in deployment.translation.models if m.name == "a"]
    assert routed.routing == ["ollama", "ollama_2", "ollama_3"]
    tensorzero_gateway(gateway.config_file(deployment).content, tmp_path, monkeypatch, {})
