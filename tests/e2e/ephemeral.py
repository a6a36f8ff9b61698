"""An ephemeral stack for the end-to-end deploy: a copy of the project with one extra stack, the dev stack made
unique (its own name prefix, free host ports, fresh credentials) and small (two tiny Ollama models, no hosted
key). Pure and offline: `make test` checks that the loader accepts it and what its one-model change replaces.
"""

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Optional

import httpx
import yaml

from components.core.names import PROJECT, STACK_LABEL
from components.operate.diff import diff
from components.stack.loader import PROJECT_DIR

PROJECT_PARTS = ("Pulumi.yaml", "__main__.py", "components", "templates", "catalog", "stacks", "envfiles")
CATALOG = "catalog/e2e.toml"
CHAT, EMBEDDING = "e2e_chat", "e2e_embed"
# Small enough for a hosted runner: about 90 MB and 45 MB.
CATALOG_TEXT = f"""
[models.{CHAT}]
provider = "ollama"
model = "smollm:135m"
type = "chat"

[models.{EMBEDDING}]
provider = "ollama"
model = "all-minilm:22m"
type = "embedding"
"""
# The one-model change: sampling defaults for the chat model (its generated function, the edge's target).
CHANGED_CATALOG_TEXT = CATALOG_TEXT.replace('type = "chat"\n', 'type = "chat"\ntemperature = 0.2\n', 1)
PUBLISHED = ("clickhouse", "gateway", "ui", "ollama", "prometheus", "grafana")
REGISTRY = "https://registry-1.docker.io/v2/"  # answers 401 to anyone: reachable is all this asks
WHY_HERE = (
    "it is downloaded from get.pulumi.com when installed, which this project's machines cannot reach; "
    "the pull-request workflow's `e2e` job installs it with pulumi/actions on a GitHub-hosted runner"
)


def why_not_here() -> Optional[str]:
    """Why the deploy cannot run on this machine, or None when it can."""
    if shutil.which("pulumi") is None:
        return f"the Pulumi CLI is not on PATH ({WHY_HERE})"
    engine = subprocess.run(["docker", "info"], capture_output=True, text=True) if shutil.which("docker") else None
    if engine is None or engine.returncode != 0:
        return "no Docker engine answers (`docker info`)"
    try:
        httpx.get(REGISTRY, timeout=10)
    except httpx.HTTPError as error:
        return f"no image registry is reachable ({REGISTRY}: {error}); the stack's real images cannot be pulled"
    return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def stack_config(stack: str) -> dict:
    """The dev stack's config, with its own prefix, ports, catalog and env layers."""
    document = yaml.safe_load((PROJECT_DIR / "stacks" / "Pulumi.dev.yaml").read_text())
    config = {key.removeprefix(f"{PROJECT}:"): value for key, value in document["config"].items()}
    config["name_prefix"] = f"pmoves-{stack}"
    config["env_files"] = {"dir": f"envfiles/{stack}"}
    config["catalog"] = {"files": [CATALOG], "models": [CHAT, EMBEDDING]}
    config["smoke"] = {"chat_model": CHAT, "embedding_model": EMBEDDING}
    for role in PUBLISHED:
        config[role] = {**config.get(role, {}), "port": free_port()}
    return config


def make_project(root: Path, stack: str) -> Path:
    """A copy of the project holding `stack`; `.venv` is this interpreter's environment (Pulumi.yaml names it)."""
    root.mkdir(parents=True, exist_ok=True)
    for part in PROJECT_PARTS:
        source = PROJECT_DIR / part
        if source.is_dir():
            shutil.copytree(source, root / part, ignore=shutil.ignore_patterns("__pycache__", ".env*", "env.shared"))
        else:
            shutil.copy(source, root / part)
    (root / ".venv").symlink_to(Path(sys.prefix))
    (root / CATALOG).write_text(CATALOG_TEXT)
    config = {f"{PROJECT}:{key}": value for key, value in stack_config(stack).items()}
    (root / "stacks" / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump({"config": config}, sort_keys=False))
    layers = root / "envfiles" / stack
    layers.mkdir(parents=True)
    credentials = (
        "TENSORZERO_CLICKHOUSE_PASSWORD",
        "TENSORZERO_CLICKHOUSE_READONLY_PASSWORD",
        "GRAFANA_ADMIN_PASSWORD",
        "TENSORZERO_UI_PASSWORD",  # the edge's UI login
        "TENSORZERO_API_KEY",  # the edge's caller `pmoves`: the smoke suite sends it
    )
    layer = "".join(f"{name}=e2e-{secrets.token_hex(12)}\n" for name in credentials) + "OLLAMA_KEEP_ALIVE=5m\n"
    (layers / ".env.local").write_text(layer)
    return root


def change_one_model(root: Path) -> None:
    (root / CATALOG).write_text(CHANGED_CATALOG_TEXT)


def offline_plan(root: Path, stack: str) -> dict:
    """`plan --json` of the copy, by its own code: what `diff` compares."""
    done = subprocess.run(
        [sys.executable, "-m", "components", "plan", stack, "--json"],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def predicted(before: dict, after: dict) -> set[tuple[str, str]]:
    """(action, Pulumi name) of every resource `diff` says the change touches."""
    return {(change.action, change.name) for change in diff(before, after)}


# How the engine names what it does to a resource, in diff's words.
ENGINE_ACTIONS = {
    "create": "create",
    "update": "update",
    "delete": "delete",
    "replace": "replace",
    "create-replacement": "replace",
    "delete-replaced": "replace",
}


def engine_changes(steps: list[tuple[str, str]]) -> set[tuple[str, str]]:
    """(op, urn) of a preview's steps -> (action, Pulumi name), as `predicted` gives them."""
    return {(ENGINE_ACTIONS[op], urn.rsplit("::", 1)[1]) for op, urn in steps if op in ENGINE_ACTIONS}


def leftovers(name_prefix: str) -> dict[str, list[str]]:
    """Containers, networks and volumes of the stack still on this Docker host."""
    queries = {
        "containers": [
            "docker",
            "ps",
            "--all",
            "--filter",
            f"label={STACK_LABEL}={name_prefix}",
            "--format",
            "{{.Names}}",
        ],
        "networks": ["docker", "network", "ls", "--filter", f"name={name_prefix}-", "--format", "{{.Name}}"],
        "volumes": ["docker", "volume", "ls", "--filter", f"name={name_prefix}-", "--format", "{{.Name}}"],
    }
    found = {}
    for kind, command in queries.items():
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        found[kind] = [line for line in done.stdout.splitlines() if line.startswith(name_prefix)]
    return found
