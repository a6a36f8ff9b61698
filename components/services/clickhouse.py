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

With `clickhouse.external` the stack runs no ClickHouse: the gateway, Grafana and the schema one-shot use an
existing one (a managed service, an operator-run cluster) at its address, as `clickhouse.user`, with the same
database, views and retention; a replicated cluster's name reaches the gateway and the schema's DDL.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Optional
from urllib.parse import quote

from pydantic import Field, model_validator

from components.core.envfiles import Variable
from components.core.monitoring import CLICKHOUSE_JOB
from components.core.names import METRICS_PATH
from components.core.plans import Endpoint, Hardening, Monitoring, Scrape, Secret, ServicePlan, Volume
from components.core.render import RenderedFile, render
from components.core.types import EnvName, HostAddress, Identifier, ImageRef, Port, StrictModel, is_ip_address
from components.model.environment import ServiceDefinition
from components.model.settings import PUBLISHED_PORT, SEED_DEFAULT_CREDENTIAL, ServiceSpec, Tier

if TYPE_CHECKING:
    from components.model.context import Context
    from components.model.resolved import ResolvedStack

ALIAS = "tensorzero-clickhouse"
PORT = 8123  # HTTP interface: the gateway, Grafana, the seed's curl
NATIVE_PORT = 9000  # clickhouse-client's native protocol
METRICS_PORT = 9363  # the built-in Prometheus endpoint; internal only
PING_PATH = "/ping"
CONFIG_DIR = "/etc/clickhouse-server/config.d"
USERS_DIR = "/etc/clickhouse-server/users.d"
DATA_PATH = "/var/lib/clickhouse"
USER = 101  # the image's `clickhouse` user and group, which owns its data (the alpine image too)
BACKUPS_PATH = "/var/lib/clickhouse-backups/"
BACKUPS_MOUNT = BACKUPS_PATH.rstrip("/")  # where the backups volume is mounted (here and in the backup container)
BACKUPS_DISK = "backups"  # the seed's `BACKUP ... TO Disk('backups', ...)`
BACKUPS_VOLUME = "backups"
OFFSITE_ENDPOINT = "pmoves_offsite_backups"  # the <s3> endpoint section that holds the off-host credentials

HEALTHCHECK = ("wget", "--spider", "-q", f"http://127.0.0.1:{PORT}{PING_PATH}")
SERVER_CONFIG = "clickhouse-server-config"  # merged into config.xml from config.d/
USERS_CONFIG = "clickhouse-users-config"  # merged into users.xml from users.d/
READONLY_PROFILE = "pmoves_readonly"
# Settings Grafana's ClickHouse plugin sets on every query (its README: clickhouse-go sets
# max_execution_time from the query timeout); a readonly=1 user may change only these.
READONLY_CHANGEABLE = ("max_execution_time",)
GRAFANA = "grafana"  # the only reader of the read-only user
# The official image's entrypoint puts CLICKHOUSE_PASSWORD between <password> tags as it is: these two break
# the XML. (The read-only user's password is read with `from_env`, which needs no escaping.)
XML_UNSAFE = "&<"
BACKUP = "backup"  # the backup service, whose off-host destination ClickHouse writes to
# PMOVES's compose points the gateway at `.../default` (FACTS): an adopted volume from it holds its rows there.
PMOVES_DATABASE = "default"


