"""`python -m components smoke` where nothing is deployed: what it checked, how fast it gives up, what it never
shows, and what it needs installed. Local listeners stand in for services (no Docker engine needed); the live
suite (tests/live/test_smoke_live.py) runs it against a stack of real programs."""

import ast
import base64
import json
import os
import socket
import subprocess
import sys
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from conftest import CANARIES, LocalServer

from components.operate.smoke_outputs import StackOutputs
from components.stack.loader import PROJECT_DIR

CLOSED = "http://127.0.0.1:9"  # the discard port: nothing listens there
ROLES = ("clickhouse", "gateway", "ui", "ollama", "prometheus", "grafana")
# Installed for the Pulumi program or the tests, not for the smoke suite (requirements-smoke.txt).
NOT_FOR_SMOKE = (
    "pulumi pulumi_docker pydantic pydantic_core jinja2 tomli dotenv yaml grafana_foundation_sdk tensorzero chdb "
    "pyarrow check_jsonschema"
).split()
BLOCKER = """import sys
BLOCKED = set({blocked!r})
class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"{{name}} is not installed in a smoke-only environment", name=name)
sys.meta_path.insert(0, Blocker())
"""


def smoke(outputs: dict, tmp_path: Path, budget: float = 10, env: dict | None = None) -> subprocess.CompletedProcess:
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(outputs))
    command = [sys.executable, "-m", "components", "smoke", "test", "--outputs", str(path), "--budget", str(budget)]
    command += ["--junit", str(tmp_path / "smoke.xml")]
    env = env or {**os.environ, "PYTHONPATH": str(PROJECT_DIR)}
    return subprocess.run(command, cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=budget + 60)


def closed_outputs() -> dict:
    return {
        "endpoints": {role: CLOSED for role in ROLES},
        "containers": {"gateway": "pmoves-test-tensorzero-gateway"},
        "docker_hosts": {"gateway": "tcp://127.0.0.1:9"},
        "smoke": {"chat_model": "tensorzero::model_name::local_chat", "embedding_model": None},
        "clickhouse_url": f"http://tensorzero:{CANARIES['TENSORZERO_CLICKHOUSE_PASSWORD']}@127.0.0.1:9/tensorzero",
        "grafana_admin": {"user": "admin", "password": CANARIES["GRAFANA_ADMIN_PASSWORD"]},
    }


