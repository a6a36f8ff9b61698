"""`python -m components smoke <stack>`: does the deployed stack really work? Runs the suite in tests/smoke/.

Where everything is comes from the stack's outputs: `pulumi stack output --json --show-secrets`, or a JSON
file of the same shape (`--outputs`). The suite checks every service over HTTP, one inference round trip
through the gateway into ClickHouse, and each container where its Docker host answers. All waits share
one budget: the run ends within `--budget` seconds, passing or failing.
"""

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Optional

from components.core.names import PROJECT_DIR
from components.operate import exits
from components.operate.smoke_outputs import OutputsError, StackOutputs

SUITE = PROJECT_DIR / "tests" / "smoke"
DEFAULT_BUDGET_S = 60.0
# Of the budget, what starting this command and writing the report take: the checks get the rest.
START_AND_REPORT_S = 1.0
# Past the budget, the suite is stopped: only a hung check (not a slow one) gets this far.
HARD_STOP_GRACE_S = 15.0
# Listing each Docker host's containers, before the suite: a host slower than this is left to the suite.
HOST_LIST_TIMEOUT_S = 4.0
EXIT_ERROR = 2
EXIT_FAILED = 1
OUTCOMES = ("failure", "error", "skipped")  # a JUnit testcase's child element; none: passed
FIRST_CAUSE_CHARS = 400
SUITE_REQUIREMENTS = ("pytest", "httpx", "testinfra")  # what tests/smoke/ imports: requirements-smoke.txt

# How the command hands the run to the suite (read by tests/smoke/conftest.py).
OUTPUTS_VAR = "PMOVES_SMOKE_OUTPUTS"
DEADLINE_VAR = "PMOVES_SMOKE_DEADLINE"
BUDGET_VAR = "PMOVES_SMOKE_BUDGET"


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
        StackOutputs.from_document(document)
    except OutputsError as error:
        raise SmokeError(f"{source}: not the stack outputs' shape: {error}") from None
    return document


