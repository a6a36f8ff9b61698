"""The environment spec: one pydantic model per stack, the single source of truth.

Each top-level field is one key of the stack's config
(`stacks/Pulumi.<stack>.yaml`, namespace `pmoves-tensorzero:`).
"""

import ipaddress
from dataclasses import dataclass
from enum import Enum
from typing import Optional

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .names import (
    ALLOY,
    BLACKBOX,
    CLICKHOUSE,
    DEFAULT_ENV_LAYERS,
    EDGE,
    EDGE_API_KEY_ENV,
    GATEWAY,
    GATEWAY_BEHIND_EDGE_ALIAS,
    GRAFANA,
    LOKI,
    OLLAMA,
    PROMETHEUS,
    SERVICES,
    UI,
    Service,
)
from .types import DockerName, EnvName, HostAddress, Identifier, ImageRef, IPAddress, Port, image_tag

# The seed's own credentials, and the images' defaults: fine on a laptop, refused where data matters.
SEED_DEFAULT_CREDENTIAL = "tensorzero"
SEED_DEFAULT_CREDENTIALS = (SEED_DEFAULT_CREDENTIAL, "admin")


# (consumer, dependency): who must reach whom, when both are deployed.
DEPENDENCIES = (
    (EDGE, GATEWAY),
    (GATEWAY, CLICKHOUSE),
    (GATEWAY, OLLAMA),
    (UI, GATEWAY),
    (PROMETHEUS, GATEWAY),
    (PROMETHEUS, EDGE),
    (PROMETHEUS, CLICKHOUSE),
    (PROMETHEUS, BLACKBOX),
    (PROMETHEUS, GRAFANA),
    (PROMETHEUS, LOKI),
    (PROMETHEUS, ALLOY),
    (BLACKBOX, GATEWAY),
    (BLACKBOX, CLICKHOUSE),
    (BLACKBOX, UI),
    (BLACKBOX, OLLAMA),
    (GRAFANA, PROMETHEUS),
    (GRAFANA, CLICKHOUSE),
    (GRAFANA, LOKI),
    (ALLOY, LOKI),
)

# Services with no switch of their own: each is deployed exactly when the service it serves is.
FOLLOWS = {BLACKBOX: PROMETHEUS, ALLOY: LOKI}


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Tier(str, Enum):
    dev = "dev"
    staging = "staging"
    prod = "prod"


class DockerHost(StrictModel):
    url: str = Field(
        "unix:///var/run/docker.sock",
        description="Docker daemon this host's provider talks to (unix://, tcp:// or ssh://).",
    )
    address: HostAddress = Field(
        "127.0.0.1",
        description="Address at which services published on this host are reached, "
        "by operators and by services placed on other hosts.",
    )


PUBLISHED_PORT = "Host port the service is published on; null keeps it internal."
DURATION = r"^[0-9]+(ms|s|m|h|d|w|y)$"


class ServiceSpec(StrictModel):
    image: ImageRef = Field(description="Pinned image reference (repository:tag).")
    host: str = Field("main", description="Key in `hosts` of the Docker host this service runs on.")
    port: Optional[Port] = Field(description=PUBLISHED_PORT)
    memory_mb: Optional[int] = Field(None, ge=64, description="Memory limit of the container in MB.")
    extra_env: list[EnvName] = Field(
        default_factory=list,
        description="Further variables from the env layers this container receives, by name.",
    )


class ClickHouseSpec(ServiceSpec):
    image: ImageRef = Field("clickhouse/clickhouse-server:24.12-alpine", description="Pinned ClickHouse image.")
    port: Optional[Port] = Field(CLICKHOUSE.port, description=PUBLISHED_PORT)
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


class GatewaySpec(ServiceSpec):
    image: ImageRef = Field("tensorzero/gateway:2026.6.0", description="Pinned gateway image; same tag as the UI.")
    port: Optional[Port] = Field(3030, description=PUBLISHED_PORT)
    observability: bool = Field(True, description="Log inferences to ClickHouse (`gateway.observability.enabled`).")
    async_writes: bool = Field(
        False, description="Write observability rows without waiting (`observability.async_writes`)."
    )
    debug: bool = Field(False, description="Gateway debug logging (`gateway.debug`); logs prompts, keep off in prod.")


