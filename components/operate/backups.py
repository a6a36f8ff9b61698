"""Operators' verbs on a deployed stack's backups: `backup`, `backups`, `restore`, `restore-drill`.

Each runs backupctl inside the stack's own backup container (`docker -H <host> exec`), where ClickHouse's
address, the credentials and the backups volume already are: nothing secret leaves the host, and the same
program serves the schedule, the operator and the tests. Containers are found by the labels every container
of the stack carries (project, stack, role), never by a guessed name: a rolling container such as the gateway
gets a new generation suffix on each replacement.

`restore` checks everything first (its arguments here, then backupctl's own checks with `restore --check`:
the backup exists and is complete, the database is empty or --replace is given) and only then stops the
running containers that write to ClickHouse (the gateway), restores, and starts them again, whatever happens.
A refused restore has changed nothing.

On a cluster stack the verbs refuse, in one line naming the kubectl command that does the same in the backup
pod (and, for a restore, that the gateway is scaled to 0 first): the cluster's access is kubectl's, not ours.
"""

import argparse
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from components.core.errors import ConfigError, Problem
from components.core.names import PROJECT, PROJECT_LABEL, SERVICE_LABEL, STACK_LABEL
from components.operate import exits
from components.services import backup
from components.stack.deployment import Deployment

WRITERS = ("gateway",)  # roles whose containers write to ClickHouse: stopped while a restore runs
EXIT_REFUSED = 2  # backupctl's: refused, nothing changed
Runner = Callable[[Sequence[str]], int]


def _run(command: Sequence[str]) -> int:
    print("+ " + " ".join(command), flush=True)
    return subprocess.run(list(command), check=False).returncode


def host_of(deployment: Deployment, role: str) -> str:
    """The Docker host URL of a role's container."""
    if role not in deployment.plans or not deployment.plans[role].runs_container:
        raise ConfigError([Problem(deployment.stack_file, role, "this stack deploys no such container")])
    return deployment.spec.hosts[deployment.plans[role].placement.host].url


def containers(deployment: Deployment, role: str) -> list[tuple[str, bool]]:
    """(name, running) of every container of `role` on its host, found by the stack's labels."""
    host = host_of(deployment, role)
    filters = [f"{PROJECT_LABEL}={PROJECT}", f"{STACK_LABEL}={deployment.spec.name_prefix}", f"{SERVICE_LABEL}={role}"]
    command = ["docker", "-H", host, "ps", "--all", "--format", "{{.Names}}\t{{.State}}"]
    command += [arg for label in filters for arg in ("--filter", f"label={label}")]
    try:
        listed = subprocess.run(command, capture_output=True, text=True, check=False, timeout=30)
        why = "" if listed.returncode == 0 else " ".join(listed.stderr.split()) or f"exit {listed.returncode}"
    except (OSError, subprocess.TimeoutExpired) as error:
        why = str(error)
    if why:
        raise ConfigError([Problem(deployment.stack_file, role, f"cannot list containers on {host}: {why}")])
    found = [line.split("\t") for line in listed.stdout.splitlines() if line.strip()]
    return [(name, state == "running") for name, state in found]


def container(deployment: Deployment, role: str) -> tuple[str, str]:
    """(Docker host URL, name) of a role's one running container; refused when the stack has none running."""
    running = [name for name, up in containers(deployment, role) if up]
    if len(running) != 1:
        labels = f"{STACK_LABEL}={deployment.spec.name_prefix}, {SERVICE_LABEL}={role}"
        found = f"{len(running)} running ({', '.join(running)})" if running else "none running"
        why = f"expected one running container labelled {labels} on {host_of(deployment, role)}, found {found}"
        hint = f"; is the stack deployed (`make up STACK={deployment.stack})`?" if not running else ""
        raise ConfigError([Problem(deployment.stack_file, role, why + hint)])
    return host_of(deployment, role), running[0]


def backupctl_command(deployment: Deployment, *args: str) -> list[str]:
    host, name = container(deployment, backup.SERVICE.role)
    return ["docker", "-H", host, "exec", name, *backup.COMMAND[:-1], *args]


def _check_name(name: str) -> None:
    if not name.strip() or name.startswith("-"):
        why = f"{name!r} is not a backup's name" if name.strip() else "needs a backup's name"
        raise ConfigError([Problem("restore", "--from", f"{why}: `make backups STACK=<stack>` lists them")])


def restore(deployment: Deployment, args: Sequence[str], run: Runner = _run) -> int:
    """backupctl restore, checked first, with the running writers stopped around it."""
    _check_name(args[0] if args else "")
    check = backupctl_command(deployment, "restore", *args, "--check")  # finds the backup container first
    writers = [
        (host_of(deployment, role), name)
        for role in WRITERS
        if role in deployment.plans
        for name, up in containers(deployment, role)
        if up
    ]
    if (status := run(check)) != 0:
        return status
    stopped = []
    with exits.unwinding(), _restarting(stopped, run):
        for host, name in writers:
            if run(["docker", "-H", host, "stop", name]) != 0:
                return 1
            stopped.append((host, name))
        return run(check[:-1])


@contextmanager
def _restarting(stopped: list[tuple[str, str]], run: Runner) -> Iterator[None]:
    """Whatever happens inside (a failure, Ctrl-C), the writers stopped there are started again."""
    try:
        yield
    finally:
        for host, name in reversed(stopped):
            run(["docker", "-H", host, "start", name])


def on_cluster(deployment: Deployment, arguments: Sequence[str]) -> str:
    """The one-line refusal of a backup verb on a cluster stack, with the kubectl command to run instead."""
    cluster = deployment.spec.kubernetes
    kubectl = f"kubectl --context {cluster.context} -n {cluster.namespace}"
    pod = deployment.plans[backup.SERVICE.role].docker_name
    command = f"{kubectl} exec deploy/{pod} -- {' '.join(backup.COMMAND[:-1])} {' '.join(arguments)}"
    if arguments and arguments[0] == "restore":
        writers = " ".join(
            f"deploy/{deployment.plans[role].docker_name}" for role in WRITERS if role in deployment.plans
        )
        command = f"{kubectl} scale {writers} --replicas=0, then {command}, then scale them back"
    return f"refused: stack {deployment.stack} runs on Kubernetes, where this verb does not reach; run: {command}"


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
        if args.command == "restore":
            _check_name(args.name)  # before anything is loaded or touched
        deployment = load(args)
        if deployment.spec.kubernetes is not None:
            arguments = ["restore", *verbs(args)] if args.command == "restore" else verbs(args)
            print(on_cluster(deployment, arguments), file=sys.stderr)
            return EXIT_REFUSED
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
