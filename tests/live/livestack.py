"""A live stack on the local Docker engine, for the live Prometheus test and the smoke suite's own tests.

Real programs wherever they run here: Debian's ClickHouse server, Prometheus and blackbox exporter, and
TensorZero's own OpenAI-compatible routes (package `tensorzero`). Stand-ins (tests/live/standins/, named as
such) only for what cannot run here: the gateway's /status, /health and /metrics, the UI, Ollama, Grafana,
and the schema one-shot's SQL (REQUESTS_VIEW_STANDIN, in 18.16's dialect).

The stack is the dev stack with only what this machine needs changed (`live_config`), plus a second Docker
host as prod has one: a second network of this engine (`gpu`), where a second Ollama (`ollama.instances.jetson`,
a stand-in, as `pmoves-ollama` is) serves the catalog's edge model behind its guard. The other host's
containers reach it as prod's reach the GPU host: at that host's address (the engine's address on that
network) and the port its guard publishes. Every rendered file, environment, healthcheck and command comes
from the components, so this is the stack `pulumi up` would run, with stand-in images where no image can be had.
"""

import json
from dataclasses import dataclass
from pathlib import Path

import httpx
import tensorzero
import yaml
from conftest import make_project, write_canary_env

from components.core.names import CHAT_MODEL_PREFIX, EMBEDDING_MODEL_PREFIX, PROJECT
from components.core.plans import Endpoint
from components.model.environment import ServiceDefinition
from components.services import (
    backup,
    blackbox,
    clickhouse,
    clickhouse_schema,
    edge,
    gateway,
    grafana,
    ollama,
    ollama_guard,
    prometheus,
    ui,
)
from components.services.backup import SERVICE as BACKUP
from components.services.blackbox import SERVICE as BLACKBOX
from components.services.clickhouse import SERVICE as CLICKHOUSE
from components.services.clickhouse_schema import sql_identifier
from components.services.clickhouse_schema import views as clickhouse_views
from components.services.edge import SERVICE as EDGE
from components.services.gateway import SERVICE as GATEWAY
from components.services.grafana import SERVICE as GRAFANA
from components.services.ollama import SERVICE as OLLAMA
from components.services.ollama_guard import SERVICE as GUARD
from components.services.prometheus import SERVICE as PROMETHEUS
from components.services.ui import SERVICE as UI
from components.stack.loader import PROJECT_DIR, Deployment, load

from .engine import Container, Fleet, NotReady, docker_host_url, wait_for

STACK = "live"
STANDINS = Path(__file__).resolve().parent / "standins"
STANDINS_MOUNT = "/standins"
TENSORZERO_MOUNT = "/opt/tensorzero-site-packages"  # the host venv's site-packages: the pinned `tensorzero`
SCRAPE_INTERVAL = "2s"
READY_TIMEOUT_S = 90
# STAND-IN for the schema one-shot's SQL (templates/clickhouse/schema/), which only a modern server runs: 18.16
# has no CREATE OR REPLACE VIEW, and the gateway stand-in's ModelInference no `cost`. That SQL is proven in chdb
# by tests/services/test_clickhouse.py; this view gives the smoke suite the seed's `requests` view to query.
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
class SecondHost:
    """The second Docker host: a network of this engine, the engine's address there, a free port on it."""

    network: str
    address: str
    ollama_port: int


GPU_HOST = "gpu"
GPU_INSTANCE = "jetson"  # as prod names the GPU host's Ollama: role ollama-jetson, hostname jetson-ollama
GPU_MODEL = "mistral_edge"  # the catalog's model on that Ollama (catalog/models.toml)
GPU_OLLAMA = ollama.instance_role(GPU_INSTANCE)
PRIVATE_NETWORKS = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]


