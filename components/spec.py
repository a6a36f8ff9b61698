"""The environment spec: one pydantic model per stack, the single source of truth.

Each top-level field is one key of the stack's config (`stacks/Pulumi.<stack>.yaml`, namespace
`pmoves-tensorzero:`). The stack-wide keys are declared here; each service's section is declared by its
own module and the registry assembles the whole `Environment` (registry.py). The placement and endpoint
rules below are the only place that decides who reaches whom at which address.
"""

import ipaddress
from dataclasses import replace
from enum import Enum
from functools import cached_property
from typing import ClassVar, Optional

from pydantic import BaseModel, ConfigDict, Field, create_model

from .names import DEFAULT_ENV_LAYERS
from .service import Endpoint, Placement, ServiceDefinition
from .types import (
    ContainerPath,
    DockerName,
    EnvName,
    HostAddress,
    Identifier,
    ImageRef,
    IPAddress,
    Port,
    image_tag,
)

# The seed's own credentials, and the images' defaults: fine on a laptop, refused where data matters.
SEED_DEFAULT_CREDENTIAL = "tensorzero"
SEED_DEFAULT_CREDENTIALS = (SEED_DEFAULT_CREDENTIAL, "admin")

PUBLISHED_PORT = "Host port the service is published on; null keeps it internal."
DURATION = r"^[0-9]+(ms|s|m|h|d|w|y)$"


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
    networks: list[DockerName] = Field(
        default_factory=list,
        description="Existing Docker networks on this host (PMOVES's `pmoves_api`, ...) that services may join; "
        "the stack never creates or deletes them.",
    )


class AdoptedVolume(StrictModel):
    """A data volume that exists already (PMOVES's `tensorzero-clickhouse-data`): mounted, never owned."""

    name: DockerName = Field(description="The existing Docker volume's name, as `docker volume ls` shows it.")
    mount: Optional[ContainerPath] = Field(
        None,
        description="Where it is mounted; null: where the service mounts its own volume of that name "
        "(PMOVES mounts `pmoves-ollama-models` at /root/.ollama/models).",
    )


class ServiceSpec(StrictModel):
    """What every service's section has; each service module subclasses it with its own defaults."""

    image: ImageRef = Field(description="Pinned image reference (repository:tag).")
    host: str = Field("main", description="Key in `hosts` of the Docker host this service runs on.")
    port: Optional[Port] = Field(description=PUBLISHED_PORT)
    memory_mb: Optional[int] = Field(None, ge=64, description="Memory limit of the container in MB.")
    extra_env: list[EnvName] = Field(
        default_factory=list,
        description="Further variables from the env layers this container receives, by name.",
    )
    networks: list[DockerName] = Field(
        default_factory=list,
        description="Existing networks of its host (listed in `hosts.<host>.networks`) the container joins, "
        "answering there to its hostname as on the stack's own network.",
    )
    adopt_volumes: dict[Identifier, AdoptedVolume] = Field(
        default_factory=dict,
        description="Its volumes (`data`, `models`, ...) that already exist on its host: mounted by name, never "
        "created, replaced or deleted by the stack; `pulumi up` stops if one is missing.",
    )


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
        None,
        description="Catalog models (seed format or native) this environment serves; null serves them all. "
        "Functions keep the variants whose models are served.",
    )
    variables: dict[EnvName, str] = Field(
        default_factory=dict,
        description="Values of the catalog's `${NAME}` placeholders for this environment, where no env layer or "
        "stack secret sets NAME (an account id in a URL); never credentials.",
    )


class Unreachable(Exception):
    """A service cannot reach another where the spec placed them; `key` is the spec key to change."""

    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key = key
        self.message = message


ServiceRef = ServiceDefinition | str


def role_of(service: ServiceRef) -> str:
    return service if isinstance(service, str) else service.role


