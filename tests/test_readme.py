"""The README's commands and examples, run: what it says is so.

Every fenced `bash` block is run, command by command, in README order, in a copy of the project as a new checkout
has it (env layers only as templates): the offline `make` targets and CLI commands must succeed; those that need
the Pulumi CLI (not installable here) must stop saying so; the `curl` calls run against the compatibility edge (a
real nginx with the Lua module) in front of TensorZero's real routes (tests/edge_rig.py). Every block that shows
a command's output (`$ command` on its first line) is run too, and the lines it shows must appear, in order, in
what the command prints (`...` stands for lines left out). A command that can run nowhere here is listed in
NOT_RUN with the reason, so a new one cannot slip in unrun.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import copy_project
from edge_rig import API_KEY, keyed_edge, open_edge, rig  # noqa: F401 (fixtures the curl blocks run against)

from components.stack.loader import PROJECT_DIR

README = (PROJECT_DIR / "README.md").read_text()
VENV = Path(sys.executable).parent.parent
BLOCK = re.compile(r"^```(?P<info>\w*)\n(?P<body>.*?)^```", re.M | re.S)
# Shown in the README, run nowhere here; each with the reason.
NOT_RUN = {
    "make test": "the test suite this check is part of",
    "pulumi config set --secret --path 'secrets.ANTHROPIC_API_KEY' sk-ant-... --stack prod": (
        "needs the Pulumi CLI, which cannot be installed on these machines, and a created stack"
    ),
    "make restore STACK=prod FROM=<name> OFFSITE=1": "a template: <name> is one of the backups `make backups` lists",
    "git revert <the upgrade commit>": "a template: the commit is the operator's own upgrade",
    "pulumi config set --secret --path 'secrets.HIRAG_TENSORZERO_KEY' \"$(openssl rand -hex 32)\" --stack prod": (
        "needs the Pulumi CLI, which cannot be installed on these machines, and a created stack"
    ),
    'curl -H "Authorization: Bearer $HIRAG_TENSORZERO_KEY" https://tensorzero.pmoves.internal:3030/v1/embeddings ...': (
        "a template against prod's host; the keyed calls themselves run against the edge in test_edge_access.py"
    ),
    "make restore STACK=prod FROM=tensorzero-<time>-pre-upgrade REPLACE=1": "a template: <time> is the backup's",
    # Moving from PMOVES's compose: on PMOVES's main host, with its credentials, compose file and containers.
    "make validate STACK=prod": (
        "needs prod's credentials; tests/operate/test_cli.py validates prod with stand-in values"
    ),
    "make plan-diff BASE=main STACKS=prod": (
        "needs a git checkout with a `main` branch; tests/operate/test_cli.py diffs prod's plans against another "
        "revision"
    ),
    **{
        command: "on PMOVES's main host: its compose services, networks and volumes are not on this machine"
        for command in (
            "docker network ls --filter name=pmoves_",
            "docker volume ls --filter name=tensorzero-clickhouse-data --filter name=pmoves-ollama-models",
            "docker exec tensorzero-clickhouse clickhouse-client --user tensorzero --password tensorzero "
            '--query "SELECT count() FROM default.ModelInference"',
            "docker exec pmoves-ollama ollama list",
            "docker compose -f pmoves/docker-compose.yml rm --stop --force tensorzero-ui tensorzero-gateway "
            "tensorzero-clickhouse pmoves-ollama",
            'docker exec pmoves-prod-tensorzero-clickhouse sh -c \'clickhouse-client --user "$CLICKHOUSE_USER" '
            '--password "$CLICKHOUSE_PASSWORD" --query "SELECT count() FROM ModelInference"\'',
            "docker run --rm --network pmoves_api curlimages/curl -s http://tensorzero-gateway:3000/status",
            "docker stop $(docker ps -q --filter label=com.pmoves.stack=pmoves-prod)",
            "docker compose -f pmoves/docker-compose.yml up -d tensorzero-clickhouse tensorzero-gateway tensorzero-ui "
            "pmoves-ollama",
        )
    },
}
NEEDS_PULUMI = re.compile(r"^make (up|preview|smoke) ")
# Run inside a deployed stack's backup container: in a fresh checkout they stop cleanly, naming what is missing.
NEEDS_DEPLOYED = re.compile(r"^make (backup|backups|restore|restore-drill) ")
PULUMI_MISSING = "error: the Pulumi CLI is needed for"
SEED_HOST = "http://localhost:3030"


def blocks() -> list[tuple[str, str]]:
    return [(found.group("info"), found.group("body")) for found in BLOCK.finditer(README)]


def commands(body: str) -> list[str]:
    """A bash block's commands: one per line, a trailing `# comment` dropped."""
    return [re.sub(r"\s+#\s.*$", "", line).strip() for line in body.splitlines() if line.strip()]