def live_config(name_prefix: str, gpu: SecondHost) -> dict:
    """The dev stack's config, changed only where this machine differs from a real host, and given a second
    host with its own Ollama."""
    document = yaml.safe_load((PROJECT_DIR / "stacks" / "Pulumi.dev.yaml").read_text())
    config = {key.removeprefix(f"{PROJECT}:"): value for key, value in document["config"].items()}
    config["name_prefix"] = name_prefix
    config["env_files"] = {"dir": "env"}
    # Debian's ClickHouse 18.16 predates the built-in Prometheus endpoint.
    config["clickhouse"] = {**config.get("clickhouse", {}), "metrics": False}
    # The edge runs as prod has it: every caller needs its key (.env.local's canary TENSORZERO_API_KEY), the UI
    # its login; its image is the stand-in pmoves-test/openresty.
    # Targets are up after the first scrape: the tests should not wait dev's 15s.
    config["prometheus"] = {**config.get("prometheus", {}), "scrape_interval": SCRAPE_INTERVAL}
    # The second host, reached at its address; its published ports bind there, not on every interface. Its
    # Ollama is published only by its guard, which lets through Docker's private networks (this machine's).
    second = {"url": docker_host_url(), "address": gpu.address, "bind_address": gpu.address}
    config["hosts"] = {**config["hosts"], GPU_HOST: second}
    instance = {"host": GPU_HOST, "port": gpu.ollama_port}
    config["ollama"] = {**config.get("ollama", {}), "instances": {GPU_INSTANCE: instance}}
    config["ollama_guard"] = {"enabled": True, "host": GPU_HOST, "ollama": GPU_INSTANCE, "allow": PRIVATE_NETWORKS}
    config["catalog"] = {**config["catalog"], "models": [*config["catalog"]["models"], GPU_MODEL]}
    return config


def live_deployment(root: Path, name_prefix: str, gpu: SecondHost) -> Deployment:
    config = live_config(name_prefix, gpu)
    catalogs = {name: (PROJECT_DIR / name).read_text() for name in config["catalog"]["files"]}
    make_project(root, config, catalogs, stack=STACK)
    write_canary_env("dev", root / "env")
    return load(STACK, project_dir=root)


def env_of(variables) -> list[tuple[str, str]]:
    return [(variable.name, variable.value) for variable in variables]


def uploads(files) -> dict[str, str]:
    return {rendered.mount: rendered.content for rendered in files}


PUBLISHED = (CLICKHOUSE, OLLAMA, GRAFANA, PROMETHEUS)  # by their own containers
# Published by the edge: the gateway's API and the UI behind its login, on the edge's container ports.
THROUGH_EDGE = {GATEWAY.role: edge.PORT, UI.role: edge.UI_PORT, EDGE.role: edge.PORT}


@dataclass
class LiveStack:
    deployment: Deployment
    fleet: Fleet
    gpu: SecondHost

    @property
    def urls(self) -> dict[str, str]:
        """Role: where this host reaches the service as the stack publishes it (asked each time: a restarted
        container gets a new port). The gateway and the UI are the edge's; the GPU host's Ollama, its guard's."""
        found = {s.role: self.fleet.containers[s.role].url(s.port) for s in PUBLISHED}
        edge_container = self.fleet.containers[EDGE.role]
        guard = self.fleet.containers[GUARD.role].url(GUARD.port)
        return {
            **found,
            **{role: edge_container.url(port) for role, port in THROUGH_EDGE.items()},
            GPU_OLLAMA: guard,
        }

    @property
    def gateway_core_url(self) -> str:
        """The gateway (stand-in) itself, for the tests' fault injection: not published by the stack."""
        return self.fleet.containers[GATEWAY.role].url(GATEWAY.port)

    def edge_key(self) -> dict:
        """The `edge_key` stack output: the caller and key the smoke suite sends."""
        return self.deployment.plans[EDGE.role].outputs["edge_key"].value

    def container(self, service: ServiceDefinition) -> Container:
        return self.fleet.containers[service.role]

    def outputs(self) -> dict:
        """The stack outputs (components/targets/build.py `outputs`) of this stack, as `pulumi stack output --json`."""
        spec = self.deployment.spec
        translation = self.deployment.translation
        urls = self.urls
        published = [role for role in urls if spec.placement(role).published is not None or role in THROUGH_EDGE]
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
            "edge_key": self.edge_key(),
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
        httpx.post(self.gateway_core_url + "/stand-in/fault", json=faults).raise_for_status()


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


