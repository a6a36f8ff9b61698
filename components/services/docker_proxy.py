"""A read-only proxy in front of the Docker socket, for Grafana Alloy.

Alloy needs to list the stack's containers and read their logs. Mounting the socket into Alloy, even
read-only, hands it the whole Docker API (a read-only mount still lets a process send any request: create a
privileged container, exec into one). This proxy (the edge's OpenResty image, configured only by the file
rendered here) has the socket instead and lets through only the GET requests Alloy's Docker discovery and log
source make; anything else is a 403. It listens only on the stack's network: its port is never published.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from pydantic import Field

from components.core.plans import HostPath, ServicePlan
from components.core.render import RenderedFile, render
from components.core.types import ImageRef, Port
from components.model.environment import ServiceDefinition
from components.model.settings import PUBLISHED_PORT, ServiceSpec
from components.services import openresty

if TYPE_CHECKING:
    from components.model.context import Context
    from components.model.resolved import ResolvedStack

PORT = 2375  # Docker's plain-HTTP port number, so `tcp://<alias>:2375` reads as the Docker API
DOCKER_SOCKET = "/var/run/docker.sock"
CONFIG_PATH = "/etc/nginx/conf.d/default.conf"
HEALTH_PATH = "/proxy/health"
COMMAND = openresty.COMMAND
HEALTHCHECK = openresty.healthcheck(PORT, HEALTH_PATH)
# What Alloy asks (Prometheus's Docker discovery, Loki's Docker source): the API version, container lists and
# inspections, container logs, networks. Paths with an optional API version prefix (/v1.43/...).
ALLOWED_PATHS = (
    r"_ping",
    r"version",
    r"info",
    r"containers/json",
    r"containers/[A-Za-z0-9_.-]+/json",
    r"containers/[A-Za-z0-9_.-]+/logs",
    r"networks",
    r"events",
)


class DockerProxySpec(ServiceSpec):
    image: ImageRef = Field(openresty.IMAGE, description="Pinned OpenResty image.")
    port: Optional[Port] = Field(None, description=PUBLISHED_PORT)


def config_files(deployment: ResolvedStack, listen: str = str(PORT), socket: str = DOCKER_SOCKET) -> list[RenderedFile]:
    content = render(
        "docker_proxy/default.conf.j2",
        stack=deployment.stack,
        listen=listen,
        socket=socket,
        allowed="|".join(ALLOWED_PATHS),
        health_path=HEALTH_PATH,
    )
    return [RenderedFile("docker_proxy/conf.d/default.conf", "openresty-config", SERVICE.role, CONFIG_PATH, content)]


ON_CLUSTER = "set it false: the cluster's own log pipeline ships its pods' logs"


def plan(ctx: Context) -> ServicePlan:
    # Hardening exception: the proxy opens the host's Docker socket (root:docker) as root.
    return ServicePlan(
        command=COMMAND,
        files=tuple(config_files(ctx.deployment)),
        # The socket is the proxy's alone; it forwards only GETs of ALLOWED_PATHS.
        host_paths=(HostPath(DOCKER_SOCKET, DOCKER_SOCKET, "loki.enabled", ON_CLUSTER),),
        healthcheck=HEALTHCHECK,
        image_tools=openresty.TOOLS,
    )


SERVICE = ServiceDefinition(
    role="docker_proxy",
    component="DockerProxy",
    plan=plan,
    description="Read-only Docker API proxy for Alloy; runs with Loki.",
    spec=DockerProxySpec,
    container="tensorzero-docker-proxy",
    alias="tensorzero-docker-proxy",
    port=PORT,
    follows="loki",
)
