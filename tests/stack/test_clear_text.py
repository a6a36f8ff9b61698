"""Nothing in clear beyond loopback outside dev, nothing open on a shared network, no allow-list that admits
everything: each row is a stack `validate` refuses naming the key, beside the accepted form of the same setting.
"""

import pytest
from conftest import MINIMAL_CATALOG, MINIMAL_ENV, STRONG_ENV, make_project, minimal_config, refusals

from components.stack.loader import load

GPU_HOSTS = {"main": {}, "gpu": {"address": "10.0.0.9", "bind_address": "10.0.0.9"}}
CLUSTER = {"context": "test-k3s", "namespace": "pmoves-test"}
EXTERNAL = {"host": "ch.pmoves.internal", "cluster_name": "tensorzero_cluster"}
# The stack's backup service reads its own ClickHouse's volume: with an external one it is off, confirmed.
NO_BACKUP = {
    "backup": {"enabled": False},
    "data_loss_confirmations": [{"change": "backup.enabled: false", "by": "test", "date": "2026-12-04"}],
}


def load_stack(root, tier="staging", tables="", **sections):
    """A stack beyond dev whose catalog holds `tables` too (each model there served)."""
    config = minimal_config(tier=tier, **({"clickhouse": {"user": "pmoves"}} | sections))
    files = {"catalog.toml": MINIMAL_CATALOG + tables, "env/env.shared": STRONG_ENV + HOSTED_ENV}
    return load("test", project_dir=make_project(root, config, files))


def problems(root, **kwargs) -> list[str]:
    return refusals(lambda: load_stack(root, **kwargs))


HOSTED_ENV = "VENICE_API_KEY=v-0123456789abcdef\nVLLM_API_KEY=l-0123456789abcdef\n"
OFFSITE_ENV = {"access_key_var": "VENICE_API_KEY", "secret_key_var": "VLLM_API_KEY"}  # any two variables set


def provider(base_url: str, api_key: str = "env::VLLM_API_KEY") -> dict:
    """A catalog provider `p` at `base_url`, and a model served through it."""
    table = f'[providers.p]\nbase_url = "{base_url}"\napi_key = "{api_key}"\n'
    return {"tables": table + '[models.chat]\nprovider = "p"\nmodel = "m"\n'}


def native(api_base: str, api_key_location: str = "") -> dict:
    """A native TensorZero model whose one provider block is at `api_base`; no api_key_location: its type's own."""
    location = f'api_key_location = "{api_key_location}"\n' if api_key_location else ""
    block = f'type = "openai"\nmodel_name = "m"\napi_base = "{api_base}"\n{location}'
    return {"tables": f'[models.nat]\nrouting = ["p"]\n[models.nat.providers.p]\n{block}'}


def offsite(url: str) -> dict:
    return {"backup": {"offsite": {"url": url, **OFFSITE_ENV}}}


IN_CLEAR = "a public host, would send"


def guard(allow):
    return {
        "hosts": GPU_HOSTS,
        "ollama": {"host": "gpu"},
        "ollama_guard": {"enabled": True, "host": "gpu", "allow": allow},
    }