def test_empty_outputs_fail_as_nothing_was_checked(tmp_path):
    """`pulumi stack output` answers {} for a stack that exists but was never deployed."""
    done = smoke({}, tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "smoke test: 0 checked and passed" in done.stdout
    assert "smoke test: FAILED: nothing was checked: the outputs name no service" in done.stdout
    assert "<skipped" in (tmp_path / "smoke.xml").read_text()  # each check says why it skipped


def test_make_smoke_against_empty_outputs_exits_non_zero(tmp_path):
    outputs = tmp_path / "outputs.json"
    outputs.write_text("{}")
    venv = Path(sys.executable).parent.parent
    command = ["make", "--no-print-directory", "-C", str(PROJECT_DIR), f"VENV={venv}", "smoke", "STACK=dev"]
    command += [f"OUTPUTS={outputs}", f"JUNIT={tmp_path / 'dev.junit.xml'}"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0, done.stdout
    assert "nothing was checked" in done.stdout


def test_a_refused_connection_fails_at_once_naming_the_first_cause(tmp_path):
    budget = 20.0
    done = smoke(closed_outputs(), tmp_path, budget)
    assert done.returncode == 1, done.stdout + done.stderr
    report = (tmp_path / "smoke.xml").read_text()
    assert "budget" not in report  # no check waited: a refusal is an answer
    assert report.count("connection refused by 127.0.0.1:9") >= len(ROLES)
    # Later checks of the same address say which check was refused first, instead of repeating the cause alone.
    assert "(first refused to clickhouse: GET http://127.0.0.1:9/ping)" in report
    first = [line for line in done.stdout.splitlines() if line.startswith("smoke test: first failure: ")]
    assert first == [
        "smoke test: first failure: test_ping: clickhouse: GET http://127.0.0.1:9/ping: cannot connect: connection "
        "refused by 127.0.0.1:9. Likely cause: nothing listens there: is the container running?"
    ]
    assert not [value for value in CANARIES.values() if value in done.stdout + done.stderr + report]


def test_containers_that_do_not_exist_fail_within_5s_naming_each(tmp_path):
    """Outputs of a stack whose containers are gone (or were never created) on a Docker host that answers."""
    if subprocess.run(["docker", "info"], capture_output=True, check=False).returncode != 0:
        pytest.skip("needs a Docker engine that answers (`make system-deps` starts one)")
    outputs = closed_outputs()
    engine = "unix:///var/run/docker.sock"
    gone = {role: f"pmoves-absent-{os.getpid()}-{role}" for role in ("gateway", "clickhouse")}
    outputs |= {"containers": gone, "docker_hosts": {role: engine for role in gone}}
    started = time.monotonic()
    done = smoke(outputs, tmp_path, budget=30)
    assert time.monotonic() - started < 5, done.stdout
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1] == (
        f"smoke test: FAILED: these containers do not exist: gateway ({gone['gateway']} on {engine}), clickhouse "
        f"({gone['clickhouse']} on {engine}); is the stack deployed (`make up STACK=test`)?"
    )
    report = (tmp_path / "smoke.xml").read_text()
    assert 'failures="1"' in report and gone["gateway"] in report


@pytest.fixture
def silent_port():
    """A port that accepts connections and never answers: each check waits, the budget runs out."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


def test_silence_is_waited_for_within_the_budget_and_no_longer(tmp_path, silent_port):
    budget = 6.0
    outputs = {**closed_outputs(), "endpoints": {role: silent_port for role in ROLES}}
    outputs["clickhouse_url"] = outputs["clickhouse_url"].replace("127.0.0.1:9", silent_port.removeprefix("http://"))
    done = smoke(outputs, tmp_path, budget)
    assert done.returncode == 1, done.stdout
    report = (tmp_path / "smoke.xml").read_text()
    assert "no answer within" in report
    assert f"not checked: the smoke budget of {budget:g}s was spent" in report


def echo_server(seen: list[str]) -> LocalServer:
    """A Grafana stand-in whose datasource list fails, echoing the request's headers (as some servers do)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps({"database": "ok"}) if self.path == "/api/health" else str(self.headers)
            seen.append(str(self.headers))
            self.send_response(200 if self.path == "/api/health" else 500)
            self.send_header("content-type", "application/json" if self.path == "/api/health" else "text/plain")
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args):
            pass

    return LocalServer(Handler)


def test_credentials_echoed_by_a_server_are_masked_in_every_form(tmp_path):
    seen: list[str] = []
    server = echo_server(seen)
    try:
        outputs = {"endpoints": {"grafana": f"http://127.0.0.1:{server.port}"}, "containers": {"grafana": "g"}}
        outputs["grafana_admin"] = {"user": "admin", "password": CANARIES["GRAFANA_ADMIN_PASSWORD"]}
        done = smoke(outputs, tmp_path)
    finally:
        server.close()
    basic = base64.b64encode(f"admin:{CANARIES['GRAFANA_ADMIN_PASSWORD']}".encode()).decode()
    assert any(basic in headers for headers in seen)  # the echo really carried it
    report = (tmp_path / "smoke.xml").read_text()
    assert "Authorization: Basic ***" in report, report
    for text in (done.stdout, done.stderr, report):
        assert basic not in text and CANARIES["GRAFANA_ADMIN_PASSWORD"] not in text


