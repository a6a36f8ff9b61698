"""ClickHouse: where the gateway logs every inference."""

from typing import Optional
from urllib.parse import quote

import pulumi

from .container import ContainerPlan, ServiceComponent, data_volume, served_variables
from .envfiles import Variable
from .host import Placement
from .loader import Deployment
from .names import CLICKHOUSE, CLICKHOUSE_CONFIG_DIR, CLICKHOUSE_DATA_PATH, TYPE_PREFIX
from .render import RenderedFile, render
from .spec import ClickHouseSpec, Endpoint

HEALTHCHECK = ("wget", "--spider", "-q", f"http://127.0.0.1:{CLICKHOUSE.port}/ping")


def config_files(deployment: Deployment) -> list[RenderedFile]:
    spec = deployment.spec.clickhouse
    return [
        RenderedFile(
            path="clickhouse/config.d/pmoves.xml",
            kind="clickhouse-server-config",
            container=CLICKHOUSE.role,
            mount=f"{CLICKHOUSE_CONFIG_DIR}/pmoves.xml",
            content=render("clickhouse/config.d/pmoves.xml.j2", log_level=spec.log_level),
        )
    ]


def environment(deployment: Deployment) -> list[Variable]:
    spec = deployment.spec.clickhouse
    from_spec = f"{deployment.stack_file}: clickhouse"
    password = deployment.variable(spec.password_var)
    return [
        Variable("CLICKHOUSE_USER", spec.user, f"{from_spec}.user", False),
        Variable("CLICKHOUSE_PASSWORD", password.value, password.source, True),
        Variable("CLICKHOUSE_DB", spec.database, f"{from_spec}.database", False),
        # Lets the seed's user manage the read-only users later issues add.
        Variable("CLICKHOUSE_DEFAULT_ACCESS_MANAGEMENT", "1", "components/clickhouse.py", False),
        *served_variables(spec, deployment.variables),
    ]


def connection_url(spec: ClickHouseSpec, password: Variable, endpoint: Endpoint) -> Variable:
    """TENSORZERO_CLICKHOUSE_URL: the only way the gateway learns where ClickHouse is."""
    credentials = f"{quote(spec.user, safe='')}:{quote(password.value, safe='')}"
    url = f"http://{credentials}@{endpoint.host}:{endpoint.port}/{spec.database}"
    return Variable("TENSORZERO_CLICKHOUSE_URL", url, f"built from clickhouse.* and {password.source}", True)


class ClickHouse(ServiceComponent):
    def __init__(
        self,
        name: str,
        spec: ClickHouseSpec,
        placement: Placement,
        *,
        env: list[Variable],
        files: list[RenderedFile],
        protect_data: bool,
        opts: Optional[pulumi.ResourceOptions] = None,
    ):
        super().__init__(f"{TYPE_PREFIX}:ClickHouse", name, None, opts)
        self.data = data_volume(self, f"{name}-data", "tensorzero-clickhouse-data", placement, protect_data)
        self.run(
            name,
            CLICKHOUSE,
            spec,
            placement,
            ContainerPlan(
                env=env,
                healthcheck=HEALTHCHECK,
                files=files,
                volumes=[(self.data, CLICKHOUSE_DATA_PATH)],
            ),
        )
        self.register_outputs({"container": self.container.name})