class ExternalClickHouse(StrictModel):
    """An existing ClickHouse the stack uses instead of running its own."""

    host: HostAddress = Field(description="Its address (a ClickHouse Cloud host, an operator-run cluster's Service).")
    http_port: Port = Field(8443, description="HTTP interface: the gateway and Grafana (8443 TLS, 8123 plain).")
    native_port: Port = Field(
        9440, description="Native protocol: the schema one-shot's clickhouse-client (9440 TLS, 9000 plain)."
    )
    secure: bool = Field(True, description="TLS on both ports.")
    cluster_name: Optional[Identifier] = Field(
        None,
        description="A self-hosted replicated (unsharded) cluster's name: TensorZero's "
        "TENSORZERO_CLICKHOUSE_CLUSTER_NAME, and `ON CLUSTER` for the stack's DDL; null for a single node or "
        "ClickHouse Cloud.",
    )

    @model_validator(mode="after")
    def _reachable(self):
        if self.host == "localhost" or (is_ip_address(self.host) and ipaddress.ip_address(self.host).is_loopback):
            raise ValueError(f"host {self.host} is each container's own loopback, where no ClickHouse runs")
        if self.http_port == self.native_port:
            raise ValueError(f"http_port and native_port are both {self.http_port}: ClickHouse serves each on its own")
        return self


class ClickHouseSpec(ServiceSpec):
    image: ImageRef = Field("clickhouse/clickhouse-server:24.12-alpine", description="Pinned ClickHouse image.")
    port: Optional[Port] = Field(PORT, description=PUBLISHED_PORT)
    database: Identifier = Field("tensorzero", description="Database TensorZero writes to.")
    user: Identifier = Field("tensorzero", description="ClickHouse user the gateway connects as.")
    password_var: EnvName = Field(
        "TENSORZERO_CLICKHOUSE_PASSWORD",
        description="Variable (env layer or stack secret) holding that user's password.",
    )
    log_level: str = Field(
        "warning",
        pattern="^(trace|debug|information|warning|error)$",
        description="ClickHouse server log level (logged to the console only).",
    )
    metrics: bool = Field(True, description="Serve ClickHouse's built-in Prometheus endpoint (port 9363, internal).")
    backups: bool = Field(
        True,
        description="Declare the `backups` disk on its own volume: the seed's `BACKUP ... TO Disk('backups', ...)`.",
    )
    retention_days: Optional[int] = Field(
        None, ge=1, description="Drop inference rows older than this many days (table TTL); null keeps everything."
    )
    requests_view: bool = Field(
        True, description="Create the seed's `requests` view over ModelInference once the gateway's migrations ran."
    )
    readonly_user: Identifier = Field("grafana_ro", description="Read-only ClickHouse user Grafana queries as.")
    readonly_password_var: EnvName = Field(
        "TENSORZERO_CLICKHOUSE_READONLY_PASSWORD",
        description="Variable (env layer or stack secret) holding the read-only user's password; needed with Grafana.",
    )
    external: Optional[ExternalClickHouse] = Field(
        None,
        description="Use this existing ClickHouse instead of running one (its users, among them readonly_user for "
        "Grafana, are its own); null runs the stack's.",
    )

    @model_validator(mode="after")
    def _nothing_of_its_own(self):
        """With an external ClickHouse, settings of a container the stack no longer runs would be dropped unread."""
        own = ("port", "bind_address", "networks", "adopt_volumes", "memory_mb", "host")
        unused = [name for name in own if self.external and name in self.model_fields_set and getattr(self, name)]
        if unused:
            raise ValueError(f"{', '.join(unused)}: not used with external (the stack runs no ClickHouse of its own)")
        return self


def _file(directory: str, mount_dir: str, name: str, kind: str, **context) -> RenderedFile:
    return RenderedFile(
        path=f"clickhouse/{directory}/{name}",
        kind=kind,
        container=SERVICE.role,
        mount=f"{mount_dir}/{name}",
        content=render(f"clickhouse/{directory}/{name}.j2", **context),
    )


def has_readonly_user(deployment: ResolvedStack) -> bool:
    """The read-only user exists for Grafana, and only where Grafana is deployed."""
    return deployment.spec.deployed(GRAFANA)


