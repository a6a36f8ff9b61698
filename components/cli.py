"""Offline CLI: `python -m components {render,plan,diff,validate,env}`; needs neither Pulumi CLI nor Docker."""

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any, Optional

import yaml

from . import blackbox, clickhouse, edge, gateway, grafana, ollama, prometheus, ui
from .container import served_variables
from .diff import diff
from .errors import ConfigError, Problem
from .loader import Deployment, load
from .names import ALLOY, BLACKBOX, CLICKHOUSE, EDGE, GATEWAY, GRAFANA, LOKI, OLLAMA, PROMETHEUS, UI
from .plan import plan, to_json
from .smoke import register as register_smoke
from .stack import rendered_files

EXIT_INVALID = 2


def _load(args: argparse.Namespace) -> Deployment:
    return load(args.stack, env_dir=args.env_dir)


def cmd_render(args: argparse.Namespace) -> int:
    deployment = _load(args)
    out = Path(args.out)
    files = rendered_files(deployment)
    manifest = [rendered.manifest_entry() for rendered in files]
    try:
        for rendered in files:
            target = out / rendered.path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(rendered.content)
        (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    except OSError as error:
        raise ConfigError([Problem(args.out, "", f"cannot write: {error.strerror}")]) from None
    print(f"{args.stack}: wrote {len(files)} files and manifest.json to {out}")
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    desired = plan(_load(args))
    if args.json:
        sys.stdout.write(to_json(desired))
    else:
        sys.stdout.write(yaml.safe_dump(desired, sort_keys=True, width=120))
    return 0


def _read_plan(path: str) -> dict[str, Any]:
    try:
        document = json.loads(Path(path).read_text())
    except OSError as error:
        raise ConfigError([Problem(path, "", f"cannot read: {error.strerror}")]) from None
    except json.JSONDecodeError as error:
        raise ConfigError([Problem(path, "", f"not a plan (invalid JSON: {error})")]) from None
    if not isinstance(document, dict) or not isinstance(document.get("resources"), list):
        raise ConfigError([Problem(path, "resources", "not a plan written by `plan --json`")])
    return document


def cmd_diff(args: argparse.Namespace) -> int:
    changes = diff(_read_plan(args.old), _read_plan(args.new))
    if args.json:
        print(json.dumps([change.__dict__ for change in changes], indent=2, default=list))
        return 0
    for change in changes:
        print(change.line())
    counts = Counter(change.action for change in changes)
    summary = ", ".join(f"{counts[a]} to {a}" for a in ("create", "update", "replace", "delete") if counts[a])
    print(summary or "no changes")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    deployment = _load(args)
    files = rendered_files(deployment)  # each is parsed back as it renders
    desired = plan(deployment)
    for notice in deployment.translation.notices:
        print(f"notice: {notice}")
    types = Counter(
        "Provider" if r["type"].startswith("pulumi:providers:") else r["type"].rsplit(":", 1)[-1]
        for r in desired["resources"]
    )
    print(
        f"{args.stack}: valid ({deployment.spec.tier.value}); {len(files)} rendered files; "
        + ", ".join(f"{count} {kind}" for kind, count in sorted(types.items()))
    )
    return 0


def container_environments(deployment: Deployment) -> dict[str, list]:
    spec = deployment.spec
    environments = {
        CLICKHOUSE: lambda: clickhouse.environment(deployment),
        GATEWAY: lambda: gateway.environment(deployment, spec.endpoint(CLICKHOUSE, seen_from=spec.gateway.host)),
        EDGE: lambda: edge.environment(deployment),
        UI: lambda: ui.environment(deployment, spec.endpoint(GATEWAY, seen_from=spec.ui.host)),
        OLLAMA: lambda: ollama.environment(deployment),
        PROMETHEUS: lambda: prometheus.environment(deployment),
        BLACKBOX: lambda: blackbox.environment(deployment),
        GRAFANA: lambda: grafana.environment(deployment),
        LOKI: lambda: served_variables(spec.loki, deployment.variables),
        ALLOY: lambda: served_variables(spec.alloy, deployment.variables),
    }
    return {service.role: environments[service]() for service in spec.deployed_services}


def cmd_env(args: argparse.Namespace) -> int:
    for role, variables in container_environments(_load(args)).items():
        print(f"[{role}]")
        for variable in variables:
            print(f"  {variable.name}={variable.shown}    # {variable.source}")
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m components", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)

    def stack_command(name: str, handler, help: str) -> argparse.ArgumentParser:
        command = commands.add_parser(name, help=help)
        command.add_argument("stack", help="stack name: stacks/Pulumi.<stack>.yaml")
        command.add_argument("--env-dir", help="read env layers from this directory instead of the spec's")
        command.set_defaults(handler=handler)
        return command

    stack_command("render", cmd_render, "write every file the stack mounts, plus manifest.json").add_argument(
        "--out", required=True, help="output directory"
    )
    stack_command("plan", cmd_plan, "desired resources under Pulumi's mocks").add_argument(
        "--json", action="store_true", help="JSON for `diff`"
    )
    stack_command("validate", cmd_validate, "every offline check")
    stack_command("env", cmd_env, "each container's environment and where each value comes from")
    compare = commands.add_parser("diff", help="what would change between two `plan --json` files")
    compare.add_argument("old")
    compare.add_argument("new")
    compare.add_argument("--json", action="store_true")
    compare.set_defaults(handler=cmd_diff)
    register_smoke(commands)
    return root


def main(argv: Optional[list[str]] = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.handler(args)
    except ConfigError as error:
        print(f"{args.stack}: invalid configuration" if "stack" in args else "diff: invalid input", file=sys.stderr)
        for problem in error.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_INVALID
