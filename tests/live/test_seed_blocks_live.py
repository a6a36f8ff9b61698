"""Live: the seed's blocks that need a Docker engine, run literally (the rows of tests/test_seed_blocks.py whose
runner is live), on this engine:

- A container named `tensorzero-clickhouse` (the name prod's plan gives its ClickHouse), with the labels prod's
  plan gives it, running Debian's real ClickHouse 18.16 (pmoves-test/clickhouse: a stand-in for the
  clickhouse-server image) with prod's user and password, its HTTP port published on 127.0.0.1 as prod publishes
  it (8123 when free). Its tables: the gateway stand-in's ModelInference and REQUESTS_VIEW_STANDIN (18.16 cannot
  run TensorZero's own DDL; the seed's SQL on TensorZero's real tables runs in chdb, tests/test_seed_blocks.py).
- A stand-in for the gateway's container (pmoves-test/debian: prints the line the seed says to look for, then
  sleeps) under prod's gateway container name and labels, with the gateway's environment as prod's plan gives it:
  what `make logs|exec|restart STACK=prod SERVICE=...` finds by label and runs `docker` on.
- prod's rendered edge under real nginx + Lua (tests/edge_rig.py) for the health and UI calls, its upstream a
  recording stand-in (TensorZero's embedded routes serve no /health).
- The live stack (tests/live/livestack.py): a real Prometheus joins its network and runs the seed's job as
  written; the seed's histogram_quantile query runs on the stack's own Prometheus.
"""

import ast
import json
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest
from conftest import CANARIES, container_of
from edge_rig import StandIn, running_edge, ui_stand_in  # noqa: F401 (fixture)
from test_readme import curl_statuses
from test_seed_blocks import (
    BLOCKS,
    KEY,
    LIVE_COMPOSE,
    LIVE_CURL,
    LIVE_EXEC,
    LIVE_PROMETHEUS,
    PROMETHEUS,
    body,
    rows,
    seed,  # noqa: F401 (fixture)
)

from components.core.names import PROJECT_DIR
from components.services import clickhouse
from components.services.clickhouse import SERVICE as CLICKHOUSE
from components.services.edge import SERVICE as EDGE
from components.services.gateway import SERVICE as GATEWAY
from components.services.prometheus import SERVICE as PROMETHEUS_SERVICE

from .conftest import STANDIN_PYTHON
from .engine import NotReady, wait_for
from .livestack import REQUESTS_VIEW_STANDIN, STANDINS

MARK = "org.pmoves.test=seed-blocks"  # what this module's own containers carry: only those are ever removed
SEED_CLICKHOUSE = "http://localhost:8123"
SEED_LOG_LINE = "observability exporter configured"  # what the seed says the gateway's log shows
VENV = Path(sys.executable).parent.parent


def standin_table() -> str:
    """The gateway stand-in's ModelInference DDL (18.16's dialect), read from its source, not retyped."""
    tree = ast.parse((STANDINS / "gateway.py").read_text())
    [value] = [n.value for n in tree.body if isinstance(n, ast.Assign) and n.targets[0].id == "TABLE"]
    return ast.literal_eval(value)


