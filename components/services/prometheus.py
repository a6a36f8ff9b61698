"""Prometheus: scrapes the stack, probes what exports no metrics, and holds the alert rules.

What is scraped comes from every service's plan (`monitoring`); what alerts is decided here, from the
monitoring contract (monitoring.py) and the jobs actually scraped. The templates only lay it out.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

from pydantic import Field

from components.core.monitoring import (
    BACKUP_JOB,
    BACKUP_LAST_RUN_SUCCESS,
    BACKUP_LAST_SUCCESS,
    CLICKHOUSE_ASYNC,
    CLICKHOUSE_EVENTS,
    CLICKHOUSE_JOB,
    EDGE_JOB,
    EDGE_REQUESTS,
    GATEWAY_JOB,
    PROBE_JOB,
    PROBE_SUCCESS,
    RATE_WINDOW,
    SERVICE_LABEL,
    clickhouse_disk_free,
    overhead_quantile,
    selector,
)
from components.core.names import METRICS_PATH
from components.core.plans import Hardening, Monitoring, Scrape, ServicePlan, Target, Volume
from components.core.render import RenderedFile, render
from components.core.types import Duration, ImageRef, Port, StrictModel, duration_seconds
from components.model.environment import ServiceDefinition
from components.model.settings import PUBLISHED_PORT, ServiceSpec
from components.services import blackbox

if TYPE_CHECKING:
    from components.model.context import Context
    from components.model.resolved import ResolvedStack

PORT = 9090
HEALTH_PATH = "/-/healthy"
CONFIG_PATH = "/etc/prometheus/prometheus.yml"
RULES_DIR = "/etc/prometheus/rules"
DATA_PATH = "/prometheus"
HEALTHCHECK = ("wget", "--spider", "-q", f"http://127.0.0.1:{PORT}{HEALTH_PATH}")
RULES_MOUNT = f"{RULES_DIR}/tensorzero.yml"
# Relative to the config file, as Prometheus resolves it: the same layout works in the
# container, in `render`'s output directory and in a test's temporary directory.
RULES_REFERENCE = posixpath.relpath(RULES_MOUNT, posixpath.dirname(CONFIG_PATH))
# Prometheus marks a series stale when a scrape brings no sample for 5m: a longer interval leaves gaps.
ScrapeInterval = Duration(low_s=1, high="5m")
Retention = Duration(low_s=3600, high="100y")
AlertDuration = Duration(low_s=0, high="1d")
GATEWAY = "gateway"  # roles the alerts name in their `service` label
CLICKHOUSE = "clickhouse"
BACKUP = "backup"


class AlertThresholds(StrictModel):
    """Every alert threshold, in one place; `promtool test rules` fixtures exercise each."""

    for_duration: AlertDuration = Field("5m", description="How long a condition holds before it alerts.")
    gateway_overhead_p99_seconds: float = Field(
        0.05, gt=0, description="p99 of the gateway's own overhead (not the provider's latency) above this alerts."
    )
    clickhouse_memory_ratio: float = Field(
        0.9, gt=0, lt=1, description="ClickHouse resident memory above this share of its limit (or of the host) alerts."
    )
    clickhouse_disk_free_ratio: float = Field(
        0.1, gt=0, lt=1, description="Free space on ClickHouse's disk below this share alerts."
    )
    gateway_error_ratio: float = Field(
        0.05,
        gt=0,
        lt=1,
        description="Share of requests the edge answers with a 5xx (over 5m) above this alerts; needs the edge.",
    )


class PrometheusSpec(ServiceSpec):
    enabled: bool = Field(True, description="Deploy Prometheus (with its blackbox exporter) for this stack.")
    image: ImageRef = Field("prom/prometheus:v3.5.0", description="Pinned Prometheus image.")
    port: Optional[Port] = Field(PORT, description=PUBLISHED_PORT)
    retention: Retention = Field("15d", description="How long Prometheus keeps samples (1h to 100y).")
    scrape_interval: ScrapeInterval = Field("15s", description="How often every target is scraped (1s to 5m).")
    alerts: AlertThresholds = Field(default_factory=AlertThresholds, description="Alert thresholds.")


DEFAULT_SCRAPE_TIMEOUT_S = 10  # Prometheus's own default; it may not exceed the interval


@dataclass(frozen=True)
class ScrapeJob:
    name: str
    targets: tuple[Target, ...]
    metrics_path: str = METRICS_PATH
    module: Optional[str] = None  # a blackbox module: targets are probed through `exporter`
    exporter: Optional[str] = None


def scrape_jobs(ctx: Context) -> list[ScrapeJob]:
    """Every service's scrapes in registry order, then the probers' jobs; each target as Prometheus's host
    reaches it."""
    jobs = []
    for service, monitoring in ctx.monitored():
        for scrape in monitoring.scrapes:
            if service.role == SERVICE.role:  # itself: no dependency to record
                endpoint = ctx.spec.endpoint(service, seen_from=ctx.placement.host)
            else:
                endpoint = ctx.reach(service, port=scrape.port, switch=scrape.switch)
            target = Target(service.role, f"{scrape.host or endpoint.host}:{endpoint.port}")
            jobs.append(ScrapeJob(scrape.job, (target,), metrics_path=scrape.path))
    for prober in (plan.prober for plan in ctx.others() if plan.prober):
        exporter = ctx.reach(prober.service)
        jobs.append(
            ScrapeJob(prober.job, prober.targets, prober.path, prober.module, f"{exporter.host}:{exporter.port}")
        )
    return jobs


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


def alerts(limits: AlertThresholds, jobs: set[str], backup_max_age_s: Optional[int] = None) -> list[Alert]:
    """The alert rules for the jobs scraped, thresholds from `prometheus.alerts` (and the backup schedule)."""
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
            f"{PROBE_SUCCESS} == 0",
            "warning",
            "{{ $labels.service }} fails its health probe",
            f"The blackbox exporter's {blackbox.PROBE_MODULE} probe of {{{{ $labels.instance }}}} "
            f"has failed for {held}.",
            for_duration=held,
        ),
        Alert(
            "GatewayNotAnswering",
            f"{PROBE_SUCCESS}{selector(**{SERVICE_LABEL: GATEWAY})} == 0 or up{selector(job=GATEWAY_JOB)} == 0",
            "critical",
            "The TensorZero gateway is not answering",
            "{{ $labels.instance }} (job {{ $labels.job }}) has not answered for " + held + ": no inference is served.",
            service=GATEWAY,
            for_duration=held,
        ),
        Alert(
            "GatewayOverheadHigh",
            f"{overhead_quantile(0.99, RATE_WINDOW)} > {limits.gateway_overhead_p99_seconds!r}",
            "warning",
            "The TensorZero gateway's own overhead is high",
            '{{ printf "%.3f" $value }}s p99 overhead added by the gateway (not the providers) over '
            f"{RATE_WINDOW}, above {limits.gateway_overhead_p99_seconds!r}s.",
            service=GATEWAY,
            for_duration=held,
        ),
    ]
    if EDGE_JOB in jobs:
        rules.append(edge_error_alert(limits))
    if CLICKHOUSE_JOB in jobs:
        rules += clickhouse_alerts(limits)
    if BACKUP_JOB in jobs and backup_max_age_s:
        rules += backup_alerts(backup_max_age_s)
    return rules


def backup_alerts(max_age_s: int) -> list[Alert]:
    """From backupctl's own metrics, per destination (local, offsite): the schedule is missed, or a run failed.
    The age is read from the backups themselves, so it holds across restarts of the backup container; the
    container not answering at all is TargetDown."""
    return [
        Alert(
            "BackupTooOld",
            f"time() - {BACKUP_LAST_SUCCESS} > {max_age_s}",
            "critical",
            "No good {{ $labels.destination }} backup of ClickHouse for too long",
            'The newest complete {{ $labels.destination }} backup started {{ printf "%.0f" $value }}s ago; '
            f"the schedule allows {max_age_s}s (backup.every + backup.grace).",
            service=BACKUP,
        ),
        Alert(
            "BackupFailed",
            f"{BACKUP_LAST_RUN_SUCCESS} == 0",
            "warning",
            "The last {{ $labels.destination }} backup of ClickHouse failed",
            "backupctl's last run to {{ $labels.destination }} failed; it tries again every 10 minutes "
            "(`docker logs` of the backup container says why).",
            service=BACKUP,
        ),
    ]


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
        service=GATEWAY,
        for_duration=limits.for_duration,
    )


def clickhouse_alerts(limits: AlertThresholds) -> list[Alert]:
    memory, os_total = f"{CLICKHOUSE_ASYNC}MemoryResident", f"{CLICKHOUSE_ASYNC}OSMemoryTotal"
    cgroup = f"{CLICKHOUSE_ASYNC}CGroupMemoryTotal"
    # The container's memory limit when it has one (0, or more than the host, means none), else the host's.
    limit = f"(({cgroup} > 0 < {os_total}) or {os_total})"
    return [
        Alert(
            "ClickHouseMemoryPressure",
            f"{memory} / {limit} > {limits.clickhouse_memory_ratio!r}",
            "warning",
            "ClickHouse is close to its memory limit",
            "ClickHouse resident memory is {{ $value | humanizePercentage }} of its limit "
            f"(alert above {percent(limits.clickhouse_memory_ratio)}).",
            service=CLICKHOUSE,
            for_duration=limits.for_duration,
        ),
        Alert(
            "ClickHouseDiskPressure",
            f"{clickhouse_disk_free()} < {limits.clickhouse_disk_free_ratio!r}",
            "critical",
            "ClickHouse disk {{ $labels.disk }} is almost full",
            "{{ $value | humanizePercentage }} of ClickHouse disk {{ $labels.disk }} is free "
            f"(alert below {percent(limits.clickhouse_disk_free_ratio)}); full disks reject inserts and backups.",
            service=CLICKHOUSE,
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
            service=CLICKHOUSE,
        ),
    ]


def backup_max_age(spec) -> Optional[int]:
    """How old the newest backup may be, from the backup service's schedule; None without it."""
    return spec.backup.max_age_s() if spec.deployed(BACKUP) else None


