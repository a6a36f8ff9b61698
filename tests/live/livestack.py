"""A live stack on the local Docker engine, for the live Prometheus test and the smoke suite's own tests.

Real programs wherever they run here: Debian's ClickHouse server, Prometheus and blackbox exporter, and
TensorZero's own OpenAI-compatible routes (package `tensorzero`). Stand-ins (tests/live/standins/, named as
such) only for what cannot run here: the gateway's /status, /health and /metrics, the UI, Ollama, Grafana,
and the schema one-shot's SQL (REQUESTS_VIEW_STANDIN, in 18.16's dialect).

The stack is the dev stack with only what this machine needs changed (`live_config`), plus a second Docker
host as prod has one: a second network of this engine (`edge`), where a second Ollama (`ollama.instances.jetson`,
a stand-in, as `pmoves-ollama` is) serves the catalog's edge model. The other host's containers reach it as
prod's reach the GPU host: at that host's address (the engine's address on that network) and its published
port. Every rendered file, environment, healthcheck and command comes from the components, so this is the
stack `pulumi up` would run, with stand-in images where no image can be had.
"""

import json
from dataclasses import dataclass
from pathlib import Path

import httpx
import tensorzero
import yaml
from conftest import make_project, write_canary_env

from components import blackbox, clickhouse, clickhouse_schema, gateway, grafana, ollama, prometheus, ui
from components.blackbox import SERVICE as BLACKBOX
from components.clickhouse import SERVICE as CLICKHOUSE
from components.clickhouse_schema import sql_identifier
from components.clickhouse_schema import views as clickhouse_views
from components.gateway import SERVICE as GATEWAY
from components.grafana import SERVICE as GRAFANA
from components.loader import PROJECT_DIR, Deployment, load
from components.names import CHAT_MODEL_PREFIX, EMBEDDING_MODEL_PREFIX, PROJECT
from components.ollama import SERVICE as OLLAMA
from components.prometheus import SERVICE as PROMETHEUS
from components.service import Endpoint, ServiceDefinition
from components.ui import SERVICE as UI

from .engine import Container, Fleet, NotReady, docker_host_url, wait_for

STACK = "live"
STANDINS = Path(__file__).resolve().parent / "standins"
STANDINS_MOUNT = "/standins"
TENSORZERO_MOUNT = "/opt/tensorzero-site-packages"  # the host venv's site-packages: the pinned `tensorzero`
SCRAPE_INTERVAL = "2s"
READY_TIMEOUT_S = 90
# STAND-IN for the schema one-shot's SQL (templates/clickhouse/schema/), which only a modern server runs: 18.16
# has no CREATE OR REPLACE VIEW, and the gateway stand-in's ModelInference no `cost`. That SQL is proven in chdb
# by tests/test_clickhouse.py; this view gives the smoke suite the seed's `requests` view to query.
REQUESTS_VIEW_STANDIN = """CREATE VIEW IF NOT EXISTS {database}.requests AS
SELECT
    timestamp,
    model_name AS model,
    input_tokens AS request_tokens,
    output_tokens AS response_tokens,
    response_time_ms AS latency_ms,
    model_provider_name AS provider,
    model_name AS model_key,
    ttft_ms,
    cached,
    inference_id
FROM {database}.ModelInference"""


@dataclass(frozen=True)
class EdgeHost:
    """The second Docker host: a network of this engine, the engine's address there, a free port on it."""

    network: str
    address: str
    ollama_port: int


EDGE_HOST = "edge"
EDGE_INSTANCE = "jetson"  # as prod names the GPU host's Ollama: role ollama-jetson, hostname jetson-ollama
EDGE_MODEL = "mistral_edge"  # the catalog's model on that Ollama (catalog/models.toml)