# (id, sections, the problem's start) and, beside each, the accepted form.
REFUSED = [
    (
        "grafana-plain-http-on-the-lan",
        {"grafana": {"bind_address": "0.0.0.0"}},
        "grafana.bind_address: Grafana would serve its login in plain HTTP on 0.0.0.0:3000",
    ),
    (
        "ui-on-a-shared-network",
        {"hosts": {"main": {"networks": ["pmoves_api"]}}, "ui": {"networks": ["pmoves_api"]}},
        "ui.networks: the UI would answer on pmoves_api without the login",
    ),
    (
        "external-clickhouse-in-clear",
        {"clickhouse": {"external": {**EXTERNAL, "secure": False}}, **NO_BACKUP},
        "clickhouse.external.secure: false sends ClickHouse's password and every inference in the clear",
    ),
    (
        "cluster-ingress-without-tls",
        {"kubernetes": {**CLUSTER, "ingress": {"host": "tz.test"}}},
        "kubernetes.ingress.tls_secret: the ingress would serve callers' keys",
    ),
    ("allow-everything-v4", guard(["0.0.0.0/0"]), "ollama_guard.allow: '0.0.0.0/0' admits more addresses than any"),
    ("allow-everything-v6", guard(["::/0"]), "ollama_guard.allow: '::/0' admits more addresses than any"),
    # Two halves admit everything as surely as one whole; a half is never the gateway's host.
    ("allow-everything-in-halves", guard(["0.0.0.0/1", "128.0.0.0/1"]), "ollama_guard.allow: '0.0.0.0/1' admits more"),
    ("allow-a-wide-network-too", guard(["10.0.0.0/8", "0.0.0.0/1"]), "ollama_guard.allow: '0.0.0.0/1' admits more"),
    # The provider speaks tcp:// without TLS: whoever reaches that port runs any container as root there.
    ("docker-api-in-clear", {"hosts": {"main": {"url": "tcp://10.0.0.7:2375"}}}, "hosts.main.url: tcp://10.0.0.7:2375"),
    (
        "docker-api-in-clear-over-ipv6",
        {"hosts": {"main": {"url": "tcp://[2001:db8::7]:2375"}}},
        "hosts.main.url: tcp://[2001:db8::7]:2375 is Docker's API without TLS or login beyond loopback, refused in "
        "staging: use ssh://[user@][2001:db8::7] (the engine's socket over SSH)",
    ),
    # A hosted provider's key, or every backup, in plain http across the internet.
    (
        "provider-key-in-clear",
        provider("http://api.venice.ai/api/v1", "env::VENICE_API_KEY"),
        f"providers.p.base_url: plain http to api.venice.ai, {IN_CLEAR} its key (VENICE_API_KEY) in the clear",
    ),
    ("provider-key-in-clear-to-a-public-ip", provider("http://8.8.8.8:8000/v1"), "providers.p.base_url: plain http"),
    (
        "userinfo-through-a-catalog-variable",
        {
            **provider("https://${API_HOST}/v1"),
            "catalog": {"files": ["catalog.toml"], "variables": {"API_HOST": "adv:pw-0123@api.example.com"}},
        },
        "providers.p.base_url: holds user:password@ once its ${NAME} values are filled in: a credential in clear",
    ),
    (
        "builtin-provider-moved-to-http",
        {
            "tables": '[providers.venice]\nbase_url = "http://api.venice.ai/api/v1"\n'
            '[models.chat]\nprovider = "venice"\nmodel = "m"\n'
        },
        "providers.venice.base_url: plain http to api.venice.ai",
    ),
    (
        "native-provider-key-in-clear",
        native("http://api.example.com/v1", "env::VLLM_API_KEY"),
        f"models.nat.providers.p.api_base: plain http to api.example.com, {IN_CLEAR} its key (VLLM_API_KEY)",
    ),
    (
        "native-provider-default-key-in-clear",
        native("http://api.example.com/v1"),
        "models.nat.providers.p.api_base: plain http to api.example.com",
    ),
    (
        "backups-in-clear-to-s3",
        offsite("http://s3.amazonaws.com/bucket"),
        f"backup.offsite.url: plain http to s3.amazonaws.com, {IN_CLEAR} every backup",
    ),
    (
        "allow-host-bits",
        guard(["10.0.0.1/24"]),
        "ollama_guard.allow: '10.0.0.1/24' has host bits set: the network is 10.0.0.0/24",
    ),
]
ACCEPTED = [
    ("docker-api-over-ssh", {"hosts": {"main": {"url": "ssh://pmoves@10.0.0.7"}}}),
    ("docker-api-on-loopback", {"hosts": {"main": {"url": "tcp://127.0.0.1:2375"}}}),
    ("docker-api-on-ipv4-mapped-loopback", {"hosts": {"main": {"url": "tcp://[::ffff:127.0.0.1]:2375"}}}),
    ("allow-the-widest-private-network", guard(["10.0.0.0/8", "fc00::/7"])),
    ("grafana-behind-tls", {"grafana": {"bind_address": "0.0.0.0", "tls_terminated_by": "caddy on the main host"}}),
    ("grafana-on-loopback", {"grafana": {"bind_address": "127.0.0.1"}}),
    ("ui-behind-the-edge-only",
     {"hosts": {"main": {"networks": ["pmoves_api"]}}, "edge": {"networks": ["pmoves_api"]}}),
    ("external-clickhouse-tls", {"clickhouse": {"external": EXTERNAL}, **NO_BACKUP}),
    ("cluster-ingress-with-tls", {"kubernetes": {**CLUSTER, "ingress": {"host": "tz.test", "tls_secret": "tz-tls"}}}),
    ("allow-a-network", guard(["10.0.0.0/24", "100.101.0.1/32", "100.101.0.2"])),
    # PMOVES's private endpoints in plain http: Docker names, its tailnet, private names and addresses.
    ("provider-on-a-docker-name", provider("http://vllm:8000/v1")),
    ("provider-on-localhost", provider("http://localhost:8000/v1")),
    ("provider-on-the-tailnet", provider("http://100.101.0.7:8000/v1")),
    ("provider-on-a-private-name", provider("http://gpu-box.pmoves.internal:8000/v1")),
    ("provider-on-a-tailnet-name", provider("http://gpu-box.tail1234.ts.net:8000/v1")),
    ("provider-on-a-lan-address", provider("http://192.168.1.20:8000/v1")),
    ("provider-hosted-over-https", provider("https://api.venice.ai/api/v1", "env::VENICE_API_KEY")),
    ("provider-that-sends-no-key", provider("http://api.example.com/v1", "none")),
    ("native-provider-on-a-docker-name", native("http://vllm:8000/v1", "env::VLLM_API_KEY")),
    ("native-provider-that-sends-no-key", native("http://api.example.com/v1", "none")),
    ("backups-to-minio", offsite("http://minio:9000/bucket")),
    ("backups-to-minio-on-a-private-name", offsite("http://minio.pmoves.internal:9000/tensorzero/prod")),
    ("backups-to-s3-over-https", offsite("https://s3.amazonaws.com/bucket")),
]  # fmt: skip