def absent_containers(outputs: StackOutputs, timeout: float = HOST_LIST_TIMEOUT_S) -> list[str]:
    """The outputs' containers that do not exist, each as `role (name on host)`: one `docker ps` per Docker host,
    all at once. A host that does not answer in time is left to the suite, which says why it cannot check it."""
    by_host: dict[str, dict[str, str]] = {}
    for role, name in outputs.containers.items():
        if url := outputs.docker_hosts.get(role):
            by_host.setdefault(url, {})[role] = name
    if shutil.which("docker") is None or not by_host:
        return []
    command = ["ps", "--all", "--no-trunc", "--format", "{{.Names}}"]
    listings = {
        url: subprocess.Popen(["docker", "-H", url, *command], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        for url in by_host
    }
    absent = []
    stop = time.monotonic() + timeout
    for url, listing in listings.items():
        try:
            out, _ = listing.communicate(timeout=max(stop - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            listing.kill()
            listing.communicate()
            continue
        if listing.returncode != 0:
            continue
        names = set(out.decode(errors="replace").split())
        absent += [f"{role} ({name} on {url})" for role, name in by_host[url].items() if name not in names]
    return absent


def not_deployed(stack: str, absent: list[str], junit: Optional[str]) -> int:
    """Fails at once: a container that does not exist will not start however long the suite waits."""
    message = f"these containers do not exist: {', '.join(absent)}; is the stack deployed (`make up STACK={stack}`)?"
    print(f"smoke {stack}: FAILED: {message}")
    if junit:
        suite = ElementTree.Element("testsuite", name=f"smoke-{stack}", tests="1", failures="1")
        case = ElementTree.SubElement(suite, "testcase", classname="smoke", name="test_containers_exist")
        ElementTree.SubElement(case, "failure", message=message)
        Path(junit).parent.mkdir(parents=True, exist_ok=True)
        root = ElementTree.Element("testsuites")
        root.append(suite)
        ElementTree.ElementTree(root).write(junit, encoding="unicode")
    return EXIT_FAILED


def run(stack: str, outputs: dict, *, budget: float, junit: Optional[str], extra_args: tuple[str, ...] = ()) -> int:
    """Run the suite against `outputs`; its exit status, and failed when it checked nothing."""
    if absent := absent_containers(StackOutputs.from_document(outputs), min(HOST_LIST_TIMEOUT_S, budget / 2)):
        return not_deployed(stack, absent, junit)
    deadline = time.time() + max(budget - START_AND_REPORT_S, budget / 2)
    with exits.unwinding(), tempfile.TemporaryDirectory(prefix="pmoves-smoke-") as scratch:
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
            # The suite uses no plugin; a plugin of another package in this environment could break its start.
            "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
        }
        report = Path(junit).resolve() if junit else Path(scratch) / "smoke.junit.xml"
        command = [sys.executable, "-m", "pytest", str(SUITE), "--confcutdir", str(SUITE)]
        command += ["-p", "no:cacheprovider", "-q", "--no-header", "-rfEs", "-o", f"junit_suite_name=smoke-{stack}"]
        command += ["--junitxml", str(report), *extra_args]
        print(f"smoke {stack}: budget {budget:g}s", flush=True)
        try:
            status = subprocess.run(command, cwd=PROJECT_DIR, env=env, timeout=budget + HARD_STOP_GRACE_S).returncode
        except subprocess.TimeoutExpired:
            print(f"smoke {stack}: stopped: the suite was still running {HARD_STOP_GRACE_S:g}s past its budget")
            return EXIT_FAILED
        return verdict(stack, status, report, StackOutputs.from_document(outputs))


def verdict(stack: str, status: int, report: Path, outputs: StackOutputs) -> int:
    """The run's result in one line: a run that checked nothing fails; a failed run names its first failure."""
    try:
        cases = list(ElementTree.parse(report).getroot().iter("testcase"))
    except (OSError, ElementTree.ParseError):
        cases = []
    outcome = {case: next((child.tag for child in case if child.tag in OUTCOMES), "passed") for case in cases}
    passed = sum(result == "passed" for result in outcome.values())
    print(f"smoke {stack}: {passed} checked and passed, {len(cases) - passed} not passed ({len(cases)} in all)")
    failed = [case for case, result in outcome.items() if result in ("failure", "error")]
    if failed:
        first = failed[0]
        message = next(child for child in first if child.tag in ("failure", "error"))
        cause = " ".join((message.get("message") or message.text or "").removeprefix("Failed: ").split())
        print(f"smoke {stack}: first failure: {first.get('name')}: {cause[:FIRST_CAUSE_CHARS]}")
        return status or EXIT_FAILED
    if passed == 0:
        why = (
            "the outputs name no service (`pulumi stack output` answers {} for a stack that was never deployed: "
            f"run `make up STACK={stack}` first)"
            if outputs.empty
            else "every check was skipped"
        )
        print(f"smoke {stack}: FAILED: nothing was checked: {why}")
        return EXIT_FAILED
    return status


def missing_requirements() -> list[str]:
    return [name for name in SUITE_REQUIREMENTS if importlib.util.find_spec(name) is None]


def reached_from_inside(outputs: dict) -> dict:
    """The outputs as a caller inside the stack's network sees them (a pod in a cluster stack's namespace): every
    service at its internal URL, ClickHouse included, instead of at the published (ingress) addresses."""
    return {**outputs, "endpoints": {**outputs.get("endpoints", {}), **outputs.get("internal_urls", {})}}


def cmd_smoke(args: argparse.Namespace) -> int:
    try:
        if missing := missing_requirements():
            raise SmokeError(
                f"{', '.join(missing)} not installed for {sys.executable}: `make smoke` installs requirements-smoke.txt"
            )
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


def main(argv: Optional[list[str]] = None) -> int:
    """`python -m components smoke ...` without the rest of the CLI: runs with requirements-smoke.txt alone."""

    def run_smoke() -> int:
        root = argparse.ArgumentParser(prog="python -m components")
        register(root.add_subparsers(dest="command", required=True))
        args = root.parse_args(argv)
        return args.handler(args)

    return exits.guarded("python -m components smoke", run_smoke)


def register(commands) -> None:
    """The `smoke` subcommand of components/operate/cli.py."""
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
