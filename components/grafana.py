"""Grafana: Prometheus, ClickHouse (and Loki) datasources and the TensorZero dashboards, provisioned from files.

Grafana cannot run on the development and CI machines (FACTS.md), so what it reads is proven by
the programs behind it: every PromQL expression of the dashboards by promtool, every ClickHouse
query, once the plugin's macros are expanded, by the ClickHouse engine of `chdb` (tests/test_grafana.py).
"""

from dataclasses import dataclass
from typing import Optional

import pulumi

from . import dashboards
from .container import ContainerPlan, ServiceComponent, data_volume, served_variables
from .envfiles import Variable
from .host import Placement
from .loader import Deployment
from .names import (
    CLICKHOUSE,
    EDGE,
    GRAFANA,
    GRAFANA_DASHBOARDS_DIR,
    GRAFANA_DATA_PATH,
    GRAFANA_PROVISIONING_DIR,
    LOKI,
    PROMETHEUS,
    TYPE_PREFIX,
)
from .render import RenderedFile, render
from .spec import GrafanaSpec

# The image is Alpine (Ubuntu for the -ubuntu tags) and its Dockerfile installs curl in both.
HEALTHCHECK = ("curl", "-fsS", "-o", "/dev/null", f"http://localhost:{GRAFANA.port}/api/health")
DASHBOARD_FOLDER = "TensorZero"


@dataclass(frozen=True)
class Datasource:
    name: str
    uid: str
    type: str
    url: Optional[str] = None
    json_data: tuple[tuple[str, object], ...] = ()
    password_var: Optional[str] = None  # read by Grafana from its environment, never written here
    is_default: bool = False


def datasources(deployment: Deployment) -> list[Datasource]:
    """Each backend as a container on Grafana's host reaches it."""
    spec = deployment.spec
    here = spec.grafana.host
    clickhouse = spec.endpoint(CLICKHOUSE, seen_from=here)
    found = [
        Datasource(
            "Prometheus",
            dashboards.PROMETHEUS_UID,
            "prometheus",
            url=spec.endpoint(PROMETHEUS, seen_from=here).url,
            # $__rate_interval is only right when Grafana knows the scrape interval.
            json_data=(("timeInterval", spec.prometheus.scrape_interval),),
            is_default=True,
        ),
        Datasource(
            "ClickHouse",
            dashboards.CLICKHOUSE_UID,
            dashboards.CLICKHOUSE_PLUGIN,
            json_data=(
                ("host", clickhouse.host),
                ("port", clickhouse.port),
                ("protocol", "http"),
                ("username", spec.clickhouse.readonly_user),
                ("defaultDatabase", spec.clickhouse.database),
            ),
            password_var=spec.clickhouse.readonly_password_var,
        ),
    ]
    if spec.deployed(LOKI):
        found.append(Datasource("Loki", dashboards.LOKI_UID, "loki", url=spec.endpoint(LOKI, seen_from=here).url))
    return found


def dashboard_models(deployment: Deployment, *, edge_metrics: Optional[bool] = None) -> dict[str, dict]:
    spec = deployment.spec
    return dashboards.dashboards(
        spec.clickhouse.database,
        database_metrics=spec.clickhouse.metrics,
        logs_stack=spec.name_prefix if spec.deployed(LOKI) else None,
        edge_metrics=spec.deployed(EDGE) if edge_metrics is None else edge_metrics,
    )


def config_files(deployment: Deployment, *, edge_metrics: Optional[bool] = None) -> list[RenderedFile]:
    """Datasources, the dashboard provider, and each dashboard's JSON.

    The edge's panels (status codes, request duration) appear when the stack deploys the edge,
    or as `edge_metrics` says.
    """
    provisioning = f"{GRAFANA_PROVISIONING_DIR}/%s/tensorzero.yml"
    files = [
        RenderedFile(
            "grafana/provisioning/datasources/tensorzero.yml",
            "grafana-datasources",
            GRAFANA.role,
            provisioning % "datasources",
            render(
                "grafana/provisioning/datasources/tensorzero.yml.j2",
                stack=deployment.stack,
                datasources=datasources(deployment),
            ),
        ),
        RenderedFile(
            "grafana/provisioning/dashboards/tensorzero.yml",
            "grafana-dashboard-provider",
            GRAFANA.role,
            provisioning % "dashboards",
            render(
                "grafana/provisioning/dashboards/tensorzero.yml.j2",
                stack=deployment.stack,
                folder=DASHBOARD_FOLDER,
                path=GRAFANA_DASHBOARDS_DIR,
            ),
        ),
    ]
    for name, model in sorted(dashboard_models(deployment, edge_metrics=edge_metrics).items()):
        files.append(
            RenderedFile(
                f"grafana/dashboards/{name}",
                "grafana-dashboard",
                GRAFANA.role,
                f"{GRAFANA_DASHBOARDS_DIR}/{name}",
                dashboards.to_json(model),
            )
        )
    return files


def environment(deployment: Deployment) -> list[Variable]:
    spec = deployment.spec
    grafana = spec.grafana
    from_spec = f"{deployment.stack_file}: grafana"
    admin = deployment.variable(grafana.admin_password_var)
    readonly = deployment.variable(spec.clickhouse.readonly_password_var)
    here = "components/grafana.py"
    return [
        Variable("GF_SECURITY_ADMIN_USER", grafana.admin_user, f"{from_spec}.admin_user", False),
        # Grafana sets it when it creates its database; later changes need `grafana cli admin reset-admin-password`.
        Variable("GF_SECURITY_ADMIN_PASSWORD", admin.value, admin.source, True),
        # Installed before provisioning runs, so the ClickHouse datasource exists on the first start.
        Variable(
            "GF_PLUGINS_PREINSTALL_SYNC",
            f"{dashboards.CLICKHOUSE_PLUGIN}@{grafana.clickhouse_plugin_version}",
            f"{from_spec}.clickhouse_plugin_version",
            False,
        ),
        # The datasource file names this variable; Grafana substitutes it when provisioning.
        Variable(spec.clickhouse.readonly_password_var, readonly.value, readonly.source, True),
        Variable("GF_USERS_ALLOW_SIGN_UP", "false", here, False),
        Variable("GF_AUTH_ANONYMOUS_ENABLED", "false", here, False),
        Variable("GF_ANALYTICS_REPORTING_ENABLED", "false", here, False),
        *served_variables(grafana, deployment.variables),
    ]


class Grafana(ServiceComponent):
    def __init__(
        self,
        name: str,
        spec: GrafanaSpec,
        placement: Placement,
        *,
        env: list[Variable],
        files: list[RenderedFile],
        protect_data: bool,
        depends_on: list[pulumi.Resource],
        opts: Optional[pulumi.ResourceOptions] = None,
    ):
        super().__init__(f"{TYPE_PREFIX}:Grafana", name, None, opts)
        # Users, preferences, the admin password and the installed plugin live here.
        self.data = data_volume(self, f"{name}-data", "tensorzero-grafana-data", placement, protect_data)
        # Uploads force replacement in pulumi-docker: a changed dashboard or datasource restarts
        # Grafana, which re-provisions from the new files.
        self.run(
            name,
            GRAFANA,
            spec,
            placement,
            ContainerPlan(
                env=env,
                healthcheck=HEALTHCHECK,
                files=files,
                volumes=[(self.data, GRAFANA_DATA_PATH)],
                depends_on=depends_on,
            ),
        )
        self.register_outputs({"container": self.container.name})
