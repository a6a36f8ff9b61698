"""The blackbox exporter: asks the services that export no metrics whether they answer."""

from typing import Optional, Sequence

import pulumi

from .container import ContainerPlan, ServiceComponent, served_variables
from .envfiles import Variable
from .host import Placement
from .loader import Deployment
from .names import BLACKBOX, BLACKBOX_CONFIG_PATH, PROMETHEUS_HEALTH_PATH, TYPE_PREFIX
from .render import RenderedFile, render
from .spec import BlackboxSpec

HEALTHCHECK = ("wget", "--spider", "-q", f"http://127.0.0.1:{BLACKBOX.port}{PROMETHEUS_HEALTH_PATH}")
COMMAND = (f"--config.file={BLACKBOX_CONFIG_PATH}",)
PROBE_MODULE = "http_2xx"  # Prometheus's probe job asks for it by this name
# Under Prometheus's scrape timeout (10s at most), so a hung service is a failed probe, not a failed scrape;
# the exporter also cuts it to the scrape's own timeout when that is shorter.
PROBE_TIMEOUT = "5s"


def config_files(deployment: Deployment) -> list[RenderedFile]:
    content = render("blackbox/config.yml.j2", stack=deployment.stack, module=PROBE_MODULE, timeout=PROBE_TIMEOUT)
    return [RenderedFile("blackbox/config.yml", "blackbox-config", BLACKBOX.role, BLACKBOX_CONFIG_PATH, content)]


def environment(deployment: Deployment) -> list[Variable]:
    return served_variables(deployment.spec.blackbox, deployment.variables)


class Blackbox(ServiceComponent):
    def __init__(
        self,
        name: str,
        spec: BlackboxSpec,
        placement: Placement,
        *,
        files: list[RenderedFile],
        env: Sequence[Variable] = (),
        opts: Optional[pulumi.ResourceOptions] = None,
    ):
        super().__init__(f"{TYPE_PREFIX}:Blackbox", name, None, opts)
        self.run(
            name,
            BLACKBOX,
            spec,
            placement,
            ContainerPlan(env=env, healthcheck=HEALTHCHECK, command=COMMAND, files=files),
        )
        self.register_outputs({"container": self.container.name})
