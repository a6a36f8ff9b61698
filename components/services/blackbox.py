"""The blackbox exporter: asks the services that export no metrics whether they answer."""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from pydantic import Field

from components.core.monitoring import PROBE_JOB
from components.core.names import METRICS_PATH
from components.core.plans import Hardening, Monitoring, Prober, Scrape, ServicePlan, Target
from components.core.render import RenderedFile, render
from components.core.types import ImageRef, Port
from components.model.environment import ServiceDefinition
from components.model.settings import PUBLISHED_PORT, ServiceSpec

if TYPE_CHECKING:
    from components.model.context import Context
    from components.model.resolved import ResolvedStack

PORT = 9115
HEALTH_PATH = "/-/healthy"
PROBE_PATH = "/probe"
CONFIG_PATH = "/etc/blackbox_exporter/config.yml"
HEALTHCHECK = ("wget", "--spider", "-q", f"http://127.0.0.1:{PORT}{HEALTH_PATH}")
COMMAND = (f"--config.file={CONFIG_PATH}",)
PROBE_MODULE = "http_2xx"  # Prometheus's probe job asks for it by this name
# Under Prometheus's scrape timeout (10s at most), so a hung service is a failed probe, not a failed scrape;
# the exporter also cuts it to the scrape's own timeout when that is shorter.
PROBE_TIMEOUT = "5s"


class BlackboxSpec(ServiceSpec):
    image: ImageRef = Field("prom/blackbox-exporter:v0.27.0", description="Pinned blackbox exporter image.")
    port: Optional[Port] = Field(None, description=PUBLISHED_PORT)


def config_files(deployment: ResolvedStack) -> list[RenderedFile]:
    content = render("blackbox/config.yml.j2", stack=deployment.stack, module=PROBE_MODULE, timeout=PROBE_TIMEOUT)
    return [RenderedFile("blackbox/config.yml", "blackbox-config", SERVICE.role, CONFIG_PATH, content)]


def plan(ctx: Context) -> ServicePlan:
    """It makes the requests, so each probed URL is as the exporter's host reaches the service."""
    targets = tuple(
        Target(service.role, ctx.reach(service).url + monitoring.probe)
        for service, monitoring in ctx.monitored()
        if monitoring.probe
    )
    return ServicePlan(
        # the blackbox exporter's image runs as `nobody` (65534); ICMP probes are not used (no NET_RAW)
        hardening=Hardening(user=65534),
        command=COMMAND,
        files=tuple(config_files(ctx.deployment)),
        healthcheck=HEALTHCHECK,
        prober=Prober(SERVICE.role, PROBE_JOB, PROBE_PATH, PROBE_MODULE, targets) if targets else None,
        image_tools=frozenset({"wget"}),
    )


SERVICE = ServiceDefinition(
    role="blackbox",
    component="Blackbox",
    plan=plan,
    description="Probes the services that export no metrics; runs with Prometheus.",
    spec=BlackboxSpec,
    container="tensorzero-blackbox",
    alias="tensorzero-blackbox",
    port=PORT,
    follows="prometheus",
    monitoring=lambda spec: Monitoring(scrapes=(Scrape(SERVICE.role, METRICS_PATH),)),
)
