"""The smoke suite's own tests: `python -m components smoke` against the live stack (livestack.py) passes when
the stack is healthy, fast, and fails naming the service, the endpoint and what it saw for each injected fault,
within its budget, without ever printing a credential."""

import json
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ElementTree
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from conftest import CANARIES

from components.services.clickhouse import SERVICE as CLICKHOUSE
from components.services.edge import GATEWAY_BEHIND_EDGE_ALIAS
from components.services.gateway import SERVICE as GATEWAY
from components.services.ollama import SERVICE as OLLAMA
from components.services.ui import SERVICE as UI
from components.stack.loader import PROJECT_DIR

from .engine import NotReady, wait_for
from .livestack import GPU_INSTANCE, GPU_MODEL

HEALTHY_LIMIT_S = 15.0
HEALTHY_BUDGET_S = 30.0
FAULT_BUDGET_S = 12.0  # a check waits at most a quarter of it: 3s per failing check
WRONG_PASSWORD = "wrong-password-canary-9d1e"
SEED_COUNT = "SELECT COUNT(*) FROM requests"
GPU_OLLAMA = f"{OLLAMA.role}-{GPU_INSTANCE}"
# The GPU host's Ollama is published only to the gateway's host, by its guard: the suite says it cannot check it.
GUARDED_ONLY = [f"test_ollama::test_every_model_present[{GPU_OLLAMA}]", f"test_ollama::test_version[{GPU_OLLAMA}]"]


@dataclass
class SmokeRun:
    status: int
    output: str
    seconds: float
    report: str  # the JUnit XML

    def cases(self) -> dict[str, ElementTree.Element]:
        """`module::test` (JUnit classname's last part) to its testcase element."""
        root = ElementTree.fromstring(self.report)
        return {
            f"{case.get('classname').rsplit('.', 1)[-1]}::{case.get('name')}": case for case in root.iter("testcase")
        }

    def failures(self) -> dict[str, str]:
        found = {}
        for name, case in self.cases().items():
            failure = case.find("failure")
            if failure is not None:
                message = failure.get("message", "")
                if message.endswith("; full report in element text]"):  # pytest shortens a long message
                    message = failure.text or ""  # pytest.fail(..., pytrace=False): the message alone
                found[name] = message.removeprefix("Failed: ")  # pytest.fail's prefix
        return found


def smoke(outputs: dict, directory: Path, budget: float) -> SmokeRun:
    directory.mkdir(parents=True, exist_ok=True)
    outputs_file, junit = directory / "outputs.json", directory / "smoke.xml"
    outputs_file.write_text(json.dumps(outputs))
    command = [sys.executable, "-m", "components", "smoke", "live", "--outputs", str(outputs_file)]
    command += ["--junit", str(junit), "--budget", str(budget)]
    started = time.monotonic()
    done = subprocess.run(command, cwd=PROJECT_DIR, capture_output=True, text=True, timeout=budget + 60)
    seconds = time.monotonic() - started
    assert junit.exists(), f"no JUnit report:\n{done.stdout}{done.stderr}"
    run = SmokeRun(done.returncode, done.stdout + done.stderr, seconds, junit.read_text())
    for secret in [*CANARIES.values(), WRONG_PASSWORD, outputs.get("edge_key", {}).get("key", WRONG_PASSWORD)]:
        assert secret not in run.output and secret not in run.report, f"a credential was printed:\n{run.output}"
    return run


def skipped(run: SmokeRun) -> dict[str, str]:
    """`module::test` to its skip reason."""
    found = {}
    for name, case in run.cases().items():
        skip = case.find("skipped")
        if skip is not None:
            found[name] = skip.get("message", "")
    return found


def only(run: SmokeRun, *expected: str) -> dict[str, str]:
    """The failures, which must be exactly `expected`: a fault is named where it is, not everywhere."""
    failures = run.failures()
    assert run.status == 1, run.output
    assert sorted(failures) == sorted(expected), run.output
    return failures


@contextmanager
def restored(live_stack):
    """Whatever a test breaks, the stack is healthy again for the next one."""
    try:
        yield
    finally:
        live_stack.wait_monitoring_green()


