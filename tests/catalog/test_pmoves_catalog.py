"""PMOVES's production catalog (tests/fixtures/pmoves_catalog/): 20 chat models over two Ollama hosts and seven
hosted providers, 9 embedding models, functions of up to 11 variants mixing local, edge and hosted models, and
files named by path. One set of files serves a full stack and a local-only dev stack; TensorZero's own loader
reads what each renders, and its real HTTP routes show the files named by path at work."""

import json
import shutil
from pathlib import Path

import httpx
import pytest
import tomli
from conftest import (
    CANARIES,
    MINIMAL_ENV,
    cli,
    copy_project,
    make_project,
    minimal_config,
    openai_routes,
    resources,
    tensorzero_gateway,
)

from components.catalog.translation import local_models
from components.core.names import FUNCTION_PREFIX
from components.model.settings import Tier
from components.operate import summary
from components.operate.plan import plan
from components.services import gateway
from components.stack.deployment import rendered_files
from components.stack.loader import load, stack_ollamas
from components.stack.rules import provider_problems

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "pmoves_catalog"
FILES = ["catalog/models.toml", "catalog/embeddings.toml", "catalog/functions.toml"]
ACCOUNT = "fe5ef93f1ffc7070b2218b96f8b256f5"
HOSTED_KEYS = {
    "OPENAI_API_KEY": CANARIES["OPENAI_API_KEY"],
    "VENICE_API_KEY": CANARIES["VENICE_API_KEY"],
    "GROQ_API_KEY": "canary-groq-key-1f0e",
    "MOONSHOT_API_KEY": "canary-moonshot-key-6d4b",
    "OPENROUTER_API_KEY": "canary-openrouter-key-0a9c",
    "TOGETHER_AI_API_KEY": "canary-together-key-77d2",
    "CLOUDFLARE_API_TOKEN": "canary-cloudflare-token-3c1a",
}
OLLAMA_HOSTS = {"pmoves-ollama", "jetson-ollama"}
ORCHESTRATOR_FILES = {
    "functions/orchestrator/system.minijinja",
    "functions/orchestrator/system_schema.json",
    "tools/web_search.json",
}


def catalog_tables() -> dict:
    merged: dict = {}
    for name in FILES:
        for table, rows in tomli.loads((FIXTURE / Path(name).name).read_text()).items():
            merged.setdefault(table, {}).update(rows)
    return merged


TABLES = catalog_tables()
FUNCTIONS = TABLES["functions"]


def is_local(model: str) -> bool:
    """Served by the main host's Ollama: seed models on the built-in `ollama`, native ones at pmoves-ollama."""
    if model in TABLES["models"]:
        return TABLES["models"][model]["provider"] == "ollama"
    providers = TABLES["embedding_models"][model]["providers"].values()
    return all("pmoves-ollama" in block.get("api_base", "") for block in providers)


LOCAL = [m for m in [*TABLES["models"], *TABLES["embedding_models"]] if is_local(m)]


def project(root: Path, stack: str, config: dict, env: str) -> Path:
    """A project holding the fixture under catalog/ and one stack."""
    shutil.copytree(FIXTURE, root / "catalog", dirs_exist_ok=True)
    return make_project(root, config, {"env/env.shared": env}, stack=stack)


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    """PMOVES as it runs: two Docker hosts, the stack's own Ollama and the Jetson's, every model served."""
    config = minimal_config(
        hosts={
            "main": {},
            "gpu": {"url": "ssh://pmoves@jetson-ollama", "address": "jetson-ollama", "bind_address": "100.101.0.2"},
        },
        ollama_guard={"enabled": True, "host": "gpu", "ollama": "jetson", "allow": ["100.101.0.1/32"]},
        catalog={"files": FILES, "variables": {"CLOUDFLARE_ACCOUNT_ID": ACCOUNT}},
        ollama={"instances": {"jetson": {"host": "gpu", "port": 11434, "gpu": True}}},
    )
    env = MINIMAL_ENV + "".join(f"{k}={v}\n" for k, v in HOSTED_KEYS.items())
    return load("full", project_dir=project(tmp_path_factory.mktemp("pmoves-full"), "full", config, env))


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    """A dev stack of the same files: one host, local models only, no hosted key anywhere."""
    config = minimal_config(catalog={"files": FILES, "local_only": True})  # one line, not LOCAL typed out
    return load("local", project_dir=project(tmp_path_factory.mktemp("pmoves-local"), "local", config, MINIMAL_ENV))


