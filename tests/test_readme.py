"""The README's and docs/' commands and examples, run: what they say is so.

Every fenced `bash` block of README.md and of each docs/*.md page (README first, then the pages sorted by name)
is run, command by command, in page order, in a copy of the project as a new checkout has it (env layers only as
templates), one copy per page: the offline `make` targets and CLI commands must succeed; those that need the
Pulumi CLI (not installable here) must stop saying so; the `curl` calls run against the compatibility edge (a
real nginx with the Lua module) in front of TensorZero's real routes (tests/edge_rig.py). Every block that
shows a command's output (`$ command` on its first line) is run too, and the lines it shows must appear, in
order, in what the command prints (`...` stands for lines left out). A command that can run nowhere here is
listed in NOT_RUN with the reason, so a new one cannot slip in unrun: any other command is run, and fails the
test, naming its page, unless it does what the page says. Every relative link of these pages leads to a file
that exists, and every `#anchor` to a heading of its page.
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

from components.core.names import PROJECT_DIR

README = (PROJECT_DIR / "README.md").read_text()
# The pages whose commands are run, in this order: the README first, then docs/ by name.
PAGES = ("README.md", *sorted(f"docs/{page.name}" for page in (PROJECT_DIR / "docs").glob("*.md")))
VENV = Path(sys.executable).parent.parent
# A fence opens with three or more backticks and an info word; it closes with as many or more, alone on a line.
FENCE = re.compile(r"^(?P<fence>`{3,})(?P<info>[\w-]*)[ \t]*$")
PULUMI_CLI = "needs the Pulumi CLI, which cannot be installed on these machines, and a created stack"
# Shown in the README or docs/, run nowhere here; each with the reason.
NOT_RUN = {
    "make test": "the test suite this check is part of",
    "pulumi config set --secret --path 'secrets.ANTHROPIC_API_KEY' sk-ant-... --stack prod": PULUMI_CLI,
    "make restore STACK=prod FROM=<name> OFFSITE=1": "a template: <name> is one of the backups `make backups` lists",
    "git revert <the upgrade commit>": "a template: the commit is the operator's own upgrade",
    "pulumi config set --secret --path 'secrets.HIRAG_TENSORZERO_KEY' \"$(openssl rand -hex 32)\" --stack prod": (
        PULUMI_CLI
    ),
    'curl -H "Authorization: Bearer $HIRAG_TENSORZERO_KEY" https://tensorzero.pmoves.internal:3030/v1/embeddings ...': (
        "a template against prod's host; the keyed calls themselves run against the edge in test_edge_access.py"
    ),
    "make restore STACK=prod FROM=tensorzero-<time>-pre-upgrade REPLACE=1": "a template: <time> is the backup's",
    # Moving from PMOVES's compose: on PMOVES's main host, with its credentials, compose file and containers.
    "make validate STACK=prod": (
        "needs prod's credentials; tests/operate/test_cli.py validates prod with stand-in values"
    ),
    "make plan STACK=prod": (
        "needs prod's credentials; tests/operate/test_cli.py plans prod with stand-in values and finds the two "
        "adopted volumes shown as `> read`"
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
            'docker exec tensorzero-clickhouse sh -c \'clickhouse-client --user "$CLICKHOUSE_USER" '
            '--password "$CLICKHOUSE_PASSWORD" --query "SELECT count() FROM ModelInference"\'',
            "docker run --rm --network pmoves_api curlimages/curl -s http://tensorzero-gateway:3000/status",
            "docker stop $(docker ps -q --filter label=com.pmoves.stack=pmoves-prod)",
            "docker compose -f pmoves/docker-compose.yml up -d tensorzero-clickhouse tensorzero-gateway tensorzero-ui "
            "pmoves-ollama",
        )
    },
    **{
        command: "on PMOVES's GPU host (the Jetson): its own jetson-ollama container and volume are not on this "
        "machine; tests/operate/test_containers.py and tests/live/test_containers_live.py run the verbs"
        for command in (
            "docker inspect jetson-ollama --format '{{range .Mounts}}{{.Name}} {{.Destination}}{{\"\\n\"}}{{end}}'",
            "docker exec jetson-ollama ollama list",
            "docker stop jetson-ollama && docker rm jetson-ollama",
            "make exec STACK=prod SERVICE=ollama-jetson CMD='ollama list'",
        )
    },
    # docs/ci.md: wiring GitHub's secrets, and the plan diff of a branch against the repository's main.
    "gh secret set PULUMI_BACKEND_URL --body 's3://pmoves-pulumi-state'": (
        "needs the `gh` CLI logged in to the project's GitHub repository; no GitHub here"
    ),
    "\n".join(
        (
            "for env in staging production production-preview; do",
            'gh secret set PULUMI_CONFIG_PASSPHRASE --env "$env"',
            'gh secret set ANTHROPIC_API_KEY --env "$env"',
            'gh secret set OPENAI_API_KEY --env "$env"',
            "done",
        )
    ): "needs the `gh` CLI logged in to the project's GitHub repository, and its environments; no GitHub here",
    "make smoke STACK=dev OUTPUTS=/path/to/outputs.json JUNIT=/tmp/dev.xml": (
        "a template: the outputs file is a deployed stack's; tests/operate/test_smoke_command.py runs the "
        "suite from one"
    ),
    **{
        command: (
            "needs a git checkout with an `origin/main` ref (the copy the pages run in is none); "
            "tests/operate/test_cli.py diffs the stacks' plans against another revision"
        )
        for command in (
            "make plan-diff BASE=origin/main",
            "make plan-diff BASE=origin/main STACKS=dev",
            "python -m components diff --against origin/main dev --json",
        )
    },
}
NEEDS_PULUMI = re.compile(r"^make (up|preview|smoke) ")
# Run inside a deployed stack's backup container: in a fresh checkout they stop cleanly, naming what is missing.
NEEDS_DEPLOYED = re.compile(r"^make (backup|backups|restore|restore-drill) ")
# No test downloads the Pulumi CLI (nor, where it could, deploys with it): the release URL the commands see cannot
# answer, so `make pulumi-cli` (the first step of up, preview and smoke) stops there, installing nothing.
NO_RELEASE_HOST = "file:///nonexistent/pulumi-release.tar.gz"
PULUMI_MISSING = f"error: cannot download {NO_RELEASE_HOST}; nothing installed"  # make pulumi-cli's stop
SEED_HOST = "http://localhost:3030"


def page_text(page: str) -> str:
    return (PROJECT_DIR / page).read_text()


def fenced(text: str) -> list[tuple[str, str, int]]:
    """Each fenced block of a markdown text: its info word, its body and the line it opens on. A block inside a
    longer fence (a ````markdown example of a comment) is part of that block's body, not a block of its own."""
    found, lines, at = [], text.splitlines(keepends=True), 0
    while at < len(lines):
        opening = FENCE.match(lines[at])
        at += 1
        if not opening:
            continue
        fence, start, body = opening.group("fence"), at, []
        while at < len(lines) and not re.fullmatch(f"{fence}`*[ \t]*", lines[at].rstrip("\n")):
            body.append(lines[at])
            at += 1
        at += 1
        found.append((opening.group("info"), "".join(body), start))
    return found