def test_passes_on_the_healthy_stack_in_under_15s(live_stack, tmp_path):
    before = inference_rows(live_stack)
    run = smoke(live_stack.outputs(), tmp_path, HEALTHY_BUDGET_S)
    assert run.status == 0, run.output
    assert run.seconds < HEALTHY_LIMIT_S, run.output
    cases = run.cases()
    skipped = sorted(name for name, case in cases.items() if case.find("skipped") is not None)
    # Every check ran but those of the Ollama only the gateway's host may reach (behind its guard).
    assert skipped == GUARDED_ONLY, run.output
    containers = {name for name in cases if name.startswith("test_containers::")}
    assert len(containers) == len(live_stack.fleet.containers)
    # The round trip really went through TensorZero's routes to Ollama and into ClickHouse.
    new = {row["model_name"] for row in inference_rows(live_stack) if row["id"] not in {r["id"] for r in before}}
    spec = live_stack.deployment.spec
    assert new == {spec.smoke.chat_model, spec.smoke.embedding_model}


def test_unpublished_clickhouse_is_counted_inside_its_container(live_stack, tmp_path):
    """As in prod, where ClickHouse is not published: the rows are counted with `docker exec`."""
    outputs = live_stack.outputs()
    del outputs["endpoints"][CLICKHOUSE.role]
    outputs["clickhouse_url"] = live_stack.internal_clickhouse_url()
    run = smoke(outputs, tmp_path, HEALTHY_BUDGET_S)
    assert run.status == 0, run.output
    cases = run.cases()
    assert cases["test_inference::test_inferences_logged_to_clickhouse"].find("skipped") is None, run.output
    skipped = sorted(name for name, case in cases.items() if case.find("skipped") is not None)
    assert skipped == sorted(["test_clickhouse::test_credentials_work", "test_clickhouse::test_ping", *GUARDED_ONLY])


def inference_rows(live_stack) -> list[dict]:
    spec = live_stack.deployment.spec
    answer = httpx.post(
        live_stack.urls[CLICKHOUSE.role] + "/",
        params={"database": spec.clickhouse.database},
        content="SELECT id, model_name FROM ModelInference FORMAT JSONEachRow",
        auth=(spec.clickhouse.user, live_stack.deployment.variable(spec.clickhouse.password_var).value),
    )
    answer.raise_for_status()
    return [json.loads(line) for line in answer.text.splitlines()]


def test_stopped_container_is_named(live_stack, tmp_path):
    ui = live_stack.container(UI)
    outputs = live_stack.outputs()  # as deployed: a stopped container publishes no port
    with restored(live_stack):
        ui.stop()
        try:
            run = smoke(outputs, tmp_path, FAULT_BUDGET_S)
        finally:
            ui.start()
            ui.wait_healthy()
    failures = only(
        run,
        "test_containers::test_running_and_healthy[ui]",
        "test_ui::test_health",
        "test_prometheus::test_every_probe_succeeds",
    )
    assert failures["test_containers::test_running_and_healthy[ui]"].startswith(
        f"ui: docker inspect {ui.name} on unix://"
    )
    assert f"container {ui.name} is exited" in failures["test_containers::test_running_and_healthy[ui]"]
    # The UI's port is the edge's: it answers, and says the UI behind it is unreachable.
    assert failures["test_ui::test_health"].startswith(f"ui: GET {outputs['endpoints']['ui']}/health: HTTP 502")
    assert (
        f"ui probe of http://{UI.alias}:{UI.port}/health fails"
        in failures["test_prometheus::test_every_probe_succeeds"]
    )
    assert run.seconds < FAULT_BUDGET_S + 2


