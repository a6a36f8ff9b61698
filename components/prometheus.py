"""Prometheus: scrapes the stack, probes what exports no metrics, and holds the alert rules.

What is scraped and what alerts is decided here, from the deployment; the
templates only lay it out. Metric names of ClickHouse's built-in endpoint, as
its source writes them (ClickHouse/ClickHouse):
- prefixes `ClickHouseProfileEvents_` (counters), `ClickHouseMetrics_`,
  `ClickHouseAsyncMetrics_` (gauges): src/Server/PrometheusMetricsWriter.{h,cpp};
- `MemoryResident`, `OSMemoryTotal`, `CGroupMemoryTotal` ("0 or very large value
  means unlimited"; added by PR #45301, cgroup v2 by #45999, both 23.x):
  src/Common/AsynchronousMetrics.cpp;
- `DiskTotal_<disk>`, `DiskAvailable_<disk>` for every disk of the server:
  src/Interpreters/ServerAsynchronousMetrics.cpp;
- `RejectedInserts` ("rejected with 'Too many parts'"): src/Common/ProfileEvents.cpp.
"""

import posixpath
import re
from dataclasses import dataclass
from typing import Optional, Sequence

import pulumi

from .blackbox import PROBE_MODULE
from .container import ContainerPlan, ServiceComponent, data_volume, served_variables
from .envfiles import Variable
from .host import Placement
from .loader import Deployment
from .names import (
    ALLOY,
    BLACKBOX,
    BLACKBOX_PROBE_PATH,
    CLICKHOUSE,
    CLICKHOUSE_METRICS_PATH,
    CLICKHOUSE_METRICS_PORT,
    CLICKHOUSE_PING_PATH,
    EDGE,
    EDGE_METRICS_PATH,
    GATEWAY,
    GATEWAY_STATUS_PATH,
    GRAFANA,
    LOKI,
    METRICS_PATH,
    OLLAMA,
    OLLAMA_VERSION_PATH,
    PROMETHEUS,
    PROMETHEUS_CONFIG_PATH,
    PROMETHEUS_DATA_PATH,
    PROMETHEUS_HEALTH_PATH,
    PROMETHEUS_RULES_DIR,
    TYPE_PREFIX,
    UI,
    UI_HEALTH_PATH,
    Service,
)
from .render import RenderedFile, render
from .spec import AlertThresholds, Environment, PrometheusSpec

HEALTHCHECK = ("wget", "--spider", "-q", f"http://127.0.0.1:{PROMETHEUS.port}{PROMETHEUS_HEALTH_PATH}")
RULES_MOUNT = f"{PROMETHEUS_RULES_DIR}/tensorzero.yml"
# Relative to the config file, as Prometheus resolves it: the same layout works in the
# container, in `render`'s output directory and in a test's temporary directory.
RULES_REFERENCE = posixpath.relpath(RULES_MOUNT, posixpath.dirname(PROMETHEUS_CONFIG_PATH))

# Selectors: every alert below is written against these names, and the scrape jobs carry them.
GATEWAY_JOB = "tensorzero"  # the seed's prometheus.yml names the gateway's job so
EDGE_JOB = "tensorzero-edge"
PROBE_JOB = "blackbox-http"
SERVICE_LABEL = "service"  # every target names the service it watches, for alerts and dashboards
RATE_WINDOW = "5m"
CLICKHOUSE_ASYNC = "ClickHouseAsyncMetrics_"
CLICKHOUSE_EVENTS = "ClickHouseProfileEvents_"
OVERHEAD_BUCKETS = "tensorzero_inference_latency_overhead_seconds_bucket"
EDGE_REQUESTS = "tensorzero_http_requests_total"  # the edge's counter; the gateway has no status label

DEFAULT_SCRAPE_TIMEOUT_S = 10  # Prometheus's own default; it may not exceed the interval
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def seconds(duration: str) -> float:
    """A Prometheus duration of the spec's form (`15s`, `5m`) in seconds."""
    number, unit = re.fullmatch(r"([0-9]+)(ms|s|m|h|d|w|y)", duration).groups()
    return int(number) * _UNIT_SECONDS[unit]