BASH = [body for info, body in blocks() if info == "bash"]
CURL = [body for body in BASH if body.startswith("curl ")]
SHELL = [command for body in BASH if not body.startswith("curl ") for command in commands(body)]
SHOWN = [body for info, body in blocks() if info == "" and body.startswith("$ ")]


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    """The project as a fresh clone has it: the Makefile, .venv, env layers only as their templates."""
    project = copy_project(tmp_path_factory.mktemp("readme") / "project")
    for name in ("Makefile", "__main__.py", "requirements.txt", "requirements-test.txt", "requirements-smoke.txt"):
        shutil.copy2(PROJECT_DIR / name, project / name)  # copy2: as old as the venv's markers, nothing reinstalls
    shutil.copy2(PROJECT_DIR / "pyproject.toml", project / "pyproject.toml")
    for layer in project.glob("envfiles/*/*"):
        if layer.suffix != ".example":
            layer.unlink()
    (project / ".venv").symlink_to(VENV)
    return project


def run(project: Path, command: str) -> subprocess.CompletedProcess:
    """`command` as an operator types it in the checkout; no `pulumi` on PATH (none can be installed here)."""
    path = os.pathsep.join(d for d in os.environ["PATH"].split(os.pathsep) if not (Path(d) / "pulumi").exists())
    noise = ("MAKEFLAGS", "MAKELEVEL", "CI", "STACK", "ENV_DIR", "VENV", "PULUMI_BACKEND_URL")
    env = {k: v for k, v in os.environ.items() if k not in noise}
    env.update(PATH=path, PYTHONPATH=str(project))  # the console command too runs this checkout's package
    return subprocess.run(
        ["bash", "-c", command], cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def test_the_readme_shows_commands_to_run():
    assert len(SHELL) >= 10 and len(CURL) >= 3 and len(SHOWN) >= 3


@pytest.mark.parametrize("command", SHELL)
def test_every_shell_command_runs_as_the_readme_says(command, checkout):
    if command in NOT_RUN:
        assert NOT_RUN[command]
        if command.startswith("pulumi "):
            assert shutil.which("pulumi") is None, "the Pulumi CLI is here: run this command"
        return
    done = run(checkout, command)
    if NEEDS_PULUMI.match(command) and "OUTPUTS=" not in command:
        assert done.returncode != 0 and PULUMI_MISSING in done.stdout, done.stdout
    elif NEEDS_DEPLOYED.match(command):
        assert done.returncode != 0 and "invalid configuration" in done.stdout, done.stdout
        assert "Traceback" not in done.stdout
    else:
        assert done.returncode == 0, done.stdout


@pytest.mark.parametrize("shown", SHOWN, ids=[body.splitlines()[0] for body in SHOWN])
def test_every_shown_output_is_what_the_command_prints(shown, checkout):
    first, *expected = shown.splitlines()
    printed = run(checkout, first.removeprefix("$ ")).stdout.splitlines()
    at = 0
    for line in expected:
        if line.strip() == "...":
            continue
        assert line in printed[at:], f"not printed (in order): {line!r}\n--- printed:\n" + "\n".join(printed)
        at = printed.index(line, at) + 1


CURL_WRAPPER = """curl() {
    local answer
    answer="$(command curl --silent --show-error --write-out '\\n%{http_code}' "$@")" || return 1
    printf '%s\\n' "${answer##*$'\\n'}" >>"$STATUSES"
}
"""


def curl_statuses(block: str, base: str, key: str, tmp_path: Path) -> list[int]:
    statuses = tmp_path / "statuses"
    statuses.unlink(missing_ok=True)
    env = {"PATH": os.environ["PATH"], "STATUSES": str(statuses), "TENSORZERO_API_KEY": key}
    script = CURL_WRAPPER + "set -e\n" + block.replace(SEED_HOST, base)
    done = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return [int(line) for line in statuses.read_text().split()]


@pytest.mark.parametrize("block", CURL, ids=[re.search(r"localhost:3030(\S*)", b).group(1) for b in CURL])
def test_every_curl_call_answers_as_the_readme_says(block, open_edge, keyed_edge, tmp_path):  # noqa: F811
    """On an edge that asks for no key every call answers; on one that does, exactly the calls that send the key
    do, and the seed's own (keyless) call is refused with a 401."""
    calls = block.count("curl ")
    assert curl_statuses(block, open_edge.url, "", tmp_path) == [200] * calls
    keyed = 200 if "Authorization: Bearer $TENSORZERO_API_KEY" in block else 401
    assert curl_statuses(block, keyed_edge.url, API_KEY, tmp_path) == [keyed] * calls


def test_the_calls_the_readme_shows_cover_the_seed_and_the_keyed_form():
    keyless = [b for b in CURL if "/v1/chat/completions" in b and "Authorization" not in b and "/openai/" not in b]
    keyed = [b for b in CURL if "Authorization: Bearer $TENSORZERO_API_KEY" in b]
    assert keyless and keyed


def claimed_offline() -> list[str]:
    """The commands of each bash block the README introduces as working without the Pulumi CLI."""
    found = []
    for match in BLOCK.finditer(README):
        before = README[: match.start()].rstrip().rsplit("\n\n", 1)[-1]
        if match.group("info") == "bash" and "without the Pulumi CLI" in before:
            found += commands(match.group("body"))
    return found


def test_what_the_readme_says_works_without_the_pulumi_cli_does(checkout):
    offline = claimed_offline()
    assert offline
    for command in offline:
        done = run(checkout, command)
        assert done.returncode == 0 and PULUMI_MISSING not in done.stdout, (command, done.stdout)