def scrape_timeout(spec: PrometheusSpec) -> str:
    if duration_seconds(spec.scrape_interval) < DEFAULT_SCRAPE_TIMEOUT_S:
        return spec.scrape_interval
    return f"{DEFAULT_SCRAPE_TIMEOUT_S}s"


def config_files(deployment: ResolvedStack, jobs: list[ScrapeJob]) -> list[RenderedFile]:
    spec = deployment.spec
    config = render(
        "prometheus/prometheus.yml.j2",
        stack=deployment.stack,
        name_prefix=spec.name_prefix,
        prometheus=spec.prometheus,
        scrape_timeout=scrape_timeout(spec.prometheus),
        rule_files=[RULES_REFERENCE],
        jobs=jobs,
        service_label=SERVICE_LABEL,
    )
    rules = alert_rules(deployment, {job.name for job in jobs})
    return [
        RenderedFile("prometheus/prometheus.yml", "prometheus-config", SERVICE.role, CONFIG_PATH, config),
        RenderedFile(f"prometheus/{RULES_REFERENCE}", "prometheus-rules", SERVICE.role, RULES_MOUNT, rules),
    ]


def alert_rules(deployment: ResolvedStack, jobs: set[str]) -> str:
    """The rules file for the jobs scraped; also the groups of the PrometheusRule on a cluster's operator."""
    spec = deployment.spec
    alerting = alerts(spec.prometheus.alerts, jobs, backup_max_age(spec))
    return render(
        "prometheus/rules/tensorzero.yml.j2", stack=deployment.stack, alerts=alerting, service_label=SERVICE_LABEL
    )


