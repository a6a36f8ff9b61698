"""`python -m components smoke <stack>`: does the deployed stack really work? Runs the suite in tests/smoke/.

Where everything is comes from the stack's outputs: `pulumi stack output --json --show-secrets`, or a JSON
file of the same shape (`--outputs`). The suite checks every service over HTTP, one inference round trip
through the gateway into ClickHouse, and each container where its Docker host answers. All waits share
one budget: the run ends within `--budget` seconds, passing or failing.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from .loader import PROJECT_DIR

SUITE = PROJECT_DIR / "tests" / "smoke"
DEFAULT_BUDGET_S = 60.0
# Of the budget, what starting this command and writing the report take: the checks get the rest.
START_AND_REPORT_S = 1.0
# Past the budget, the suite is stopped: only a hung check (not a slow one) gets this far.
HARD_STOP_GRACE_S = 15.0
EXIT_ERROR = 2

# How the command hands the run to the suite (read by tests/smoke/conftest.py).
OUTPUTS_VAR = "PMOVES_SMOKE_OUTPUTS"
DEADLINE_VAR = "PMOVES_SMOKE_DEADLINE"
BUDGET_VAR = "PMOVES_SMOKE_BUDGET"


class _Outputs(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class SmokeModels(_Outputs):
    chat_model: Optional[str] = Field(None, description="`tensorzero::model_name::X` for one chat request.")
    embedding_model: Optional[str] = Field(None, description="`tensorzero::embedding_model_name::Y` for one embedding.")


class GrafanaAdmin(_Outputs):
    user: str
    password: SecretStr


@dataclass(frozen=True)
class ClickHouseAccess:
    url: str  # scheme://host:port, without credentials: the only form ever printed
    user: str
    password: str
    database: str


class StackOutputs(_Outputs):
    """The stack outputs the suite reads (components/stack.py `outputs`); other keys are ignored."""

    endpoints: dict[str, str] = Field(default_factory=dict, description="role: published http://host:port")
    internal_urls: dict[str, str] = Field(default_factory=dict)
    containers: dict[str, str] = Field(default_factory=dict, description="role: Docker container name")
    docker_hosts: dict[str, str] = Field(default_factory=dict, description="role: Docker host URL")
    models: dict[str, list[str]] = Field(default_factory=dict)
    ollama_models: list[str] = Field(default_factory=list, description="models that must be in Ollama's /api/tags")
    smoke: SmokeModels = Field(default_factory=SmokeModels)
    clickhouse_views: Optional[list[str]] = Field(
        None, description="views the schema one-shot creates; absent from a stack deployed before this key"
    )
    clickhouse_url: Optional[SecretStr] = Field(None, description="http://user:password@host:port/database")
    grafana_admin: Optional[GrafanaAdmin] = None

    def clickhouse(self) -> Optional[ClickHouseAccess]:
        if self.clickhouse_url is None:
            return None
        parts = urlsplit(self.clickhouse_url.get_secret_value())
        port = f":{parts.port}" if parts.port else ""
        return ClickHouseAccess(
            url=f"{parts.scheme}://{parts.hostname}{port}",
            user=unquote(parts.username or "default"),
            password=unquote(parts.password or ""),
            database=parts.path.strip("/") or "default",
        )

    def schema_container(self) -> str:
        """The schema one-shot's Docker name: components/schema.py names it after ClickHouse's container."""
        return f"{self.containers.get('clickhouse', '<name_prefix>-tensorzero-clickhouse')}-schema"

    def secrets(self) -> list[str]:
        """Every credential in the outputs, as it could appear in text: never to be printed."""
        found = []
        if self.clickhouse_url is not None:
            raw = urlsplit(self.clickhouse_url.get_secret_value()).password or ""
            found += [raw, unquote(raw)]
        if self.grafana_admin is not None:
            found.append(self.grafana_admin.password.get_secret_value())
        return sorted({secret for secret in found if secret}, key=len, reverse=True)


class SmokeError(Exception):
    """The smoke run could not start (no outputs); distinct from a check failing."""


def read_outputs(stack: str, outputs_file: Optional[str]) -> dict:
    if outputs_file is not None:
        try:
            text = Path(outputs_file).read_text()
        except OSError as error:
            raise SmokeError(f"cannot read {outputs_file}: {error.strerror}") from None
        source = outputs_file
    else:
        if shutil.which("pulumi") is None:
            raise SmokeError("the Pulumi CLI is not on PATH; give the outputs as a JSON file with --outputs")
        command = ["pulumi", "stack", "output", "--json", "--show-secrets", "--stack", stack]
        done = subprocess.run(command, cwd=PROJECT_DIR, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SmokeError(f"`{' '.join(command)}` failed: {done.stderr.strip()}")
        text, source = done.stdout, "pulumi stack output"
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise SmokeError(f"{source}: not JSON ({error})") from None
    try:
        StackOutputs.model_validate(document)
    except ValidationError as error:
        # The messages name keys and types; `input` could hold a credential, so it is left out.
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise SmokeError(f"{source}: not the stack outputs' shape: {problems}") from None
    return document


def run(stack: str, outputs: dict, *, budget: float, junit: Optional[str], extra_args: tuple[str, ...] = ()) -> int:
    """Run the suite against `outputs`; returns pytest's exit status."""
    deadline = time.time() + max(budget - START_AND_REPORT_S, budget / 2)
    with tempfile.TemporaryDirectory(prefix="pmoves-smoke-") as scratch:
        outputs_path = Path(scratch) / "outputs.json"
        # The outputs hold credentials: readable by this user only, removed with the directory.
        descriptor = os.open(outputs_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            json.dump(outputs, handle)
        env = {
            **os.environ,
            OUTPUTS_VAR: str(outputs_path),
            DEADLINE_VAR: repr(deadline),
            BUDGET_VAR: repr(budget),
        }
        command = [sys.executable, "-m", "pytest", str(SUITE), "--confcutdir", str(SUITE)]
        command += ["-p", "no:cacheprovider", "-q", "--no-header", "-rfEs", "-o", f"junit_suite_name=smoke-{stack}"]
        if junit:
            command += ["--junitxml", str(Path(junit).resolve())]
        command += list(extra_args)
        print(f"smoke {stack}: budget {budget:g}s", flush=True)
        try:
            return subprocess.run(command, cwd=PROJECT_DIR, env=env, timeout=budget + HARD_STOP_GRACE_S).returncode
        except subprocess.TimeoutExpired:
            print(f"smoke {stack}: stopped: the suite was still running {HARD_STOP_GRACE_S:g}s past its budget")
            return 1


def reached_from_inside(outputs: dict) -> dict:
    """The outputs as a caller inside the stack's network sees them (a pod in a cluster stack's namespace): every
    service at its internal URL, ClickHouse included, instead of at the published (ingress) addresses."""
    return {**outputs, "endpoints": {**outputs.get("endpoints", {}), **outputs.get("internal_urls", {})}}


def cmd_smoke(args: argparse.Namespace) -> int:
    try:
        outputs = read_outputs(args.stack, args.outputs)
    except SmokeError as error:
        print(f"smoke {args.stack}: {error}", file=sys.stderr)
        return EXIT_ERROR
    if args.inside:
        outputs = reached_from_inside(outputs)
    return run(args.stack, outputs, budget=args.budget, junit=args.junit)


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be more than 0 seconds")
    return value


def register(commands) -> None:
    """The `smoke` subcommand of components/cli.py."""
    command = commands.add_parser("smoke", help="check a deployed stack: health, one inference, containers")
    command.add_argument("stack", help="stack name, for `pulumi stack output --stack <stack>` and the report")
    command.add_argument("--outputs", help="read the stack outputs from this JSON file instead of Pulumi")
    command.add_argument("--junit", help="write a JUnit XML report to this file")
    command.add_argument(
        "--budget", type=_positive, default=DEFAULT_BUDGET_S, help=f"total seconds (default {DEFAULT_BUDGET_S:g})"
    )
    command.add_argument(
        "--inside",
        action="store_true",
        help="run from inside the stack's network (a pod in a cluster stack's namespace): use the internal URLs",
    )
    command.set_defaults(handler=cmd_smoke)
