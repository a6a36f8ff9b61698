"""Shared fixtures: canary credentials, loaded stacks, their plans, and an OpenAI-compatible mock provider."""

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from contextlib import ExitStack
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from components.operate.plan import plan
from components.stack.loader import PROJECT_DIR, read_stack_config, stacks
from components.targets.preflight import load

# The tests mirror components/ (tests/services/, tests/stack/, ...) and share helpers by module name, as a flat
# tests/ folder did: test_backup reads test_clickhouse's seeded rows, the live tests read both.
for _folder in sorted(Path(__file__).resolve().parent.iterdir()):
    if _folder.is_dir() and not (_folder / "__init__.py").exists() and str(_folder) not in sys.path:
        sys.path.append(str(_folder))

STACKS = stacks()  # every stack file in stacks/, in promotion order
# By target: Docker hosts, or a Kubernetes cluster (the stack file's `kubernetes` key).
CLUSTER_STACKS = tuple(s for s in STACKS if read_stack_config(PROJECT_DIR, s)[0].get("kubernetes"))
DOCKER_STACKS = tuple(s for s in STACKS if s not in CLUSTER_STACKS)
# Values no rendered file, plan, log or output may ever contain.
CANARIES = {
    "TENSORZERO_CLICKHOUSE_PASSWORD": "canary-clickhouse-pw-7f3a",
    "ANTHROPIC_API_KEY": "canary-anthropic-key-91c2",
    "OPENAI_API_KEY": "canary-openai-key-4d8e",
    "VENICE_API_KEY": "canary-venice-key-2b6f",
    "GRAFANA_ADMIN_PASSWORD": "canary-grafana-pw-5e1d",
    "TENSORZERO_CLICKHOUSE_READONLY_PASSWORD": "canary-readonly-pw-c83b",
    "TENSORZERO_BACKUP_S3_ACCESS_KEY": "canary-s3-access-key-6a90",
    "TENSORZERO_BACKUP_S3_SECRET_KEY": "canary-s3-secret-key-0f17",
    "TENSORZERO_API_KEY": "canary-edge-key-0a7d-5f3e9b21c4d8a6f07e3bc915d2a4",
    "TENSORZERO_UI_PASSWORD": "canary-ui-pw-3b9e",
}


def unavailable(reason: str) -> None:
    """A real program a test needs is missing: skip saying so, but fail under CI (env CI set), where a check
    that checked nothing must not pass."""
    if os.environ.get("CI"):
        pytest.fail(f"cannot run under CI: {reason}")
    pytest.skip(reason)


def env_templates(stack: str, directory: Path) -> Path:
    """The stack's env layers as an operator starts them: copies of the committed *.example templates."""
    directory.mkdir(parents=True, exist_ok=True)
    for template in (PROJECT_DIR / "envfiles" / stack).glob("*.example"):
        shutil.copy(template, directory / template.stem)
    return directory


def write_canary_env(stack: str, directory: Path) -> Path:
    """The stack's template layers plus a `.env.local` holding canary credentials."""
    env_templates(stack, directory)
    (directory / ".env.local").write_text("".join(f"{k}={v}\n" for k, v in CANARIES.items()))
    return directory


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """Distinct free loopback ports: every probe stays bound until all are picked, so the kernel cannot hand out
    one port twice (the edge's API and UI listeners once got the same one, and the UI's tests met the API)."""
    with ExitStack() as probes:
        sockets = [probes.enter_context(socket.socket()) for _ in range(count)]
        for probe in sockets:
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in sockets]


@pytest.fixture(scope="session")
def canary_env_dirs(tmp_path_factory) -> dict[str, str]:
    return {stack: str(write_canary_env(stack, tmp_path_factory.mktemp(f"env-{stack}"))) for stack in STACKS}


@pytest.fixture(scope="session")
def deployments(canary_env_dirs):
    return {stack: load(stack, env_dir=canary_env_dirs[stack]) for stack in STACKS}


@pytest.fixture(scope="session")
def plans(deployments):
    return {stack: plan(deployment) for stack, deployment in deployments.items()}


@pytest.fixture(params=DOCKER_STACKS)
def stack(request) -> str:
    """Each Docker stack: the rules of the Docker target (tests/targets/test_kubernetes.py has the cluster's)."""
    return request.param