class EdgeSpec(ServiceSpec):
    """The compatibility edge: the seed's API (`/v1/...`, bare model names, bearer key) in front of the gateway."""

    enabled: bool = Field(True, description="Put the compatibility edge in front of the gateway.")
    image: ImageRef = Field("openresty/openresty:1.27.1.2-bookworm", description="Pinned OpenResty image.")
    host: str = Field("main", description="Key in `hosts`; must be the gateway's host.")
    port: Optional[Port] = Field(
        None,
        description="Host port the edge publishes. Null takes gateway.port, and the gateway itself is not published.",
    )
    api_key_var: Optional[EnvName] = Field(
        EDGE_API_KEY_ENV,
        description="Variable (env layer or stack secret) holding the key callers send as `Authorization: Bearer`; "
        "when it is unset or empty, or this is null, the edge asks for no key.",
    )
    client_max_body_size: str = Field(
        "32m", pattern=r"^[1-9][0-9]*[km]?$", description="Largest request body accepted (nginx size: 512k, 32m)."
    )
    upstream_timeout_s: int = Field(
        600,
        ge=1,
        le=3600,
        description="How long the gateway may stay silent: a whole unstreamed answer, or between chunks.",
    )


class UiSpec(ServiceSpec):
    enabled: bool = Field(True, description="Deploy the TensorZero UI.")
    image: ImageRef = Field("tensorzero/ui:2026.6.0", description="Pinned UI image; same tag as the gateway.")
    port: Optional[Port] = Field(UI.port, description=PUBLISHED_PORT)


class OllamaSpec(ServiceSpec):
    enabled: bool = Field(True, description="Deploy the stack's own Ollama (`pmoves-ollama`).")
    image: ImageRef = Field("ollama/ollama:0.12.6", description="Pinned Ollama image.")
    port: Optional[Port] = Field(OLLAMA.port, description=PUBLISHED_PORT)
    gpu: bool = Field(False, description="Request every NVIDIA GPU of the host.")
    pull_models: bool = Field(True, description="Pull the catalog's Ollama models at deploy.")


class AlertThresholds(StrictModel):
    """Every alert threshold, in one place; `promtool test rules` fixtures exercise each."""

    for_duration: str = Field("5m", pattern=DURATION, description="How long a condition holds before it alerts.")
    gateway_overhead_p99_seconds: float = Field(
        0.05, gt=0, description="p99 of the gateway's own overhead (not the provider's latency) above this alerts."
    )
    clickhouse_memory_ratio: float = Field(
        0.9, gt=0, lt=1, description="ClickHouse resident memory above this share of its limit (or of the host) alerts."
    )
    clickhouse_disk_free_ratio: float = Field(
        0.1, gt=0, lt=1, description="Free space on ClickHouse's disk below this share alerts."
    )
    gateway_error_ratio: float = Field(
        0.05,
        gt=0,
        lt=1,
        description="Share of requests the edge answers with a 5xx (over 5m) above this alerts; needs the edge.",
    )


class PrometheusSpec(ServiceSpec):
    enabled: bool = Field(True, description="Deploy Prometheus (with its blackbox exporter) for this stack.")
    image: ImageRef = Field("prom/prometheus:v3.5.0", description="Pinned Prometheus image.")
    port: Optional[Port] = Field(PROMETHEUS.port, description=PUBLISHED_PORT)
    retention: str = Field("15d", pattern=DURATION, description="How long Prometheus keeps samples.")
    scrape_interval: str = Field("15s", pattern=DURATION, description="How often every target is scraped.")
    alerts: AlertThresholds = Field(default_factory=AlertThresholds, description="Alert thresholds.")


class BlackboxSpec(ServiceSpec):
    image: ImageRef = Field("prom/blackbox-exporter:v0.27.0", description="Pinned blackbox exporter image.")
    port: Optional[Port] = Field(None, description=PUBLISHED_PORT)


class GrafanaSpec(ServiceSpec):
    enabled: bool = Field(True, description="Deploy Grafana with the stack's datasources and dashboards.")
    image: ImageRef = Field("grafana/grafana:12.1.1", description="Pinned Grafana image.")
    port: Optional[Port] = Field(3000, description=PUBLISHED_PORT)
    admin_user: Identifier = Field("admin", description="Grafana's admin login.")
    admin_password_var: EnvName = Field(
        "GRAFANA_ADMIN_PASSWORD", description="Variable (env layer or stack secret) holding the admin password."
    )
    clickhouse_plugin_version: str = Field(
        "4.10.2",
        pattern=r"^[0-9]+\.[0-9]+\.[0-9]+$",
        description="Version of `grafana-clickhouse-datasource` installed at start.",
    )