def live_config(name_prefix: str, edge: EdgeHost) -> dict:
    """The dev stack's config, changed only where this machine differs from a real host, and given a second
    host with its own Ollama."""
    document = yaml.safe_load((PROJECT_DIR / "stacks" / "Pulumi.dev.yaml").read_text())
    config = {key.removeprefix(f"{PROJECT}:"): value for key, value in document["config"].items()}
    config["name_prefix"] = name_prefix
    config["env_files"] = {"dir": "env"}
    # Debian's ClickHouse 18.16 predates the built-in Prometheus endpoint.
    config["clickhouse"] = {**config.get("clickhouse", {}), "metrics": False}
    # The compatibility edge (OpenResty) has no image here; the gateway answers under its own alias.
    config["edge"] = {**config.get("edge", {}), "enabled": False}
    # Targets are up after the first scrape: the tests should not wait dev's 15s.
    config["prometheus"] = {**config.get("prometheus", {}), "scrape_interval": SCRAPE_INTERVAL}
    # The second host, reached at its address; published ports bind there, not on every interface.
    config["bind_address"] = edge.address
    config["hosts"] = {**config["hosts"], EDGE_HOST: {"url": docker_host_url(), "address": edge.address}}
    instance = {"host": EDGE_HOST, "port": edge.ollama_port}
    config["ollama"] = {**config.get("ollama", {}), "instances": {EDGE_INSTANCE: instance}}
    config["catalog"] = {**config["catalog"], "models": [*config["catalog"]["models"], EDGE_MODEL]}
    return config


def live_deployment(root: Path, name_prefix: str, edge: EdgeHost) -> Deployment:
    config = live_config(name_prefix, edge)
    catalogs = {name: (PROJECT_DIR / name).read_text() for name in config["catalog"]["files"]}
    make_project(root, config, catalogs, stack=STACK)
    write_canary_env("dev", root / "env")
    return load(STACK, project_dir=root)


def env_of(variables) -> list[tuple[str, str]]:
    return [(variable.name, variable.value) for variable in variables]


def uploads(files) -> dict[str, str]:
    return {rendered.mount: rendered.content for rendered in files}


PUBLISHED = (CLICKHOUSE, OLLAMA, UI, GATEWAY, GRAFANA, PROMETHEUS)