def test_wrong_clickhouse_password_is_named(live_stack, tmp_path):
    outputs = live_stack.outputs()
    right = live_stack.deployment.variable(live_stack.deployment.spec.clickhouse.password_var).value
    outputs["clickhouse_url"] = outputs["clickhouse_url"].replace(f":{right}@", f":{WRONG_PASSWORD}@")
    run = smoke(outputs, tmp_path, FAULT_BUDGET_S)
    failures = only(
        run,
        "test_clickhouse::test_credentials_work",
        "test_clickhouse::test_requests_view_answers",
        "test_inference::test_inferences_logged_to_clickhouse",
    )
    clickhouse = live_stack.urls[CLICKHOUSE.role]
    user = live_stack.deployment.spec.clickhouse.user
    assert failures["test_clickhouse::test_credentials_work"].startswith(
        f"clickhouse: {clickhouse} database tensorzero: `SELECT 1` as user {user}: HTTP 401"
    )
    assert "Wrong password" in failures["test_clickhouse::test_credentials_work"]
    assert "cannot count rows before the requests" in failures["test_inference::test_inferences_logged_to_clickhouse"]
    # The view is there: no hint at the schema one-shot, only what ClickHouse said.
    view = failures["test_clickhouse::test_requests_view_answers"]
    assert "Wrong password" in view and "Likely cause" not in view


@pytest.mark.parametrize("published", [True, False], ids=["published", "unpublished"])
def test_missing_requests_view_is_named(live_stack, tmp_path, published):
    """A failed schema one-shot, which `pulumi up` does not report: the seed's `requests` view is missing. Over
    HTTP when ClickHouse is published, else with `docker exec`: either way the failure carries ClickHouse's
    own error and where to look."""
    outputs = live_stack.outputs()
    clickhouse = live_stack.container(CLICKHOUSE)
    user = live_stack.deployment.spec.clickhouse.user
    if published:
        where = f"{live_stack.urls[CLICKHOUSE.role]} database tensorzero: `{SEED_COUNT}` as user {user}: HTTP 404"
    else:
        del outputs["endpoints"][CLICKHOUSE.role]
        outputs["clickhouse_url"] = live_stack.internal_clickhouse_url()
        where = f"docker exec {clickhouse.name} on {outputs['docker_hosts']['clickhouse']} database tensorzero: "
        where += f"`{SEED_COUNT}` failed: "
    live_stack.clickhouse_query("DROP TABLE requests")  # 18.16 has no DROP VIEW
    try:
        run = smoke(outputs, tmp_path, FAULT_BUDGET_S)
    finally:
        live_stack.create_views()
    [failure] = only(run, "test_clickhouse::test_requests_view_answers").values()
    assert failure.startswith(f"clickhouse: the `requests` view at {where}"), failure
    assert "Table tensorzero.requests doesn't exist" in failure
    assert failure.endswith(
        "Likely cause: the clickhouse-schema one-shot container did not apply the view; "
        f"see `docker logs {clickhouse.name}-schema`; "
        "re-run it with `pulumi up --replace <URN of clickhouse-schema-apply>`"
    )
    assert "attempts over" not in failure  # a missing table is not waited for: the budget stays for the rest
    # Every other check ran and passed (unpublished: only the HTTP-only ClickHouse checks skip, as when healthy).
    unpublished = [] if published else ["test_clickhouse::test_credentials_work", "test_clickhouse::test_ping"]
    assert sorted(skipped(run)) == sorted([*unpublished, *GUARDED_ONLY])
    assert run.seconds < FAULT_BUDGET_S + 2
    assert live_stack.clickhouse_query(SEED_COUNT).strip().isdigit()  # restored for the next test


@pytest.mark.parametrize(
    ("views", "reason"),
    [
        (None, "clickhouse: no clickhouse_views in the outputs: the stack was last deployed before they were"),
        ([], "clickhouse: no `requests` view here (clickhouse.requests_view or gateway.observability is off)"),
        (["requests"], "clickhouse: ClickHouse is not published, and its container cannot be inspected here"),
    ],
)
def test_requests_view_check_skips_only_saying_why(tmp_path, views, reason):
    """Not deployed, not known (outputs of an older stack) or not reachable: skipped with the reason, never
    passed. Needs no Docker engine."""
    outputs = {} if views is None else {"clickhouse_views": views}
    run = smoke(outputs, tmp_path, 10)
    assert skipped(run)["test_clickhouse::test_requests_view_answers"] == reason, run.output
    # Every check skipped: a run that checked nothing fails.
    assert run.status == 1 and "nothing was checked" in run.output, run.output


