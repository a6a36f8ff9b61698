"""No weak or reused credential beyond dev, as the real CLI reports it: each row is a stack `validate` refused
after the adversarial pass found it accepted, with the exact line (file, key, what is wrong) and no secret echoed;
the controls beside them are stacks that must stay valid."""

import pytest
from conftest import MINIMAL_CATALOG, MINIMAL_ENV, minimal_config
from test_malformed import CATALOG, ENV_LAYER, PROD_READY, STACK_FILE, STRONG_ENV, build_project, validate

KEY = "5f3e9b21c4d8a6f07e3bc915d2a40a7d5f3e9b21c4d8a6f07e3bc915d2a40a7d"  # an `openssl rand -hex 32` value
OTHER_KEY = "9c04e7a1d2b83f56e0a4c7d91b2f68e35a0d7c4e9b18f2a6c3e05d7b94a1f8c2"
PROD_ENV = STRONG_ENV + "TENSORZERO_UI_PASSWORD=u-0123456789abcdef\n"
EDGE_KEY = {"edge": {"keys": {"pmoves": "TENSORZERO_API_KEY"}}}
# Two hosted providers whose keys are read from two variables, and a third OpenAI-compatible one sharing OpenAI's.
PROVIDERS = (
    '[providers.proxy]\ntype = "openai"\nbase_url = "https://llm-proxy.example.com/v1"\napi_key = "env::PROXY_KEY"\n'
    '[models.gpt]\nprovider = "openai"\nmodel = "gpt-4o"\n'
    '[models.claude]\nprovider = "anthropic"\nmodel = "claude-sonnet-4"\n'
    '[models.proxied]\nprovider = "proxy"\nmodel = "m"\n'
)
PROVIDER_KEYS = (
    f"OPENAI_API_KEY=sk-proj-{KEY[:40]}\nANTHROPIC_API_KEY=sk-ant-{OTHER_KEY[:40]}\nPROXY_KEY=p-{KEY[8:48]}\n"
)


CATALOG_FILES = {"files": [CATALOG]}
CANARY = "sk-proj-canary-in-the-stack-file-0123"


def prod(env: str = "", toml: str = PROVIDERS, **config):
    """A prod stack that is valid with `env` empty: strong, distinct credentials and the providers' keys (the
    proxy's read from PROXY_KEY, or the variable `toml` names instead)."""
    proxy_variable = toml.split("env::")[-1].split('"')[0]
    files = {
        ENV_LAYER: PROD_ENV + PROVIDER_KEYS.replace("PROXY_KEY", proxy_variable) + env,
        CATALOG: MINIMAL_CATALOG + toml,
    }
    return {"tier": "prod", **PROD_READY, **config}, files


# The dev template's values (envfiles/dev/env.shared.example), public to anyone who read it.
DEV_TEMPLATE_ENV = (
    "TENSORZERO_CLICKHOUSE_PASSWORD=tensorzero\nGRAFANA_ADMIN_PASSWORD=pmoves-dev-grafana\n"
    "TENSORZERO_CLICKHOUSE_READONLY_PASSWORD=pmoves-dev-readonly\nTENSORZERO_UI_PASSWORD=pmoves-dev-ui\n"
)


def dev(env: str = DEV_TEMPLATE_ENV, **config):
    return {"tier": "dev", **config}, {ENV_LAYER: env}


def row(case_id, stack, file, key, message):
    return pytest.param(*stack, file, key, message, id=case_id)


