"""ClickHouse: where the gateway logs every inference.

What the stack adds to the image, each as its own file so each decision is one file present or not:
- config.d/pmoves.xml: logs to the console only; `default_database` is the TensorZero database, which
  the server creates at start, so the seed's unqualified queries land there;
- config.d/prometheus.xml (`clickhouse.metrics`): the built-in Prometheus endpoint;
- config.d/backups.xml (`clickhouse.backups`): the `backups` disk the seed's `BACKUP` names, on a
  volume of its own;
- users.d/readonly.xml and config.d/readonly-constraints.xml (with Grafana): the read-only user Grafana
  queries as, its password read from the environment (`from_env`), so no rendered file holds it.
  users.d/ is not mounted as a whole: the image's entrypoint writes users.d/default-user.xml there.
"""

from typing import Optional
from urllib.parse import quote

import pulumi

from .container import ContainerPlan, ServiceComponent, data_volume, served_variables
from .envfiles import Variable
from .host import Placement
from .loader import Deployment
from .names import (
    CLICKHOUSE,
    CLICKHOUSE_BACKUPS_DISK,
    CLICKHOUSE_BACKUPS_PATH,
    CLICKHOUSE_CONFIG_DIR,
    CLICKHOUSE_DATA_PATH,
    CLICKHOUSE_METRICS_PATH,
    CLICKHOUSE_METRICS_PORT,
    CLICKHOUSE_PING_PATH,
    CLICKHOUSE_USERS_DIR,
    GRAFANA,
    TYPE_PREFIX,
)
from .render import RenderedFile, render
from .spec import ClickHouseSpec, Endpoint

HEALTHCHECK = ("wget", "--spider", "-q", f"http://127.0.0.1:{CLICKHOUSE.port}{CLICKHOUSE_PING_PATH}")
SERVER_CONFIG = "clickhouse-server-config"  # merged into config.xml from config.d/
USERS_CONFIG = "clickhouse-users-config"  # merged into users.xml from users.d/
READONLY_PROFILE = "pmoves_readonly"
# Settings Grafana's ClickHouse plugin sets on every query (its README: clickhouse-go sets
# max_execution_time from the query timeout); a readonly=1 user may change only these.
READONLY_CHANGEABLE = ("max_execution_time",)


def _file(directory: str, mount_dir: str, name: str, kind: str, **context) -> RenderedFile:
    return RenderedFile(
        path=f"clickhouse/{directory}/{name}",
        kind=kind,
        container=CLICKHOUSE.role,
        mount=f"{mount_dir}/{name}",
        content=render(f"clickhouse/{directory}/{name}.j2", **context),
    )


def has_readonly_user(deployment: Deployment) -> bool:
    """The read-only user exists for Grafana, and only where Grafana is deployed."""
    return deployment.spec.deployed(GRAFANA)


def config_files(deployment: Deployment) -> list[RenderedFile]:
    spec = deployment.spec.clickhouse
    files = [
        _file(
            "config.d",
            CLICKHOUSE_CONFIG_DIR,
            "pmoves.xml",
            SERVER_CONFIG,
            log_level=spec.log_level,
            database=spec.database,
        )
    ]
    if spec.metrics:
        files.append(
            _file(
                "config.d",
                CLICKHOUSE_CONFIG_DIR,
                "prometheus.xml",
                SERVER_CONFIG,
                port=CLICKHOUSE_METRICS_PORT,
                endpoint=CLICKHOUSE_METRICS_PATH,
            )
        )
    if spec.backups:
        files.append(
            _file(
                "config.d",
                CLICKHOUSE_CONFIG_DIR,
                "backups.xml",
                SERVER_CONFIG,
                disk=CLICKHOUSE_BACKUPS_DISK,
                path=CLICKHOUSE_BACKUPS_PATH,
            )
        )
    if has_readonly_user(deployment):
        files.append(_file("config.d", CLICKHOUSE_CONFIG_DIR, "readonly-constraints.xml", SERVER_CONFIG))
        files.append(
            _file(
                "users.d",
                CLICKHOUSE_USERS_DIR,
                "readonly.xml",
                USERS_CONFIG,
                user=spec.readonly_user,
                profile=READONLY_PROFILE,
                changeable=READONLY_CHANGEABLE,
                password_env=spec.readonly_password_var,
                database=spec.database,
            )
        )
    return files


def environment(deployment: Deployment) -> list[Variable]:
    spec = deployment.spec.clickhouse
    from_spec = f"{deployment.stack_file}: clickhouse"
    password = deployment.variable(spec.password_var)
    env = [
        Variable("CLICKHOUSE_USER", spec.user, f"{from_spec}.user", False),
        Variable("CLICKHOUSE_PASSWORD", password.value, password.source, True),
        Variable("CLICKHOUSE_DB", spec.database, f"{from_spec}.database", False),
        # Lets the seed's user manage users and grants from SQL as well.
        Variable("CLICKHOUSE_DEFAULT_ACCESS_MANAGEMENT", "1", "components/clickhouse.py", False),
    ]
    if has_readonly_user(deployment):
        # Read by users.d/readonly.xml (`from_env`) under the same name.
        readonly = deployment.variable(spec.readonly_password_var)
        env.append(Variable(spec.readonly_password_var, readonly.value, readonly.source, True))
    return env + served_variables(spec, deployment.variables)


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
        volumes = [(self.data, CLICKHOUSE_DATA_PATH)]
        self.backups = None
        if spec.backups:
            # Apart from the data volume, and protected like it: a backup must outlive the data it saves.
            self.backups = data_volume(
                self, f"{name}-backups", "tensorzero-clickhouse-backups", placement, protect_data
            )
            volumes.append((self.backups, CLICKHOUSE_BACKUPS_PATH.rstrip("/")))
        self.run(
            name,
            CLICKHOUSE,
            spec,
            placement,
            ContainerPlan(env=env, healthcheck=HEALTHCHECK, files=files, volumes=volumes),
        )
        self.register_outputs({"container": self.container.name})
