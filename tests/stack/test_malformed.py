"""Malformed configurations: the real CLI names file, key and problem, exits 2, and never shows a traceback.

Each case runs `python -m components validate test` as a subprocess in a throwaway
project. The CLI has no project-directory flag: it reads stacks from
`components.core.names.PROJECT_DIR`, the folder above the imported package (and `render.TEMPLATES` is derived the same way). So the
`components` and `templates` directories are *copied* (a symlink would resolve
back to the repository) into the throwaway project, which is then both the cwd
and the only entry of PYTHONPATH.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import MINIMAL_CATALOG, MINIMAL_ENV, make_project, minimal_config

import components
from components.core.names import PROJECT_DIR

STACK_FILE = "stacks/Pulumi.test.yaml"
CATALOG = "catalog.toml"
ENV_LAYER = "env/env.shared"
LITERAL_KEY = "sk-canary-literal-0123456789"  # must never be echoed back
PROD_READY = {"clickhouse": {"user": "pmoves"}}  # passes the default-user check outside dev
STRONG_PASSWORD = {ENV_LAYER: "TENSORZERO_CLICKHOUSE_PASSWORD=s3cret-pw-long-enough\n"}
# Three credentials that pass every rule outside dev: long enough, distinct, not a default.
STRONG_ENV = (
    "TENSORZERO_CLICKHOUSE_PASSWORD=c-0123456789abcdef\n"
    "GRAFANA_ADMIN_PASSWORD=g-0123456789abcdef\n"
    "TENSORZERO_CLICKHOUSE_READONLY_PASSWORD=r-0123456789abcdef\n"
)

# What pydantic says where a field lacks a message of its own: a raw regex, or a union branch's name.
PYDANTIC_INTERNALS = re.compile(r"match pattern|function-after|\[check\(\)")

# The harness relies on this: copying `components` moves PROJECT_DIR along with it.
assert PROJECT_DIR == Path(components.__file__).resolve().parent.parent


def catalog(extra: str, before: str = "") -> dict[str, str]:
    """The minimal catalog with `extra` tables appended (and `before` top-level keys prepended)."""
    return {CATALOG: before + MINIMAL_CATALOG + extra}


# A catalog function the cases below misspell the names of.
FUNCTION = (
    '[models.chat]\nprovider = "ollama"\nmodel = "q"\n[functions.summarize]\ntype = "chat"\n'
    '[functions.summarize.variants.local]\ntype = "chat_completion"\nmodel = "chat"\n'
)


class Symlink(str):
    """A file of the throwaway project written as a symbolic link to this target."""


def case(case_id, config, files, file, key, message):
    """One row: stack overrides, files written over the minimal project (None deletes), expected problem line."""
    return pytest.param(config, files, file, key, message, id=case_id)


# fmt: off
CASES = [
    # --- catalog: providers and models -------------------------------------------------------------
    case("provider-type-unknown", {}, catalog(
        '[providers.mistral]\ntype = "mistral"\nbase_url = "https://api.mistral.ai/v1"\n'
        'api_key = "env::MISTRAL_API_KEY"\n'),
        CATALOG, "providers.mistral.type", "Input should be 'openai', 'anthropic', 'openrouter', 'together' or 'ollama'"),
    case("model-provider-undeclared", {}, catalog('[models.chat]\nprovider = "mistral"\nmodel = "m"\n'),
         CATALOG, "models.chat.provider", "'mistral' is neither declared under [providers] nor built in"),
    case("provider-without-base-url", {}, catalog('[providers.mistral]\napi_key = "env::MISTRAL_API_KEY"\n'),
         CATALOG, "providers.mistral.base_url", "required for a provider that is not built in"),
    case("anthropic-with-base-url", {}, catalog('[providers.anthropic]\nbase_url = "https://example.com/v1"\n'),
         CATALOG, "providers.anthropic.base_url", "type 'anthropic' takes no base_url"),
    case("api-key-literal", {}, catalog(f'[providers.openai]\napi_key = "{LITERAL_KEY}"\n'),
         CATALOG, "providers.openai.api_key", 'holds a value, not a reference: put the key in an env layer (NAME=...) '
         'or a stack secret and write api_key = "env::NAME" (TensorZero\'s api_key_location), or "none"'),
    case("api-key-reference-misspelt", {}, catalog('[providers.openai]\napi_key = "env::OPENAI-KEY"\n'),
         CATALOG, "providers.openai.api_key", "'OPENAI-KEY' is not a variable's name (letters, digits and _"),
    case("model-key-typo-temprature", {}, catalog('[models.chat]\nprovider = "ollama"\nmodel = "q"\ntemprature = 0.2\n'),
         CATALOG, "models.chat.temprature", "unknown key"),
    case("model-type-unknown", {}, catalog('[models.chat]\nprovider = "ollama"\nmodel = "q"\ntype = "vision"\n'),
         CATALOG, "models.chat.type", "Input should be 'chat' or 'embedding'"),
    case("temperature-out-of-range", {}, catalog('[models.chat]\nprovider = "ollama"\nmodel = "q"\ntemperature = 3\n'),
         CATALOG, "models.chat.temperature", "Input should be less than or equal to 2"),
    case("embedding-with-temperature", {},
         catalog('[models.e2]\nprovider = "ollama"\nmodel = "q"\ntype = "embedding"\ntemperature = 0.5\n'),
         CATALOG, "models.e2", "temperature and max_tokens apply to chat models only"),
    case("embedding-on-anthropic", {}, catalog('[models.e2]\nprovider = "anthropic"\nmodel = "q"\ntype = "embedding"\n'),
         CATALOG, "models.e2.provider", "'anthropic' serves no embeddings here"),
    case("fallback-missing", {}, catalog('[models.chat]\nprovider = "ollama"\nmodel = "q"\nfallbacks = ["ghost"]\n'),
         CATALOG, "models.chat.fallbacks", "'ghost' is not a model of the catalog"),
    case("fallback-chat-to-embedding", {},
         catalog('[models.chat]\nprovider = "ollama"\nmodel = "q"\nfallbacks = ["gemma_embed_local"]\n'),
         CATALOG, "models.chat.fallbacks", "is of type embedding, not chat"),
    case("fallback-misspelt", {}, catalog('[models.chat]\nprovider = "ollama"\nmodel = "q"\nfallbacks = ["gemma_embed_locl"]\n'),
         CATALOG, "models.chat.fallbacks", "'gemma_embed_locl' is not a model of the catalog (did you mean gemma_embed_local?)"),
    case("provider-misspelt", {}, catalog('[models.chat]\nprovider = "olama"\nmodel = "q"\n'),
         CATALOG, "models.chat.provider", "(did you mean ollama?)"),
    case("fallback-to-itself", {}, catalog('[models.chat]\nprovider = "ollama"\nmodel = "q"\nfallbacks = ["chat"]\n'),
         CATALOG, "models.chat.fallbacks", "a model cannot fall back to itself"),
    case("sampling-defaults-clash-with-function", {},
         catalog('[models.chat]\nprovider = "ollama"\nmodel = "q"\ntemperature = 0.3\n[functions.chat]\ntype = "chat"\n'),
         CATALOG, "models.chat", "its sampling defaults become [functions.chat], which the catalog already defines"),
    case("defined-in-seed-format-and-natively", {}, catalog('[embedding_models.gemma_embed_local]\nrouting = ["p"]\n'),
         CATALOG, "models.gemma_embed_local", "defined twice: in the seed format and natively"),
    case("function-variant-names-unserved-model", {},
         catalog('[functions.f]\ntype = "chat"\n[functions.f.variants.v]\ntype = "chat_completion"\nmodel = "ghost"\n'),
         CATALOG, "functions.f.variants.v.model", "'ghost' is not a model of the catalog"),
    case("function-variant-model-misspelt", {},
         catalog('[functions.f]\ntype = "chat"\n[functions.f.variants.v]\ntype = "chat_completion"\nmodel = "chatt"\n'
                 '[models.chat]\nprovider = "ollama"\nmodel = "q"\n'),
         CATALOG, "functions.f.variants.v.model", "'chatt' is not a model of the catalog (did you mean chat?)"),
    case("evaluation-names-misspelt-function", {},
         catalog(FUNCTION + '[evaluations.e]\ntype = "inference"\nfunction_name = "summarise"\n'),
         CATALOG, "evaluations.e.function_name", "'summarise' is not a function of the catalog (did you mean summarize?)"),
    case("experiment-names-misspelt-variant", {},
         catalog(FUNCTION + '[functions.summarize.experimentation]\ntype = "static"\ncandidate_variants = ["locl"]\n'),
         CATALOG, "functions.summarize.experimentation.candidate_variants",
         "'locl' is not a variant of summarize (did you mean local?)"),
    case("variant-runs-misspelt-candidate", {},
         catalog(FUNCTION + '[functions.summarize.variants.best]\ntype = "experimental_best_of_n_sampling"\n'
                 'candidates = ["local", "lcoal"]\n[functions.summarize.variants.best.evaluator]\nmodel = "chat"\n'),
         CATALOG, "functions.summarize.variants.best.candidates", "'lcoal' is not a variant of summarize (did you mean local?)"),
    case("function-offers-misspelt-tool", {},
         catalog(FUNCTION.replace('type = "chat"\n', 'type = "chat"\ntools = ["get_wether"]\n', 1)
                 + '[tools.get_weather]\ndescription = "d"\nparameters = "tools/get_weather.json"\n'),
         CATALOG, "functions.summarize.tools", "'get_wether' is not a tool of the catalog (did you mean get_weather?)"),
    case("function-left-without-variant", {"catalog": {"files": [CATALOG], "models": ["gemma_embed_local"]}},
         catalog('[models.chat]\nprovider = "ollama"\nmodel = "q"\n[functions.f]\ntype = "chat"\n'
                 '[functions.f.variants.v]\ntype = "chat_completion"\nmodel = "chat"\n'),
         CATALOG, "functions.f", "no variant left in this stack: v (model chat)"),
    case("catalog-value-not-supplied", {},
         catalog('[providers.cf]\nbase_url = "https://api.cloudflare.com/accounts/${CF_ACCOUNT}/v1"\napi_key = "none"\n'
                 '[models.chat]\nprovider = "cf"\nmodel = "m"\n'),
         CATALOG, "providers.cf.base_url", "${CF_ACCOUNT} is needed, but no env layer in env/"),
    case("template-file-missing", {},
         catalog('[models.chat]\nprovider = "ollama"\nmodel = "q"\n[functions.f]\ntype = "chat"\n'
                 '[functions.f.variants.v]\ntype = "chat_completion"\nmodel = "chat"\n'
                 'system_template = "f/system.minijinja"\n'),
         CATALOG, "functions.f.variants.v.system_template", "f/system.minijinja: file not found"),
    case("openai-url-on-ollama-port-without-v1", {},
         catalog('[providers.gpu]\nbase_url = "http://gpu-box:11434"\napi_key = "none"\n'),
         CATALOG, "providers.gpu.base_url", "is Ollama's port without its OpenAI path"),
    case("ollama-model-without-ollama", {"ollama": {"enabled": False}}, {},
         CATALOG, "providers.ollama.base_url", "not set and this environment deploys no Ollama"),
    # --- catalog: files and tables -----------------------------------------------------------------
    case("toml-duplicate-key", {}, catalog('[models.gemma_embed_local]\nprovider = "ollama"\nmodel = "x"\n'),
         CATALOG, "", "not valid TOML: Cannot declare ('models', 'gemma_embed_local') twice"),
    case("toml-syntax", {}, catalog('[models.chat\nprovider = "ollama"\n'),
         CATALOG, "", "not valid TOML: Expected ']' at the end of a table declaration"),
    case("catalog-file-missing", {"catalog": {"files": [CATALOG, "catalog/extra.toml"]}}, {},
         "catalog/extra.toml", "", "catalog file not found"),
    case("gateway-table-in-catalog", {}, catalog("[gateway]\ndebug = true\n"),
         CATALOG, "gateway", "the [gateway] table is generated from the stack spec; set it there"),
    case("unknown-catalog-table", {}, catalog('[model.chat]\nprovider = "ollama"\nmodel = "q"\n'),
         CATALOG, "model", "unknown table; expected one of providers, models"),
    case("catalog-table-not-a-table", {}, catalog("", before="functions = 5\n"),
         CATALOG, "functions", "must be a table"),
    # --- stack file: syntax and shape --------------------------------------------------------------
    case("yaml-syntax", {}, {STACK_FILE: "config:\n  pmoves-tensorzero:tier: dev\n   bad: [unclosed\n"},
         STACK_FILE, "", "not valid YAML: mapping values are not allowed here"),
    case("stack-file-without-config", {}, {STACK_FILE: "- just\n- a list\n"},
         STACK_FILE, "config", "missing or not a mapping"),
    case("stack-file-missing", {}, {STACK_FILE: None}, STACK_FILE, "", "no such stack (stacks here: none)"),
    case("unknown-key-gatway", {"gatway": {"port": 3030}}, {}, STACK_FILE, "gatway", "unknown key"),
    case("secure-outside-secrets", {"gateway": {"secure": "v1:AAAA"}}, {},
         STACK_FILE, "gateway", "only secrets.* may be encrypted"),
    case("secrets-not-a-mapping", {"secrets": ["TENSORZERO_CLICKHOUSE_PASSWORD"]}, {},
         STACK_FILE, "secrets", "must be a mapping of variable name to value"),
    # --- stack spec: types and ranges --------------------------------------------------------------
    case("port-out-of-range", {"gateway": {"port": 70000}}, {},
         STACK_FILE, "gateway.port", "Input should be less than or equal to 65535"),
    # A bool is true or false: 1 is no more true than `port: true` is 1.
    case("gpu-given-as-one", {"ollama": {"gpu": 1}}, {}, STACK_FILE, "ollama.gpu", "1 is not a boolean: write true or false"),
    case("loki-enabled-given-as-one", {"loki": {"enabled": 1}}, {},
         STACK_FILE, "loki.enabled", "1 is not a boolean: write true or false"),
    case("port-not-a-number", {"gateway": {"port": "abc"}}, {},
         STACK_FILE, "gateway.port", "Input should be a valid integer, unable to parse string as an integer"),
    case("tier-not-an-enum", {"tier": 5}, {}, STACK_FILE, "tier", "Input should be 'dev', 'staging' or 'prod'"),
    case("catalog-files-not-a-list", {"catalog": {"files": CATALOG}}, {},
         STACK_FILE, "catalog.files", "Input should be a valid list"),
    case("catalog-files-empty", {"catalog": {"files": []}}, {},
         STACK_FILE, "catalog.files", "List should have at least 1 item"),
    case("image-without-tag", {"gateway": {"image": "tensorzero/gateway"}}, {},
         STACK_FILE, "gateway.image", "'tensorzero/gateway' is not an image reference with a tag"),
    case("bind-address-not-an-ip", {"hosts": {"main": {"bind_address": "localhost"}}}, {},
         STACK_FILE, "hosts.main.bind_address", "'localhost' is not an IP address"),
    case("stack-wide-bind-address", {"bind_address": "0.0.0.0"}, {},
         STACK_FILE, "", "the stack-wide bind_address is gone: set hosts.<host>.bind_address"),
    case("unauthenticated-beyond-loopback", {"prometheus": {"bind_address": "0.0.0.0"}}, {},
         STACK_FILE, "prometheus.bind_address", "prometheus would be published on 0.0.0.0:9090 without authentication"),
    case("memory-too-small", {"clickhouse": {"memory_mb": 10}}, {},
         STACK_FILE, "clickhouse.memory_mb", "Input should be greater than or equal to 64"),
    # --- stack spec: cross-field rules -------------------------------------------------------------
    case("host-port-published-twice", {"ui": {"port": 3030}}, {},
         STACK_FILE, "ui.port", "3030 is already published by gateway.port on host 'main'"),
    case("changed-port-clashes-with-a-default", {"gateway": {"port": 3000}}, {},
         STACK_FILE, "gateway.port", "3000 is already published by grafana.port on host 'main'"),
    case("host-port-published-twice-without-edge", {"edge": {"enabled": False}, "ui": {"port": 3030}}, {},
         STACK_FILE, "ui.port", "3030 is already published by gateway.port on host 'main'"),
    case("service-on-unknown-host", {"ollama": {"host": "jetson"}}, {},
         STACK_FILE, "ollama.host", "'jetson' is not one of hosts (main)"),
    case("ollama-instance-on-unknown-host", {"ollama": {"instances": {"jetson": {"host": "gpu", "port": 21434}}}}, {},
         STACK_FILE, "ollama.instances.jetson.host", "'gpu' is not one of hosts (main)"),
    case("ollama-instance-takes-a-hostname", {"ollama": {"instances": {"ui": {"alias": "tensorzero-ui"}}}}, {},
         STACK_FILE, "ollama.instances.ui.alias", "'tensorzero-ui' is already ui's hostname"),
    case("network-not-on-the-host", {"ui": {"networks": ["pmoves_api"]}}, {},
         STACK_FILE, "ui.networks", "'pmoves_api' is not declared in hosts.main.networks (none)"),
    case("adopted-volume-unknown", {"clickhouse": {"adopt_volumes": {"logs": {"name": "old-logs"}}}}, {},
         STACK_FILE, "clickhouse.adopt_volumes.logs", "clickhouse has no volume 'logs' (its volumes: backups, data)"),
    case("cross-host-over-loopback",
         {"hosts": {"main": {}, "gpu": {"url": "ssh://gpu", "address": "10.0.0.7"}}, "ollama": {"host": "gpu"}}, {},
         STACK_FILE, "ollama.port", "bind_address must not be a loopback address"),
    case("gateway-and-ui-tags-differ", {"ui": {"image": "tensorzero/ui:2026.5.0"}}, {},
         STACK_FILE, "ui.image", "tag '2026.5.0' differs from gateway.image tag '2026.6.0'"),
    case("catalog-selection-unknown-model", {"catalog": {"files": [CATALOG], "models": ["gemma_embed_local", "ghost"]}},
         {}, STACK_FILE, "catalog.models", "not in the catalog: ghost"),
    # --- tier rules --------------------------------------------------------------------------------
    case("latest-tag-in-prod", {"tier": "prod", **PROD_READY, "ollama": {"image": "ollama/ollama:latest"}},
         STRONG_PASSWORD, STACK_FILE, "ollama.image", "'ollama/ollama:latest' uses 'latest', refused in prod"),
    case("default-user-in-staging", {"tier": "staging"}, STRONG_PASSWORD,
         STACK_FILE, "clickhouse.user", "the seed's default user 'tensorzero' is refused in staging"),
    case("default-password-in-prod-from-env-layer", {"tier": "prod", **PROD_READY}, {},  # MINIMAL_ENV holds it
         f"{ENV_LAYER}:1", "TENSORZERO_CLICKHOUSE_PASSWORD", "the default password 'tensorzero' is refused in prod"),
    case("default-grafana-password-in-staging", {"tier": "staging", **PROD_READY},
         {ENV_LAYER: MINIMAL_ENV.replace("GRAFANA_ADMIN_PASSWORD=g", "GRAFANA_ADMIN_PASSWORD=admin")},
         f"{ENV_LAYER}:2", "GRAFANA_ADMIN_PASSWORD", "the default password 'admin' is refused in staging"),
    case("grafana-password-not-supplied", {}, {ENV_LAYER: "TENSORZERO_CLICKHOUSE_PASSWORD=x\n"},
         STACK_FILE, "grafana.admin_password_var", "GRAFANA_ADMIN_PASSWORD is needed, but no env layer in env/"),
    case("grafana-without-prometheus", {"prometheus": {"enabled": False}}, {},
         STACK_FILE, "grafana.enabled", "Grafana's dashboards need Prometheus"),
    case("clickhouse-metrics-across-hosts",
         {"hosts": {"main": {}, "data": {"address": "10.0.0.5", "bind_address": "10.0.0.5"}},
          "clickhouse": {"host": "data"}}, {},
         STACK_FILE, "clickhouse.metrics", "place them together or set clickhouse.metrics false"),
    case("default-password-in-prod-from-stack-secret",
         {"tier": "prod", **PROD_READY, "secrets": {"TENSORZERO_CLICKHOUSE_PASSWORD": "tensorzero"}}, STRONG_PASSWORD,
         STACK_FILE, "secrets.TENSORZERO_CLICKHOUSE_PASSWORD", "the default password 'tensorzero' is refused in prod"),
    # --- data-loss guards, backups and upgrades ----------------------------------------------------
    case("protect-data-off-in-prod", {"tier": "prod", **PROD_READY, "protect_data": False}, STRONG_PASSWORD,
         STACK_FILE, "protect_data", 'needs a confirmation in the stack file: data_loss_confirmations: [{change: "protect_data: false"'),
    case("retention-unconfirmed-in-staging", {"tier": "staging", "clickhouse": {"user": "pmoves", "retention_days": 30}},
         STRONG_PASSWORD, STACK_FILE, "clickhouse.retention_days", "rows older than 30 days are deleted"),
    case("retention-confirmed-for-another-value", {
        "tier": "prod", "clickhouse": {"user": "pmoves", "retention_days": 30},
        "data_loss_confirmations": [{"change": "clickhouse.retention_days: 90", "by": "Jane", "date": "2026-01-02"}]},
         STRONG_PASSWORD, STACK_FILE, "clickhouse.retention_days", '{change: "clickhouse.retention_days: 30"'),
    case("backups-volume-dropped-in-prod", {"tier": "prod", "clickhouse": {"user": "pmoves", "backups": False}},
         STRONG_PASSWORD, STACK_FILE, "clickhouse.backups", "the backups volume leaves the stack"),
    case("confirmation-without-a-date", {"data_loss_confirmations": [{"change": "protect_data: false", "by": "Jane"}]},
         {}, STACK_FILE, "data_loss_confirmations.0.date", "Field required"),
    case("backup-schedule-not-a-duration", {"backup": {"every": "daily"}}, {},
         STACK_FILE, "backup.every", "'daily' is not a duration"),
    case("backup-off-clickhouses-host", {"hosts": {"main": {}, "gpu": {"address": "10.0.0.7"}}, "backup": {"host": "gpu"}},
         {}, STACK_FILE, "backup.host", "must be clickhouse.host ('main'): it mounts ClickHouse's backups volume"),
    case("offsite-url-without-scheme", {"backup": {"offsite": {"url": "minio:9000"}}}, {},
         STACK_FILE, "backup.offsite.url", "'minio:9000' is not a URL: write http[s]://host[:port]/<bucket>[/prefix]"),
    case("offsite-url-not-a-url", {"backup": {"offsite": {"url": "not a url"}}}, {},
         STACK_FILE, "backup.offsite.url", "'not a url' is not a URL: write http[s]://host[:port]/<bucket>[/prefix]"),
    case("offsite-url-ftp", {"backup": {"offsite": {"url": "ftp://x/y"}}}, {},
         STACK_FILE, "backup.offsite.url", "'ftp://x/y': http:// or https:// only (an S3-compatible endpoint)"),
    case("offsite-url-without-bucket", {"backup": {"offsite": {"url": "http://minio:9000"}}}, {},
         STACK_FILE, "backup.offsite.url", "the bucket is missing: write http://minio:9000/<bucket>[/prefix]"),
    # A presigned URL expires, and its query holds the signature: refused without echoing it.
    case("offsite-url-signed", {"backup": {"offsite": {"url": f"http://minio:9000/b/p?X-Amz-Signature={LITERAL_KEY}"}}},
         {}, STACK_FILE, "backup.offsite.url", "a query string or #fragment is not allowed (a signed URL"),
    case("offsite-region-not-a-region", {"backup": {"offsite": {"url": "http://minio:9000/b", "region": "not a region!"}}},
         {}, STACK_FILE, "backup.offsite.region", "'not a region!' is not an S3 region: lower-case letters, digits"),
    case("caller-limit-zero", {"edge": {"keys": {"pmoves": {"var": "TENSORZERO_API_KEY", "requests_per_minute": 0}}}},
         {}, STACK_FILE, "edge.keys.pmoves.requests_per_minute",
         "0 would refuse every request: give at least 1, or leave it out for no limit"),
    case("caller-entry-a-number", {"edge": {"keys": {"pmoves": 5}}}, {},
         STACK_FILE, "edge.keys.pmoves", "should be a mapping with the keys var (required), requests_per_minute"),
    case("grafana-tls-terminator-one-letter", {"grafana": {"tls_terminated_by": "x"}}, {},
         STACK_FILE, "grafana.tls_terminated_by", "'x' names nothing: say what terminates TLS in front of it"),
    # A URL's userinfo is a credential: refused before anything is rendered, and never echoed back.
    case("offsite-url-with-credentials",
         {"backup": {"offsite": {"url": f"http://minio:{LITERAL_KEY}@minio:9000/backups/dev"}}}, {},
         STACK_FILE, "backup.offsite.url", "the URL holds credentials (user:password@): drop them from the URL and "
         "give the access key and secret key in the variables access_key_var and secret_key_var name"),
    case("offsite-keys-not-supplied", {"backup": {"offsite": {"url": "http://minio:9000/backups/dev"}}}, {},
         STACK_FILE, "backup.offsite.access_key_var", "TENSORZERO_BACKUP_S3_ACCESS_KEY is needed"),
    case("clickhouse-older-than-tensorzero-runs-on", {"clickhouse": {"image": "clickhouse/clickhouse-server:23.8-alpine"}},
         {}, STACK_FILE, "clickhouse.image", "ClickHouse 23.8 is outside what TensorZero 2026.6.0 runs on"),
    case("gateway-release-without-a-known-clickhouse-range",
         {"gateway": {"image": "tensorzero/gateway:2027.1.0"}, "ui": {"image": "tensorzero/ui:2027.1.0"}}, {},
         STACK_FILE, "gateway.image", "no ClickHouse range is known for TensorZero 2027.1.0"),
    # --- variables and env layers ------------------------------------------------------------------
    case("provider-key-not-supplied", {}, catalog('[models.claude]\nprovider = "anthropic"\nmodel = "claude-sonnet-4-5"\n'),
         CATALOG, "models.claude", "provider 'anthropic' needs ANTHROPIC_API_KEY, but no env layer in env/"),
    case("clickhouse-password-not-supplied", {}, {ENV_LAYER: "OTHER=1\n"},
         STACK_FILE, "clickhouse.password_var", "TENSORZERO_CLICKHOUSE_PASSWORD is needed, but no env layer in env/"),
    case("extra-env-not-supplied", {"ollama": {"extra_env": ["OLLAMA_KEEP_ALIVE"]}}, {},
         STACK_FILE, "ollama.extra_env", "OLLAMA_KEEP_ALIVE is listed, but no env layer in env/"),
    # Docker keeps the last of two: a listed copy would replace what the stack sets (a checked password, a URL).
    case("extra-env-replaces-what-the-stack-sets", {"ollama": {"extra_env": ["OLLAMA_HOST"]}},
         {ENV_LAYER: MINIMAL_ENV + "OLLAMA_HOST=0.0.0.0:1\n"},
         STACK_FILE, "ollama.extra_env", "OLLAMA_HOST is set by the stack itself"),
    case("adopted-volume-name-too-short", {"clickhouse": {"adopt_volumes": {"data": {"name": "a"}}}}, {},
         STACK_FILE, "clickhouse.adopt_volumes.data.name", "'a' is not a valid Docker volume name (2 or more characters)"),
    case("adopted-volume-mounted-at-root", {"ollama": {"adopt_volumes": {"models": {"name": "models", "mount": "/"}}}},
         {}, STACK_FILE, "ollama.adopt_volumes.models.mount", "'/' is where the image's own files are"),
    case("adopted-volume-mounted-over-etc", {"ollama": {"adopt_volumes": {"models": {"name": "models", "mount": "/etc/"}}}},
         {}, STACK_FILE, "ollama.adopt_volumes.models.mount", "'/etc/' is where the image's own files are"),
    # Over its own rendered config, ClickHouse's adopted data volume would take the config, the data the container.
    case("adopted-volume-mounted-over-the-rendered-config",
         {"clickhouse": {"adopt_volumes": {"data": {"name": "tensorzero-clickhouse-data",
                                                    "mount": "/etc/clickhouse-server/config.d"}}}},
         {}, STACK_FILE, "clickhouse.adopt_volumes.data.mount",
         "/etc/clickhouse-server/config.d holds the stack's own /etc/clickhouse-server/config.d/"),
    case("provider-key-empty", {}, {
        **catalog('[models.claude]\nprovider = "anthropic"\nmodel = "claude-sonnet-4-5"\n'),
        ENV_LAYER: "ANTHROPIC_API_KEY=\n" + MINIMAL_ENV},
        CATALOG, "models.claude", "provider 'anthropic' needs ANTHROPIC_API_KEY, but it is empty in env/env.shared:1"),
    case("layer-only-as-template", {}, {ENV_LAYER: None, "env/env.shared.example": MINIMAL_ENV},
         STACK_FILE, "clickhouse.password_var",
         "(start from env.shared.example: `make` copies each to its name without .example)"),
    case("env-dir-missing", {"env_files": {"dir": "nowhere"}}, {}, "nowhere", "", "env directory not found"),
    case("env-layer-broken-line", {}, {ENV_LAYER: "this is not a binding\n" + MINIMAL_ENV},
         ENV_LAYER, "line 1", "not a KEY=value line"),
    # --- files that exist but cannot be read or written back ---------------------------------------
    case("non-string-key-in-stack-config", {}, {STACK_FILE: "config:\n  1: x\n"},
         STACK_FILE, "config", "key 1 is not a string"),
    case("stack-key-given-twice", {}, {STACK_FILE: "config:\n  pmoves-tensorzero:tier: dev\n  pmoves-tensorzero:tier: prod\n"},
         STACK_FILE, "", "key given twice: pmoves-tensorzero:tier"),
    case("stack-file-not-utf8", {}, {STACK_FILE: b"config: \xff\n"}, STACK_FILE, "", "not UTF-8 text"),
    case("stack-file-nested-too-deeply", {}, {STACK_FILE: "config:\n  x: " + "[" * 3000 + "]" * 3000 + "\n"},
         STACK_FILE, "", "nested too deeply to read (lists or mappings within each other)"),
    case("stack-file-bom-inside", {}, {STACK_FILE: "# note\n\ufeffconfig:\n  pmoves-tensorzero:tier: dev\n"},
         STACK_FILE, "", "line 2: a byte-order mark (U+FEFF) inside the file; remove it"),
    case("catalog-file-not-utf8", {}, {CATALOG: b"\xff\xfe[models]\n"}, CATALOG, "", "not UTF-8 text"),
    case("catalog-file-is-a-directory", {"catalog": {"files": ["catalog"]}}, {"catalog/x.toml": MINIMAL_CATALOG},
         "catalog", "", "cannot read: Is a directory"),
    case("env-layer-not-utf8", {}, {ENV_LAYER: b"TENSORZERO_CLICKHOUSE_PASSWORD=\xff\n"}, ENV_LAYER, "", "not UTF-8 text"),
    case("native-value-without-toml-form", {}, catalog('[metrics.m]\ntype = "float"\nlevel = "inference"\nx = inf\n'),
         CATALOG, "metrics.m.x", "unsupported value: inf has no TOML form here"),
    case("native-date-value", {}, catalog('[metrics.m]\ntype = "float"\nlevel = "inference"\nx = 2026-01-01\n'),
         CATALOG, "metrics.m.x", "unsupported value: date has no TOML form"),
    case("native-function-not-a-table", {}, catalog("[functions]\nf = 5\n"), CATALOG, "functions.f", "must be a table"),
    case("native-variants-not-a-table", {}, catalog('[functions.f]\ntype = "chat"\nvariants = 5\n'),
         CATALOG, "functions.f.variants", "must be a table"),
    case("catalog-selection-repeats-a-model",
         {"catalog": {"files": [CATALOG], "models": ["gemma_embed_local", "gemma_embed_local"]}}, {},
         STACK_FILE, "catalog.models", "listed twice: gemma_embed_local"),
    case("seed-model-and-native-model-under-one-name", {"catalog": {"files": [CATALOG, "native.toml"]}}, {
        "native.toml": '[models.gemma_embed_local]\nrouting = ["p"]\n[models.gemma_embed_local.providers.p]\n'
                       'type = "openai"\nmodel_name = "x"\napi_key_location = "none"\napi_base = "http://x/v1"\n'},
        "native.toml", "models.gemma_embed_local", "defined twice: in the seed format and natively"),
    case("native-model-key-not-supplied", {"catalog": {"files": ["native.toml", CATALOG]}}, {
        "native.toml": '[models.m]\nrouting = ["p"]\n[models.m.providers.p]\n'
                       'type = "openai"\nmodel_name = "x"\napi_key_location = "env::FOO_KEY"\n'},
        "native.toml", "models.m", "provider 'p' needs FOO_KEY"),
    # --- what validate accepts must run (issue 14) -------------------------------------------------
    case("name-prefix-trailing-newline", {"name_prefix": "pmoves-test\n"}, {},
         STACK_FILE, "name_prefix", "'pmoves-test\\n' is not a valid Docker object name"),
    case("image-trailing-newline", {"gateway": {"image": "tensorzero/gateway:2026.6.0\n"}}, {},
         STACK_FILE, "gateway.image", "is not an image reference with a tag"),
    case("host-address-trailing-newline", {"hosts": {"main": {"address": "10.0.0.7\n"}}}, {},
         STACK_FILE, "hosts.main.address", "is neither an IP address nor a hostname"),
    case("catalog-key-with-a-tab", {}, catalog('[models."local\\tchat"]\nprovider = "ollama"\nmodel = "q"\n'),
         CATALOG, "models", "'local\\tchat': a catalog key is an identifier"),
    case("catalog-key-reserved-prefix", {}, catalog('[models."tensorzero::x"]\nprovider = "ollama"\nmodel = "q"\n'),
         CATALOG, "models", "'tensorzero::x': a catalog key is an identifier"),
    case("native-function-key-with-a-space", {}, catalog('[functions."my function"]\ntype = "chat"\n'),
         CATALOG, "functions", "'my function': a catalog key is an identifier"),
    case("max-tokens-above-u32", {}, catalog('[models.chat]\nprovider = "ollama"\nmodel = "q"\nmax_tokens = 9223372036854775807\n'),
         CATALOG, "models.chat.max_tokens", "Input should be less than or equal to 4294967295"),
    case("base-url-with-credentials", {}, catalog('[providers.mistral]\nbase_url = "https://user:hunter2@api.mistral.ai/v1"\napi_key = "none"\n'),
         CATALOG, "providers.mistral.base_url", "a URL may not hold credentials"),
    case("ollama-model-as-a-flag", {}, catalog('[models.chat]\nprovider = "ollama"\nmodel = "--insecure"\n'),
         CATALOG, "models.chat.model", "is not a valid model name"),
    case("ollama-model-not-an-ollama-name", {}, catalog('[models.chat]\nprovider = "ollama"\nmodel = "@cf/meta/llama"\n'),
         CATALOG, "models.chat.model", "'@cf/meta/llama' is not an Ollama model name"),
    case("clickhouse-password-xml-unsafe", {}, {ENV_LAYER: MINIMAL_ENV.replace("=tensorzero", "=a&b<c")},
         f"{ENV_LAYER}:1", "TENSORZERO_CLICKHOUSE_PASSWORD", "holds '&' and '<', which the image's entrypoint writes unescaped"),
    case("memory-beyond-any-host", {"clickhouse": {"memory_mb": 10**17}}, {},
         STACK_FILE, "clickhouse.memory_mb", "Input should be less than or equal to 4194304"),
    case("body-size-beyond-nginx", {"edge": {"client_max_body_size": "99999999999999999999m"}}, {},
         STACK_FILE, "edge.client_max_body_size", "is not an nginx size"),
    case("body-size-above-1g", {"edge": {"client_max_body_size": "4g"}}, {},
         STACK_FILE, "edge.client_max_body_size", "'4g' is more than 1g"),
    case("scrape-interval-huge", {"prometheus": {"scrape_interval": "99999999999999999999s"}}, {},
         STACK_FILE, "prometheus.scrape_interval", "is not a duration"),
    case("scrape-interval-beyond-staleness", {"prometheus": {"scrape_interval": "1h"}}, {},
         STACK_FILE, "prometheus.scrape_interval", "'1h' is out of range: from 1s to 5m"),
    case("key-without-project-prefix", {}, {STACK_FILE: "config:\n  pmoves-tensorzero:tier: dev\n  bind_address: 0.0.0.0\n"},
         STACK_FILE, "bind_address", "not read (a key of this project is written pmoves-tensorzero:bind_address), and "
         "the stack-wide bind_address is gone: set hosts.<host>.bind_address"),
    case("live-key-without-project-prefix", {}, {STACK_FILE: "config:\n  pmoves-tensorzero:tier: dev\n  name_prefix: x\n"},
         STACK_FILE, "name_prefix", "not read: a key of this project is written pmoves-tensorzero:name_prefix"),
    case("key-with-misspelled-prefix", {}, {STACK_FILE: "config:\n  pmoves-tensorzer:clickhouse:\n    port: 8124\n"},
         STACK_FILE, "pmoves-tensorzer:clickhouse", "did you mean pmoves-tensorzero:clickhouse?"),
    case("docker-host-url-typo", {"hosts": {"main": {"url": "htps://host"}}}, {},
         STACK_FILE, "hosts.main.url", "the scheme must be one of unix://, tcp://, ssh://"),
    case("docker-host-url-with-password", {"hosts": {"main": {"url": "ssh://pmoves:hunter2@gpu"}}}, {},
         STACK_FILE, "hosts.main.url", "may not hold a password"),
    case("catalog-file-absolute", {"catalog": {"files": ["/etc/hostname"]}}, {},
         STACK_FILE, "catalog.files.0", "must be a path inside the project"),
    case("catalog-file-above-the-project", {"catalog": {"files": ["../catalog.toml"]}}, {},
         STACK_FILE, "catalog.files.0", "must be a path inside the project"),
    case("catalog-file-symlink-out", {"catalog": {"files": ["link.toml"]}}, {"link.toml": Symlink("/etc/hostname")},
         STACK_FILE, "catalog.files.0", "'link.toml' leads out of the project (through a symlink)"),
    case("env-dir-symlink-out", {"env_files": {"dir": "envlink"}}, {"envlink": Symlink("/tmp")},
         STACK_FILE, "env_files.dir", "'envlink' leads out of the project (through a symlink)"),
    case("env-layer-symlink-out", {}, {ENV_LAYER: Symlink("/etc/passwd")},
         STACK_FILE, "env_files.layers.1", "'env/env.shared' leads out of the project (through a symlink)"),
    # --- refused by TensorZero's own loader (the gateway would not start) ------------------------------
    case("loader-function-max-tokens-beyond-u32", {}, catalog(
        '[models.chat]\nprovider = "ollama"\nmodel = "q"\n[functions.f]\ntype = "chat"\n'
        '[functions.f.variants.v]\ntype = "chat_completion"\nmodel = "chat"\nmax_tokens = 9999999999999\n'),
         CATALOG, "functions.f", "TensorZero's loader refuses the rendered gateway/tensorzero.toml: variants.v: "
         "max_tokens: invalid value: integer `9999999999999`, expected u32"),
    case("loader-metric-unknown-key", {}, catalog(
        '[metrics.m]\ntype = "boolean"\noptimize = "max"\nlevel = "inference"\ncolour = "red"\n'),
         CATALOG, "metrics.m.colour", "TensorZero's loader refuses the rendered gateway/tensorzero.toml: unknown field `colour`"),
    case("weak-password-in-prod", {"tier": "prod", **PROD_READY}, {ENV_LAYER: STRONG_ENV.replace("=g-", "=a\n#")},
         f"{ENV_LAYER}:2", "GRAFANA_ADMIN_PASSWORD", "1 characters; a password has at least 12 in prod"),
    case("default-password-other-case-in-prod", {"tier": "prod", **PROD_READY}, {ENV_LAYER: STRONG_ENV.replace("=g-", "=Admin\n#")},
         f"{ENV_LAYER}:2", "GRAFANA_ADMIN_PASSWORD", "the default password 'Admin' is refused in prod"),
    case("one-password-for-both-clickhouse-users", {"tier": "prod", **PROD_READY},
         {ENV_LAYER: STRONG_ENV.replace("TENSORZERO_CLICKHOUSE_READONLY_PASSWORD=r-", "TENSORZERO_CLICKHOUSE_READONLY_PASSWORD=c-")},
         STACK_FILE, "clickhouse.readonly_password_var", "holds the same value as TENSORZERO_CLICKHOUSE_PASSWORD"),
    # --- found by the adversarial pass: accepted on main ---------------------------------------------------
    case("port-given-true", {"clickhouse": {"port": True}}, {},
         STACK_FILE, "clickhouse.port", "must be an integer, not true (a YAML boolean)"),
    case("memory-given-true", {"gateway": {"memory_mb": True}}, {},
         STACK_FILE, "gateway.memory_mb", "must be an integer, not true"),
    case("keep-given-true", {"backup": {"keep": True}}, {},
         STACK_FILE, "backup.keep", "must be an integer, not true"),
    case("volume-size-given-true",
         {"kubernetes": {"context": "k", "namespace": "n", "volume_size_gb": {"clickhouse-data": True}}}, {},
         STACK_FILE, "kubernetes.volume_size_gb", "clickhouse-data: must be an integer, not true"),
    case("low-entropy-password-in-prod", {"tier": "prod", **PROD_READY},
         {ENV_LAYER: STRONG_ENV.replace("=g-0123456789abcdef", "=" + "a" * 32)},
         f"{ENV_LAYER}:2", "GRAFANA_ADMIN_PASSWORD", "about 0 bits of entropy, too predictable; a password has at least"),
    case("dev-template-password-in-prod", {"tier": "prod", **PROD_READY},
         {ENV_LAYER: STRONG_ENV.replace("=g-0123456789abcdef", "=pmoves-dev-grafana")},
         f"{ENV_LAYER}:2", "GRAFANA_ADMIN_PASSWORD", "'pmoves-dev-...' is the dev template's password"),
    case("key-with-a-trailing-space", {"edge": {"keys": {"a": "KEY_A"}}},
         {ENV_LAYER: MINIMAL_ENV + 'KEY_A="' + "0123456789abcdef" * 2 + ' "\n'},
         f"{ENV_LAYER}:5", "edge.keys.a", "KEY_A begins or ends with a space or tab"),
    case("every-key-empty", {"edge": {"keys": {"a": "TENSORZERO_API_KEY", "b": "TENSORZERO_API_KEY"}}},
         {ENV_LAYER: MINIMAL_ENV + "TENSORZERO_API_KEY=\n"},
         STACK_FILE, "edge.keys", "every caller's key is empty (TENSORZERO_API_KEY): the edge would let anyone in"),
    case("plain-secret-in-the-prod-stack-file",
         {"tier": "prod", **PROD_READY, "secrets": {"ANTHROPIC_API_KEY": "sk-ant-plain-0123456789"}}, STRONG_PASSWORD,
         STACK_FILE, "secrets.ANTHROPIC_API_KEY", "a plain value in the stack file, refused in prod: encrypt it"),
    case("prod-edge-on-shared-networks-without-keys",
         {"tier": "prod", **PROD_READY, "hosts": {"main": {"networks": ["pmoves_api"]}}, "edge": {"networks": ["pmoves_api"]}},
         {ENV_LAYER: STRONG_ENV + "TENSORZERO_UI_PASSWORD=u-0123456789abcdef\n"},
         STACK_FILE, "edge.networks", "edge joins pmoves_api but asks no caller for a key"),
]
# fmt: on


def build_project(root: Path, config: dict, files: dict) -> Path:
    """A throwaway project holding its own copy of the package, so the CLI's PROJECT_DIR is `root`."""
    make_project(root, config, {CATALOG: MINIMAL_CATALOG, ENV_LAYER: MINIMAL_ENV})
    for relative, content in files.items():
        path = root / relative
        if path.is_file():
            path.unlink()
        if content is None:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Symlink):
            path.symlink_to(content)
        else:
            path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
    for directory in ("components", "templates"):
        shutil.copytree(PROJECT_DIR / directory, root / directory, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def validate(root: Path) -> subprocess.CompletedProcess:
    env = {name: value for name, value in os.environ.items() if not name.startswith("PMOVES_SECRET_")}
    env["PYTHONPATH"] = str(root)
    return subprocess.run(
        [sys.executable, "-m", "components", "validate", "test"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_harness_runs_the_copied_package_on_a_valid_project(tmp_path):
    # The repository has no `test` stack: a pass proves the CLI read the throwaway project.
    result = validate(build_project(tmp_path, minimal_config(), {}))
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    assert any(line.startswith("test: valid (dev);") for line in result.stdout.splitlines()), result.stdout


def test_an_env_layer_linked_inside_the_project_is_read(tmp_path):
    files = {ENV_LAYER: Symlink("real.env"), "env/real.env": MINIMAL_ENV}  # relative: env/env.shared -> env/real.env
    result = validate(build_project(tmp_path, minimal_config(), files))
    assert result.returncode == 0, result.stderr


def test_a_yaml_merge_in_the_stack_file_is_read(tmp_path):
    """`<<:` merges a mapping into another, its own keys winning, as YAML (and Pulumi's reader) defines it."""
    project = build_project(tmp_path, minimal_config(), {})
    stack_file = project / STACK_FILE
    text = stack_file.read_text()
    assert "  pmoves-tensorzero:tier: dev\n" in text
    stack_file.write_text(
        text.replace(
            "  pmoves-tensorzero:tier: dev\n", "  <<: {pmoves-tensorzero:tier: prod}\n  pmoves-tensorzero:tier: dev\n"
        )
    )
    result = validate(project)
    assert result.returncode == 0, result.stderr
    assert any(line.startswith("test: valid (dev);") for line in result.stdout.splitlines()), result.stdout


@pytest.mark.parametrize(("config", "files", "file", "key", "message"), CASES)
def test_malformed_configuration_is_reported_cleanly(tmp_path, config, files, file, key, message):
    result = validate(build_project(tmp_path, minimal_config(**config), files))
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert result.stderr.startswith("test: invalid configuration\n"), result.stderr
    where = f"  {file}: {key}: " if key else f"  {file}: "
    assert any(line.startswith(where) and message in line for line in result.stderr.splitlines()), (
        f"no line starting {where!r} containing {message!r} in:\n{result.stderr}"
    )
    assert LITERAL_KEY not in result.stderr
    assert not PYDANTIC_INTERNALS.search(result.stderr), result.stderr


def test_every_problem_is_reported_in_one_run(tmp_path):
    """A spec error, a tier rule, a broken catalog entry and a missing credential: each stage still runs."""
    config = minimal_config(
        tier="prod",
        gatway={"port": 3030},
        gateway={"image": "tensorzero/gateway:latest"},
        ui={"image": "tensorzero/ui:latest"},
    )
    evaluation = '[evaluations.e]\ntype = "inference"\nfunction_name = "sumarize"\n'
    files = {**catalog('[models.chat]\nprovider = "mistral"\nmodel = "m"\n' + evaluation), ENV_LAYER: "OTHER=1\n"}
    result = validate(build_project(tmp_path, config, files))
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    expected = [
        f"  {STACK_FILE}: gatway: unknown key",
        f"  {CATALOG}: models.chat.provider: 'mistral' is neither declared under [providers] nor built in",
        f"  {CATALOG}: evaluations.e.function_name: 'sumarize' is not a function of the catalog",
    ]
    for line in expected:
        assert any(shown.startswith(line) for shown in result.stderr.splitlines()), result.stderr
    # With the spec valid, the tier rules, the catalog and the credentials are all reported together.
    del config["gatway"]
    result = validate(build_project(tmp_path / "valid-spec", config, files))
    expected = [
        f"  {STACK_FILE}: gateway.image: 'tensorzero/gateway:latest' uses 'latest', refused in prod",
        f"  {STACK_FILE}: ui.image: 'tensorzero/ui:latest' uses 'latest', refused in prod",
        f"  {CATALOG}: models.chat.provider: 'mistral' is neither declared under [providers] nor built in",
    ]
    for line in expected:
        assert any(shown.startswith(line) for shown in result.stderr.splitlines()), result.stderr
    config["gateway"], config["ui"] = {}, {}
    result = validate(build_project(tmp_path / "valid-images", config, {ENV_LAYER: "OTHER=1\n"}))
    lines = result.stderr.splitlines()
    assert f"  {STACK_FILE}: clickhouse.user: the seed's default user 'tensorzero' is refused in prod" in lines
    assert any(
        line.startswith(f"  {STACK_FILE}: clickhouse.password_var: TENSORZERO_CLICKHOUSE_PASSWORD") for line in lines
    )
    assert any(line.startswith(f"  {STACK_FILE}: grafana.admin_password_var: GRAFANA_ADMIN_PASSWORD") for line in lines)


def test_problems_are_one_line_each(tmp_path):
    """The README promises one line per problem; a YAML error is several lines of PyYAML's text."""
    files = {STACK_FILE: "config:\n  pmoves-tensorzero:tier: dev\n   bad: [unclosed\n"}
    result = validate(build_project(tmp_path, minimal_config(), files))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 2, result.stderr  # the header and one problem


def invalid_lines(result: subprocess.CompletedProcess) -> list[str]:
    assert "Traceback" not in result.stderr and result.returncode == 2, result.stderr
    assert result.stderr.startswith("test: invalid configuration\n"), result.stderr
    return result.stderr.splitlines()[1:]


def test_a_stack_file_that_is_a_directory_is_named_as_one(tmp_path):
    root = build_project(tmp_path, minimal_config(), {})
    (root / STACK_FILE).unlink()
    (root / STACK_FILE).mkdir()
    assert invalid_lines(validate(root)) == [f"  {STACK_FILE}: is a directory, not a stack file"]


def test_an_env_layer_that_is_a_directory_is_named_as_one(tmp_path):
    root = build_project(tmp_path, minimal_config(), {})
    (root / ENV_LAYER).unlink()
    (root / ENV_LAYER).mkdir()
    assert invalid_lines(validate(root)) == [f"  {ENV_LAYER}: is a directory, not an env layer (KEY=value lines)"]


def test_tls_files_that_are_directories_are_refused_with_their_paths(tmp_path):
    tls = {"enabled": True, "certificate_file": str(tmp_path), "key_file": str(tmp_path)}
    root = build_project(tmp_path / "project", minimal_config(edge={"tls": tls}), {})
    assert invalid_lines(validate(root)) == [
        f"  {STACK_FILE}: edge.tls.certificate_file: {tmp_path} is a directory, not a PEM file (Docker would mount "
        "it as one)",
        f"  {STACK_FILE}: edge.tls.key_file: {tmp_path} is a directory, not a PEM file (Docker would mount it as one)",
    ]


def test_missing_tls_files_on_the_edge_s_host_are_refused(tmp_path):
    """This machine publishes the edge (loopback), so Docker would mount nothing where nginx reads its pair."""
    (tmp_path / "gone.pem").symlink_to(tmp_path / "nowhere.pem")
    tls = {"enabled": True, "certificate_file": str(tmp_path / "c.pem"), "key_file": str(tmp_path / "gone.pem")}
    assert invalid_lines(validate(build_project(tmp_path / "project", minimal_config(edge={"tls": tls}), {}))) == [
        f"  {STACK_FILE}: edge.tls.certificate_file: {tmp_path / 'c.pem'} does not exist: Docker would mount an "
        "empty directory there and nginx could not start",
        f"  {STACK_FILE}: edge.tls.key_file: {tmp_path / 'gone.pem'} does not exist (a symlink to nothing): Docker "
        "would mount an empty directory there and nginx could not start",
    ]


@pytest.mark.parametrize("engine", ["ssh://root@localhost", "tcp://127.0.0.1:2375"])
def test_an_engine_reached_over_loopback_is_this_machine_s(tmp_path, engine):
    """Over ssh:// or tcp:// to loopback, Docker mounts this machine's files as it does over the unix socket."""
    tls = {"enabled": True, "certificate_file": str(tmp_path / "c.pem"), "key_file": str(tmp_path / "c.pem")}
    config = minimal_config(edge={"tls": tls}, hosts={"main": {"url": engine}})
    assert invalid_lines(validate(build_project(tmp_path / "project", config, {})))[0].startswith(
        f"  {STACK_FILE}: edge.tls.certificate_file: {tmp_path / 'c.pem'} does not exist: Docker would mount"
    )


def test_missing_tls_files_elsewhere_than_the_edge_s_host_are_named_in_a_notice(tmp_path):
    """A CI runner validating prod: its engine is local, but the edge's address (TEST-NET-1) is another machine's."""
    tls = {"enabled": True, "certificate_file": str(tmp_path / "c.pem"), "key_file": str(tmp_path / "k.pem")}
    config = minimal_config(edge={"tls": tls, "bind_address": "192.0.2.1", "keys": {"a": "KEY_A"}})
    result = validate(build_project(tmp_path / "project", config, {ENV_LAYER: MINIMAL_ENV + f"KEY_A={'5e' * 32}\n"}))
    assert result.returncode == 0, result.stderr
    assert (
        f"notice: edge.tls.certificate_file: {tmp_path / 'c.pem'} does not exist here, and this machine is not the "
        "edge's host (it does not hold 192.0.2.1): checked where the edge is published" in result.stdout
    )


def test_the_pulumi_clis_text_booleans_stay_booleans(tmp_path, monkeypatch):
    """Under `pulumi up` scalars arrive as text ("true"), objects as JSON (true): both are read as bools, and a
    number is refused as it is in the stack file (Pulumi's own config reader, PULUMI_CONFIG as its CLI sets it)."""
    from components.core.errors import ConfigError
    from components.core.names import PROJECT
    from components.stack.loader import load, read_pulumi_config

    project = make_project(tmp_path, minimal_config(), {CATALOG: MINIMAL_CATALOG, ENV_LAYER: MINIMAL_ENV})

    def given(**config):
        values = {
            f"{PROJECT}:{k}": v if isinstance(v, str) else json.dumps(v) for k, v in minimal_config(**config).items()
        }
        monkeypatch.setenv("PULUMI_CONFIG", json.dumps(values))
        return lambda: read_pulumi_config("test")

    spec = load("test", project, read_config=given(seed_container_names="true", loki={"enabled": False})).spec
    assert (spec.seed_container_names, spec.loki.enabled) == (True, False)
    with pytest.raises(ConfigError) as refused:
        load("test", project, read_config=given(seed_container_names="1", loki={"enabled": 1}))
    assert sorted(f"{p.key}: {p.message}" for p in refused.value.problems) == [
        "loki.enabled: 1 is not a boolean: write true or false",
        "seed_container_names: '1' is not a boolean: write true or false",
    ]