def every_form(user: str, password: str) -> dict[str, str]:
    """The forms a server, a proxy or a library may echo a credential in (what the masking must cover)."""
    pair = f"{user}:{password}".encode()
    basic = base64.b64encode(pair).decode()
    alone = base64.b64encode(password.encode()).decode()
    return {
        "plain": password,
        "url-encoded": urllib.parse.quote(password, safe=""),
        "form-encoded": urllib.parse.quote_plus(password),
        "userinfo": f"{user}:{password}@",
        "basic": basic,
        "basic url-encoded": urllib.parse.quote(basic, safe=""),
        "basic url-encoded lowercase": urllib.parse.quote(basic, safe="").replace("%3D", "%3d"),
        "basic unpadded": basic.rstrip("="),
        "basic url-safe": base64.urlsafe_b64encode(pair).decode(),
        "base64 password": alone,
        "base64 password url-encoded": urllib.parse.quote(alone, safe=""),
        "hex password": password.encode().hex(),
        "HEX password": password.encode().hex().upper(),
        "hex basic pair": pair.hex(),
    }


def form_server(forms: dict[str, str]) -> LocalServer:
    """A Grafana stand-in whose datasource list fails with a body echoing a credential in every form."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            healthy = self.path == "/api/health"
            echoed = " ".join(f"[{i}={form}]" for i, form in enumerate(forms.values()))
            body = json.dumps({"database": "ok"}) if healthy else echoed
            self.send_response(200 if healthy else 500)
            self.send_header("content-type", "application/json" if healthy else "text/plain")
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args):
            pass

    return LocalServer(Handler)


# dev's ClickHouse password (`tensorzero`, also a word of every name), and canaries, in every form.
CREDENTIALS = {
    "dev clickhouse": ("tensorzero", "tensorzero"),
    "clickhouse canary": ("pmoves_tz", CANARIES["TENSORZERO_CLICKHOUSE_PASSWORD"]),
    "grafana canary": ("admin", CANARIES["GRAFANA_ADMIN_PASSWORD"]),
    "symbols": ("admin", "p@ss w/rd+=?&%"),
}


@pytest.mark.parametrize("credential", CREDENTIALS)
def test_a_credential_echoed_in_any_encoding_never_reaches_the_output_or_the_report(tmp_path, credential):
    user, password = CREDENTIALS[credential]
    forms = every_form(user, password)
    server = form_server(forms)
    try:
        outputs = {"endpoints": {"grafana": f"http://127.0.0.1:{server.port}"}, "containers": {"grafana": "g"}}
        outputs["containers"]["blackbox"] = "pmoves-dev-tensorzero-blackbox"
        outputs["grafana_admin"] = {"user": "admin", "password": CANARIES["GRAFANA_ADMIN_PASSWORD"]}
        if "clickhouse" in credential:
            outputs["clickhouse_url"] = f"http://{user}:{urllib.parse.quote(password, safe='')}@127.0.0.1:9/x"
            outputs["endpoints"]["clickhouse"] = CLOSED
        else:
            outputs["grafana_admin"] = {"user": user, "password": password}
        done = smoke(outputs, tmp_path)
    finally:
        server.close()
    report = (tmp_path / "smoke.xml").read_text()
    # A password that is also a word of every name is masked in its credential forms only (see below).
    bare = ("plain", "url-encoded", "form-encoded") if password == "tensorzero" else ()
    for i, name in enumerate(forms):  # each form reached the report, whole, and was masked there
        assert name in bare or f"[{i}=***]" in report, (name, report)
    for text in (done.stdout, done.stderr, report):
        leaked = [name for name, form in forms.items() if form in text and name not in bare]
        assert leaked == [], leaked


def test_a_password_that_is_also_a_name_is_masked_as_a_credential_only():
    """dev's ClickHouse password is `tensorzero`, which is also part of every container and model name."""
    outputs = StackOutputs.from_document(
        {
            "containers": {"blackbox": "pmoves-dev-tensorzero-blackbox"},
            "clickhouse_url": "http://tensorzero:tensorzero@127.0.0.1:8123/tensorzero",
            "grafana_admin": {"user": "admin", "password": "canary-grafana-pw-5e1d"},
        }
    )
    redact = outputs.redactor()
    shown = "docker inspect pmoves-dev-tensorzero-blackbox; model tensorzero::model_name::local_chat"
    assert redact(shown) == shown
    assert redact("GET http://tensorzero:tensorzero@127.0.0.1:8123/") == "GET http://***127.0.0.1:8123/"
    basic = base64.b64encode(b"tensorzero:tensorzero").decode()
    assert redact(f"Authorization: Basic {basic}") == "Authorization: Basic ***"
    # A password that is no name anywhere is masked wherever it appears, URL-encoded too.
    assert redact("x canary-grafana-pw-5e1d y canary%2Dgrafana") == "x *** y canary%2Dgrafana"