# fmt: off
REFUSED = [
    # 1. A credential equal to a provider key of the catalog, by value or by variable.
    row("edge-key-equal-to-openai-key", prod(f"TENSORZERO_API_KEY=sk-proj-{KEY[:40]}\n", **EDGE_KEY),
        STACK_FILE, "edge.keys.pmoves", "TENSORZERO_API_KEY holds the same value as OPENAI_API_KEY, which is the key "
        "of provider 'openai' (models.gpt); each credential is its own in prod"),
    row("edge-key-is-the-anthropic-variable", prod(edge={"keys": {"pmoves": "ANTHROPIC_API_KEY"}}),
        STACK_FILE, "edge.keys.pmoves", "ANTHROPIC_API_KEY is the key of provider 'anthropic' (models.claude)"),
    row("ui-password-equal-to-a-custom-providers-key", prod(f"TENSORZERO_UI_PASSWORD=p-{KEY[8:48]}\n"),
        STACK_FILE, "edge.ui_password_var", "TENSORZERO_UI_PASSWORD holds the same value as PROXY_KEY, which is the "
        "key of provider 'proxy' (models.proxied)"),
    row("clickhouse-password-equal-to-anthropic-key", prod(f"TENSORZERO_CLICKHOUSE_PASSWORD=sk-ant-{OTHER_KEY[:40]}\n"),
        STACK_FILE, "clickhouse.password_var", "TENSORZERO_CLICKHOUSE_PASSWORD holds the same value as "
        "ANTHROPIC_API_KEY"),
    # 2. Weak but varied: the characters' spread let these through; zxcvbn does not.
    row("grafana-password-ab-repeated", prod("GRAFANA_ADMIN_PASSWORD=" + "ab" * 20 + "\n"),
        f"{ENV_LAYER}:8", "GRAFANA_ADMIN_PASSWORD", "guessed in about 10^2 tries by zxcvbn's estimate (Repeats like "
        '"abcabcabc" are only slightly harder to guess than "abc"); make one with `openssl rand -hex 32`: a password '
        "needs 10^8 or more (zxcvbn score 3) in prod"),
    row("clickhouse-password-alphabet", prod("TENSORZERO_CLICKHOUSE_PASSWORD=abcdefghijklmnopqrstuvwxyz0123456789\n"),
        f"{ENV_LAYER}:8", "TENSORZERO_CLICKHOUSE_PASSWORD", 'by zxcvbn\'s estimate (Sequences like "abc" or "6543"'),
    row("grafana-password-password123-twice", prod("GRAFANA_ADMIN_PASSWORD=Password123!Password123!\n"),
        f"{ENV_LAYER}:8", "GRAFANA_ADMIN_PASSWORD", "guessed in about 10^5 tries by zxcvbn's estimate (Repeats"),
    # 3. A credential in clear in catalog.variables: by its name, as a provider's key variable, by its value.
    row("catalog-variable-named-as-a-key", prod(catalog={**CATALOG_FILES, "variables": {"HF_TOKEN": CANARY}}),
        STACK_FILE, "catalog.variables.HF_TOKEN", "names a credential: catalog.variables are in clear, refused "
        "in prod; encrypt it (pulumi config set --secret --path 'secrets.HF_TOKEN' ... --stack <stack>) or move "
        "it to a git-ignored env layer"),
    row("catalog-variable-openai-key", prod(catalog={**CATALOG_FILES, "variables": {"OPENAI_API_KEY": CANARY}}),
        STACK_FILE, "catalog.variables.OPENAI_API_KEY", "is a provider's key variable (env::OPENAI_API_KEY)"),
    row("catalog-variable-a-providers-key-variable",
        prod(toml=PROVIDERS.replace("PROXY_KEY", "PROXY_AUTHZ"),
             catalog={**CATALOG_FILES, "variables": {"PROXY_AUTHZ": "letmein-0123"}}),
        STACK_FILE, "catalog.variables.PROXY_AUTHZ", "is a provider's key variable (env::PROXY_AUTHZ)"),
    row("catalog-variable-valued-as-a-github-token",
        prod(catalog={**CATALOG_FILES, "variables": {"ACCOUNT": "ghp_" + OTHER_KEY[:36]}}),
        STACK_FILE, "catalog.variables.ACCOUNT", "holds what looks like a provider's key: catalog.variables are in "
        "clear, refused in prod"),
    # 6. Dev too: a login at the template's public value, published beyond loopback, lets the LAN in.
    row("dev-grafana-on-the-lan-with-the-template-password", dev(grafana={"bind_address": "0.0.0.0"}),
        STACK_FILE, "grafana.bind_address", "grafana would be published on 0.0.0.0:3000 with GRAFANA_ADMIN_PASSWORD "
        "(grafana.admin_password_var) at the template's public value: anyone who reaches it logs in; set your own "
        "(`openssl rand -hex 32`) or publish it on loopback (grafana.bind_address: 127.0.0.1)"),
    row("dev-clickhouse-on-the-lan-with-the-seed-password", dev(clickhouse={"bind_address": "0.0.0.0"}),
        STACK_FILE, "clickhouse.bind_address", "with TENSORZERO_CLICKHOUSE_PASSWORD (clickhouse.password_var) at the "
        "template's public value"),
    row("dev-edge-on-the-lan-with-the-template-ui-password",
        dev(edge={"bind_address": "0.0.0.0", "tls_terminated_by": "a proxy"}),
        STACK_FILE, "edge.bind_address", "with TENSORZERO_UI_PASSWORD (edge.ui_password_var) at the template's "
        "public value"),
    row("dev-host-on-the-lan-with-the-template-password", dev(hosts={"main": {"bind_address": "192.168.1.20"}}),
        STACK_FILE, "grafana.bind_address", "grafana would be published on 192.168.1.20:3000 with "
        "GRAFANA_ADMIN_PASSWORD"),
]
# fmt: on

SECRETS = (
    CANARY,
    "letmein-0123",
    "ghp_",
    "ab" * 20,
    "abcdefghijklmnopqrstuvwxyz0123456789",
    "Password123!",
    KEY[:40],
    OTHER_KEY[:40],
)