def planned_env(deployment, role: str, one_shot: str | None = None) -> tuple:
    """The variables a service's container (or one of its one-shots) gets, from the deployment's plans."""
    planned = deployment.plans[role]
    return planned.env if one_shot is None else next(s for s in planned.one_shots if s.name == one_shot).env


def resources(desired: dict, type_suffix: str) -> list[dict]:
    return [r for r in desired["resources"] if r["type"].endswith(type_suffix)]


def containers(desired: dict) -> dict[str, dict]:
    """Long-running service containers by Docker name (one-shots excluded: Ollama pulls, the ClickHouse schema)."""
    return {r["inputs"]["name"]: r for r in resources(desired, "container:Container") if not r["inputs"].get("attach")}


def container_of(desired: dict, role: str) -> dict:
    matches = [
        r
        for r in resources(desired, "container:Container")
        if {"label": "com.pmoves.service", "value": role} in r["inputs"]["labels"] and not r["inputs"].get("attach")
    ]
    assert len(matches) == 1, f"expected one {role} container, found {len(matches)}"
    return matches[0]


class LocalServer:
    """An HTTP server for `handler` on a free loopback port, serving from a daemon thread until closed."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]):
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


class OpenAIMock(LocalServer):
    """A local OpenAI-compatible provider that records what it was sent."""

    def __init__(self):
        self.requests: list[tuple[str, dict]] = []
        mock = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                mock.requests.append((self.path, body))
                if self.path.endswith("/embeddings"):
                    reply = {
                        "object": "list",
                        "data": [{"object": "embedding", "index": 0, "embedding": [0.25, -0.5, 0.75]}],
                        "model": body["model"],
                        "usage": {"prompt_tokens": 3, "total_tokens": 3},
                    }
                else:
                    reply = {
                        "id": "chatcmpl-mock",
                        "object": "chat.completion",
                        "created": 1,
                        "model": body["model"],
                        "choices": [
                            {
                                "index": 0,
                                "finish_reason": "stop",
                                "message": {"role": "assistant", "content": f"answer from {body['model']}"},
                            }
                        ],
                        "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
                    }
                payload = json.dumps(reply).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        super().__init__(Handler)
        self.url = f"http://127.0.0.1:{self.port}/v1"


@pytest.fixture
def openai_mock():
    mock = OpenAIMock()
    yield mock
    mock.close()


BACKEND_MISSING = "Observability is enabled but no backend is available"
OFFLINE_CONFIG = "tensorzero-no-clickhouse.toml"  # the config with observability off, beside the exact one


def tensorzero_gateway(config: str, directory: Path, monkeypatch, variables: dict[str, str]):
    """Build TensorZero's embedded gateway from `config`, with the gateway's own loader.

    The exact file must get through config parsing and stop only where it looks for
    ClickHouse (there is none here); the same file with observability off must then
    start completely. Returns that started gateway.
    """
    import tensorzero

    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    exact = directory / "tensorzero.toml"
    exact.write_text(config)
    if "observability.enabled = true" in config:
        with pytest.raises(tensorzero.TensorZeroInternalError) as failure:
            tensorzero.TensorZeroGateway.build_embedded(config_file=str(exact))
        assert "ConfigParsing" not in str(failure.value) and BACKEND_MISSING in str(failure.value), str(failure.value)
    offline = directory / OFFLINE_CONFIG
    offline.write_text(config.replace("observability.enabled = true", "observability.enabled = false"))
    return tensorzero.TensorZeroGateway.build_embedded(config_file=str(offline))


def openai_routes(config: str, directory: Path, monkeypatch, variables: dict[str, str]):
    """TensorZero's real OpenAI-compatible routes for `config`, served over HTTP by the `tensorzero` package.

    The config is first checked as `tensorzero_gateway` checks it; the routes then serve its offline copy.
    Returns an object whose `base_url` is their address (`http://127.0.0.1:<port>/openai/v1/`); it holds
    the gateway, so keep it while the routes are in use.
    """
    import tensorzero

    tensorzero_gateway(config, directory, monkeypatch, variables)

    class Served:
        base_url = None

    return tensorzero.patch_openai_client(Served(), config_file=str(directory / OFFLINE_CONFIG), async_setup=False)


def make_project(root: Path, config: dict, files: dict[str, str], stack: str = "test") -> Path:
    """A throwaway project: `stacks/Pulumi.<stack>.yaml` from `config` (keys without namespace) plus files."""
    import yaml

    from components.core.names import PROJECT

    (root / "stacks").mkdir(parents=True, exist_ok=True)
    document = {"config": {f"{PROJECT}:{key}": value for key, value in config.items()}}
    (root / "stacks" / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    for relative, text in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    return root


def minimal_config(**overrides) -> dict:
    """A valid dev stack config for a throwaway project; override any top-level key."""
    config = {
        "tier": "dev",
        "name_prefix": "pmoves-test",
        "env_files": {"dir": "env"},
        "catalog": {"files": ["catalog.toml"]},
    }
    config.update(overrides)
    return config


MINIMAL_CATALOG = """
[models.gemma_embed_local]
provider = "ollama"
model = "gemma:2b"
type = "embedding"
"""
# Grafana is deployed by default, so a stack needs its admin password and ClickHouse's read-only user's.
GRAFANA_CREDENTIALS_ENV = "GRAFANA_ADMIN_PASSWORD=g\nTENSORZERO_CLICKHOUSE_READONLY_PASSWORD=r\n"
# The edge serves the UI behind a login by default: its password.
UI_LOGIN_ENV = "TENSORZERO_UI_PASSWORD=u\n"
MINIMAL_ENV = "TENSORZERO_CLICKHOUSE_PASSWORD=tensorzero\n" + GRAFANA_CREDENTIALS_ENV + UI_LOGIN_ENV
# Credentials that pass every rule beyond dev (long, unguessable to zxcvbn, distinct, not defaults), and a caller's
# key for the edge.
STRONG_CREDENTIALS = {
    "TENSORZERO_CLICKHOUSE_PASSWORD": "c-0123456789abcdef",
    "GRAFANA_ADMIN_PASSWORD": "g-0123456789abcdef",
    "TENSORZERO_CLICKHOUSE_READONLY_PASSWORD": "r-0123456789abcdef",
    "TENSORZERO_UI_PASSWORD": "u-0123456789abcdef",
}
STRONG_KEY = "5f3e9b21c4d8a6f07e3bc915d2a40a7d5f3e9b21c4d8a6f07e3bc915d2a40a7d"
STRONG_ENV = "".join(f"{name}={value}\n" for name, value in STRONG_CREDENTIALS.items()) + (
    f"TENSORZERO_API_KEY={STRONG_KEY}\n"
)


def refusals(build) -> list[str]:
    """`key: message` of each problem `build()` (a load) is refused with; fails when it is accepted."""
    from components.core.errors import ConfigError

    with pytest.raises(ConfigError) as failure:
        build()
    return [f"{p.key}: {p.message}" for p in failure.value.problems]


@pytest.fixture(scope="session")
def self_signed(tmp_path_factory) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 and localhost, and its key (PEM), made by openssl."""
    directory = tmp_path_factory.mktemp("tls")
    import subprocess

    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout", str(directory / "key.pem"), "-out", str(directory / "cert.pem"),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return (directory / "cert.pem").read_text(), (directory / "key.pem").read_text()