@dataclass
class LiveStack:
    deployment: Deployment
    fleet: Fleet
    edge: EdgeHost

    @property
    def published(self) -> list[ServiceDefinition]:
        return [*PUBLISHED, *(s for s in ollama.servers(self.deployment.spec) if s.role != OLLAMA.role)]

    @property
    def urls(self) -> dict[str, str]:
        """Role: where this host reaches the service (asked each time: a restarted container gets a new port)."""
        return {s.role: self.fleet.containers[s.role].url(s.port) for s in self.published}

    def container(self, service: ServiceDefinition) -> Container:
        return self.fleet.containers[service.role]

    def outputs(self) -> dict:
        """The stack outputs (components/stack.py `outputs`) of this stack, as `pulumi stack output --json`."""
        spec = self.deployment.spec
        translation = self.deployment.translation
        urls = self.urls
        published = [role for role in urls if spec.placement(role).published is not None]
        ch = urls[CLICKHOUSE.role].removeprefix("http://").rsplit(":", 1)
        password = self.deployment.variable(spec.clickhouse.password_var)
        return {
            "endpoints": {role: urls[role] for role in published},
            "internal_urls": {role: spec.endpoint(role, seen_from="main").url for role in urls},
            "containers": {role: container.name for role, container in self.fleet.containers.items()},
            "docker_hosts": {role: docker_host_url() for role in self.fleet.containers},
            "models": {
                "chat": [m.name for m in translation.models],
                "embedding": [m.name for m in translation.embedding_models],
            },
            "ollama_models": {s.role: list(translation.ollama_pulls.get(s.alias, ())) for s in ollama.servers(spec)},
            "smoke": {
                "chat_model": CHAT_MODEL_PREFIX + spec.smoke.chat_model,
                "embedding_model": EMBEDDING_MODEL_PREFIX + spec.smoke.embedding_model,
            },
            "clickhouse_views": clickhouse_views(self.deployment),
            "clickhouse_url": clickhouse.connection_url(spec.clickhouse, password, Endpoint(ch[0], int(ch[1]))).value,
            "grafana_admin": {
                "user": spec.grafana.admin_user,
                "password": self.deployment.variable(spec.grafana.admin_password_var).value,
            },
        }

    def internal_clickhouse_url(self) -> str:
        """The gateway's URL for ClickHouse (credentials included), as the stack's network sees it."""
        spec = self.deployment.spec
        password = self.deployment.variable(spec.clickhouse.password_var)
        return clickhouse.connection_url(spec.clickhouse, password, spec.endpoint(CLICKHOUSE, seen_from="main")).value

    def clickhouse_query(self, sql: str) -> str:
        """One query over the published HTTP interface, as the seed's user, in the stack's database."""
        spec = self.deployment.spec.clickhouse
        answer = httpx.post(
            self.urls[CLICKHOUSE.role] + "/",
            params={"database": spec.database},
            content=sql,
            auth=(spec.user, self.deployment.variable(spec.password_var).value),
            timeout=10,
        )
        if answer.status_code != 200:
            raise NotReady(f"`{sql.splitlines()[0]}`: HTTP {answer.status_code}: {answer.text.strip()[:300]}")
        return answer.text

    def create_views(self) -> None:
        """What the schema one-shot does after the gateway's migrations: wait for ModelInference, then create
        the views (here the stand-in SQL above)."""

        def migrated():
            if self.clickhouse_query("EXISTS TABLE ModelInference").strip() != "1":
                raise NotReady("no ModelInference yet")

        wait_for("the gateway's ModelInference table", migrated, READY_TIMEOUT_S, self.fleet.logs)
        if clickhouse_schema.REQUESTS_VIEW in clickhouse_views(self.deployment):
            database = sql_identifier(self.deployment.spec.clickhouse.database)
            self.clickhouse_query(REQUESTS_VIEW_STANDIN.format(database=database))

    def targets(self) -> list[dict]:
        answer = httpx.get(self.urls[PROMETHEUS.role] + "/api/v1/targets?state=active", timeout=5)
        return answer.json()["data"]["activeTargets"]

    def failing_probes(self) -> list[dict]:
        answer = httpx.get(self.urls[PROMETHEUS.role] + "/api/v1/query", params={"query": "probe_success == 0"})
        return answer.json()["data"]["result"]

    def wait_monitoring_green(self, timeout: float = READY_TIMEOUT_S) -> None:
        """Every target scraped and up, every probe succeeding: the healthy state the smoke suite expects."""

        def probe():
            targets = self.targets()
            not_up = [
                f"{t['scrapeUrl']}: {t['health']} {t.get('lastError', '')}" for t in targets if t["health"] != "up"
            ]
            if not targets or not_up:
                raise NotReady("; ".join(not_up) or "no active target yet")
            failing = self.failing_probes()
            if failing:
                raise NotReady("failing probes: " + ", ".join(r["metric"]["instance"] for r in failing))

        wait_for("every Prometheus target up", probe, timeout, self.fleet.logs)

    def pull(self, model: str, role: str = OLLAMA.role) -> None:
        httpx.post(self.urls[role] + "/api/pull", json={"model": model, "stream": False}).raise_for_status()

    def remove_model(self, model: str, role: str = OLLAMA.role) -> None:
        httpx.request("DELETE", self.urls[role] + "/api/delete", json={"model": model}).raise_for_status()

    def gateway_fault(self, **faults: bool) -> None:
        httpx.post(self.urls[GATEWAY.role] + "/stand-in/fault", json=faults).raise_for_status()


def standin(
    fleet: Fleet, service: ServiceDefinition, script: str, *, args=(), healthcheck, publish=None, **kwargs
) -> Container:
    kwargs.setdefault("env", [])
    mounts = [(str(STANDINS), STANDINS_MOUNT), *kwargs.pop("mounts", [])]
    return fleet.run(
        service.role,
        "pmoves-test/python",
        aliases=[service.alias],
        command=[f"{STANDINS_MOUNT}/{script}", *args],
        publish=[service.port] if publish is None else publish,
        mounts=mounts,
        healthcheck=healthcheck,
        **kwargs,
    )