@dataclass(frozen=True)
class Target:
    service: str  # role of the service it watches: the `service` label
    address: str  # host:port to scrape, or the URL the blackbox exporter probes


@dataclass(frozen=True)
class ScrapeJob:
    name: str
    targets: tuple[Target, ...]
    metrics_path: str = METRICS_PATH
    module: Optional[str] = None  # a blackbox module: targets are probed through `exporter`
    exporter: Optional[str] = None


def scrape_jobs(spec: Environment) -> list[ScrapeJob]:
    """Every job, each target addressed as a container on Prometheus's host reaches it."""
    here = spec.prometheus.host

    def address(service: Service) -> str:
        endpoint = spec.endpoint(service, seen_from=here)
        return f"{endpoint.host}:{endpoint.port}"

    jobs = [
        ScrapeJob(PROMETHEUS.role, (Target(PROMETHEUS.role, address(PROMETHEUS)),)),
        ScrapeJob(GATEWAY_JOB, (Target(GATEWAY.role, address(GATEWAY)),)),
    ]
    if spec.deployed(EDGE):
        jobs.append(ScrapeJob(EDGE_JOB, (Target(EDGE.role, address(EDGE)),), metrics_path=EDGE_METRICS_PATH))
    if spec.clickhouse.metrics:
        # The metrics port is never published; the spec refuses Prometheus on another host.
        metrics = Target(CLICKHOUSE.role, f"{CLICKHOUSE.alias}:{CLICKHOUSE_METRICS_PORT}")
        jobs.append(ScrapeJob(CLICKHOUSE.role, (metrics,), metrics_path=CLICKHOUSE_METRICS_PATH))
    for service in (BLACKBOX, GRAFANA, LOKI, ALLOY):  # each serves /metrics natively
        if spec.deployed(service):
            jobs.append(ScrapeJob(service.role, (Target(service.role, address(service)),)))
    probes = probe_targets(spec)
    if probes:
        jobs.append(ScrapeJob(PROBE_JOB, probes, BLACKBOX_PROBE_PATH, PROBE_MODULE, address(BLACKBOX)))
    return jobs


def probe_targets(spec: Environment) -> tuple[Target, ...]:
    """What the blackbox exporter asks from outside: services without metrics, and 'is it answering'."""
    if not spec.deployed(BLACKBOX):
        return ()
    # The exporter makes the request, so the URL is as the exporter's host sees the service.
    here = spec.blackbox.host
    paths = (
        (GATEWAY, GATEWAY_STATUS_PATH),
        (CLICKHOUSE, CLICKHOUSE_PING_PATH),
        (UI, UI_HEALTH_PATH),
        (OLLAMA, OLLAMA_VERSION_PATH),
    )
    return tuple(
        Target(service.role, spec.endpoint(service, seen_from=here).url + path)
        for service, path in paths
        if spec.deployed(service)
    )


@dataclass(frozen=True)
class Alert:
    name: str
    expr: str
    severity: str  # `critical`: the stack is not serving or is losing data; `warning`: look soon
    summary: str  # Go templates over the alert's labels, expanded by Prometheus
    description: str
    service: Optional[str] = None  # set when the expression's series do not carry the label
    for_duration: Optional[str] = None  # None: fire as soon as the expression holds


def percent(ratio: float) -> str:
    return f"{ratio * 100:g}%"