def load_minimal(root: Path, catalog_toml: str = MINIMAL_CATALOG, env: str = MINIMAL_ENV, **overrides):
    """The `test` stack of a throwaway project: minimal_config(**overrides), `catalog.toml`, one env layer."""
    files = {"catalog.toml": catalog_toml, "env/env.shared": env}
    return load("test", project_dir=make_project(root, minimal_config(**overrides), files))


PROJECT_PARTS = ("components", "templates", "catalog", "stacks", "envfiles", "Pulumi.yaml")


def copy_project(target: Path) -> Path:
    """This project's package, templates, catalog, stacks and env templates, copied: the CLI run there reads them."""
    for part in PROJECT_PARTS:
        source = PROJECT_DIR / part
        if source.is_dir():
            shutil.copytree(source, target / part, ignore=shutil.ignore_patterns("__pycache__", ".env.local"))
        else:
            shutil.copy(source, target / part)
    return target


def cli(project: Path, *args: str, hash_seed: str = "0") -> subprocess.CompletedProcess:
    """`python -m components ARGS` as a separate process in `project` (a copy_project)."""
    env = {**os.environ, "PYTHONPATH": str(project), "PYTHONHASHSEED": hash_seed}
    return subprocess.run(
        [sys.executable, "-m", "components", *args], cwd=project, env=env, capture_output=True, text=True, timeout=120
    )