def test_inferences_not_logged_are_named(live_stack, tmp_path):
    """The gateway answers but writes no row (its observability broken): the rows did not grow, and only that
    check says so. A check weakened to "the rows did not shrink" would pass here."""
    with restored(live_stack):
        live_stack.gateway_fault(unlogged=True)
        try:
            run = smoke(live_stack.outputs(), tmp_path, FAULT_BUDGET_S)
        finally:
            live_stack.gateway_fault(unlogged=False)
    [failure] = only(run, "test_inference::test_inferences_logged_to_clickhouse").values()
    assert failure.startswith(f"gateway: ModelInference at {live_stack.urls[CLICKHOUSE.role]} database tensorzero: ")
    assert "after chat (tensorzero::model_name::local_chat) and embedding" in failure
    assert "answered: inferences are not being logged" in failure
    assert f"smoke live: first failure: test_inferences_logged_to_clickhouse: {failure[:60]}" in run.output


def test_prometheus_target_down_is_named(live_stack, tmp_path):
    with restored(live_stack):
        live_stack.gateway_fault(metrics=True)
        try:
            wait_for("the gateway's target down", lambda: gateway_target_down(live_stack), 30, live_stack.fleet.logs)
            run = smoke(live_stack.outputs(), tmp_path, FAULT_BUDGET_S)
        finally:
            live_stack.gateway_fault(metrics=False)
    [failure] = only(run, "test_prometheus::test_every_target_up").values()
    assert failure.startswith(f"prometheus: GET {live_stack.urls['prometheus']}/api/v1/targets?state=active: ")
    core = f"http://{GATEWAY_BEHIND_EDGE_ALIAS}:{GATEWAY.port}/metrics"
    assert f"gateway target {core} (job tensorzero) is down" in failure
    assert "500" in failure


def gateway_target_down(live_stack) -> None:
    [target] = [t for t in live_stack.targets() if t["labels"]["job"] == "tensorzero"]
    if target["health"] != "down":
        raise NotReady(target["health"])


def test_missing_ollama_model_is_named(live_stack, tmp_path):
    missing = "gemma:2b"
    assert missing in live_stack.outputs()["ollama_models"][OLLAMA.role]
    with restored(live_stack):
        live_stack.remove_model(missing)
        try:
            run = smoke(live_stack.outputs(), tmp_path, FAULT_BUDGET_S)
        finally:
            live_stack.pull(missing)
    failures = only(run, "test_ollama::test_every_model_present[ollama]", "test_inference::test_embedding")
    assert failures["test_ollama::test_every_model_present[ollama]"].startswith(
        f"ollama: GET {live_stack.urls[OLLAMA.role]}/api/tags: model {missing} missing; ollama has qwen2.5:0.5b ("
    )
    # The gateway's real routes relay Ollama's refusal: the smoke request names the gateway and the model.
    embedding = failures["test_inference::test_embedding"]
    assert embedding.startswith(f"gateway: POST {live_stack.urls[GATEWAY.role]}/openai/v1/embeddings (model ")
    assert "api_error" in embedding and f"{missing}" in embedding and "not found, try pulling it first" in embedding


def chat_on_the_gpu_host(live_stack) -> httpx.Response:
    """One chat request through the edge and the gateway to the catalog's model on the GPU host's Ollama."""
    return httpx.post(
        live_stack.urls[GATEWAY.role] + "/openai/v1/chat/completions",
        headers={"Authorization": f"Bearer {live_stack.edge_key()['key']}"},
        json={"model": f"tensorzero::model_name::{GPU_MODEL}", "messages": [{"role": "user", "content": "hi"}]},
        timeout=30,
    )


