"""One catalog for every stack: each stack serves a subset of the models, functions keep the variants those
models run, per-stack values fill `${NAME}`; every result is read by TensorZero's own loader."""

import pytest
import tomli
from conftest import CANARIES, MINIMAL_ENV, load_minimal, tensorzero_gateway

from components.core.errors import ConfigError
from components.services import gateway

CATALOG = """
[providers.cloudflare]
base_url = "https://api.cloudflare.com/client/v4/accounts/${CLOUDFLARE_ACCOUNT_ID}/ai/run/openai"
api_key = "env::CLOUDFLARE_API_TOKEN"

[models.local_chat]
provider = "ollama"
model = "qwen2.5:0.5b"

[models.edge_chat]
provider = "ollama"
model = "mistral:7b-instruct"

[models.hosted_chat]
provider = "anthropic"
model = "claude-sonnet-4-5"

[models.gpt_oss]
provider = "cloudflare"
model = "@cf/openai/gpt-oss-20b"

[models.gemma_embed_local]
provider = "ollama"
model = "gemma:2b"
type = "embedding"

# Natively written, as PMOVES writes its models.
[embedding_models.together_embedding]
routing = ["together"]

[embedding_models.together_embedding.providers.together]
type = "openai"
api_base = "https://api.together.xyz/v1"
model_name = "togethercomputer/text-embedding-20-light"
api_key_location = "env::TOGETHER_AI_API_KEY"

[models.native_local]
routing = ["ollama_local"]

[models.native_local.providers.ollama_local]
type = "openai"
api_base = "http://pmoves-ollama:11434/v1"
model_name = "qwen:7b"
api_key_location = "none"

[functions.agent]
type = "chat"

[functions.agent.variants.local]
type = "chat_completion"
model = "local_chat"

[functions.agent.variants.native]
type = "chat_completion"
model = "native_local"

[functions.agent.variants.hosted]
type = "chat_completion"
model = "hosted_chat"

[functions.agent.variants.oss]
type = "chat_completion"
model = "gpt_oss"

[functions.agent.variants.best]
type = "experimental_best_of_n_sampling"
candidates = ["local", "hosted"]

[functions.agent.variants.best.evaluator]
model = "local_chat"

[functions.agent.experimentation]
type = "static"
candidate_variants = ["hosted", "oss"]
fallback_variants = ["local", "native"]

[functions.hosted_only]
type = "chat"

[functions.hosted_only.variants.hosted]
type = "chat_completion"
model = "hosted_chat"
"""
HOSTED_KEYS = {
    "ANTHROPIC_API_KEY": CANARIES["ANTHROPIC_API_KEY"],
    "CLOUDFLARE_API_TOKEN": "canary-cloudflare-token-3c1a",
    "TOGETHER_AI_API_KEY": "canary-together-key-77d2",
}
ACCOUNT = "fe5ef93f1ffc7070b2218b96f8b256f5"
LOCAL = ["local_chat", "edge_chat", "native_local", "gemma_embed_local"]


def stack(tmp_path, catalog: str = CATALOG, env: str = MINIMAL_ENV, **catalog_spec):
    return load_minimal(tmp_path, catalog, env, catalog={"files": ["catalog.toml"], **catalog_spec})


def full_env() -> str:
    return MINIMAL_ENV + "".join(f"{k}={v}\n" for k, v in HOSTED_KEYS.items()) + f"CLOUDFLARE_ACCOUNT_ID={ACCOUNT}\n"


def rendered(deployment) -> dict:
    return tomli.loads(gateway.config_file(deployment).content)


def test_the_full_stack_serves_every_model_and_variant(tmp_path, monkeypatch):
    deployment = stack(tmp_path, env=full_env())
    config = rendered(deployment)
    assert sorted(config["functions"]["agent"]["variants"]) == ["best", "hosted", "local", "native", "oss"]
    assert config["models"]["gpt_oss"]["providers"]["cloudflare"]["api_base"] == (
        f"https://api.cloudflare.com/client/v4/accounts/{ACCOUNT}/ai/run/openai"
    )
    started = tensorzero_gateway(gateway.config_file(deployment).content, tmp_path, monkeypatch, HOSTED_KEYS)
    functions = started.experimental_get_config().functions
    assert functions["agent"] is not None and functions["hosted_only"] is not None


def test_a_local_stack_keeps_each_functions_local_variants_with_no_hosted_key(tmp_path, monkeypatch):
    deployment = stack(tmp_path / "local", catalog=CATALOG.replace(HOSTED_ONLY, ""), models=LOCAL)
    config = rendered(deployment)
    agent = config["functions"]["agent"]
    # `best` runs `hosted` among its candidates: it falls with it.
    assert sorted(agent["variants"]) == ["local", "native"]
    assert agent["experimentation"] == {
        "type": "static",
        "candidate_variants": [],
        "fallback_variants": ["local", "native"],
    }
    assert "together_embedding" not in config.get("embedding_models", {}) and "gpt_oss" not in config["models"]
    assert deployment.translation.variables == []  # no hosted key is needed, and none is given
    # Nor the account id: only what the stack renders is filled in.
    [notice] = [n for n in deployment.notices if n.startswith("functions.agent:")]
    assert notice == (
        "functions.agent: variants left out, their models not served by this stack: hosted (model hosted_chat), "
        "oss (model gpt_oss), best (runs hosted)"
    )
    tensorzero_gateway(gateway.config_file(deployment).content, tmp_path, monkeypatch, {})


HOSTED_ONLY = CATALOG[CATALOG.index("[functions.hosted_only]") :]


