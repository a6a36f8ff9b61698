"""Operators' verbs on a deployed stack's backups: `backup`, `backups`, `restore`, `restore-drill`.

Each runs backupctl inside the stack's own backup container (`docker -H <host> exec`), where ClickHouse's
address, the credentials and the backups volume already are: nothing secret leaves the host, and the same
program serves the schedule, the operator and the tests. `restore` stops the containers that write to
ClickHouse (the gateway) for its duration and starts them again afterwards, whatever happens.
"""

import argparse
import subprocess
from collections.abc import Callable, Sequence

from components.core.errors import ConfigError, Problem
from components.services import backup
from components.stack.deployment import Deployment

WRITERS = ("gateway",)  # roles whose containers write to ClickHouse: stopped while a restore runs
Runner = Callable[[Sequence[str]], int]


def _run(command: Sequence[str]) -> int:
    print("+ " + " ".join(command), flush=True)
    return subprocess.run(list(command), check=False).returncode


def container(deployment: Deployment, role: str) -> tuple[str, str]:
    """(Docker host URL, container name) of a role's container."""
    if role not in deployment.plans or not deployment.plans[role].runs_container:
        raise ConfigError([Problem(deployment.stack_file, role, "this stack deploys no such container")])
    plan = deployment.plans[role]
    return deployment.spec.hosts[plan.placement.host].url, plan.container_name(deployment.spec.name_prefix)


def backupctl_command(deployment: Deployment, *args: str) -> list[str]:
    host, name = container(deployment, backup.SERVICE.role)
    return ["docker", "-H", host, "exec", name, *backup.COMMAND[:-1], *args]


def restore(deployment: Deployment, args: Sequence[str], run: Runner = _run) -> int:
    """backupctl restore, with the writers stopped around it."""
    writers = [container(deployment, role) for role in WRITERS if role in deployment.plans]
    stopped = []
    try:
        for host, name in writers:
            if run(["docker", "-H", host, "stop", name]) != 0:
                return 1
            stopped.append((host, name))
        return run(backupctl_command(deployment, "restore", *args))
    finally:
        for host, name in reversed(stopped):
            run(["docker", "-H", host, "start", name])


def verbs(args: argparse.Namespace) -> list[str]:
    """backupctl's own arguments for the CLI verb."""
    destination = ["--destination", "offsite"] if getattr(args, "offsite", False) else []
    if args.command == "backup":
        return ["backup", *destination]
    if args.command == "backups":
        return ["list", *(["--json"] if args.json else [])]
    if args.command == "restore-drill":
        return ["drill", *destination]
    return [args.name, *destination, *(["--replace"] if args.replace else [])]


def register(commands, load: Callable[[argparse.Namespace], Deployment]) -> None:
    """The backup verbs of components/operate/cli.py."""

    def handler(args: argparse.Namespace) -> int:
        deployment = load(args)
        if args.command == "restore":
            return restore(deployment, verbs(args))
        return _run(backupctl_command(deployment, *verbs(args)))

    def verb(name: str, help: str, offsite: bool = True) -> argparse.ArgumentParser:
        command = commands.add_parser(name, help=help)
        command.add_argument("stack", help="stack name: stacks/Pulumi.<stack>.yaml")
        command.add_argument("--env-dir", help="read env layers from this directory instead of the spec's")
        if offsite:
            command.add_argument("--offsite", action="store_true", help="the off-host copy (S3) instead of the disk")
        command.set_defaults(handler=handler)
        return command

    verb("backup", "take a full backup of the deployed stack now (to the disk, and off the host if configured)", False)
    verb("backups", "list the deployed stack's backups", False).add_argument("--json", action="store_true")
    restore_verb = verb(
        "restore", "restore a backup (checked in a scratch copy first); the gateway is stopped meanwhile"
    )
    restore_verb.add_argument("--from", dest="name", required=True, metavar="BACKUP", help="a name `backups` lists")
    restore_verb.add_argument(
        "--replace", action="store_true", help="restore over a database holding rows (it is kept, renamed aside)"
    )
    verb("restore-drill", "back up, restore beside the live database, compare the seed's queries")