@pytest.mark.parametrize(("config", "files", "file", "key", "message"), REFUSED)
def test_a_weak_or_reused_credential_is_refused_beyond_dev(tmp_path, config, files, file, key, message):
    result = validate(build_project(tmp_path, minimal_config(**config), files))
    assert "Traceback" not in result.stderr, result.stderr
    assert (result.returncode, result.stdout) == (2, ""), result.stderr
    where = f"  {file}: {key}: "
    assert any(line.startswith(where) and message in line for line in result.stderr.splitlines()), (
        f"no line starting {where!r} containing {message!r} in:\n{result.stderr}"
    )
    assert not [secret for secret in SECRETS if secret in result.stderr]


# fmt: off
VALID = [
    pytest.param(*prod(f"TENSORZERO_API_KEY={KEY}\n", **EDGE_KEY), id="prod-every-credential-its-own"),
    # Providers may share a key: OpenAI-compatible providers behind one proxy take the proxy's.
    pytest.param(*prod(f"TENSORZERO_API_KEY={KEY}\nPROXY_KEY=sk-proj-{KEY[:40]}\n", **EDGE_KEY),
                 id="prod-two-providers-one-key"),
    pytest.param(*prod(toml=PROVIDERS.replace("env::PROXY_KEY", "env::OPENAI_API_KEY")),
                 id="prod-two-providers-one-variable"),
    # Dev's laptop stacks compare nothing: the template's values may repeat.
    # A catalog variable that is no credential (an account id in a URL) stays in the stack file.
    pytest.param(*prod(catalog={**CATALOG_FILES, "variables": {"CLOUDFLARE_ACCOUNT_ID": KEY[:32]}}),
                 id="prod-catalog-variable-account-id"),
    pytest.param(minimal_config(catalog={**CATALOG_FILES, "variables": {"OPENAI_API_KEY": CANARY}}), {},
                 id="dev-catalog-variable-named-as-a-key"),
    # Dev's template values stay fine on loopback, and a value of the operator's own beyond it.
    pytest.param(*dev(), id="dev-template-on-loopback"),
    pytest.param(*dev(DEV_TEMPLATE_ENV.replace("pmoves-dev-grafana", "my-own-grafana-pw"),
                      grafana={"bind_address": "0.0.0.0"}), id="dev-own-grafana-password-on-the-lan"),
    pytest.param(minimal_config(**EDGE_KEY), {ENV_LAYER: MINIMAL_ENV + "TENSORZERO_API_KEY=tensorzero\n"},
                 id="dev-key-equal-to-the-clickhouse-password"),
]
# fmt: on


@pytest.mark.parametrize(("config", "files"), VALID)
def test_distinct_strong_credentials_stay_valid(tmp_path, config, files):
    result = validate(build_project(tmp_path, minimal_config(**config), files))
    assert result.returncode == 0, result.stderr


# 4. A variable set twice in one layer: not refused (PMOVES's env files repeat some), but said, by lines only.
@pytest.mark.parametrize(
    ("config", "files", "notice"),
    [
        pytest.param(
            *dev(MINIMAL_ENV + f"TENSORZERO_API_KEY={KEY}\nTENSORZERO_API_KEY=\n", **EDGE_KEY),
            "notice: env/env.shared: TENSORZERO_API_KEY is set on lines 5 and 6; the last (line 6, empty) wins",
            id="dev-a-later-empty-line-removes-the-key",
        ),
        pytest.param(
            *prod(f"TENSORZERO_API_KEY={KEY}\nTENSORZERO_API_KEY={OTHER_KEY}\n", **EDGE_KEY),
            "notice: env/env.shared: TENSORZERO_API_KEY is set on lines 8 and 9; the last (line 9) wins",
            id="prod-a-later-key-replaces-the-first",
        ),
    ],
)
def test_a_variable_repeated_in_one_layer_gets_a_notice_naming_lines_not_values(tmp_path, config, files, notice):
    result = validate(build_project(tmp_path, minimal_config(**config), files))
    assert result.returncode == 0, result.stderr
    assert notice in result.stdout.splitlines()
    assert KEY not in result.stdout + result.stderr and OTHER_KEY not in result.stdout + result.stderr


def test_an_empty_later_line_that_removes_the_only_key_is_named_in_the_refusal(tmp_path):
    shared = {"hosts": {"main": {"networks": ["pmoves_api"]}}, "edge": {**EDGE_KEY["edge"], "networks": ["pmoves_api"]}}
    config, files = prod(f"TENSORZERO_API_KEY={KEY}\nTENSORZERO_API_KEY=\n", **shared)
    result = validate(build_project(tmp_path, minimal_config(**config), files))
    assert result.returncode == 2, result.stderr
    line = next(line for line in result.stderr.splitlines() if line.startswith(f"  {STACK_FILE}: edge.networks: "))
    assert (
        "edge joins pmoves_api but asks no caller for a key (TENSORZERO_API_KEY is empty on env/env.shared:9, which "
        "wins over line 8 of that layer: remove the empty line): every service there would reach" in line
    )
    assert KEY not in result.stderr