def command(spec: PrometheusSpec) -> tuple[str, ...]:
    return (
        f"--config.file={CONFIG_PATH}",
        f"--storage.tsdb.path={DATA_PATH}",
        f"--storage.tsdb.retention.time={spec.retention}",
        # `POST /-/reload` applies a config or rules file copied into the running container
        # (e.g. while tuning a threshold) without dropping the in-memory head block and its
        # WAL replay. It also opens `/-/quit` to whoever reaches the port: the port is internal
        # or published on the stack's bind address only.
        "--web.enable-lifecycle",
    )


def plan(ctx: Context) -> ServicePlan:
    # Uploads force replacement in pulumi-docker: a changed config or rule restarts Prometheus,
    # and its samples survive on the volume.
    return ServicePlan(
        # prom/prometheus runs as `nobody` (65534) and writes only its data volume
        hardening=Hardening(user=65534),
        command=command(ctx.section),
        files=tuple(config_files(ctx.deployment, scrape_jobs(ctx))),
        volumes=(Volume("data", "tensorzero-prometheus-data", DATA_PATH),),
        healthcheck=HEALTHCHECK,
        # Targets may come up later; the probe job needs its exporter from the first scrape.
        waits_for=(GATEWAY, blackbox.SERVICE.role),
        image_tools=frozenset({"wget"}),
    )


SERVICE = ServiceDefinition(
    role="prometheus",
    component="Prometheus",
    plan=plan,
    description="Metrics and alert rules.",
    spec=PrometheusSpec,
    container="tensorzero-prometheus",
    alias="tensorzero-prometheus",
    port=PORT,
    monitoring=lambda spec: Monitoring(scrapes=(Scrape(SERVICE.role, METRICS_PATH),)),
)
