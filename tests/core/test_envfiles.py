"""Env-file layering: the seed's order, later wins, every value traceable to its file and line."""

import pytest
from conftest import GRAFANA_CREDENTIALS_ENV, MINIMAL_CATALOG, MINIMAL_ENV, UI_LOGIN_ENV, make_project, minimal_config

from components.core.envfiles import duplicate_notice, is_credential, looks_generated, read_layers
from components.core.errors import ConfigError
from components.core.names import DEFAULT_ENV_LAYERS
from components.stack.loader import load


def test_later_layers_win_and_keep_their_provenance(tmp_path):
    layers = {
        "env.shared.generated": "A=generated\nB=generated\nC=generated\nD=generated\n",
        "env.shared": "B=shared\nC=shared\nD=shared\n",
        ".env.generated": "# comment\nC=local-generated\nD=local-generated\n",
        ".env.local": "export D='local'\n",
    }
    for name, text in layers.items():
        (tmp_path / name).write_text(text)
    variables = read_layers(tmp_path, ".", list(DEFAULT_ENV_LAYERS))
    assert {k: v.value for k, v in variables.items()} == {
        "A": "generated",
        "B": "shared",
        "C": "local-generated",
        "D": "local",
    }
    assert variables["C"].source == "./.env.generated:2"
    assert variables["D"].source == "./.env.local:1"


def test_missing_layers_are_skipped(tmp_path):
    (tmp_path / "env.shared").write_text("ONLY=1\n")
    assert list(read_layers(tmp_path, ".", list(DEFAULT_ENV_LAYERS))) == ["ONLY"]


def test_a_broken_line_names_file_and_line(tmp_path):
    (tmp_path / ".env.local").write_text("GOOD=1\nthis is not a binding\n")
    with pytest.raises(ConfigError) as failure:
        read_layers(tmp_path, ".", [".env.local"])
    assert str(failure.value) == "./.env.local: line 2: not a KEY=value line"


@pytest.mark.parametrize(
    ("name", "value", "credential"),
    [
        ("OPENAI_API_KEY", "sk-1", True),
        ("TENSORZERO_CLICKHOUSE_PASSWORD", "pw", True),
        ("HF_TOKEN", "t", True),
        ("DATABASE_URL", "http://user:pw@db:8123/x", True),
        ("OLLAMA_KEEP_ALIVE", "24h", False),
        ("TENSORZERO_GATEWAY_URL", "http://tensorzero-gateway:3000", False),
        # Names and values the first rule missed (issue 14).
        ("HF_AUTH", "hf_abc", True),
        ("SENTRY_DSN", "https://public@o1.ingest.sentry.io/1", True),
        ("PROXY_URL", "http://token@proxy.internal:3128", True),
        ("BASIC_AUTH_HEADER", "Basic dXNlcjpwdw==", True),
        ("TLS_PRIVATE_PEM", "-----BEGIN", True),
        ("PULUMI_CONFIG_PASSPHRASE", "p", True),
        ("GF_AUTH_ANONYMOUS_ENABLED", "false", False),
    ],
)
def test_credentials_are_recognised(name, value, credential):
    assert is_credential(name, value) is credential


def test_stack_secrets_win_over_every_layer(tmp_path):
    config = minimal_config(secrets={"TENSORZERO_CLICKHOUSE_PASSWORD": "from-stack"})
    project = make_project(
        tmp_path,
        config,
        {
            "catalog.toml": MINIMAL_CATALOG,
            "env/env.shared": MINIMAL_ENV,
            "env/.env.local": "TENSORZERO_CLICKHOUSE_PASSWORD=from-layer\n",
        },
    )
    password = load("test", project_dir=project).variable("TENSORZERO_CLICKHOUSE_PASSWORD")
    assert (password.value, password.secret) == ("from-stack", True)
    assert password.source == "stacks/Pulumi.test.yaml: secrets.TENSORZERO_CLICKHOUSE_PASSWORD"


def test_encrypted_stack_secrets_use_the_documented_variable_offline(tmp_path, monkeypatch):
    config = minimal_config(secrets={"TENSORZERO_CLICKHOUSE_PASSWORD": {"secure": "v1:abc"}})
    # No layer supplies the ClickHouse password; Grafana's credentials come from a layer as usual.
    layer = "OTHER=1\n" + GRAFANA_CREDENTIALS_ENV + UI_LOGIN_ENV
    project = make_project(tmp_path, config, {"catalog.toml": MINIMAL_CATALOG, "env/env.shared": layer})
    placeholder = load("test", project_dir=project).variable("TENSORZERO_CLICKHOUSE_PASSWORD")
    assert placeholder.value.startswith("offline-placeholder-TENSORZERO_CLICKHOUSE_PASSWORD-")
    monkeypatch.setenv("PMOVES_SECRET_TENSORZERO_CLICKHOUSE_PASSWORD", "given")
    assert load("test", project_dir=project).variable("TENSORZERO_CLICKHOUSE_PASSWORD").value == "given"


