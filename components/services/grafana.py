"""Grafana: Prometheus, ClickHouse (and Loki) datasources and the TensorZero dashboards, provisioned from files.

Grafana cannot run on the development and CI machines (FACTS.md), so what it reads is proven by
the programs behind it: every PromQL expression of the dashboards by promtool, every ClickHouse
query, once the plugin's macros are expanded, by the ClickHouse engine of `chdb` (tests/services/test_grafana.py).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

from pydantic import Field

from components.core.envfiles import Variable
from components.core.names import METRICS_PATH
from components.core.plans import Endpoint, Hardening, Monitoring, Scrape, Secret, ServicePlan, Volume
from components.core.render import RenderedFile, render
from components.core.types import EnvName, Identifier, ImageRef, Port, TlsTerminator
from components.model.environment import ServiceDefinition
from components.model.settings import LOOPBACK, PUBLISHED_PORT, ServiceSpec
from components.services import clickhouse, grafana_panels, loki, prometheus
from components.services import grafana_dashboards as dashboards
from components.services import grafana_queries as dashboard_queries

if TYPE_CHECKING:
    from components.model.context import Context
    from components.model.resolved import ResolvedStack

PORT = 3000
PROVISIONING_DIR = "/etc/grafana/provisioning"
DASHBOARDS_DIR = "/var/lib/grafana-dashboards"
DATA_PATH = "/var/lib/grafana"
# The image is Alpine (Ubuntu for the -ubuntu tags) and its Dockerfile installs curl in both.
HEALTHCHECK = ("curl", "-fsS", "-o", "/dev/null", f"http://localhost:{PORT}/api/health")
DASHBOARD_FOLDER = "TensorZero"
EDGE = "edge"  # whose metrics add the status-code and duration panels


class GrafanaSpec(ServiceSpec):
    enabled: bool = Field(True, description="Deploy Grafana with the stack's datasources and dashboards.")
    image: ImageRef = Field("grafana/grafana:12.1.1", description="Pinned Grafana image.")
    port: Optional[Port] = Field(3000, description=PUBLISHED_PORT)
    admin_user: Identifier = Field("admin", description="Grafana's admin login.")
    admin_password_var: EnvName = Field(
        "GRAFANA_ADMIN_PASSWORD", description="Variable (env layer or stack secret) holding the admin password."
    )
    tls_terminated_by: Optional[TlsTerminator] = Field(
        None,
        description="Beyond loopback outside dev: what terminates TLS in front of Grafana (a reverse proxy, a "
        "tunnel); `validate` refuses Grafana published in plain HTTP beyond loopback without it.",
    )
    clickhouse_plugin_version: str = Field(
        "4.10.2",
        pattern=r"^[0-9]+\.[0-9]+\.[0-9]+$",
        description="Version of `grafana-clickhouse-datasource` installed at start.",
    )


@dataclass(frozen=True)
class Datasource:
    name: str
    uid: str
    type: str
    url: Optional[str] = None
    json_data: tuple[tuple[str, object], ...] = ()
    password_var: Optional[str] = None  # read by Grafana from its environment, never written here
    is_default: bool = False


def datasources(deployment: ResolvedStack, backends: dict[str, Endpoint]) -> list[Datasource]:
    """Each backend (by role) as a container on Grafana's host reaches it."""
    spec = deployment.spec
    store = backends[clickhouse.SERVICE.role]
    found = [
        Datasource(
            "Prometheus",
            dashboard_queries.PROMETHEUS_UID,
            "prometheus",
            url=backends[prometheus.SERVICE.role].url,
            # $__rate_interval is only right when Grafana knows the scrape interval.
            json_data=(("timeInterval", spec.prometheus.scrape_interval),),
            is_default=True,
        ),
        Datasource(
            "ClickHouse",
            dashboard_queries.CLICKHOUSE_UID,
            dashboard_queries.CLICKHOUSE_PLUGIN,
            json_data=(
                ("host", store.host),
                ("port", store.port),
                ("protocol", "http"),
                *((("secure", True),) if clickhouse.is_secure(spec.clickhouse) else ()),
                ("username", spec.clickhouse.readonly_user),
                ("defaultDatabase", spec.clickhouse.database),
            ),
            password_var=spec.clickhouse.readonly_password_var,
        ),
    ]
    if loki.SERVICE.role in backends:
        found.append(Datasource("Loki", dashboard_queries.LOKI_UID, "loki", url=backends[loki.SERVICE.role].url))
    return found


def dashboard_models(deployment: ResolvedStack, *, edge_metrics: Optional[bool] = None) -> dict[str, dict]:
    spec = deployment.spec
    return dashboards.dashboards(
        spec.clickhouse.database,
        database_metrics=spec.clickhouse.metrics,
        logs_stack=spec.name_prefix if spec.deployed(loki.SERVICE) else None,
        edge_metrics=spec.deployed(EDGE) if edge_metrics is None else edge_metrics,
    )