def ollamas(fleet: Fleet, deployment: Deployment, edge: EdgeHost) -> None:
    """Each of the stack's Ollamas (stand-ins) on its host's network; the other host's at its published port."""
    spec = deployment.spec
    # Ollama's image has no wget for a healthcheck (`ollama list`); its stand-in is asked over HTTP.
    health = ("wget", "--spider", "-q", f"http://127.0.0.1:{OLLAMA.port}/")
    for server in ollama.servers(spec):
        placement = spec.placement(server)
        if placement.host == EDGE_HOST:
            publish = [f"{spec.bind_address}:{placement.published}:{server.port}"]
            standin(fleet, server, "ollama.py", healthcheck=health, publish=publish, network=edge.network)
        else:
            standin(fleet, server, "ollama.py", healthcheck=health)


def start(fleet: Fleet, deployment: Deployment, edge: EdgeHost) -> LiveStack:
    spec = deployment.spec
    readonly = deployment.variable(spec.clickhouse.readonly_password_var)
    fleet.run(
        CLICKHOUSE.role,
        "pmoves-test/clickhouse",
        aliases=[CLICKHOUSE.alias],
        # The component's environment; the rendered config.d/users.d files are for the modern server
        # (root element <clickhouse>), so this image's entrypoint makes the read-only user from env instead.
        env=env_of(deployment.plans[CLICKHOUSE.role].env)
        + [
            ("CLICKHOUSE_READONLY_USER", spec.clickhouse.readonly_user),
            ("CLICKHOUSE_READONLY_PASSWORD", readonly.value),
        ],
        publish=[CLICKHOUSE.port],
        healthcheck=clickhouse.HEALTHCHECK,
    )
    ollamas(fleet, deployment, edge)
    standin(fleet, UI, "ui.py", healthcheck=ui.HEALTHCHECK)
    standin(
        fleet,
        GATEWAY,
        "gateway.py",
        args=gateway.COMMAND,
        env=env_of(deployment.plans[GATEWAY.role].env) + [("PYTHONPATH", f"{TENSORZERO_MOUNT}:{STANDINS_MOUNT}")],
        files=uploads(deployment.plans[GATEWAY.role].files),
        mounts=[(str(Path(tensorzero.__file__).resolve().parent.parent), TENSORZERO_MOUNT)],
        healthcheck=gateway.HEALTHCHECK,
    )
    datasources = [f for f in deployment.plans[GRAFANA.role].files if f.kind == "grafana-datasources"]
    standin(
        fleet,
        GRAFANA,
        "grafana.py",
        args=[datasources[0].mount],
        env=env_of(deployment.plans[GRAFANA.role].env),
        files=uploads(datasources),
        healthcheck=grafana.HEALTHCHECK,
    )
    fleet.run(
        BLACKBOX.role,
        "pmoves-test/prometheus",
        aliases=[BLACKBOX.alias],
        entrypoint="/usr/bin/prometheus-blackbox-exporter",
        command=blackbox.COMMAND,
        files=uploads(deployment.plans[BLACKBOX.role].files),
        healthcheck=blackbox.HEALTHCHECK,
    )
    fleet.run(
        PROMETHEUS.role,
        "pmoves-test/prometheus",
        aliases=[PROMETHEUS.alias],
        command=prometheus.command(spec.prometheus),
        files=uploads(deployment.plans[PROMETHEUS.role].files),
        publish=[PROMETHEUS.port],
        healthcheck=prometheus.HEALTHCHECK,
    )
    for container in fleet.containers.values():
        container.wait_healthy()
    stack = LiveStack(deployment, fleet, edge)
    stack.create_views()
    for server in ollama.servers(spec):  # what each Ollama's one-shot `ollama pull`s do
        for model in deployment.translation.ollama_pulls.get(server.alias, ()):
            stack.pull(model, server.role)
    stack.wait_monitoring_green()
    return stack


def write_outputs(path: Path, outputs: dict) -> Path:
    path.write_text(json.dumps(outputs, indent=2))
    return path