class LokiSpec(ServiceSpec):
    enabled: bool = Field(False, description="Deploy Loki, with Grafana Alloy shipping the containers' logs.")
    image: ImageRef = Field("grafana/loki:3.5.3", description="Pinned Loki image.")
    port: Optional[Port] = Field(None, description=PUBLISHED_PORT)
    retention: str = Field("168h", pattern=DURATION, description="How long Loki keeps log lines.")


class AlloySpec(ServiceSpec):
    image: ImageRef = Field("grafana/alloy:v1.10.2", description="Pinned Grafana Alloy image.")
    port: Optional[Port] = Field(None, description=PUBLISHED_PORT)


class SmokeSpec(StrictModel):
    chat_model: Optional[Identifier] = Field(
        None, description="Catalog chat model the smoke suite sends one request to after deploy; null skips it."
    )
    embedding_model: Optional[Identifier] = Field(
        None, description="Catalog embedding model the smoke suite embeds one text with; null skips it."
    )


class EnvFilesSpec(StrictModel):
    dir: str = Field(description="Directory of the env layers, relative to the project.")
    layers: list[str] = Field(
        default_factory=lambda: list(DEFAULT_ENV_LAYERS),
        description="Env files read in order; a later file wins. Missing files are skipped.",
    )


class CatalogSpec(StrictModel):
    files: list[str] = Field(min_length=1, description="Catalog files in the seed's format, merged in order.")
    models: Optional[list[str]] = Field(
        None, description="Catalog models this environment serves; null serves them all."
    )