class EnvironmentBase(StrictModel):
    """The stack-wide keys; `environment_model` adds one section per registered service."""

    services: ClassVar[tuple[ServiceDefinition, ...]] = ()

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

    @property
    def network_name(self) -> str:
        """The Docker network the stack creates on each of its hosts."""
        return f"{self.name_prefix}-tensorzero"

    @property
    def protected(self) -> bool:
        return self.tier != Tier.dev if self.protect_data is None else self.protect_data

    @cached_property
    def all_services(self) -> tuple[ServiceDefinition, ...]:
        """The registry's services in start order, each followed by the instances its section declares."""
        return tuple(found for service in self.services for found in (service, *service.instances(self)))

    def definition(self, service: ServiceRef) -> ServiceDefinition:
        role = role_of(service)
        return next(s for s in self.all_services if s.role == role)

    def section(self, service: ServiceRef) -> ServiceSpec:
        """The service's own section of the stack file (an instance's: its entry, defaults filled in)."""
        definition = self.definition(service)
        return definition.section_of(self) if definition.section_of else getattr(self, definition.role)

    def key(self, service: ServiceRef) -> str:
        """Where the service's section is in the stack file, as problems name it."""
        definition = self.definition(service)
        return definition.key or definition.role

    def deployed(self, service: ServiceRef) -> bool:
        definition = self.definition(service)
        if definition.follows:
            return self.deployed(definition.follows)
        if definition.is_deployed:
            return definition.is_deployed(self)
        return getattr(self.section(definition), "enabled", True)

    @property
    def deployed_services(self) -> list[ServiceDefinition]:
        return [s for s in self.all_services if self.deployed(s)]

    def placement(self, service: ServiceRef) -> Placement:
        """Where the service runs and how it is addressed; a deployed front takes over what it fronts."""
        definition = self.definition(service)
        own = definition.placement(self, definition)
        front = next((s for s in self.deployed_services if s.front and s.front.role == definition.role), None)
        if front is not None:
            takes_port = self.section(front).port is None
            return replace(own, alias=front.front.moved_alias, published=None if takes_port else own.published)
        if definition.front and self.deployed(definition) and self.section(definition).port is None:
            fronted = self.definition(definition.front.role)
            return replace(own, published=fronted.placement(self, fronted).published)
        return own

    def endpoint(self, service: ServiceRef, seen_from: str, port: Optional[int] = None) -> Endpoint:
        """Where a container on host `seen_from` reaches `service` (on `port`, an internal one, if given).

        On the same host: the service's alias on the host's network. Across hosts: the address of the
        service's host and its published port, which must exist and not be bound to loopback.
        Raises Unreachable otherwise.
        """
        role = role_of(service)
        there = self.placement(role)
        if there.host == seen_from:
            return Endpoint(there.alias, port or there.port)
        key = self.key(role)
        if port is not None:
            raise Unreachable(key, f"port {port} of {role} is internal to host '{there.host}'")
        if there.published is None or ipaddress.ip_address(self.bind_address).is_loopback:
            raise Unreachable(
                f"{key}.port",
                f"reaches {role} on host '{there.host}' through its published port, so {key}.port must be set "
                "and bind_address must not be a loopback address",
            )
        return Endpoint(self.hosts[there.host].address, there.published)

    def published_endpoint(self, service: ServiceRef) -> Optional[Endpoint]:
        """Where operators (and other hosts) reach `service`; None when it is not published."""
        placement = self.placement(service)
        return (
            None if placement.published is None else Endpoint(self.hosts[placement.host].address, placement.published)
        )


def placement_problems(spec: EnvironmentBase) -> list[tuple[str, str]]:
    """(key, problem) of every rule that holds across services: hosts, host ports, fronts, images, each
    service's own cross-field checks. Reachability is checked as the plans ask for addresses (planner.py)."""
    problems = []
    deployed = spec.deployed_services
    for service in deployed:
        if service.spec and spec.section(service).host not in spec.hosts:
            host = spec.section(service).host
            problems.append(
                (f"{spec.key(service)}.host", f"'{host}' is not one of hosts ({', '.join(sorted(spec.hosts))})")
            )
    if problems:
        return problems  # the rules below need every host to exist
    seen: dict[tuple[str, int], str] = {}
    for service in deployed:
        placement = spec.placement(service)
        if placement.published is None:
            continue
        where = (placement.host, placement.published)
        if where in seen:
            problems.append(
                (
                    f"{spec.key(service)}.port",
                    f"{placement.published} is already published by {seen[where]} on host '{placement.host}'",
                )
            )
        seen.setdefault(where, service.role)
    for service in deployed:
        if service.front and spec.deployed(service.front.role):
            host, fronted_host = spec.placement(service).host, spec.placement(service.front.role).host
            if host != fronted_host:
                problems.append(
                    (
                        f"{spec.key(service)}.host",
                        f"'{host}' must be the {service.front.role}'s host '{fronted_host}'; "
                        f"the {service.role} reaches the {service.front.role} on that host's network",
                    )
                )
        problems += joined_network_problems(spec, service)
        problems += service.checks(spec)
        if spec.tier != Tier.dev and service.spec and image_tag(spec.section(service).image) == "latest":
            image = spec.section(service).image
            problems.append((f"{spec.key(service)}.image", f"'{image}' uses 'latest', refused in {spec.tier.value}"))
    return problems


def joined_network_problems(spec: EnvironmentBase, service: ServiceDefinition) -> list[tuple[str, str]]:
    """A service joins only networks its host declares, each once, and never the stack's own."""
    if not service.spec:
        return []
    section, key = spec.section(service), f"{spec.key(service)}.networks"
    declared = spec.hosts[section.host].networks
    problems = []
    for name in sorted(set(section.networks)):
        if section.networks.count(name) > 1:
            problems.append((key, f"'{name}' is listed twice"))
        if name == spec.network_name:
            problems.append((key, f"'{name}' is the stack's own network; list only others"))
        elif name not in declared:
            listed = ", ".join(declared) or "none"
            problems.append(
                (
                    key,
                    f"'{name}' is not declared in hosts.{section.host}.networks ({listed}): the stack joins only "
                    "networks that exist on the service's host",
                )
            )
    return problems


def environment_model(services: tuple[ServiceDefinition, ...]) -> type[EnvironmentBase]:
    """The whole stack's model: the stack-wide keys, one section per service that has one, and `smoke`."""
    sections = {
        service.role: (service.spec, Field(default_factory=service.spec, description=service.description))
        for service in services
        if service.spec is not None
    }
    smoke = (SmokeSpec, Field(default_factory=SmokeSpec, description="Models the post-deploy smoke suite exercises."))
    model = create_model(
        "Environment",
        __base__=EnvironmentBase,
        __doc__="One deployable environment of the TensorZero stack.",
        **sections,
        smoke=smoke,
    )
    model.services = services
    return model
