"""Grafana Alloy: ships the logs of the stack's containers on its Docker host to Loki."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Optional

from pydantic import Field

from components.core.names import METRICS_PATH, SERVICE_LABEL, STACK_LABEL
from components.core.plans import Endpoint, Monitoring, Scrape, ServicePlan
from components.core.render import RenderedFile, render
from components.core.types import ImageRef, Port
from components.model.environment import ServiceDefinition
from components.model.settings import PUBLISHED_PORT, ServiceSpec
from components.services import docker_proxy, gateway, loki

if TYPE_CHECKING:
    from components.model.context import Context
    from components.model.resolved import ResolvedStack

PORT = 12345
CONFIG_PATH = "/etc/alloy/config.alloy"
# Alloy's image is Ubuntu with curl installed (Dockerfile upstream).
HEALTHCHECK = ("curl", "-fsS", "-o", "/dev/null", f"http://localhost:{PORT}/-/ready")
COMMAND = ("run", CONFIG_PATH, f"--server.http.listen-addr=0.0.0.0:{PORT}", "--storage.path=/tmp/alloy")
LOKI_PUSH_PATH = "/loki/api/v1/push"


class AlloySpec(ServiceSpec):
    image: ImageRef = Field("grafana/alloy:v1.10.2", description="Pinned Grafana Alloy image.")
    port: Optional[Port] = Field(None, description=PUBLISHED_PORT)


def docker_meta_label(label: str) -> str:
    """How Docker service discovery names a container label (Prometheus relabelling rules)."""
    return "__meta_docker_container_label_" + re.sub(r"[^A-Za-z0-9_]", "_", label)


def config_files(deployment: ResolvedStack, loki_endpoint: Endpoint, docker_api: Endpoint) -> list[RenderedFile]:
    content = render(
        "alloy/config.alloy.j2",
        docker_host=f"tcp://{docker_api.host}:{docker_api.port}",
        stack_label=STACK_LABEL,
        stack=deployment.spec.name_prefix,
        service_meta_label=docker_meta_label(SERVICE_LABEL),
        json_service=gateway.SERVICE.role,
        push_url=f"{loki_endpoint.url}{LOKI_PUSH_PATH}",
    )
    return [RenderedFile("alloy/config.alloy", "alloy-config", SERVICE.role, CONFIG_PATH, content)]


def plan(ctx: Context) -> ServicePlan:
    # Hardening exception: grafana/alloy runs as root by default (it reads the Docker API through the
    # proxy and keeps positions on its volume); no non-root user of its image is proven here.
    return ServicePlan(
        command=COMMAND,
        # No Docker socket here: Alloy asks the read-only proxy, which lets only its GETs through.
        files=tuple(config_files(ctx.deployment, ctx.reach(loki.SERVICE), ctx.reach(docker_proxy.SERVICE))),
        healthcheck=HEALTHCHECK,
        waits_for=(loki.SERVICE.role, docker_proxy.SERVICE.role),
        image_tools=frozenset({"curl"}),
    )


SERVICE = ServiceDefinition(
    role="alloy",
    component="Alloy",
    plan=plan,
    description="Ships container logs to Loki; runs with Loki.",
    spec=AlloySpec,
    container="tensorzero-alloy",
    alias="tensorzero-alloy",
    port=PORT,
    follows=loki.SERVICE.role,
    monitoring=lambda spec: Monitoring(scrapes=(Scrape(SERVICE.role, METRICS_PATH),)),
)