def third_party_imports(paths) -> set[str]:
    found = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return {name for name in found if name not in sys.stdlib_module_names and name not in ("components", "smoke")}


def test_the_smoke_requirements_are_what_the_suite_imports():
    sources = [*(PROJECT_DIR / "tests" / "smoke").glob("*.py")]
    sources += [
        PROJECT_DIR / "components" / name
        for name in ("operate/smoke.py", "operate/smoke_outputs.py", "core/names.py", "__main__.py")
    ]
    distributions = {"httpx": "httpx", "pytest": "pytest", "testinfra": "pytest-testinfra"}
    imported = third_party_imports(sources)
    assert imported == set(distributions)
    pinned = [line.split("==")[0] for line in (PROJECT_DIR / "requirements-smoke.txt").read_text().splitlines()]
    assert sorted(name for name in pinned if name and not name.startswith("#")) == sorted(distributions.values())


def test_smoke_runs_with_nothing_but_its_own_requirements(tmp_path):
    """Every package of the Pulumi program and of the tests made unimportable: the suite still runs its checks."""
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(BLOCKER.format(blocked=NOT_FOR_SMOKE))
    env = {**os.environ, "PYTHONPATH": f"{blocker}{os.pathsep}{PROJECT_DIR}"}
    assert subprocess.run([sys.executable, "-c", "import pydantic"], env=env, capture_output=True).returncode != 0
    done = smoke(closed_outputs(), tmp_path, 20, env=env)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "ModuleNotFoundError" not in done.stdout + done.stderr
    assert "smoke test: first failure: test_ping: clickhouse: GET http://127.0.0.1:9/ping" in done.stdout


def test_make_smoke_installs_only_the_smoke_requirements(tmp_path):
    """In a fresh environment `make smoke` installs requirements-smoke.txt, not the Pulumi program's or the tests'."""
    fresh = tmp_path / "venv"
    command = ["make", "-n", "--no-print-directory", "-C", str(PROJECT_DIR), f"VENV={fresh}", "smoke"]
    done = subprocess.run([*command, "OUTPUTS=outputs.json"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "-r requirements-smoke.txt" in done.stdout
    assert "requirements-test.txt" not in done.stdout and "-r requirements.txt" not in done.stdout


def test_python_without_the_requirements_says_run_make_first():
    """`python -S`: no site-packages at all, as on a bare system Python."""
    done = subprocess.run(
        [sys.executable, "-S", "-m", "components", "validate", "dev"],
        cwd=PROJECT_DIR,
        env={"PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert done.stdout == "" and len(done.stderr.splitlines()) == 1, done.stderr
    assert "is not installed for" in done.stderr and "run `make venv` first" in done.stderr


def test_the_console_command_runs_the_cli_from_anywhere(tmp_path, canary_env_dirs):
    command = Path(sys.executable).parent / "pmoves-tz"
    assert command.exists(), "make venv installs the package (pip install -e .) with its console command"
    done = subprocess.run(
        [str(command), "validate", "dev", "--env-dir", canary_env_dirs["dev"]],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1].startswith("dev: valid (dev);")
