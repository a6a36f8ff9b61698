"""Loki: the stack's container logs, when the environment turns logs on."""

from typing import Optional

import pulumi

from .container import ContainerPlan, ServiceComponent, data_volume
from .envfiles import Variable
from .host import Placement
from .loader import Deployment
from .names import LOKI, LOKI_CONFIG_PATH, LOKI_DATA_PATH, TYPE_PREFIX
from .render import RenderedFile, render
from .spec import LokiSpec

# The image is distroless with busybox under /busybox (cmd/loki/Dockerfile upstream).
HEALTHCHECK = ("/busybox/wget", "--spider", "-q", f"http://localhost:{LOKI.port}/ready")
COMMAND = (f"-config.file={LOKI_CONFIG_PATH}",)


def config_files(deployment: Deployment) -> list[RenderedFile]:
    content = render(
        "loki/config.yaml.j2", port=LOKI.port, data_path=LOKI_DATA_PATH, retention=deployment.spec.loki.retention
    )
    return [RenderedFile("loki/config.yaml", "loki-config", LOKI.role, LOKI_CONFIG_PATH, content)]


class Loki(ServiceComponent):
    def __init__(
        self,
        name: str,
        spec: LokiSpec,
        placement: Placement,
        *,
        env: list[Variable],
        files: list[RenderedFile],
        protect_data: bool,
        opts: Optional[pulumi.ResourceOptions] = None,
    ):
        super().__init__(f"{TYPE_PREFIX}:Loki", name, None, opts)
        self.data = data_volume(self, f"{name}-data", "tensorzero-loki-data", placement, protect_data)
        self.run(
            name,
            LOKI,
            spec,
            placement,
            ContainerPlan(
                env=env,
                healthcheck=HEALTHCHECK,
                command=COMMAND,
                files=files,
                volumes=[(self.data, LOKI_DATA_PATH)],
            ),
        )
        self.register_outputs({"container": self.container.name})