def config_files(deployment: ResolvedStack) -> list[RenderedFile]:
    spec = deployment.spec.clickhouse
    files = [
        _file("config.d", CONFIG_DIR, "pmoves.xml", SERVER_CONFIG, log_level=spec.log_level, database=spec.database)
    ]
    if spec.metrics:
        files.append(
            _file("config.d", CONFIG_DIR, "prometheus.xml", SERVER_CONFIG, port=METRICS_PORT, endpoint=METRICS_PATH)
        )
    if spec.backups:
        files.append(_file("config.d", CONFIG_DIR, "backups.xml", SERVER_CONFIG, disk=BACKUPS_DISK, path=BACKUPS_PATH))
    if offsite := offsite_backups(deployment.spec):
        files.append(
            _file(
                "config.d",
                CONFIG_DIR,
                "backups-offsite.xml",
                SERVER_CONFIG,
                endpoint_name=OFFSITE_ENDPOINT,
                url=offsite.url.rstrip("/") + "/",
                access_key_var=offsite.access_key_var,
                secret_key_var=offsite.secret_key_var,
                region=offsite.region,
            )
        )
    if has_readonly_user(deployment):
        files.append(_file("config.d", CONFIG_DIR, "readonly-constraints.xml", SERVER_CONFIG))
        files.append(
            _file(
                "users.d",
                USERS_DIR,
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


def offsite_backups(spec):
    """The backup service's off-host destination, when it is deployed with one (ClickHouse writes there)."""
    return spec.backup.offsite if spec.deployed(BACKUP) else None


def server(ctx: Context, native: bool = False) -> Endpoint:
    """Where a service reaches ClickHouse's HTTP (or native) interface: the stack's own, or the external one."""
    external = ctx.spec.clickhouse.external
    if external is None:
        return ctx.reach(SERVICE, port=NATIVE_PORT if native else None)
    return Endpoint(external.host, external.native_port if native else external.http_port)


def is_secure(spec: ClickHouseSpec) -> bool:
    """TLS to the external ClickHouse; the stack's own is reached in the clear on its network."""
    return spec.external is not None and spec.external.secure


def connection_url(spec: ClickHouseSpec, password: Variable, endpoint: Endpoint) -> Variable:
    """TENSORZERO_CLICKHOUSE_URL: the only way the gateway learns where ClickHouse is."""
    credentials = f"{quote(spec.user, safe='')}:{quote(password.value, safe='')}"
    scheme = "https" if is_secure(spec) else "http"
    host = f"[{endpoint.host}]" if ":" in endpoint.host else endpoint.host  # an IPv6 address
    url = f"{scheme}://{credentials}@{host}:{endpoint.port}/{spec.database}"
    source = f"built from clickhouse.* and {password.source}"
    return Variable("TENSORZERO_CLICKHOUSE_URL", url, source, True, missing=password.missing)


def plan(ctx: Context) -> ServicePlan:
    spec: ClickHouseSpec = ctx.section
    password = ctx.credential("clickhouse.password_var")
    if unreadable := sorted(set(password.value) & set(XML_UNSAFE)):
        ctx.problem(
            spec.password_var,
            f"holds {' and '.join(map(repr, unreadable))}, which the image's entrypoint writes unescaped into "
            "users.d/default-user.xml: ClickHouse would not start; choose a password without them",
            file=password.source,
        )
    env = [
        ctx.from_spec("CLICKHOUSE_USER", "clickhouse.user"),
        password.renamed("CLICKHOUSE_PASSWORD"),
        ctx.from_spec("CLICKHOUSE_DB", "clickhouse.database"),
        # Lets the seed's user manage users and grants from SQL as well.
        Variable("CLICKHOUSE_DEFAULT_ACCESS_MANAGEMENT", "1", "components/services/clickhouse.py", False),
    ]
    if has_readonly_user(ctx.deployment):
        # Read by users.d/readonly.xml (`from_env`) under the same name.
        env.append(ctx.credential("clickhouse.readonly_password_var"))
    if offsite_backups(ctx.spec):
        # Read by config.d/backups-offsite.xml (`from_env`): BACKUP ... TO S3(url) names no credential.
        env += [ctx.credential("backup.offsite.access_key_var"), ctx.credential("backup.offsite.secret_key_var")]
    volumes = [Volume("data", "tensorzero-clickhouse-data", DATA_PATH)]
    if spec.backups:
        # Apart from the data volume, and protected like it: a backup must outlive the data it saves.
        volumes.append(Volume(BACKUPS_VOLUME, "tensorzero-clickhouse-backups", BACKUPS_MOUNT))
    if "data" in spec.adopt_volumes and spec.database != PMOVES_DATABASE:
        ctx.notice(
            f"clickhouse.adopt_volumes.data: the gateway logs to database '{spec.database}'; PMOVES's compose "
            f"logged to '{PMOVES_DATABASE}' (TENSORZERO_CLICKHOUSE_URL .../{PMOVES_DATABASE}), and rows there stay "
            f"out of the gateway's and the `requests` view's sight (clickhouse.database: {PMOVES_DATABASE} "
            "keeps using them)"
        )
    operators = ctx.spec.published_endpoint(SERVICE) or Endpoint(ALIAS, PORT)
    # Hardening exception: on Docker, the official image starts as root and its entrypoint chowns the data
    # and backups volumes before dropping to `clickhouse` (101) itself; it keeps CHOWN, SETUID and SETGID.
    # On a cluster the pod runs as 101 from the start: fsGroup gives it the volumes, and the entrypoint,
    # started as non-root, skips its chown and runs the server as it is.
    return ServicePlan(
        env=tuple(env),
        files=tuple(config_files(ctx.deployment)),
        volumes=tuple(volumes),
        healthcheck=HEALTHCHECK,
        image_tools=frozenset({"wget"}),
        outputs={"clickhouse_url": Secret(connection_url(spec, password, operators).value)},
        hardening=Hardening(cluster_user=USER),
    )


def monitoring(spec) -> Monitoring:
    # The metrics port is never published: Prometheus must run on ClickHouse's host to scrape it.
    scrape = Scrape(CLICKHOUSE_JOB, METRICS_PATH, port=METRICS_PORT, switch="clickhouse.metrics")
    return Monitoring(scrapes=(scrape,) if spec.clickhouse.metrics else (), probe=PING_PATH)


def checks(spec) -> list[tuple[str, str]]:
    clickhouse: ClickHouseSpec = spec.clickhouse
    problems = []
    if clickhouse.readonly_user in (clickhouse.user, "default"):
        problems.append(
            (
                "clickhouse.readonly_user",
                f"'{clickhouse.readonly_user}' must differ from clickhouse.user and from 'default' (the image's "
                "entrypoint removes 'default'; a same-named user would merge)",
            )
        )
    if spec.tier != Tier.dev and clickhouse.user == SEED_DEFAULT_CREDENTIAL:
        problems.append(
            ("clickhouse.user", f"the seed's default user '{SEED_DEFAULT_CREDENTIAL}' is refused in {spec.tier.value}")
        )
    return problems


def destructive(spec) -> list[tuple[str, str, str]]:
    clickhouse: ClickHouseSpec = spec.clickhouse
    found = []
    if clickhouse.retention_days:
        days = clickhouse.retention_days
        deletes = f"rows older than {days} days are deleted at ClickHouse's next merge, backups or not"
        found.append(("clickhouse.retention_days", f"clickhouse.retention_days: {days}", deletes))
    if not clickhouse.backups:
        deletes = "the backups volume leaves the stack and no backup is taken any more"
        found.append(("clickhouse.backups", "clickhouse.backups: false", deletes))
    return found


SERVICE = ServiceDefinition(
    role="clickhouse",
    component="ClickHouse",
    plan=plan,
    description="Observability store.",
    spec=ClickHouseSpec,
    is_deployed=lambda spec: spec.clickhouse.external is None,
    container="tensorzero-clickhouse",
    alias=ALIAS,
    port=PORT,
    checks=checks,
    destructive=destructive,
    monitoring=monitoring,
)