def alerts(spec: Environment) -> list[Alert]:
    """The alert rules, thresholds from `prometheus.alerts`."""
    limits: AlertThresholds = spec.prometheus.alerts
    held = limits.for_duration
    rules = [
        Alert(
            "TargetDown",
            f'up{{job!="{PROBE_JOB}"}} == 0',
            "warning",
            "{{ $labels.service }} does not answer Prometheus's scrape",
            "Prometheus has not scraped {{ $labels.instance }} (job {{ $labels.job }}) for " + held + ".",
            for_duration=held,
        ),
        Alert(
            "ProbeFailing",
            "probe_success == 0",
            "warning",
            "{{ $labels.service }} fails its health probe",
            f"The blackbox exporter's {PROBE_MODULE} probe of {{{{ $labels.instance }}}} has failed for {held}.",
            for_duration=held,
        ),
        Alert(
            "GatewayNotAnswering",
            f'probe_success{{{SERVICE_LABEL}="{GATEWAY.role}"}} == 0 or up{{job="{GATEWAY_JOB}"}} == 0',
            "critical",
            "The TensorZero gateway is not answering",
            "{{ $labels.instance }} (job {{ $labels.job }}) has not answered for " + held + ": no inference is served.",
            service=GATEWAY.role,
            for_duration=held,
        ),
        Alert(
            "GatewayOverheadHigh",
            f"histogram_quantile(0.99, sum by (le) (rate({OVERHEAD_BUCKETS}[{RATE_WINDOW}])))"
            f" > {limits.gateway_overhead_p99_seconds!r}",
            "warning",
            "The TensorZero gateway's own overhead is high",
            '{{ printf "%.3f" $value }}s p99 overhead added by the gateway (not the providers) over '
            f"{RATE_WINDOW}, above {limits.gateway_overhead_p99_seconds!r}s.",
            service=GATEWAY.role,
            for_duration=held,
        ),
    ]
    if spec.deployed(EDGE):
        rules.append(edge_error_alert(limits))
    if spec.clickhouse.metrics:
        rules += clickhouse_alerts(limits)
    return rules


def edge_error_alert(limits: AlertThresholds) -> Alert:
    """What callers see: the share of 5xx answers, counted by the edge (the gateway exports no status)."""
    errors = f'{EDGE_REQUESTS}{{job="{EDGE_JOB}", status=~"5.."}}'
    every = f'{EDGE_REQUESTS}{{job="{EDGE_JOB}"}}'
    share = f"sum(rate({errors}[{RATE_WINDOW}])) / sum(rate({every}[{RATE_WINDOW}]))"
    return Alert(
        # Without traffic the share is 0/0 (no value): silence is not an error rate.
        "GatewayErrorRateHigh",
        f"{share} > {limits.gateway_error_ratio!r}",
        "warning",
        "The TensorZero gateway answers too many requests with a server error",
        "{{ $value | humanizePercentage }} of the requests through the edge got a 5xx over "
        f"{RATE_WINDOW} (alert above {percent(limits.gateway_error_ratio)}).",
        service=GATEWAY.role,
        for_duration=limits.for_duration,
    )


def clickhouse_alerts(limits: AlertThresholds) -> list[Alert]:
    memory, os_total = f"{CLICKHOUSE_ASYNC}MemoryResident", f"{CLICKHOUSE_ASYNC}OSMemoryTotal"
    cgroup = f"{CLICKHOUSE_ASYNC}CGroupMemoryTotal"
    # The container's memory limit when it has one (0, or more than the host, means none), else the host's.
    limit = f"(({cgroup} > 0 < {os_total}) or {os_total})"
    disk_free = " / ".join(
        f'label_replace({{__name__=~"{CLICKHOUSE_ASYNC}Disk{kind}_.+"}}, "disk", "$1", '
        f'"__name__", "{CLICKHOUSE_ASYNC}Disk{kind}_(.+)")'
        for kind in ("Available", "Total")
    )
    return [
        Alert(
            "ClickHouseMemoryPressure",
            f"{memory} / {limit} > {limits.clickhouse_memory_ratio!r}",
            "warning",
            "ClickHouse is close to its memory limit",
            "ClickHouse resident memory is {{ $value | humanizePercentage }} of its limit "
            f"(alert above {percent(limits.clickhouse_memory_ratio)}).",
            service=CLICKHOUSE.role,
            for_duration=limits.for_duration,
        ),
        Alert(
            "ClickHouseDiskPressure",
            f"{disk_free} < {limits.clickhouse_disk_free_ratio!r}",
            "critical",
            "ClickHouse disk {{ $labels.disk }} is almost full",
            "{{ $value | humanizePercentage }} of ClickHouse disk {{ $labels.disk }} is free "
            f"(alert below {percent(limits.clickhouse_disk_free_ratio)}); full disks reject inserts and backups.",
            service=CLICKHOUSE.role,
            for_duration=limits.for_duration,
        ),
        Alert(
            # An event, not a state: one rejected block is already lost inference rows.
            "ClickHouseRejectedInserts",
            f"increase({CLICKHOUSE_EVENTS}RejectedInserts[{RATE_WINDOW}]) > 0",
            "critical",
            "ClickHouse rejects inserts",
            f"ClickHouse rejected inserts with 'Too many parts' in the last {RATE_WINDOW}: "
            "the gateway's observability rows are being lost.",
            service=CLICKHOUSE.role,
        ),
    ]