def docker(*args: str, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0 or not check, (args, done.stderr)
    return done


def free_port(preferred: int) -> int:
    """`preferred` when nothing listens on it at 127.0.0.1, else a free port (the row's host:port rewrite)."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", preferred))
            return preferred
        except OSError:
            probe.bind(("127.0.0.1", 0))
            return probe.getsockname()[1]


def remove_own(name: str) -> None:
    """Remove a leftover of an earlier run of this module, never anyone else's container of that name."""
    found = docker("inspect", "-f", '{{ index .Config.Labels "org.pmoves.test" }}', name, check=False)
    if found.returncode == 0 and found.stdout.strip() == MARK.split("=")[1]:
        docker("rm", "-f", name)


def labels(desired: dict, role: str) -> list[str]:
    """`--label` arguments: the labels prod's plan gives the role's container, and this module's mark."""
    planned = container_of(desired, role)["inputs"]["labels"]
    return [arg for label in planned for arg in ("--label", f"{label['label']}={label['value']}")] + ["--label", MARK]


class SeedHost:
    """The seed's containers on this engine, as prod names and labels them."""

    def __init__(self, deployment, desired: dict):
        spec = deployment.spec
        self.clickhouse = container_of(desired, CLICKHOUSE.role)["inputs"]["name"]
        self.gateway = container_of(desired, GATEWAY.role)["inputs"]["name"]
        [published] = spec.placement(CLICKHOUSE).ports
        self.bind = published.ip
        self.port = free_port(published.external)
        self.user = spec.clickhouse.user
        self.password = deployment.variable(spec.clickhouse.password_var).value
        self.gateway_env = {v.name: v.value for v in deployment.plans[GATEWAY.role].env}

    @property
    def clickhouse_url(self) -> str:
        return f"http://{self.bind}:{self.port}"

    def rewrite(self, text: str) -> str:
        """localhost:8123 -> where this ClickHouse is published, when 8123 itself was taken."""
        return text if self.port == 8123 else text.replace(SEED_CLICKHOUSE, self.clickhouse_url)

    def sql(self, query: str) -> str:
        """As the local password-less `default` (the image's entrypoint keeps it for in-container use)."""
        return docker("exec", self.clickhouse, "clickhouse-client", "--query", query).stdout


@pytest.fixture(scope="module")
def seed_host(live_images, deployments, plans):
    deployment, desired = deployments["prod"], plans["prod"]
    host = SeedHost(deployment, desired)
    assert host.clickhouse == "tensorzero-clickhouse"  # prod's seed_container_names
    assert host.bind == "127.0.0.1"
    for name in (host.clickhouse, host.gateway):
        remove_own(name)
    env = {"PATH": "/usr/bin:/bin", "CLICKHOUSE_USER": host.user, "CLICKHOUSE_PASSWORD": host.password}
    docker(
        "run", "-d", "--name", host.clickhouse, *labels(desired, CLICKHOUSE.role),
        "--env", "CLICKHOUSE_USER", "--env", "CLICKHOUSE_PASSWORD",
        "--publish", f"{host.bind}:{host.port}:{clickhouse.PORT}", "pmoves-test/clickhouse",
        env=env,
    )  # fmt: skip
    gateway_env = {"PATH": "/usr/bin:/bin", **host.gateway_env}
    docker(
        "run", "-d", "--name", host.gateway, *labels(desired, GATEWAY.role),
        *(arg for name in host.gateway_env for arg in ("--env", name)),
        "pmoves-test/debian:bookworm", "sh", "-c", f"echo '{SEED_LOG_LINE}'; exec sleep infinity",
        env=gateway_env,
    )  # fmt: skip
    try:

        def pinged():
            try:
                answer = httpx.get(host.clickhouse_url + "/ping", timeout=2)
            except httpx.TransportError as error:
                raise NotReady(str(error)) from error
            if answer.text != "Ok.\n":
                raise NotReady(answer.text)

        wait_for("tensorzero-clickhouse answering /ping", pinged, 60)
        host.sql(standin_table())
        host.sql(REQUESTS_VIEW_STANDIN.format(database=deployment.spec.clickhouse.database))
        rows = [("claude_sonnet", "anthropic", 12, 5, 900), ("gpt_4o", "openai", 8, 3, 300)]
        values = ", ".join(
            f"('{uuid.uuid4()}', '{uuid.uuid4()}', '{m}', '{p}', {i}, {o}, {ms}, 0)" for m, p, i, o, ms in rows
        )
        columns = (
            "id, inference_id, model_name, model_provider_name, input_tokens, output_tokens, response_time_ms, cached"
        )
        host.sql(f"INSERT INTO ModelInference ({columns}) VALUES {values}")
        yield host
    finally:
        for name in (host.clickhouse, host.gateway):
            docker("rm", "-f", name, check=False)


# --- docker exec -it tensorzero-clickhouse clickhouse-client ... -----------------------------------------------


def with_prods_credential(command: str, host: SeedHost) -> str:
    """The row's substitutions: `-it` made `-i` (stdin kept, no TTY here), prod's user and password for the
    seed's default."""
    substituted = command.replace(" -it ", " -i ").replace("--user tensorzero", f"--user {host.user}")
    return substituted.replace("--password tensorzero", '--password "$TENSORZERO_CLICKHOUSE_PASSWORD"')


def bash(script: str, host: SeedHost, cwd: Path, stdin: str = "") -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin:/usr/local/bin", "TENSORZERO_CLICKHOUSE_PASSWORD": host.password}
    return subprocess.run(
        ["bash", "-c", script], input=stdin, capture_output=True, text=True, timeout=120, env=env, cwd=cwd
    )


def client_and_typed(text: str) -> tuple[str, list[str]]:
    """The block's command (up to its first blank line) and the queries typed into the client after it."""
    command = text.split("\n\n")[0]
    typed = (
        [line.strip() for line in text.split("\n\n", 1)[1:][0].splitlines() if line.startswith("SELECT")]
        if ("\n\n" in text)
        else []
    )
    return command, typed


@pytest.mark.parametrize("index", rows(LIVE_EXEC))
def test_docker_exec_blocks_on_the_seeds_container(seed, index, seed_host, tmp_path):  # noqa: F811
    command, typed = client_and_typed(body(seed, index))
    # As written, the seed's default credential is refused by the server.
    refused = bash(command.replace(" -it ", " -i "), seed_host, tmp_path, stdin=(typed or ["SELECT 1"])[0])
    assert refused.returncode != 0 and "tensorzero" in refused.stderr, refused
    ran = with_prods_credential(command, seed_host)
    if typed:  # the interactive client: each sample query typed in
        for query in typed:
            done = bash(ran, seed_host, tmp_path, stdin=query)
            assert done.returncode == 0 and done.stdout.strip(), (query, done.stderr)
        return
    done = bash(ran, seed_host, tmp_path)
    if "BACKUP" in command:
        # 18.16 predates BACKUP; the row's equivalent is `make backup` (tests/live/test_backup_live.py).
        assert done.returncode != 0 and "Syntax error" in done.stderr, done
        return
    assert done.returncode == 0, done.stderr
    if "SHOW TABLES" in command:
        assert {"ModelInference", "requests"} <= set(done.stdout.split())
    elif "> tensorzero-metrics.json" in command:
        exported = [json.loads(line) for line in (tmp_path / "tensorzero-metrics.json").read_text().splitlines()]
        assert {row["model"] for row in exported} == {"claude_sonnet", "gpt_4o"}
    else:
        assert len(done.stdout.splitlines()) == 2  # the two rows, newest first


# --- curl http://localhost:8123/ping, and the health block ------------------------------------------------------


@pytest.fixture(scope="module")
def health_edge(deployments, ui_stand_in, self_signed, tmp_path_factory):  # noqa: F811
    """prod's rendered edge with a recording stand-in as the gateway (TensorZero's embedded routes serve no
    /health)."""
    upstream = StandIn()
    prefix = tmp_path_factory.mktemp("health-edge")
    with running_edge(deployments["prod"], upstream.endpoint, prefix, ui=ui_stand_in.endpoint, tls=self_signed) as up:
        yield up
    upstream.close()


@pytest.mark.parametrize("index", rows(LIVE_CURL))
def test_curl_blocks_on_the_seeds_host(seed, index, seed_host, health_edge, tmp_path):  # noqa: F811
    """8123 is the seed's ClickHouse; 3030 and 4000 the edge's plain loopback listeners (the gateway's /health
    open, the UI behind its login: a 401). The rewrites are host:port only, as the rows name them."""
    block = body(seed, index).replace("http://localhost:4000", f"http://{health_edge.layout.ui}")
    block = seed_host.rewrite(block)
    expected = {"localhost:8123/ping": 200, "localhost:3030/health": 200, "localhost:4000": 401}
    calls = [next(code for path, code in expected.items() if path in line) for line in body(seed, index).splitlines()
             if line.startswith("curl ")]  # fmt: skip
    assert curl_statuses(block, health_edge.url, KEY, tmp_path) == calls
    answer = httpx.get(seed_host.clickhouse_url + "/ping")
    assert answer.text == "Ok.\n"  # ClickHouse's own answer


# --- docker compose ...: their make equivalents ---------------------------------------------------------------


def make(equivalent: str, canary_env_dirs, host: SeedHost, tmp_path: Path) -> subprocess.CompletedProcess:
    """The README's equivalent, run by make in the project, with prod's stand-in credentials (ENV_DIR)."""
    marker = VENV / ".installed"
    script = equivalent.replace(
        "make ", f"make -s -C {PROJECT_DIR} -o {marker} VENV={VENV} ENV_DIR={canary_env_dirs['prod']} "
    )
    return bash(script, host, tmp_path)


def started_at(name: str) -> str:
    return docker("inspect", "-f", "{{.State.StartedAt}}", name).stdout


@pytest.mark.parametrize("index", rows(LIVE_COMPOSE))
def test_compose_commands_have_their_equivalent(seed, index, seed_host, canary_env_dirs, tmp_path):  # noqa: F811
    block, equivalent = BLOCKS[index], BLOCKS[index].shown
    # The README lists the pair: the seed's command and its equivalent.
    readme = (PROJECT_DIR / "README.md").read_text()
    row = f"| `{block.first.removeprefix('cd pmoves && ')}` | `{equivalent.split(' |')[0]}"
    assert row in readme, row
    before = started_at(seed_host.gateway)
    done = make(equivalent, canary_env_dirs, seed_host, tmp_path)
    if equivalent.startswith("make restart"):
        assert done.returncode == 0 and started_at(seed_host.gateway) != before, done.stderr
    elif "grep TENSORZERO" in equivalent:
        assert done.returncode == 0, done.stderr
        shown = {line.split("=")[0] for line in done.stdout.splitlines()}
        assert shown == {name for name in seed_host.gateway_env if "TENSORZERO" in name}
    elif "| grep" in equivalent:
        assert done.returncode == 1 and not done.stdout, done  # no error line in the gateway's log
        logs = make(equivalent.split(" |")[0], canary_env_dirs, seed_host, tmp_path)
        assert logs.returncode == 0 and SEED_LOG_LINE in logs.stdout, logs.stderr
    else:
        assert done.returncode == 0, done.stderr
        assert "Ready for connections" in done.stdout + done.stderr or done.stdout, done
        curls = "\n".join(line for line in body(seed, index).splitlines() if line.startswith("curl "))
        pinged = bash(seed_host.rewrite(curls), seed_host, tmp_path)
        assert pinged.stdout == "Ok.\n", pinged


# --- the Prometheus job and query -------------------------------------------------------------------------------

SCRAPE_EVERY = "global:\n  scrape_interval: 2s\n"  # PMOVES's prometheus.yml has its own globals; the test's


@pytest.mark.parametrize("index", rows(PROMETHEUS))
def test_the_seeds_prometheus_job_scrapes_the_gateway_on_the_stacks_network(seed, index, live_stack):  # noqa: F811
    """A real Prometheus on the live stack's network, its prometheus.yml the block as written (and a scrape
    interval): the target `tensorzero-gateway:3000` is the edge; /metrics answers there without a key."""
    if sys.version_info[:2] != STANDIN_PYTHON:
        pytest.skip("the live stack's stand-ins need the venv's Python")
    fleet = live_stack.fleet
    config = SCRAPE_EVERY + body(seed, index)
    prometheus = fleet.run(
        "seed-prometheus", "pmoves-test/prometheus", files={"/etc/prometheus/prometheus.yml": config},
        publish=[PROMETHEUS_SERVICE.port],
    )  # fmt: skip
    try:

        def scraped():
            url = prometheus.url(PROMETHEUS_SERVICE.port) + "/api/v1/targets"
            try:
                [target] = httpx.get(url, timeout=5).json()["data"]["activeTargets"]
            except (httpx.TransportError, ValueError) as error:
                raise NotReady(str(error)) from error
            if target["health"] != "up":
                raise NotReady(f"{target['health']}: {target['lastError']}")
            return target

        target = wait_for("the seed's job up", scraped, 60, fleet.logs)
        assert target["scrapeUrl"] == f"http://{EDGE.alias}:3000/metrics"
    finally:
        fleet.remove_container("seed-prometheus")


@pytest.mark.parametrize("index", rows(LIVE_PROMETHEUS))
def test_the_seeds_latency_query_on_the_stacks_prometheus(seed, index, live_stack):  # noqa: F811
    """The seed's histogram_quantile, as written, on the stack's Prometheus after calls through the edge: a
    latency for the edge's series."""
    if sys.version_info[:2] != STANDIN_PYTHON:
        pytest.skip("the live stack's stand-ins need the venv's Python")
    [query] = [line for line in body(seed, index).splitlines() if line.strip()]
    edge = live_stack.urls[GATEWAY.role]
    key = live_stack.edge_key()["key"]

    def answered():
        call = httpx.post(
            edge + "/v1/embeddings",
            headers={"Authorization": f"Bearer {key}"},
            json={"model": "gemma_embed_local", "input": "latency"},
            timeout=30,
        )
        assert call.status_code == 200, call.text
        result = httpx.get(live_stack.urls[PROMETHEUS_SERVICE.role] + "/api/v1/query", params={"query": query})
        values = [float(r["value"][1]) for r in result.json()["data"]["result"]]
        if not any(value == value and value > 0 for value in values):  # NaN until two scrapes saw calls
            raise NotReady(f"{query}: {values}")
        return values

    assert wait_for("the seed's latency query answered", answered, 60, live_stack.fleet.logs)


def test_no_credential_in_the_seed_hosts_logs(seed_host):
    """The seed's containers' logs hold no secret of prod's (the gateway's env is printed only by `env`)."""
    logs = docker("logs", seed_host.clickhouse).stdout + docker("logs", seed_host.gateway).stdout
    assert not any(secret in logs for secret in CANARIES.values())