def config_files(deployment: ResolvedStack, backends: dict[str, Endpoint]) -> list[RenderedFile]:
    """Datasources, the dashboard provider, and each dashboard's JSON."""
    provisioning = f"{PROVISIONING_DIR}/%s/tensorzero.yml"
    return [
        RenderedFile(
            "grafana/provisioning/datasources/tensorzero.yml",
            "grafana-datasources",
            SERVICE.role,
            provisioning % "datasources",
            render(
                "grafana/provisioning/datasources/tensorzero.yml.j2",
                stack=deployment.stack,
                datasources=datasources(deployment, backends),
            ),
        ),
        RenderedFile(
            "grafana/provisioning/dashboards/tensorzero.yml",
            "grafana-dashboard-provider",
            SERVICE.role,
            provisioning % "dashboards",
            render(
                "grafana/provisioning/dashboards/tensorzero.yml.j2",
                stack=deployment.stack,
                folder=DASHBOARD_FOLDER,
                path=DASHBOARDS_DIR,
            ),
        ),
        *dashboard_files(deployment),
    ]


def dashboard_files(deployment: ResolvedStack, *, edge_metrics: Optional[bool] = None) -> list[RenderedFile]:
    """Each dashboard's JSON. The edge's panels (status codes, request duration) appear when the stack
    deploys the edge, or as `edge_metrics` says."""
    return [
        RenderedFile(
            f"grafana/dashboards/{name}",
            "grafana-dashboard",
            SERVICE.role,
            f"{DASHBOARDS_DIR}/{name}",
            grafana_panels.to_json(model),
        )
        for name, model in sorted(dashboard_models(deployment, edge_metrics=edge_metrics).items())
    ]


def plan(ctx: Context) -> ServicePlan:
    grafana: GrafanaSpec = ctx.section
    admin = ctx.credential("grafana.admin_password_var")
    here = "components/services/grafana.py"
    env = (
        ctx.from_spec("GF_SECURITY_ADMIN_USER", "grafana.admin_user"),
        # Grafana sets it when it creates its database; later changes need `grafana cli admin reset-admin-password`.
        admin.renamed("GF_SECURITY_ADMIN_PASSWORD"),
        # Installed before provisioning runs, so the ClickHouse datasource exists on the first start.
        Variable(
            "GF_PLUGINS_PREINSTALL_SYNC",
            f"{dashboard_queries.CLICKHOUSE_PLUGIN}@{grafana.clickhouse_plugin_version}",
            ctx.origin("grafana.clickhouse_plugin_version"),
            False,
        ),
        # The datasource file names this variable; Grafana substitutes it when provisioning.
        ctx.credential("clickhouse.readonly_password_var"),
        Variable("GF_USERS_ALLOW_SIGN_UP", "false", here, False),
        Variable("GF_AUTH_ANONYMOUS_ENABLED", "false", here, False),
        Variable("GF_ANALYTICS_REPORTING_ENABLED", "false", here, False),
    )
    backends = {
        service.role: ctx.reach(service) for service in (prometheus.SERVICE, loki.SERVICE) if ctx.deployed(service)
    }
    backends[clickhouse.SERVICE.role] = clickhouse.server(ctx)
    # Uploads force replacement in pulumi-docker: a changed dashboard or datasource restarts
    # Grafana, which re-provisions from the new files.
    return ServicePlan(
        # grafana/grafana runs as `grafana` (472); its plugins and data live on its volume
        hardening=Hardening(user=472),
        env=env,
        files=tuple(config_files(ctx.deployment, backends)),
        # Users, preferences, the admin password and the installed plugin live here.
        volumes=(Volume("data", "tensorzero-grafana-data", DATA_PATH),),
        healthcheck=HEALTHCHECK,
        waits_for=tuple(backends),
        image_tools=frozenset({"curl"}),
        outputs={"grafana_admin": Secret({"user": grafana.admin_user, "password": admin.value})},
        authentication=authentication(env),
    )


def authentication(env: tuple[Variable, ...]) -> Optional[str]:
    """Grafana's own login, as long as its environment turns off anonymous access and sign-up."""
    values = {variable.name: variable.value for variable in env}
    if values.get("GF_AUTH_ANONYMOUS_ENABLED") == "false" and values.get("GF_USERS_ALLOW_SIGN_UP") == "false":
        return "Grafana login (no anonymous access, no sign-up)"
    return None


def checks(spec) -> list[tuple[str, str]]:
    if spec.grafana.enabled and not spec.prometheus.enabled:
        return [("grafana.enabled", "Grafana's dashboards need Prometheus; set prometheus.enabled true")]
    bind = spec.bind_address(SERVICE.role)
    if spec.tier.value != "dev" and spec.grafana.port and not ipaddress.ip_address(bind).is_loopback:
        if not spec.grafana.tls_terminated_by:
            return [
                (
                    "grafana.bind_address",
                    f"Grafana would serve its login in plain HTTP on {bind}:{spec.grafana.port}: publish it on "
                    f"loopback (grafana.bind_address: {LOOPBACK}; reach it through an SSH tunnel), or put TLS in "
                    "front of it and name what terminates it in grafana.tls_terminated_by",
                )
            ]
    return []


SERVICE = ServiceDefinition(
    role="grafana",
    component="Grafana",
    plan=plan,
    description="Dashboards over Prometheus and ClickHouse.",
    spec=GrafanaSpec,
    container="tensorzero-grafana",
    alias="tensorzero-grafana",
    port=PORT,
    checks=checks,
    monitoring=lambda spec: Monitoring(scrapes=(Scrape(SERVICE.role, METRICS_PATH),)),
)