def blocks(page: str = "README.md") -> list[tuple[str, str]]:
    return [(info, body) for info, body, _ in fenced(page_text(page))]


COMPOUND = re.compile(r"^(for|while|until|if)\b")
COMPOUND_END = re.compile(r"^(done|fi)\b")


def commands(body: str) -> list[str]:
    """A bash block's commands: one per line, a trailing `# comment` dropped, comment lines skipped; a `for`,
    `while` or `if` runs to its `done` or `fi` as one command, its lines joined by newlines."""
    found: list[str] = []
    compound: list[str] = []
    for line in body.splitlines():
        command = re.sub(r"\s+#\s.*$", "", line).strip()
        if not command or command.startswith("#"):
            continue
        if compound or COMPOUND.match(command):
            compound.append(command)
            if COMPOUND_END.match(command) or (len(compound) == 1 and re.search(r";\s*(done|fi)$", command)):
                found.append("\n".join(compound))
                compound = []
            continue
        found.append(command)
    assert not compound, f"a compound command never ends: {compound}"
    return found


BASH = [(page, body) for page in PAGES for info, body in blocks(page) if info == "bash"]
CURL = [(page, body) for page, body in BASH if body.startswith("curl ")]
SHELL = [(page, command) for page, body in BASH if not body.startswith("curl ") for command in commands(body)]
SHOWN = [(page, body) for page in PAGES for info, body in blocks(page) if info == "" and body.startswith("$ ")]


