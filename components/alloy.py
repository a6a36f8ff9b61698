"""Grafana Alloy: ships the logs of the stack's containers on its Docker host to Loki."""

import re
from typing import Optional

import pulumi

from .container import ContainerPlan, ServiceComponent
from .envfiles import Variable
from .host import Placement
from .loader import Deployment
from .names import ALLOY, ALLOY_CONFIG_PATH, DOCKER_SOCKET, GATEWAY, SERVICE_LABEL, STACK_LABEL, TYPE_PREFIX
from .render import RenderedFile, render
from .spec import AlloySpec, Endpoint

# Alloy's image is Ubuntu with curl installed (Dockerfile upstream).
HEALTHCHECK = ("curl", "-fsS", "-o", "/dev/null", f"http://localhost:{ALLOY.port}/-/ready")
COMMAND = ("run", ALLOY_CONFIG_PATH, f"--server.http.listen-addr=0.0.0.0:{ALLOY.port}", "--storage.path=/tmp/alloy")
LOKI_PUSH_PATH = "/loki/api/v1/push"


def docker_meta_label(label: str) -> str:
    """How Docker service discovery names a container label (Prometheus relabelling rules)."""
    return "__meta_docker_container_label_" + re.sub(r"[^A-Za-z0-9_]", "_", label)


def config_files(deployment: Deployment, loki: Endpoint) -> list[RenderedFile]:
    content = render(
        "alloy/config.alloy.j2",
        docker_socket=DOCKER_SOCKET,
        stack_label=STACK_LABEL,
        stack=deployment.spec.name_prefix,
        service_meta_label=docker_meta_label(SERVICE_LABEL),
        json_service=GATEWAY.role,
        push_url=f"{loki.url}{LOKI_PUSH_PATH}",
    )
    return [RenderedFile("alloy/config.alloy", "alloy-config", ALLOY.role, ALLOY_CONFIG_PATH, content)]


class Alloy(ServiceComponent):
    def __init__(
        self,
        name: str,
        spec: AlloySpec,
        placement: Placement,
        *,
        env: list[Variable],
        files: list[RenderedFile],
        depends_on: list[pulumi.Resource],
        opts: Optional[pulumi.ResourceOptions] = None,
    ):
        super().__init__(f"{TYPE_PREFIX}:Alloy", name, None, opts)
        self.run(
            name,
            ALLOY,
            spec,
            placement,
            ContainerPlan(
                env=env,
                healthcheck=HEALTHCHECK,
                command=COMMAND,
                files=files,
                # Read-only: Alloy lists containers and reads their logs, nothing more.
                host_paths=[(DOCKER_SOCKET, DOCKER_SOCKET)],
                depends_on=depends_on,
            ),
        )
        self.register_outputs({"container": self.container.name})