def scrape_timeout(spec: PrometheusSpec) -> str:
    if seconds(spec.scrape_interval) < DEFAULT_SCRAPE_TIMEOUT_S:
        return spec.scrape_interval
    return f"{DEFAULT_SCRAPE_TIMEOUT_S}s"


def config_files(deployment: Deployment) -> list[RenderedFile]:
    spec = deployment.spec
    config = render(
        "prometheus/prometheus.yml.j2",
        stack=deployment.stack,
        name_prefix=spec.name_prefix,
        prometheus=spec.prometheus,
        scrape_timeout=scrape_timeout(spec.prometheus),
        rule_files=[RULES_REFERENCE],
        jobs=scrape_jobs(spec),
        service_label=SERVICE_LABEL,
    )
    rules = render(
        "prometheus/rules/tensorzero.yml.j2", stack=deployment.stack, alerts=alerts(spec), service_label=SERVICE_LABEL
    )
    return [
        RenderedFile("prometheus/prometheus.yml", "prometheus-config", PROMETHEUS.role, PROMETHEUS_CONFIG_PATH, config),
        RenderedFile(f"prometheus/{RULES_REFERENCE}", "prometheus-rules", PROMETHEUS.role, RULES_MOUNT, rules),
    ]


def environment(deployment: Deployment) -> list[Variable]:
    """Prometheus reads no variable of its own; only what `extra_env` asks for."""
    return served_variables(deployment.spec.prometheus, deployment.variables)


def command(spec: PrometheusSpec) -> tuple[str, ...]:
    return (
        f"--config.file={PROMETHEUS_CONFIG_PATH}",
        f"--storage.tsdb.path={PROMETHEUS_DATA_PATH}",
        f"--storage.tsdb.retention.time={spec.retention}",
        # `POST /-/reload` applies a config or rules file copied into the running container
        # (e.g. while tuning a threshold) without dropping the in-memory head block and its
        # WAL replay. It also opens `/-/quit` to whoever reaches the port: the port is internal
        # or published on the stack's bind address only.
        "--web.enable-lifecycle",
    )


class Prometheus(ServiceComponent):
    def __init__(
        self,
        name: str,
        spec: PrometheusSpec,
        placement: Placement,
        *,
        files: list[RenderedFile],
        protect_data: bool,
        depends_on: list[pulumi.Resource],
        env: Sequence[Variable] = (),
        opts: Optional[pulumi.ResourceOptions] = None,
    ):
        super().__init__(f"{TYPE_PREFIX}:Prometheus", name, None, opts)
        self.data = data_volume(self, f"{name}-data", "tensorzero-prometheus-data", placement, protect_data)
        # Uploads force replacement in pulumi-docker: a changed config or rule restarts Prometheus,
        # and its samples survive on the volume.
        self.run(
            name,
            PROMETHEUS,
            spec,
            placement,
            ContainerPlan(
                env=env,
                healthcheck=HEALTHCHECK,
                command=command(spec),
                files=files,
                volumes=[(self.data, PROMETHEUS_DATA_PATH)],
                depends_on=depends_on,
            ),
        )
        self.register_outputs({"container": self.container.name})