def run_gateway(fleet: Fleet, deployment: Deployment, name: str, config_comment: str = "") -> Container:
    """The gateway stand-in under the alias the plan gives it (behind the edge), with the plan's environment;
    published on an engine-chosen port for the tests' own fault injection only. `config_comment` changes
    its config as a catalog change would (a new container, as `pulumi up` replaces it)."""
    planned = deployment.plans[GATEWAY.role]
    container = fleet.run(
        name,
        "pmoves-test/python",
        aliases=[planned.placement.alias],
        command=[f"{STANDINS_MOUNT}/gateway.py", *gateway.COMMAND],
        env=env_of(planned.env) + [("PYTHONPATH", f"{TENSORZERO_MOUNT}:{STANDINS_MOUNT}")],
        files={gateway.CONFIG_PATH: gateway.config_file(deployment).content + config_comment},
        mounts=[
            (str(STANDINS), STANDINS_MOUNT),
            (str(Path(tensorzero.__file__).resolve().parent.parent), TENSORZERO_MOUNT),
        ],
        publish=[GATEWAY.port],
        healthcheck=gateway.HEALTHCHECK,
    )
    container.role = GATEWAY.role
    return container


def run_edge(fleet: Fleet, deployment: Deployment) -> Container:
    """The edge as the plan declares it: the stand-in OpenResty image, its files, keys, command and healthcheck."""
    planned = deployment.plans[EDGE.role]
    return fleet.run(
        EDGE.role,
        "pmoves-test/openresty",
        aliases=[planned.placement.alias],
        command=list(planned.command),
        env=env_of(planned.env),
        files=uploads(planned.files),
        publish=[edge.PORT, edge.UI_PORT],
        healthcheck=edge.HEALTHCHECK,
    )


def ollamas(fleet: Fleet, deployment: Deployment, gpu: SecondHost) -> None:
    """Each of the stack's Ollamas (stand-ins) on its host's network; the GPU host's behind its guard (the
    stand-in OpenResty image with the guard's planned files and command), published at that host's address."""
    spec = deployment.spec
    # Ollama's image has no wget for a healthcheck (`ollama list`); its stand-in is asked over HTTP.
    health = ("wget", "--spider", "-q", f"http://127.0.0.1:{OLLAMA.port}/")
    for server in ollama.servers(spec):
        if spec.placement(server).host == GPU_HOST:
            standin(fleet, server, "ollama.py", healthcheck=health, publish=[], network=gpu.network)
        else:
            standin(fleet, server, "ollama.py", healthcheck=health)
    planned = deployment.plans[GUARD.role]
    [port] = planned.placement.ports
    fleet.run(
        GUARD.role,
        "pmoves-test/openresty",
        aliases=[planned.placement.alias],
        command=list(planned.command),
        files=uploads(planned.files),
        publish=[f"{port.ip}:{port.external}:{port.internal}"],
        network=gpu.network,
        healthcheck=ollama_guard.HEALTHCHECK,
    )


def start(fleet: Fleet, deployment: Deployment, gpu: SecondHost) -> LiveStack:
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
    # The real backupctl (its files, environment, command and healthcheck as planned) on this image's python3.
    # ClickHouse 18.16 has no BACKUP, so its runs fail (BackupFailed); Prometheus scrapes its metrics all the same.
    fleet.run(
        BACKUP.role,
        "pmoves-test/python",
        aliases=[BACKUP.alias],
        env=env_of(deployment.plans[BACKUP.role].env),
        command=backup.COMMAND[1:],
        files=uploads(deployment.plans[BACKUP.role].files),
        healthcheck=backup.HEALTHCHECK,
    )
    ollamas(fleet, deployment, gpu)
    standin(fleet, UI, "ui.py", healthcheck=ui.HEALTHCHECK, publish=[])  # published by the edge
    run_gateway(fleet, deployment, GATEWAY.role)
    run_edge(fleet, deployment)
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
    stack = LiveStack(deployment, fleet, gpu)
    stack.create_views()
    for server in ollama.servers(spec):  # what each Ollama's one-shot `ollama pull`s do
        for model in deployment.translation.ollama_pulls.get(server.alias, ()):
            stack.pull(model, server.role)
    stack.wait_monitoring_green()
    return stack


def write_outputs(path: Path, outputs: dict) -> Path:
    path.write_text(json.dumps(outputs, indent=2))
    return path