@pytest.mark.parametrize("sections, expected", [pytest.param(s, e, id=i) for i, s, e in REFUSED])
def test_refused_beyond_dev(tmp_path, sections, expected):
    found = problems(tmp_path, **sections)
    assert any(line.startswith(expected) for line in found), found


@pytest.mark.parametrize("sections", [pytest.param(s, id=i) for i, s in ACCEPTED])
def test_the_safe_form_is_accepted(tmp_path, sections):
    load_stack(tmp_path, **sections)


def test_dev_keeps_its_loopback_conveniences(tmp_path):
    load_stack(tmp_path / "grafana", tier="dev", grafana={"bind_address": "0.0.0.0"})
    load_stack(tmp_path / "ingress", tier="dev", kubernetes={**CLUSTER, "ingress": {"host": "tz.test"}})
    load_stack(tmp_path / "provider", tier="dev", **provider("http://api.venice.ai/api/v1", "env::VENICE_API_KEY"))
    load_stack(tmp_path / "backups", tier="dev", **offsite("http://s3.amazonaws.com/bucket"))
    # but never a UI open on a shared network, nor an allow-list of everything
    assert problems(tmp_path / "ui", tier="dev", hosts={"main": {"networks": ["n"]}}, ui={"networks": ["n"]})
    assert problems(tmp_path / "allow", tier="dev", **guard(["0.0.0.0/0"]))


def test_a_credential_under_a_plain_name_in_extra_env_is_masked_in_the_plan(tmp_path):
    """`extra_env` passes variables by the names the operator chose: a generated key under a name that says
    nothing (UPSTREAM_AUTH_VALUE_X, FOO) is still masked wherever the plan is shown."""
    from components.operate.plan import plan, to_json

    canary = "a3f9c2e71b8d4f6a9c0e5d7b1f2a9c3e"
    env = MINIMAL_ENV + f"FOO={canary}\nPLAIN_SETTING=24h\n"
    config = minimal_config(ollama={"extra_env": ["FOO", "PLAIN_SETTING"]})
    deployment = load("test", project_dir=make_project(tmp_path, config, {"catalog.toml": MINIMAL_CATALOG,
                                                                             "env/env.shared": env}))  # fmt: skip
    shown = to_json(plan(deployment))
    assert canary not in shown
    ollama = {v.name: v for v in deployment.plans["ollama"].env}
    assert ollama["FOO"].secret and ollama["FOO"].shown == "[secret]"
    assert not ollama["PLAIN_SETTING"].secret and "24h" in shown  # a plain setting stays visible
