"""The seed's `docker compose logs/exec/restart <service>`, one line each on the stack that replaced compose:
`logs`, `exec` and `restart` find the service's container (on whichever host the stack placed it, under the
stack's name_prefix) and run the same `docker` command there. A service is named by its stack-file role
(`gateway`) or by the seed's compose name (`tensorzero-gateway`)."""

import argparse
import sys
from collections.abc import Callable, Sequence

from components.core.errors import ConfigError, Problem
from components.operate.backups import _run, container
from components.stack.deployment import Deployment


def role_of(deployment: Deployment, service: str) -> str:
    """The role a role name or a seed compose name (the container's name without the stack's prefix) means."""
    plans = deployment.plans
    if service in plans:
        return service
    for role, plan in plans.items():
        if plan.runs_container and plan.docker_name == service:
            return role
    running = sorted(role for role, plan in plans.items() if plan.runs_container)
    raise ConfigError(
        [Problem(deployment.stack_file, service, f"no such service in this stack (its services: {', '.join(running)})")]
    )


def command(deployment: Deployment, verb: str, service: str, args: Sequence[str] = ()) -> list[str]:
    host, name = container(deployment, role_of(deployment, service))
    if verb == "logs":
        return ["docker", "-H", host, "logs", "--tail", "200", *args, name]
    if verb == "exec":
        # A terminal only when there is one: `make exec` from a script or a pipe works too.
        return ["docker", "-H", host, "exec", "-it" if sys.stdin.isatty() else "-i", name, *(args or ["sh"])]
    return ["docker", "-H", host, verb, name]


def register(commands, load: Callable[[argparse.Namespace], Deployment]) -> None:
    def handler(args: argparse.Namespace) -> int:
        extra = args.args[1:] if args.args[:1] == ["--"] else args.args
        return _run(command(load(args), args.command, args.service, extra))

    for verb, help in (
        ("logs", "a service's container logs (docker compose logs <service>); --follow with -f after --"),
        ("exec", "run a command in a service's container (docker compose exec <service> <command>)"),
        ("restart", "restart a service's container (docker compose restart <service>)"),
    ):
        parsed = commands.add_parser(verb, help=help)
        parsed.add_argument("stack", help="stack name: stacks/Pulumi.<stack>.yaml")
        parsed.add_argument("service", help="a role (gateway, clickhouse, ui, ollama) or the seed's compose name")
        parsed.add_argument("args", nargs=argparse.REMAINDER, help="after --: more arguments (exec: the command)")
        parsed.add_argument("--env-dir", help="read env layers from this directory instead of the spec's")
        parsed.set_defaults(handler=handler)