@pytest.fixture(scope="module")
def checkouts(tmp_path_factory):
    """Per page, the project as a fresh clone has it: the Makefile, .venv, env layers only as their templates.
    Each page's commands run in order in its own copy, so one page's steps cannot prepare another's."""
    made: dict[str, Path] = {}

    def checkout(page: str) -> Path:
        if page not in made:
            project = copy_project(tmp_path_factory.mktemp("readme") / "project")
            (project / ".ci").mkdir(exist_ok=True)
            for name in ("Makefile", "__main__.py", "requirements.txt", "requirements-test.txt", ".ci/pulumi.sha256"):
                shutil.copy2(PROJECT_DIR / name, project / name)
            for name in ("requirements-smoke.txt", "pyproject.toml"):
                shutil.copy2(PROJECT_DIR / name, project / name)
            for name in ("requirements.txt", "requirements-test.txt", "requirements-smoke.txt", "pyproject.toml"):
                # Older than any venv's markers, so `make` never reinstalls into the shared venv (an editable
                # install of this throwaway copy would replace the one the venv's own checkout made).
                os.utime(project / name, (0, 0))
            for layer in project.glob("envfiles/*/*"):
                if layer.suffix != ".example":
                    layer.unlink()
            (project / ".venv").symlink_to(VENV)
            made[page] = project
        return made[page]

    return checkout


