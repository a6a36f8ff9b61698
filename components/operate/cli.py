"""Offline CLI: `python -m components {render,plan,diff,validate,env}`; needs neither Pulumi CLI nor Docker.

Each verb imports only what it runs (a command is a fresh process, and imports are most of its time): Pulumi and
pulumi-docker only where the mocks run (`plan`, `validate`), `tensorzero` only where its loader runs (`validate`),
Kubernetes' modules only for a cluster stack (targets/preflight.py).
"""

import argparse
import json
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any, Optional

import yaml

from components.core.envfiles import Variable
from components.core.errors import ConfigError, Problem, read_text
from components.core.names import PROJECT_DIR
from components.operate import backups as operate
from components.operate import ci, containers, exits, summary
from components.operate.reach import register as register_reach
from components.operate.reference import register as register_reference
from components.operate.smoke import register as register_smoke
from components.stack.deployment import Deployment, rendered_files
from components.targets.preflight import load

PROG = "python -m components"
EXIT_INVALID = 2
EXIT_DATA_LOSS = 3  # `diff`: a data loss outside dev that the stack file does not confirm


def _load(args: argparse.Namespace) -> Deployment:
    return load(args.stack, env_dir=args.env_dir)


def cmd_render(args: argparse.Namespace) -> int:
    deployment = _load(args)
    out = Path(args.out)
    files = rendered_files(deployment)
    written = {rendered.path: rendered.content for rendered in files}
    if deployment.spec.kubernetes is not None:
        from components.targets.kubernetes.cluster import yaml_files  # the objects a cluster gets, for GitOps

        written |= yaml_files(deployment)
    manifest = [rendered.manifest_entry() for rendered in files]
    try:
        for path, content in written.items():
            target = out / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)
        (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    except OSError as error:  # the output, not the configuration: sysexits' I/O error, naming where
        print(f"{args.stack}: cannot write {error.filename or args.out}: {error.strerror or error}", file=sys.stderr)
        return exits.EXIT_IO
    print(f"{args.stack}: wrote {len(written)} files and manifest.json to {out}")
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    from components.operate.plan import plan, to_json  # Pulumi: only where its mocks run

    desired = plan(_load(args))
    if args.json:
        sys.stdout.write(to_json(desired))
        return 0
    hint = f"Every input (credentials masked): python -m components plan {args.stack} --details"
    sys.stdout.write(summary.plan_text(desired, "Every input follows." if args.details else hint))
    if args.details:
        sys.stdout.write("\n" + yaml.safe_dump(desired, sort_keys=True, width=120))
    return 0


def _read_plan(path: str) -> dict[str, Any]:
    try:
        document = json.loads(read_text(Path(path), path, "plan"))
    except json.JSONDecodeError as error:
        raise ConfigError([Problem(path, "", f"not a plan (invalid JSON: {error})")]) from None
    if not isinstance(document, dict) or not isinstance(document.get("resources"), list):
        raise ConfigError([Problem(path, "resources", "not a plan written by `plan --json`")])
    return document


def cmd_diff(args: argparse.Namespace) -> int:
    """Two `plan --json` files, or (`--against REF [STACK...]`) every stack from a git ref to the working tree."""
    if args.against is None:
        if len(args.paths) != 2:
            raise ConfigError([Problem("diff", "", "give two `plan --json` files, or --against REF [STACK...]")])
        results = [ci.StackDiff.of("", _read_plan(args.paths[0]), _read_plan(args.paths[1]))]
    else:
        results = ci.diff_against(args.against, args.paths)
    if args.json:
        changes = {r.stack: [change.__dict__ for change in r.changes] for r in results}
        print(json.dumps(changes[""] if args.against is None else changes, indent=2, default=list))
    else:
        for result in results:
            print(
                f"{result.stack}: {args.against} -> working tree" if result.stack else "",
                end="\n" if result.stack else "",
            )
            print(result.text())
    if args.against is not None:
        markdown = ci.comment(args.against, results)
        if args.comment:
            Path(args.comment).parent.mkdir(parents=True, exist_ok=True)
            Path(args.comment).write_text(markdown)
        if summary := os.environ.get("GITHUB_STEP_SUMMARY"):
            with open(summary, "a") as handle:
                handle.write(markdown)
    if refused := [r.stack or "the new plan" for r in results if r.refused]:
        print(f"refused: unconfirmed data loss in {', '.join(refused)} (see DATA LOSS above)", file=sys.stderr)
        return EXIT_DATA_LOSS
    return 0


def cmd_env_layers(args: argparse.Namespace) -> int:
    for layer in ci.env_layers(args.stack):
        print(f"created {layer.relative_to(PROJECT_DIR)} from its {ci.TEMPLATE_SUFFIX} template")
    return 0


def cmd_ci_env(args: argparse.Namespace) -> int:
    layer, written = ci.ci_env(args.stack, dict(os.environ))
    print(f"wrote {layer.relative_to(PROJECT_DIR)}: {' '.join(written) or 'no variables'} (values not shown)")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from components.operate import tensorzero_check

    deployment = _load(args)
    files = rendered_files(deployment)  # each is parsed back as it renders
    # The gateway's own loader, as the gateway runs it at start: in a child process, beside the plan.
    loader_checked = tensorzero_check.started(deployment, remembered=not args.no_cache)
    try:
        from components.operate.plan import plan  # Pulumi: imported after the fork, in this process only

        desired = plan(deployment)
    finally:
        loader_checked()
    for notice in deployment.notices:
        print(f"notice: {notice}")
    for line in summary.serving(deployment):
        print(f"serves {line}")
    adopted = Counter(summary.kind(r["type"]) for r in desired.get("external", []))
    print(
        f"{args.stack}: valid ({deployment.spec.tier.value}); {len(files)} rendered files; {summary.counts(desired)}"
        + "".join(f"; adopts {count} existing {kind}" for kind, count in sorted(adopted.items()))
    )
    return 0


def container_environments(deployment: Deployment) -> dict[str, tuple[str, tuple[Variable, ...]]]:
    """Every container the stack declares, one-shots included: its Docker name, and its variables."""
    prefix = deployment.spec.name_prefix
    found = {}
    for service in deployment.plans.values():
        if service.runs_container:
            # A rolling container gets a fresh random suffix on every replacement (docker_target.py).
            suffix = "-<generation>" if service.rolling else ""
            found[service.role] = (f"{service.container_name(prefix)}{suffix}", service.env)
        for shot in service.one_shots:
            found[f"{service.role} {shot.name}"] = (f"{prefix}-{shot.docker_name}", shot.env)
    return found


def cmd_env(args: argparse.Namespace) -> int:
    """Works before the env layers are filled in: each credential nobody supplies yet shows as missing."""
    deployment = load(args.stack, env_dir=args.env_dir, allow_missing=True)
    for section, (container, variables) in container_environments(deployment).items():
        print(f"[{section}] {container}")
        for variable in variables:
            print(f"  {variable.name}={variable.shown}    # {variable.source}")
    if deployment.missing:
        print(f"\nmissing: {len(deployment.missing)} credentials; `validate` refuses the stack until each is set:")
        for problem in deployment.missing:
            print(f"  {problem}")
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog=PROG, description=__doc__)
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
    planned = stack_command("plan", cmd_plan, "desired resources under Pulumi's mocks: a summary, then on request all")
    planned.add_argument("--json", action="store_true", help="JSON for `diff`")
    planned.add_argument("--details", action="store_true", help="every resource's inputs after the summary")
    stack_command("validate", cmd_validate, "every offline check").add_argument(
        "--no-cache", action="store_true", help="run TensorZero's loader even on a config it passed before"
    )
    stack_command("env", cmd_env, "each container's environment and where each value comes from")
    compare = commands.add_parser(
        "diff", help="what would change: between two `plan --json` files, or from a git ref (--against) per stack"
    )
    compare.add_argument("paths", nargs="*", metavar="OLD.json NEW.json | STACK", help="two plans, or stacks")
    compare.add_argument("--against", metavar="REF", help="plan every stack (or those named) at REF and here")
    compare.add_argument("--json", action="store_true", help="the changes as JSON")
    compare.add_argument("--comment", metavar="FILE", help="with --against: write the pull-request comment here")
    compare.set_defaults(handler=cmd_diff)
    stack_only = {"env-layers": (cmd_env_layers, "create missing env layers from their *.example templates")}
    stack_only["ci-env"] = (cmd_ci_env, "CI: write the stack's .env.local from this job's environment")
    for name, (handler, help) in stack_only.items():
        command = commands.add_parser(name, help=help)
        command.add_argument("stack")
        command.set_defaults(handler=handler)
    register_smoke(commands)
    register_reference(commands)
    register_reach(commands)
    operate.register(commands, _load)
    containers.register(commands, _load)
    return root


def main(argv: Optional[list[str]] = None) -> int:
    return exits.guarded(PROG, lambda: _main(argv))


def _main(argv: Optional[list[str]]) -> int:
    args = parser().parse_args(argv)
    try:
        return args.handler(args)
    except ConfigError as error:
        print(
            f"{args.stack}: invalid configuration" if "stack" in args else f"{args.command}: invalid input",
            file=sys.stderr,
        )
        for problem in error.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_INVALID