class Environment(StrictModel):
    """One deployable environment of the TensorZero stack."""

    tier: Tier = Field(description="dev, staging or prod: decides protection and what is refused.")
    name_prefix: DockerName = Field(
        description="Prefix of every Docker-side name (containers, volumes, network), "
        "so two stacks can share a Docker host."
    )
    bind_address: IPAddress = Field("127.0.0.1", description="Host address published ports bind to.")
    protect_data: Optional[bool] = Field(
        None, description="Protect data volumes from `pulumi destroy`; defaults to true outside dev."
    )
    hosts: dict[Identifier, DockerHost] = Field(
        default_factory=lambda: {"main": DockerHost()},
        description="Docker hosts by name; each service names the host it runs on.",
    )
    env_files: EnvFilesSpec = Field(description="Env-file layering, as PMOVES's compose files do it.")
    catalog: CatalogSpec = Field(description="The model catalog this environment serves.")
    clickhouse: ClickHouseSpec = Field(default_factory=ClickHouseSpec, description="Observability store.")
    gateway: GatewaySpec = Field(default_factory=GatewaySpec, description="The TensorZero gateway.")
    edge: EdgeSpec = Field(default_factory=EdgeSpec, description="The compatibility edge in front of the gateway.")
    ui: UiSpec = Field(default_factory=UiSpec, description="The TensorZero UI.")
    ollama: OllamaSpec = Field(default_factory=OllamaSpec, description="Local models.")
    prometheus: PrometheusSpec = Field(default_factory=PrometheusSpec, description="Metrics and alert rules.")
    blackbox: BlackboxSpec = Field(
        default_factory=BlackboxSpec, description="Probes the services that export no metrics; runs with Prometheus."
    )
    grafana: GrafanaSpec = Field(default_factory=GrafanaSpec, description="Dashboards over Prometheus and ClickHouse.")
    loki: LokiSpec = Field(default_factory=LokiSpec, description="Container logs (optional).")
    alloy: AlloySpec = Field(default_factory=AlloySpec, description="Ships container logs to Loki; runs with Loki.")
    smoke: SmokeSpec = Field(default_factory=SmokeSpec, description="Models the post-deploy smoke suite exercises.")

    @property
    def protected(self) -> bool:
        return self.tier != Tier.dev if self.protect_data is None else self.protect_data

    def service_spec(self, service: Service) -> ServiceSpec:
        """The service's spec as deployed: an edge with no port of its own takes over gateway.port."""
        spec = getattr(self, service.role)
        if self._edge_takes_gateway_port():
            if service == EDGE:
                return spec.model_copy(update={"port": self.gateway.port})
            if service == GATEWAY:
                return spec.model_copy(update={"port": None})
        return spec

    def _edge_takes_gateway_port(self) -> bool:
        return self.deployed(EDGE) and self.edge.port is None

    def alias(self, service: Service) -> str:
        """The service's hostname on the stack network; the edge answers to the gateway's own."""
        return GATEWAY_BEHIND_EDGE_ALIAS if service == GATEWAY and self.deployed(EDGE) else service.alias

    def deployed(self, service: Service) -> bool:
        return getattr(getattr(self, FOLLOWS.get(service, service).role), "enabled", True)

    def credential_vars(self) -> list[tuple[str, str]]:
        """(spec key, variable) of every password the deployed services need."""
        needed = [("clickhouse.password_var", self.clickhouse.password_var)]
        if self.deployed(GRAFANA):
            needed.append(("grafana.admin_password_var", self.grafana.admin_password_var))
            needed.append(("clickhouse.readonly_password_var", self.clickhouse.readonly_password_var))
        return needed

    @property
    def deployed_services(self) -> list[Service]:
        return [s for s in SERVICES if self.deployed(s)]

    @model_validator(mode="after")
    def _check(self) -> "Environment":
        deployed = self.deployed_services
        for service in deployed:
            if self.service_spec(service).host not in self.hosts:
                raise ValueError(
                    f"{service.role}.host: '{self.service_spec(service).host}' is not one of hosts "
                    f"({', '.join(sorted(self.hosts))})"
                )
        seen: dict[tuple[str, int], str] = {}
        for service in deployed:
            spec = self.service_spec(service)
            if spec.port is None:
                continue
            where = (spec.host, spec.port)
            if where in seen:
                raise ValueError(
                    f"{service.role}.port: {spec.port} is already published by {seen[where]} on host '{spec.host}'"
                )
            seen[where] = service.role
        for consumer, dependency in DEPENDENCIES:
            if self.deployed(consumer) and self.deployed(dependency):
                self._check_reachable(consumer, dependency)
        if self.deployed(EDGE) and self.edge.host != self.gateway.host:
            raise ValueError(
                f"edge.host: '{self.edge.host}' must be the gateway's host '{self.gateway.host}'; "
                "the edge reaches the gateway on that host's network"
            )
        if self.clickhouse.readonly_user in (self.clickhouse.user, "default"):
            raise ValueError(
                f"clickhouse.readonly_user: '{self.clickhouse.readonly_user}' must differ from clickhouse.user and "
                "from 'default' (the image's entrypoint removes 'default'; a same-named user would merge)"
            )
        if self.grafana.enabled and not self.prometheus.enabled:
            raise ValueError("grafana.enabled: Grafana's dashboards need Prometheus; set prometheus.enabled true")
        if self.deployed(PROMETHEUS) and self.clickhouse.metrics and self.prometheus.host != self.clickhouse.host:
            raise ValueError(
                f"clickhouse.metrics: ClickHouse's metrics port is internal to host '{self.clickhouse.host}' and "
                f"Prometheus runs on host '{self.prometheus.host}'; place them together or set clickhouse.metrics false"
            )
        if image_tag(self.gateway.image) != image_tag(self.ui.image):
            raise ValueError(
                f"ui.image: tag '{image_tag(self.ui.image)}' differs from gateway.image tag "
                f"'{image_tag(self.gateway.image)}'; gateway and UI are released together"
            )
        if self.tier != Tier.dev:
            for service in deployed:
                image = self.service_spec(service).image
                if image_tag(image) == "latest":
                    raise ValueError(f"{service.role}.image: '{image}' uses 'latest', refused in {self.tier.value}")
            if self.clickhouse.user == SEED_DEFAULT_CREDENTIAL:
                raise ValueError(
                    f"clickhouse.user: the seed's default user '{SEED_DEFAULT_CREDENTIAL}' "
                    f"is refused in {self.tier.value}"
                )
        return self

    def _check_reachable(self, consumer: Service, dependency: Service) -> None:
        there = self.service_spec(dependency)
        if self.service_spec(consumer).host == there.host:
            return
        if there.port is None or ipaddress.ip_address(self.bind_address).is_loopback:
            raise ValueError(
                f"{dependency.role}.port: {consumer.role} runs on host '{self.service_spec(consumer).host}' and "
                f"reaches {dependency.role} on host '{there.host}' through its published port, so "
                f"{dependency.role}.port must be set and bind_address must not be a loopback address"
            )

    def endpoint(self, service: Service, seen_from: str) -> Endpoint:
        """Where a container on host `seen_from` reaches `service`."""
        spec = self.service_spec(service)
        if spec.host == seen_from:
            return Endpoint(self.alias(service), service.port)
        return self.published_endpoint(service)

    def published_endpoint(self, service: Service) -> Optional[Endpoint]:
        """Where operators (and other hosts) reach `service`; None when it is not published."""
        spec = self.service_spec(service)
        if spec.port is None:
            return None
        return Endpoint(self.hosts[spec.host].address, spec.port)