def test_a_referenced_key_nobody_supplies_fails_naming_model_provider_and_variable(tmp_path):
    catalog = MINIMAL_CATALOG + '\n[models.claude_sonnet]\nprovider = "anthropic"\nmodel = "claude-sonnet-4-5"\n'
    project = make_project(tmp_path, minimal_config(), {"catalog.toml": catalog, "env/env.shared": MINIMAL_ENV})
    with pytest.raises(ConfigError) as failure:
        load("test", project_dir=project)
    assert str(failure.value) == (
        "catalog.toml: models.claude_sonnet: provider 'anthropic' needs ANTHROPIC_API_KEY, "
        "but no env layer in env/ and no stack secret supplies it"
    )


@pytest.mark.parametrize(
    ("value", "generated"),
    [
        ("sk-ant-api03-canary", True),
        ("ghp_0123456789abcdefABCDEF", True),
        ("a3f9c2e71b8d4f6a9c0e5d7b1f2a", True),
        ("eyJhbGciOiJIUzI1NiJ9.e30.x", True),
        ("pmoves-tensorzero-cluster", False),
        ("embeddinggemma:300m", False),
        ("24h", False),
        ("http://tensorzero-gateway:3000", False),
        # A credential inside a longer value: a webhook's token, a DSN's password, a header's.
        ("https://hooks.slack.com/services/T0/B0/c4n4ry9f2b7e1d0a6c3e8f5b", True),
        ("Driver=pg; Uid=sa; Pwd=c4n4ry9f2b7e1d0a6c3e8f5b", True),
        ("Basic Y2FuYXJ5OnM0ZmU5ZjJiN2UxZDBh", True),
        ("correct horse battery c4n4ry9f2b7e1d0a6c3e8f5b", True),
    ],
)
def test_a_value_that_looks_generated_is_told_by_its_value_alone(value, generated):
    """What `extra_env` masks whatever the variable is called (stack/planner.py)."""
    assert looks_generated(value) is generated


def test_a_placeholder_meets_the_strength_rules_it_stands_in_for():
    """`diff` plans both sides beyond dev with placeholders: a short variable name (ARCHON_KEY) must not make its
    placeholder a refused key, and two names never share one (each credential is its own)."""
    from components.core.envfiles import is_placeholder, placeholder
    from components.model.settings import key_weakness, password_weakness

    for name in ("A", "ARCHON_KEY", "TENSORZERO_CLICKHOUSE_PASSWORD"):
        assert key_weakness(placeholder(name)) is None and password_weakness(placeholder(name)) is None, name
        assert is_placeholder(placeholder(name)) and name in placeholder(name)
    assert placeholder("A") != placeholder("B")


def test_only_the_exact_placeholder_is_one():
    """A value typed to look like one (`offline-placeholder-cert`) is a real value, checked as one."""
    from components.core.envfiles import is_placeholder, placeholder

    assert is_placeholder(placeholder("EDGE_TLS_CERT"))
    assert not is_placeholder("offline-placeholder-cert")
    assert not is_placeholder(placeholder("EDGE_TLS_CERT")[:-1] + "x")
    assert not is_placeholder(placeholder("EDGE_TLS_CERT").replace("CERT", "KEY"))


def test_a_variable_repeated_in_one_layer_is_noticed_by_lines_never_values(tmp_path):
    # PMOVES's own env files repeat variables: the last line wins, and the operator is told which lines, not values.
    (tmp_path / "env.shared").write_text("KEY=first-secret-value\nOTHER=1\nKEY=second-secret-value\nKEY=\n")
    (tmp_path / ".env.local").write_text("OTHER=2\n")  # across layers a later layer wins, as always: no notice
    variables = read_layers(tmp_path, ".", list(DEFAULT_ENV_LAYERS))
    assert (variables["KEY"].value, variables["KEY"].earlier_lines) == ("", (1, 3))
    notice = duplicate_notice(variables["KEY"])
    assert notice == "./env.shared: KEY is set on lines 1, 3 and 4; the last (line 4, empty) wins"
    assert duplicate_notice(variables["OTHER"]) == ""


def test_a_later_duplicate_with_a_value_is_noticed_as_the_one_that_wins(tmp_path):
    (tmp_path / "env.shared").write_text("KEY=first-secret-value\nKEY=second-secret-value\n")
    variables = read_layers(tmp_path, ".", ["env.shared"])
    assert variables["KEY"].value == "second-secret-value"
    assert duplicate_notice(variables["KEY"]) == "./env.shared: KEY is set on lines 1 and 2; the last (line 2) wins"