def run(project: Path, command: str) -> subprocess.CompletedProcess:
    """`command` as an operator types it in the checkout; no `pulumi` on PATH, and none can be downloaded."""
    path = os.pathsep.join(d for d in os.environ["PATH"].split(os.pathsep) if not (Path(d) / "pulumi").exists())
    noise = ("MAKEFLAGS", "MAKELEVEL", "CI", "STACK", "ENV_DIR", "VENV", "PULUMI_BACKEND_URL")
    env = {k: v for k, v in os.environ.items() if k not in noise}
    env.update(PATH=path, PYTHONPATH=str(project), PULUMI_URL=NO_RELEASE_HOST)  # the console command: this checkout
    return subprocess.run(
        ["bash", "-c", command], cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def test_the_pages_show_commands_to_run():
    assert PAGES[0] == "README.md" and len(PAGES) > 1
    assert len(SHELL) >= 10 and len(CURL) >= 3 and len(SHOWN) >= 3
    readme = [command for page, command in SHELL if page == "README.md"]
    assert len(readme) >= 5, "the README's walkthrough is commands the test runs"


def test_every_command_not_run_is_still_shown():
    shown = {command for _, command in SHELL} | {body.splitlines()[0].removeprefix("$ ") for _, body in SHOWN}
    assert not set(NOT_RUN) - shown, "NOT_RUN lists commands no page shows any more"


@pytest.mark.parametrize(("page", "command"), SHELL, ids=[f"{page}: {command}" for page, command in SHELL])
def test_every_shell_command_runs_as_its_page_says(page, command, checkouts):
    if command in NOT_RUN:
        assert NOT_RUN[command]
        if command.startswith("pulumi "):
            assert shutil.which("pulumi") is None, f"{page}: the Pulumi CLI is here: run this command"
        return
    done = run(checkouts(page), command)
    said = f"{page}: {command}\n{done.stdout}"
    if NEEDS_PULUMI.match(command) and "OUTPUTS=" not in command:
        assert done.returncode != 0 and PULUMI_MISSING in done.stdout, said
    elif NEEDS_DEPLOYED.match(command):
        assert done.returncode != 0 and "invalid configuration" in done.stdout, said
        assert "Traceback" not in done.stdout, said
    else:
        assert done.returncode == 0, said


@pytest.mark.parametrize(("page", "shown"), SHOWN, ids=[f"{page}: {body.splitlines()[0]}" for page, body in SHOWN])
def test_every_shown_output_is_what_the_command_prints(page, shown, checkouts):
    first, *expected = shown.splitlines()
    printed = run(checkouts(page), first.removeprefix("$ ")).stdout.splitlines()
    at = 0
    for line in expected:
        if line.strip() == "...":
            continue
        assert line in printed[at:], f"{page}: not printed (in order): {line!r}\n--- printed:\n" + "\n".join(printed)
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


@pytest.mark.parametrize(
    ("page", "block"), CURL, ids=[f"{page}: " + re.search(r"localhost:3030(\S*)", b).group(1) for page, b in CURL]
)
def test_every_curl_call_answers_as_its_page_says(page, block, open_edge, keyed_edge, tmp_path):  # noqa: F811
    """On an edge that asks for no key every call answers; on one that does, exactly the calls that send the key
    do, and the seed's own (keyless) call is refused with a 401."""
    calls = block.count("curl ")
    assert curl_statuses(block, open_edge.url, "", tmp_path) == [200] * calls, page
    keyed = 200 if "Authorization: Bearer $TENSORZERO_API_KEY" in block else 401
    assert curl_statuses(block, keyed_edge.url, API_KEY, tmp_path) == [keyed] * calls, page


def test_the_calls_the_pages_show_cover_the_seed_and_the_keyed_form():
    keyless = [b for _, b in CURL if "/v1/chat/completions" in b and "Authorization" not in b and "/openai/" not in b]
    keyed = [b for _, b in CURL if "Authorization: Bearer $TENSORZERO_API_KEY" in b]
    assert keyless and keyed


def claimed_offline() -> list[tuple[str, str]]:
    """The commands of each bash block a page introduces as working without the Pulumi CLI."""
    found = []
    for page in PAGES:
        lines = page_text(page).splitlines()
        for info, body, start in fenced(page_text(page)):
            before = "\n".join(lines[: start - 1]).rstrip().rsplit("\n\n", 1)[-1]
            if info == "bash" and "without the Pulumi CLI" in before:
                found += [(page, command) for command in commands(body)]
    return found


def test_what_the_pages_say_works_without_the_pulumi_cli_does(checkouts):
    offline = claimed_offline()
    assert any(page == "README.md" for page, _ in offline)
    for page, command in offline:
        done = run(checkouts(page), command)
        assert done.returncode == 0 and PULUMI_MISSING not in done.stdout, (page, command, done.stdout)


def prose(page: str) -> str:
    """A page without its fenced blocks (a `# comment` in a bash block is no heading)."""
    text = page_text(page)
    for _, block, _ in fenced(text):
        text = text.replace(block, "")
    return text


LINK = re.compile(r"(?<!!)\[[^\]]*\]\((?P<target>[^)\s]+)\)")


def anchors(page: str) -> set[str]:
    """The `#anchor` of each heading of a page, as GitHub makes it (lower case, punctuation dropped, spaces to
    hyphens, a repeated one numbered)."""
    made: dict[str, int] = {}
    found = set()
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*#*$", prose(page), re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.lower().replace("`", "")).replace(" ", "-")
        count = made.get(slug, 0)
        made[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def links() -> list[tuple[str, str]]:
    """Every relative link of every page, outside code blocks and code spans."""
    found = []
    for page in PAGES:
        text = re.sub(r"`[^`\n]*`", "", prose(page))
        found += [(page, m.group("target")) for m in LINK.finditer(text) if not re.match(r"\w+:", m.group("target"))]
    return found


@pytest.mark.parametrize(("page", "target"), links(), ids=[f"{page} -> {target}" for page, target in links()])
def test_every_relative_link_leads_somewhere(page, target):
    path, _, anchor = target.partition("#")
    linked = (PROJECT_DIR / page).parent / path if path else PROJECT_DIR / page
    relative = linked.resolve().relative_to(PROJECT_DIR.resolve()).as_posix()
    assert linked.exists(), f"{page}: {target} leads to no file"
    if anchor and linked.suffix == ".md":
        assert anchor in anchors(relative), f"{page}: {target}: no such heading in {relative}"


def test_the_readme_links_the_generated_reference_and_the_architecture():
    linked = {
        ((PROJECT_DIR / page).parent / t.partition("#")[0]).resolve() for page, t in links() if page == "README.md"
    }
    assert {(PROJECT_DIR / page).resolve() for page in ("docs/reference.md", "docs/architecture.md")} <= linked