def test_a_function_left_with_no_variant_is_an_error_naming_it(tmp_path):
    with pytest.raises(ConfigError) as failure:
        stack(tmp_path, models=LOCAL)
    assert [(p.file, p.key, p.message) for p in failure.value.problems] == [
        (
            "catalog.toml",
            "functions.hosted_only",
            "no variant left in this stack: hosted (model hosted_chat); serve one of those models (catalog.models) "
            "or give the function a variant this stack serves",
        )
    ]


def test_a_variant_naming_no_model_of_any_catalog_file_is_an_error(tmp_path):
    catalog = CATALOG + '\n[functions.typo]\ntype = "chat"\n[functions.typo.variants.v]\ntype = "chat_completion"\n'
    with pytest.raises(ConfigError) as failure:
        stack(tmp_path, catalog=catalog + 'model = "loca_chat"\n', env=full_env())
    [problem] = failure.value.problems
    assert (problem.key, problem.message) == (
        "functions.typo.variants.v.model",
        "'loca_chat' is not a model of the catalog (did you mean local_chat?)",
    )


def test_native_models_follow_the_selection_and_their_ollama(tmp_path):
    deployment = stack(tmp_path, catalog=CATALOG.replace(HOSTED_ONLY, ""), models=LOCAL)
    assert deployment.translation.ollama_pulls == {
        "pmoves-ollama": ("qwen2.5:0.5b", "mistral:7b-instruct", "gemma:2b", "qwen:7b")
    }
    assert set(deployment.translation.native["models"]) == {"native_local"}


def test_a_native_url_on_ollamas_port_without_v1_is_refused(tmp_path):
    catalog = CATALOG.replace("http://pmoves-ollama:11434/v1", "http://gpu-box:11434")
    with pytest.raises(ConfigError) as failure:
        stack(tmp_path, catalog=catalog, env=full_env())
    [problem] = failure.value.problems
    assert problem.key == "models.native_local.providers.ollama_local.api_base"
    assert problem.message.startswith("'http://gpu-box:11434' is Ollama's port without its OpenAI path")


# --- ${NAME}: per-stack values -------------------------------------------------------------------------


CLOUDFLARE_ONLY = (
    CATALOG[: CATALOG.index("[models.local_chat]")]
    + CATALOG[CATALOG.index("[models.gpt_oss]") : CATALOG.index("[models.gemma_embed_local]")]
)
TOKEN = "CLOUDFLARE_API_TOKEN=canary-cloudflare-token-3c1a\n"


def api_base(deployment) -> str:
    return rendered(deployment)["models"]["gpt_oss"]["providers"]["cloudflare"]["api_base"]


@pytest.mark.parametrize(
    ("env", "variables", "account"),
    [
        (f"CLOUDFLARE_ACCOUNT_ID={ACCOUNT}\n", {}, ACCOUNT),
        ("", {"CLOUDFLARE_ACCOUNT_ID": "from-stack-config"}, "from-stack-config"),
        (f"CLOUDFLARE_ACCOUNT_ID={ACCOUNT}\n", {"CLOUDFLARE_ACCOUNT_ID": "from-stack-config"}, ACCOUNT),
    ],
    ids=["env-layer", "stack-config", "env-layer-wins"],
)
def test_a_per_stack_value_comes_from_env_layers_or_stack_config(tmp_path, env, variables, account):
    deployment = stack(tmp_path, catalog=CLOUDFLARE_ONLY, env=MINIMAL_ENV + TOKEN + env, variables=variables)
    assert api_base(deployment) == f"https://api.cloudflare.com/client/v4/accounts/{account}/ai/run/openai"
    assert "${" not in gateway.config_file(deployment).content


def test_a_missing_per_stack_value_is_an_error_naming_file_key_and_variable(tmp_path):
    with pytest.raises(ConfigError) as failure:
        stack(tmp_path, catalog=CLOUDFLARE_ONLY, env=MINIMAL_ENV + TOKEN + "CLOUDFLARE_ACCOUNT_ID=\n")
    [problem] = failure.value.problems
    assert (problem.file, problem.key) == ("catalog.toml", "providers.cloudflare.base_url")
    assert problem.message.startswith("${CLOUDFLARE_ACCOUNT_ID} is needed, but it is empty in env/env.shared:")


def test_a_credential_is_never_written_into_the_file(tmp_path):
    catalog = CLOUDFLARE_ONLY.replace("${CLOUDFLARE_ACCOUNT_ID}", "${CLOUDFLARE_API_TOKEN}")
    with pytest.raises(ConfigError) as failure:
        stack(tmp_path, catalog=catalog, env=MINIMAL_ENV + TOKEN)
    [problem] = failure.value.problems
    assert problem.message.startswith("${CLOUDFLARE_API_TOKEN} would write a credential into tensorzero.toml")
    assert "canary-cloudflare-token-3c1a" not in str(failure.value)


def test_values_fill_native_tables_and_a_doubled_dollar_stays_literal(tmp_path):
    header = 'extra_headers = [{ name = "X-Note", value = "Costs $${PRICE} per call" }]\n\n'
    catalog = CATALOG.replace(HOSTED_ONLY, "").replace(
        "[functions.agent.variants.native]", header + "[functions.agent.variants.native]"
    )
    catalog += '\n[metrics.task_done]\ntype = "boolean"\noptimize = "max"\nlevel = "${METRIC_LEVEL}"\n'
    deployment = stack(tmp_path, catalog=catalog, models=LOCAL, variables={"METRIC_LEVEL": "episode"})
    native = deployment.translation.native
    assert native["metrics"]["task_done"]["level"] == "episode"
    assert native["functions"]["agent"]["variants"]["local"]["extra_headers"] == [
        {"name": "X-Note", "value": "Costs ${PRICE} per call"}
    ]
