"""The TensorZero gateway: the rendered tensorzero.toml, its keys, and the ClickHouse it logs to."""

from typing import Optional

import pulumi

from .clickhouse import connection_url
from .container import ContainerPlan, ServiceComponent, served_variables
from .envfiles import Variable
from .host import Placement
from .loader import Deployment
from .names import GATEWAY, GATEWAY_CONFIG_PATH, TYPE_PREFIX
from .render import RenderedFile, render, toml_tables
from .spec import Endpoint, GatewaySpec

HEALTHCHECK = ("wget", "--spider", "--tries", "1", f"http://localhost:{GATEWAY.port}/status")
COMMAND = ("--config-file", GATEWAY_CONFIG_PATH, "--log-format", "json")


def config_file(deployment: Deployment) -> RenderedFile:
    translation = deployment.translation
    content = render(
        "gateway/tensorzero.toml.j2",
        stack=deployment.stack,
        gateway=deployment.spec.gateway,
        models=translation.models,
        embedding_models=translation.embedding_models,
        functions=translation.functions,
        native=toml_tables(translation.native),
    )
    return RenderedFile("gateway/tensorzero.toml", "tensorzero-config", GATEWAY.role, GATEWAY_CONFIG_PATH, content)


def environment(deployment: Deployment, clickhouse: Endpoint) -> list[Variable]:
    """Only what the gateway reads: where ClickHouse is, and the keys its config names."""
    spec = deployment.spec
    env = []
    if spec.gateway.observability:
        env.append(connection_url(spec.clickhouse, deployment.variable(spec.clickhouse.password_var), clickhouse))
    for name in deployment.translation.variables:
        found = deployment.variable(name)
        # Whatever `env::` names is a provider credential, however the variable is called.
        env.append(Variable(name, found.value, found.source, True))
    return env + served_variables(spec.gateway, deployment.variables)


class Gateway(ServiceComponent):
    def __init__(
        self,
        name: str,
        spec: GatewaySpec,
        placement: Placement,
        *,
        env: list[Variable],
        config: RenderedFile,
        depends_on: list[pulumi.Resource],
        opts: Optional[pulumi.ResourceOptions] = None,
    ):
        super().__init__(f"{TYPE_PREFIX}:Gateway", name, None, opts)
        # Uploads and envs force replacement in pulumi-docker, so the gateway restarts exactly
        # when its rendered config or its environment changes.
        self.run(
            name,
            GATEWAY,
            spec,
            placement,
            ContainerPlan(
                env=env,
                healthcheck=HEALTHCHECK,
                command=COMMAND,
                files=[config],
                depends_on=depends_on,
            ),
        )
        self.register_outputs({"container": self.container.name})