def test_the_gpu_hosts_ollama_is_reached_only_through_its_guard(live_stack, tmp_path):
    """The GPU host's Ollama (`ollama.instances.jetson`, a stand-in) is on that host's network only, under its own
    hostname, publishes nothing itself, and the gateway (on the other host) reaches it through the guard."""
    container = live_stack.fleet.containers[GPU_OLLAMA].inspect()
    networks = container["NetworkSettings"]["Networks"]
    assert set(networks) == {live_stack.gpu.network}
    assert "jetson-ollama" in networks[live_stack.gpu.network]["Aliases"]
    assert not container["HostConfig"]["PortBindings"]
    expected = live_stack.deployment.translation.ollama_pulls["jetson-ollama"]
    assert live_stack.outputs()["ollama_models"][GPU_OLLAMA] == list(expected) == ["mistral:7b-instruct"]
    answer = chat_on_the_gpu_host(live_stack)
    assert answer.status_code == 200, answer.text
    # Operators and the smoke suite are not on the guard's allow-list: the suite says why it skips that Ollama.
    run = smoke(live_stack.outputs(), tmp_path, HEALTHY_BUDGET_S)
    assert run.status == 0, run.output
    for check in ("test_version", "test_every_model_present"):
        skipped = run.cases()[f"test_ollama::{check}[{GPU_OLLAMA}]"].find("skipped")
        assert skipped is not None and "not published by this stack" in skipped.get("message", ""), run.output


def test_a_model_missing_on_the_gpu_ollama_is_named_by_the_gateway(live_stack):
    missing = "mistral:7b-instruct"
    with restored(live_stack):
        live_stack.remove_model(missing, GPU_OLLAMA)
        try:
            answer = chat_on_the_gpu_host(live_stack)
        finally:
            live_stack.pull(missing, GPU_OLLAMA)
    assert answer.status_code >= 400, answer.text
    assert missing in answer.text and "not found, try pulling it first" in answer.text, answer.text


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("not json", "not JSON"),
        ('{"endpoints": ["http://x"]}', "endpoints: should be a mapping"),
        ('{"clickhouse_url": 7}', "clickhouse_url: should be a string"),
        ('{"grafana_admin": {"user": "admin"}}', "grafana_admin.password: missing"),
    ],
)
def test_unusable_outputs_stop_before_any_check(tmp_path, content, expected):
    """Needs no Docker engine."""
    outputs = tmp_path / "outputs.json"
    outputs.write_text(content)
    command = [sys.executable, "-m", "components", "smoke", "live", "--outputs", str(outputs)]
    done = subprocess.run(command, cwd=PROJECT_DIR, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert expected in done.stderr and done.stderr.startswith("smoke live: ")


def test_outputs_come_from_pulumi_by_default(tmp_path):
    """Without --outputs the command asks `pulumi stack output` in the project directory (here a fake
    `pulumi` first on PATH, recording how it was called). Needs no Docker engine."""
    called = tmp_path / "called.json"
    fake = tmp_path / "bin" / "pulumi"
    fake.parent.mkdir()
    fake.write_text(
        f"#!{sys.executable}\n"
        "import json, os, sys\n"
        f"open({str(called)!r}, 'w').write(json.dumps({{'argv': sys.argv[1:], 'cwd': os.getcwd()}}))\n"
        "print(json.dumps({'endpoints': {}, 'containers': {}}))\n"
    )
    fake.chmod(0o755)
    # Called from elsewhere: pulumi must still run where Pulumi.yaml is.
    env = {**os.environ, "PATH": f"{fake.parent}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": str(PROJECT_DIR)}
    command = [sys.executable, "-m", "components", "smoke", "staging", "--budget", "10"]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert json.loads(called.read_text()) == {
        "argv": ["stack", "output", "--json", "--show-secrets", "--stack", "staging"],
        "cwd": str(PROJECT_DIR),
    }
    # Nothing published, nothing to inspect: every check skips, saying why, and the run fails: `{}`-like outputs
    # are what `pulumi stack output` gives for a stack that was never deployed.
    assert done.returncode == 1, done.stdout + done.stderr
    assert "not published by this stack" in done.stdout
    assert "nothing was checked: the outputs name no service" in done.stdout