def place(deployment, directory: Path) -> str:
    """The gateway's files laid out as /app/config/ holds them; returns tensorzero.toml's text."""
    for rendered in gateway.config_files(deployment):
        target = directory / rendered.mount.removeprefix(gateway.CONFIG_DIR + "/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(rendered.content)
    return gateway.config_file(deployment).content


def test_the_fixture_has_pmoves_production_shape():
    models, embeddings = TABLES["models"], TABLES["embedding_models"]
    providers = {entry["provider"] for entry in models.values()}
    hosted = providers - {"ollama", "jetson"}
    assert len(models) >= 13 and len(hosted) >= 6 and len(embeddings) >= 8
    assert {"ollama", "jetson"} <= providers  # two Ollama hosts
    sizes = sorted(len(f["variants"]) for f in FUNCTIONS.values())
    assert sizes[-1] == 11
    agent = {v["model"] for v in FUNCTIONS["agent_zero"]["variants"].values()}
    assert {models[m]["provider"] for m in agent} >= {"ollama", "jetson", "openai", "cloudflare"}


def test_the_full_stack_loads_in_tensorzero_with_every_model_and_variant(full, tmp_path, monkeypatch):
    config = place(full, tmp_path)
    rendered = tomli.loads(config)
    assert set(rendered["models"]) == set(TABLES["models"])
    assert set(rendered["embedding_models"]) == set(TABLES["embedding_models"])
    assert {name: set(f["variants"]) for name, f in rendered["functions"].items()} == {
        name: set(f["variants"]) for name, f in FUNCTIONS.items()
    }
    assert not full.notices or not [n for n in full.notices if "left out" in n]
    started = tensorzero_gateway(config, tmp_path, monkeypatch, HOSTED_KEYS)
    loaded = started.experimental_get_config().functions
    for name, function in FUNCTIONS.items():
        assert len(loaded[name].variants) == len(function["variants"]), name
    # Each Ollama pulls exactly the models routed to it.
    pulls = full.translation.ollama_pulls
    assert set(pulls) == OLLAMA_HOSTS
    assert set(pulls["jetson-ollama"]) == {"mistral:7b-instruct", "phi3:3.8b-mini-128k-instruct"}
    local_names = {TABLES["models"][m]["model"] for m in LOCAL if m in TABLES["models"]}
    assert set(pulls["pmoves-ollama"]) == local_names | {
        "qwen3-embedding:4b",
        "embeddinggemma:300m",
        "nomic-embed-text",
    }
    assert f"accounts/{ACCOUNT}/ai/run/openai" in config and "${" not in config
    # As PMOVES writes them (`type = "openai"`, the Jetson's URL), the Jetson's models are called through the
    # GPU host's guard, by the endpoint rule, never at the hostname as written.
    guard = full.spec.endpoint("ollama-jetson", "main")
    for name in ("agent_zero_mistral7b_edge", "agent_zero_phi3_mini_edge"):
        [provider] = rendered["models"][name]["providers"].values()
        assert provider["api_base"] == f"{guard.url}/v1", provider
    pulled = full.plans["ollama-jetson"].outputs["ollama_models"]["ollama-jetson"]
    assert set(pulled) == {"mistral:7b-instruct", "phi3:3.8b-mini-128k-instruct"}


def test_local_only_is_the_local_models_typed_by_hand(local, full):
    served = {m.name for m in (*local.translation.models, *local.translation.embedding_models)}
    served |= {name for table in ("models", "embedding_models") for name in local.translation.native.get(table, {})}
    assert sorted(served) == sorted(LOCAL) and len(LOCAL) > 10
    # With the Jetson's Ollama in the stack, its models are local too; hosted ones never are.
    jetson = {"agent_zero_mistral7b_edge", "agent_zero_phi3_mini_edge"}
    assert local_models(full.catalog, stack_ollamas(full.spec)) == set(LOCAL) | jetson


def test_validate_names_who_serves_each_model(full):
    lines = summary.serving(full)
    assert "agent_zero_mistral7b_edge: mistral:7b-instruct on Ollama jetson-ollama" in lines
    assert "agent_zero_mistral7b_local: mistral:7b-instruct on Ollama pmoves-ollama" in lines
    assert "chat_groq: " + TABLES["models"]["chat_groq"]["model"] + " by openai at api.groq.com" in lines
    assert len(lines) == len(TABLES["models"]) + len(TABLES["embedding_models"])


def test_a_local_stack_of_the_same_files_keeps_each_functions_local_variants(local, tmp_path, monkeypatch):
    config = place(local, tmp_path)
    rendered = tomli.loads(config)["functions"]
    for name, function in FUNCTIONS.items():
        local_variants = {v for v, body in function["variants"].items() if is_local(body["model"])}
        assert set(rendered[name]["variants"]) == local_variants, name
    assert local.translation.variables == []  # no hosted key is named, so none is needed
    assert rendered["orchestrator"]["experimentation"]["candidate_variants"] == []
    left_out = [n for n in local.notices if "left out" in n]
    assert len(left_out) == len(
        [f for f in FUNCTIONS.values() if any(not is_local(v["model"]) for v in f["variants"].values())]
    )
    started = tensorzero_gateway(config, tmp_path, monkeypatch, {})
    assert len(started.experimental_get_config().functions["agent_zero"].variants) == 3


def test_files_named_by_path_are_uploaded_beside_tensorzero_toml(full, local):
    for deployment in (full, local):
        uploads = {
            upload["file"]: upload["content"]
            for container in resources(plan(deployment), "container:Container")
            for upload in container["inputs"].get("uploads", [])
            if upload["file"].startswith(gateway.CONFIG_DIR + "/")
        }
        expected = {f"{gateway.CONFIG_DIR}/{path}": (FIXTURE / path).read_text() for path in ORCHESTRATOR_FILES}
        assert uploads == {gateway.CONFIG_PATH: gateway.config_file(deployment).content, **expected}
        kinds = {
            f.path.removeprefix("gateway/"): f.kind for f in rendered_files(deployment) if f.container == "gateway"
        }
        assert kinds == {
            "tensorzero.toml": "tensorzero-config",
            "functions/orchestrator/system.minijinja": "tensorzero-template",
            "functions/orchestrator/system_schema.json": "tensorzero-schema",
            "tools/web_search.json": "tensorzero-schema",
        }


def test_the_template_and_the_tool_schema_reach_the_provider(tmp_path, monkeypatch, openai_mock):
    """Through TensorZero's real routes: the orchestrator's system prompt is the template's, filled from its
    schema's argument, and the web search tool is described by its file."""
    override = tmp_path / "project" / "catalog" / "here.toml"
    config = minimal_config(
        ollama={"enabled": False}, catalog={"files": [*FILES, "catalog/here.toml"], "models": LOCAL}
    )
    root = project(tmp_path / "project", "here", config, MINIMAL_ENV)
    override.write_text(f'[providers.ollama]\nbase_url = "{openai_mock.url}"\n')
    deployment = load("here", project_dir=root)
    served = openai_routes(place(deployment, tmp_path / "gateway"), tmp_path / "gateway", monkeypatch, {})
    system = [{"type": "text", "tensorzero::arguments": {"context": "summarize the night's logs"}}]
    answer = httpx.post(
        f"{str(served.base_url).rstrip('/')}/chat/completions",
        json={
            "model": FUNCTION_PREFIX + "orchestrator",
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": "go"}],
        },
    )
    assert answer.status_code == 200, answer.text
    [(_, sent)] = openai_mock.requests
    assert sent["model"] == "qwen3:8b"  # the local fallback: the cloud variant is not served here
    prompt = "You are the orchestrator of PMOVES's agents.\n\nContext for this task:\nsummarize the night's logs\n"
    assert sent["messages"][0] == {"role": "system", "content": prompt}
    [tool] = sent["tools"]
    assert tool["function"]["name"] == "web_search"
    assert tool["function"]["parameters"] == json.loads((FIXTURE / "tools" / "web_search.json").read_text())


def test_a_bare_name_of_several_models_is_listed_at_validation(full, local):
    ambiguous = [n for n in full.notices if n.startswith("edge: the bare chat model name")]
    assert ambiguous == [
        "edge: the bare chat model name 'mistral:7b-instruct' names 2 models; callers must send one of "
        "agent_zero_mistral7b_edge, agent_zero_mistral7b_local instead (the edge answers 'mistral:7b-instruct' "
        "with a 404 listing them)",
        "edge: the bare chat model name 'phi3:3.8b-mini-128k-instruct' names 2 models; callers must send one of "
        "agent_zero_phi3_mini_edge, agent_zero_phi3_mini_local instead (the edge answers "
        "'phi3:3.8b-mini-128k-instruct' with a 404 listing them)",
    ]
    # Where only one of them is served, the name is not ambiguous.
    assert not [n for n in local.notices if n.startswith("edge:")]


def test_the_cli_lists_what_a_stack_leaves_out_and_renders_the_files_beside_the_config(tmp_path, monkeypatch):
    """`validate` and `render` as an operator runs them, on a copy of this project given the fixture as a stack."""
    root = copy_project(tmp_path / "project")
    shutil.copytree(FIXTURE, root / "catalog" / "pmoves")
    files = [f"catalog/pmoves/{Path(name).name}" for name in FILES]
    make_project(
        root, minimal_config(catalog={"files": files, "models": LOCAL}), {"env/env.shared": MINIMAL_ENV}, "pmoves"
    )
    checked = cli(root, "validate", "pmoves")
    assert checked.returncode == 0, checked.stderr
    assert "notice: functions.agent_zero: variants left out, their models not served by this stack: " in checked.stdout
    assert "edge_mistral7b (model agent_zero_mistral7b_edge)" in checked.stdout
    done = cli(root, "render", "pmoves", "--out", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    config = tmp_path / "out" / "gateway" / "tensorzero.toml"
    for path in ORCHESTRATOR_FILES:
        assert (config.parent / path).read_text() == (FIXTURE / path).read_text()
    # What `render` wrote is what TensorZero loads: the paths resolve beside the config.
    tensorzero_gateway(config.read_text(), config.parent, monkeypatch, {})


@pytest.mark.parametrize("tier", [Tier.staging, Tier.prod])
def test_its_private_endpoints_in_plain_http_pass_beyond_dev(full, tier):
    """Plain http to its Ollamas (Docker names and the Jetson) is PMOVES's private network: kept beyond dev."""
    plain = [b.fields.get("api_base", "") for m in full.translation.models for b in m.providers]
    assert any(url.startswith("http://") for url in plain), plain  # the rule below has plain http to judge
    assert provider_problems(tier, full.catalog, full.translation) == []
