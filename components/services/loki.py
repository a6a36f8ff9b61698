"""Loki: the stack's container logs, when the environment turns logs on."""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from pydantic import Field

from components.core.names import METRICS_PATH
from components.core.plans import Hardening, Monitoring, Scrape, ServicePlan, Volume
from components.core.render import RenderedFile, render
from components.core.types import Duration, ImageRef, Port
from components.model.environment import ServiceDefinition
from components.model.settings import PUBLISHED_PORT, ServiceSpec

if TYPE_CHECKING:
    from components.model.context import Context
    from components.model.resolved import ResolvedStack

PORT = 3100
CONFIG_PATH = "/etc/loki/config.yaml"
Retention = Duration(low_s=3600, high="100y")
DATA_PATH = "/loki"
# The image is distroless with busybox under /busybox (cmd/loki/Dockerfile upstream).
HEALTHCHECK = ("/busybox/wget", "--spider", "-q", f"http://localhost:{PORT}/ready")
COMMAND = (f"-config.file={CONFIG_PATH}",)


class LokiSpec(ServiceSpec):
    enabled: bool = Field(False, description="Deploy Loki, with Grafana Alloy shipping the containers' logs.")
    image: ImageRef = Field("grafana/loki:3.5.3", description="Pinned Loki image.")
    port: Optional[Port] = Field(None, description=PUBLISHED_PORT)
    retention: Retention = Field("168h", description="How long Loki keeps log lines (1h to 100y).")


def config_files(deployment: ResolvedStack) -> list[RenderedFile]:
    content = render("loki/config.yaml.j2", port=PORT, data_path=DATA_PATH, retention=deployment.spec.loki.retention)
    return [RenderedFile("loki/config.yaml", "loki-config", SERVICE.role, CONFIG_PATH, content)]


def plan(ctx: Context) -> ServicePlan:
    return ServicePlan(
        # grafana/loki runs as `loki` (10001) and writes only its volume
        hardening=Hardening(user=10001),
        command=COMMAND,
        files=tuple(config_files(ctx.deployment)),
        volumes=(Volume("data", "tensorzero-loki-data", DATA_PATH),),
        healthcheck=HEALTHCHECK,
        image_tools=frozenset({"/busybox/wget"}),
    )


SERVICE = ServiceDefinition(
    role="loki",
    component="Loki",
    plan=plan,
    description="Container logs (optional).",
    spec=LokiSpec,
    container="tensorzero-loki",
    alias="tensorzero-loki",
    port=PORT,
    monitoring=lambda spec: Monitoring(scrapes=(Scrape(SERVICE.role, METRICS_PATH),)),
)
