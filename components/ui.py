"""The TensorZero UI: reads everything through the gateway."""

from typing import Optional

import pulumi

from .container import ContainerPlan, ServiceComponent, served_variables
from .envfiles import Variable
from .host import Placement
from .loader import Deployment
from .names import TYPE_PREFIX, UI
from .spec import Endpoint, UiSpec

HEALTHCHECK = ("wget", "--spider", "--tries", "1", f"http://localhost:{UI.port}/health")


def environment(deployment: Deployment, gateway: Endpoint) -> list[Variable]:
    return [
        Variable("TENSORZERO_GATEWAY_URL", gateway.url, "built from the gateway's placement", False),
        *served_variables(deployment.spec.ui, deployment.variables),
    ]


class Ui(ServiceComponent):
    def __init__(
        self,
        name: str,
        spec: UiSpec,
        placement: Placement,
        *,
        env: list[Variable],
        depends_on: list[pulumi.Resource],
        opts: Optional[pulumi.ResourceOptions] = None,
    ):
        super().__init__(f"{TYPE_PREFIX}:Ui", name, None, opts)
        self.run(
            name,
            UI,
            spec,
            placement,
            ContainerPlan(
                env=env,
                healthcheck=HEALTHCHECK,
                depends_on=depends_on,
            ),
        )
        self.register_outputs({"container": self.container.name})
