"""The environment spec: one pydantic model per stack, the single source of truth.

Each top-level field is one key of the stack's config
(`stacks/Pulumi.<stack>.yaml`, namespace `pmoves-tensorzero:`).
"""

import ipaddress
from dataclasses import dataclass
from enum import Enum
from typing import Optional

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .names import CLICKHOUSE, DEFAULT_ENV_LAYERS, GATEWAY, OLLAMA, UI, Service
from .types import DockerName, EnvName, HostAddress, Identifier, ImageRef, IPAddress, Port, image_tag

# The seed's own credentials: fine on a laptop, refused where data matters.
SEED_DEFAULT_CREDENTIAL = "tensorzero"


# (consumer, dependency): who must reach whom, when both are deployed.
DEPENDENCIES = ((GATEWAY, CLICKHOUSE), (GATEWAY, OLLAMA), (UI, GATEWAY))


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


class GatewaySpec(ServiceSpec):
    image: ImageRef = Field("tensorzero/gateway:2026.6.0", description="Pinned gateway image; same tag as the UI.")
    port: Optional[Port] = Field(3030, description=PUBLISHED_PORT)
    observability: bool = Field(True, description="Log inferences to ClickHouse (`gateway.observability.enabled`).")
    async_writes: bool = Field(
        False, description="Write observability rows without waiting (`observability.async_writes`)."
    )
    debug: bool = Field(False, description="Gateway debug logging (`gateway.debug`); logs prompts, keep off in prod.")


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
    ui: UiSpec = Field(default_factory=UiSpec, description="The TensorZero UI.")
    ollama: OllamaSpec = Field(default_factory=OllamaSpec, description="Local models.")

    @property
    def protected(self) -> bool:
        return self.tier != Tier.dev if self.protect_data is None else self.protect_data

    def service_spec(self, service: Service) -> ServiceSpec:
        return getattr(self, service.role)

    def deployed(self, service: Service) -> bool:
        return getattr(self.service_spec(service), "enabled", True)

    @model_validator(mode="after")
    def _check(self) -> "Environment":
        deployed = [s for s in (CLICKHOUSE, GATEWAY, UI, OLLAMA) if self.deployed(s)]
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
            return Endpoint(service.alias, service.port)
        return self.published_endpoint(service)

    def published_endpoint(self, service: Service) -> Optional[Endpoint]:
        """Where operators (and other hosts) reach `service`; None when it is not published."""
        spec = self.service_spec(service)
        if spec.port is None:
            return None
        return Endpoint(self.hosts[spec.host].address, spec.port)
