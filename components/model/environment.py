"""The environment: one pydantic model per stack, the single source of truth, and the services it is made of.

Each top-level field is one key of the stack's config (`stacks/Pulumi.<stack>.yaml`, namespace
`pmoves-tensorzero:`). The stack-wide keys are declared here and in settings.py; each service's section is
declared by its own module (components/services/) and the registry assembles the whole `Environment`
(stack/registry.py) from the `ServiceDefinition`s below. The placement and endpoint rules of
`EnvironmentBase` are the only place that decides who reaches whom at which address.
"""

import ipaddress
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Callable, ClassVar, Optional

from pydantic import Field, create_model, model_validator

from components.core.plans import Endpoint, Monitoring, Placement, PublishedPort, ServicePlan
from components.core.types import DockerName, Identifier, StrictModel, is_ip_address
from components.model.settings import (
    CLUSTER,
    DOCKER_DNS,
    LOOPBACK,
    CatalogSpec,
    Confirmation,
    DockerHost,
    EnvFilesSpec,
    KubernetesSpec,
    ServiceSpec,
    SmokeSpec,
    Tier,
)


def always(spec: "EnvironmentBase") -> bool:
    return True


@dataclass(frozen=True)
class Front:
    """A service that stands in front of another and takes its public port.

    The first front of a service takes the fronted service's port on the front's own port (unless the
    front's section sets a port of its own); the others serve it on `port`, a port of the front's container.
    """

    role: str  # the service fronted
    moved_alias: Optional[str]  # the fronted service's hostname once behind the front; None: it keeps its alias
    port: Optional[int] = None  # the front's container port serving it; None: the front's own port
    when: Callable[["EnvironmentBase"], bool] = always  # whether the front serves it in this stack
    for_callers: bool = True  # the front's URL is the fronted service's URL in the stack outputs
    chosen: Optional[Callable[["EnvironmentBase"], str]] = None  # the stack picks the service fronted; None: `role`


def default_placement(spec: "EnvironmentBase", service: "ServiceDefinition") -> Placement:
    section = spec.section(service.role)
    return Placement(section.host, service.alias, service.port, section.port)


@dataclass(frozen=True)
class ServiceDefinition:
    """One registry entry: the service's identity, its stack-file section and its plan."""

    role: str  # stack-file key, Pulumi component name, label value, outputs key
    component: str  # Pulumi component type after the project's type prefix
    plan: Callable[..., ServicePlan]  # called with the planner's Context (model/context.py)
    description: str  # of its stack-file section
    spec: Optional[type["ServiceSpec"]] = None  # its stack-file section; None: reads other services' sections
    container: Optional[str] = None  # Docker container name after the name_prefix; None: one-shots only
    alias: Optional[str] = None  # hostname callers use (the seed's)
    port: Optional[int] = None  # port its image listens on
    follows: Optional[str] = None  # deployed exactly when this role is (no switch of its own)
    replicated: bool = False  # stateless and serving callers: several replicas where the target can run them
    autoscaled: bool = False  # and scaled with its load
    fronts: tuple[Front, ...] = ()
    is_deployed: Optional[Callable[["EnvironmentBase"], bool]] = None  # default: its section's `enabled`
    placement: Callable[["EnvironmentBase", "ServiceDefinition"], Placement] = default_placement
    monitoring: Callable[["EnvironmentBase"], Monitoring] = lambda spec: Monitoring()
    checks: Callable[["EnvironmentBase"], list[tuple[str, str]]] = lambda spec: []  # (key, problem) cross-field rules
    # (key, change, what it deletes) of each setting of its section that deletes data: confirmed outside dev.
    destructive: Callable[["EnvironmentBase"], list[tuple[str, str, str]]] = lambda spec: []
    # Beyond loopback, every published port must ask callers who they are (planner.py refuses it otherwise);
    # how to publish it safely beyond loopback, named in that refusal.
    exposure_fix: str = ""
    # (container port, scheme) a published port of `port` really reaches (the edge's HTTPS listeners).
    published_as: Callable[["EnvironmentBase", int], tuple[int, str]] = lambda spec, port: (port, "http")
    # Published beyond loopback on one address through another listener (HTTPS), the same host port on loopback
    # reaches the plain one: the seed's `http://localhost:<port>` keeps working on the host itself.
    loopback_plain: bool = False
    # One service kind, several containers: the further instances its section declares (`ollama.instances`),
    # each a definition of its own placed right after this one in start order.
    instances: Callable[["EnvironmentBase"], tuple["ServiceDefinition", ...]] = lambda spec: ()
    key: Optional[str] = None  # an instance's stack-file key ("ollama.instances.jetson"); default: role
    section_of: Optional[Callable[["EnvironmentBase"], "ServiceSpec"]] = (
        None  # an instance's section; default: spec.<role>
    )


class Unreachable(Exception):
    """A service cannot reach another where the spec placed them; `key` is the spec key to change."""

    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key = key
        self.message = message


ServiceRef = ServiceDefinition | str

# Stack-wide keys that were removed, and what replaces each: the message for the key, prefixed or not.
GONE = {
    "bind_address": "the stack-wide bind_address is gone: set hosts.<host>.bind_address, and <service>.bind_address "
    "for a service that must differ (publish beyond loopback only what authenticates)"
}


def role_of(service: ServiceRef) -> str:
    return service if isinstance(service, str) else service.role


class EnvironmentBase(StrictModel):
    """The stack-wide keys; `environment_model` adds one section per registered service."""

    services: ClassVar[tuple[ServiceDefinition, ...]] = ()

    tier: Tier = Field(description="dev, staging or prod: decides protection and what is refused.")
    name_prefix: DockerName = Field(
        description="Prefix of every Docker-side name (containers, volumes, network), "
        "so two stacks can share a Docker host; two stacks on one engine never share one."
    )
    volume_prefix: Optional[DockerName] = Field(
        None,
        description="Prefix of the data volumes' Docker names; null: name_prefix. Set it to the old name_prefix "
        "before renaming name_prefix, so the volumes (and their data) keep their names.",
    )
    protect_data: Optional[bool] = Field(
        None, description="Protect data volumes from `pulumi destroy`; defaults to true outside dev."
    )
    seed_container_names: bool = Field(
        False,
        description="Name ClickHouse, the UI and the main Ollama as PMOVES's compose did (`tensorzero-clickhouse`, "
        "`tensorzero-ui`, `pmoves-ollama`, no name_prefix), so the seed's `docker exec` lines work; one stack per "
        "Docker engine may. The gateway keeps its generated name (each config change starts the next one beside "
        "it); `tensorzero-gateway` is the edge's network alias, and `make exec SERVICE=gateway` finds the gateway.",
    )
    hosts: dict[Identifier, DockerHost] = Field(
        default_factory=lambda: {"main": DockerHost()},
        description="Docker hosts by name; each service names the host it runs on.",
    )
    data_loss_confirmations: list[Confirmation] = Field(
        default_factory=list,
        description="Named, dated confirmations of changes that delete data (needed outside dev; see guards.py).",
    )
    env_files: EnvFilesSpec = Field(description="Env-file layering, as PMOVES's compose files do it.")
    catalog: CatalogSpec = Field(description="The model catalog this environment serves.")
    kubernetes: Optional[KubernetesSpec] = Field(
        None, description="Deploy to this Kubernetes cluster instead of the Docker hosts; null: Docker."
    )

    @model_validator(mode="before")
    @classmethod
    def _no_stack_wide_bind_address(cls, data):
        if isinstance(data, dict) and (gone := [key for key in GONE if key in data]):
            raise ValueError(GONE[gone[0]])
        return data

    @property
    def data_volume_prefix(self) -> str:
        return self.volume_prefix or self.name_prefix

    @property
    def data_volume_prefix_key(self) -> str:
        """The stack-file key `data_volume_prefix` comes from: what a message about the volumes' names blames."""
        return "volume_prefix" if self.volume_prefix else "name_prefix"

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

    @cached_property
    def definitions(self) -> dict[str, ServiceDefinition]:
        """Each of `all_services` by role: planning asks thousands of times."""
        return {service.role: service for service in self.all_services}

    def definition(self, service: ServiceRef) -> ServiceDefinition:
        return self.definitions[role_of(service)]

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

    def bind_address(self, service: ServiceRef) -> str:
        """Where the service's ports are published: its own `bind_address`, else its host's."""
        definition = self.definition(service)
        section = self.section(definition) if definition.spec else None
        own = getattr(section, "bind_address", None)
        if own is not None:
            return own
        host = definition.placement(self, definition).host
        return self.hosts[host].bind_address if host in self.hosts else LOOPBACK

    def active_fronts(self, service: ServiceRef) -> list[tuple[ServiceDefinition, Front]]:
        """(front service, front) of every deployed front that serves `service` in this stack."""
        role = role_of(service)
        return [
            (front_service, front)
            for front_service in self.deployed_services
            for front in self.fronts_served(front_service)
            if front.role == role
        ]

    def fronts_served(self, service: ServiceRef) -> list[Front]:
        """The fronts `service` runs: those whose fronted service is deployed and that this stack turns on."""
        fronts = [replace(f, role=f.chosen(self)) if f.chosen else f for f in self.definition(service).fronts]
        return [f for f in fronts if self.deployed(f.role) and f.when(self)]

    def _takes_port(self, front_service: ServiceDefinition, front: Front) -> bool:
        first = self.fronts_served(front_service)[0] == front
        return not first or self.section(front_service).port is None

    def placement(self, service: ServiceRef) -> Placement:
        """Where the service runs and how it is addressed; a deployed front takes over what it fronts."""
        placement = self._placement(self.definition(service))
        if self.kubernetes is not None:
            # One namespace: every Service answers at its name (the alias) and port; the ingress publishes.
            return replace(placement, host=CLUSTER, published=None, ports=())
        return placement

    def _placement(self, definition: ServiceDefinition) -> Placement:
        own = definition.placement(self, definition)
        for front_service, front in self.active_fronts(definition):
            if front.moved_alias:
                own = replace(own, alias=front.moved_alias)
            if self._takes_port(front_service, front):
                own = replace(own, published=None)
        bind = self.bind_address(definition)
        taken, origin = [], definition.role
        if self.deployed(definition):
            for front in self.fronts_served(definition):
                fronted = self.definition(front.role)
                external = fronted.placement(self, fronted).published
                if not self._takes_port(definition, front) or external is None:
                    continue
                if front.port is None:
                    own, origin = replace(own, published=external), front.role
                else:
                    taken += self._faces(definition, front.port, external, bind, front.role)
        primary = self._faces(definition, own.port, own.published, bind, origin) if own.published is not None else []
        return replace(own, bind=bind, ports=tuple(primary + taken))

    def _faces(self, definition: ServiceDefinition, port: int, external: int, bind: str, origin: str) -> list:
        """`port` published as `external` on `bind`, and its plain listener on loopback where that is another."""
        internal = definition.published_as(self, port)[0]
        faces = [PublishedPort(internal, external, bind, origin)]
        address = ipaddress.ip_address(bind)
        if definition.loopback_plain and internal != port and not (address.is_loopback or address.is_unspecified):
            faces.append(PublishedPort(port, external, LOOPBACK, origin))
        return faces

    @property
    def dns_resolver(self) -> str:
        """The resolver a program that does its own DNS (nginx) asks: Docker's embedded one, or the cluster's."""
        return DOCKER_DNS if self.kubernetes is None else self.kubernetes.dns_resolver

    def qualified(self, endpoint: Endpoint) -> Endpoint:
        """`endpoint` for a resolver that applies no search domain (nginx): a Service's full name on a cluster."""
        if self.kubernetes is None or is_ip_address(endpoint.host):
            return endpoint
        spec = self.kubernetes
        return Endpoint(f"{endpoint.host}.{spec.namespace}.svc.{spec.cluster_domain}", endpoint.port)

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
        published, bind = there.published, there.bind
        if published is None:
            # Its port may be published by a front that leaves it its hostname (Ollama's guard).
            for front_service, front in self.active_fronts(role):
                if front.moved_alias is None:
                    front_placement = self.placement(front_service)
                    internal = front_service.published_as(self, front.port or front_placement.port)[0]
                    for taken in front_placement.ports:
                        if taken.internal == internal:
                            published, bind = taken.external, taken.ip
        if published is None or ipaddress.ip_address(bind).is_loopback:
            raise Unreachable(
                f"{key}.port",
                f"reaches {role} on host '{there.host}' through its published port, so {key}.port must be set "
                f"and {key}.bind_address or hosts.{there.host}.bind_address must not be a loopback address",
            )
        scheme = self.definition(role).published_as(self, there.port)[1]
        return Endpoint(self.hosts[there.host].address, published, scheme)

    def published_endpoint(self, service: ServiceRef) -> Optional[Endpoint]:
        """Where operators (and other hosts) reach `service`; None when it is not published."""
        placement = self.placement(service)
        if placement.published is None:
            return None
        scheme = self.definition(service).published_as(self, placement.port)[1]
        return Endpoint(self.hosts[placement.host].address, placement.published, scheme)


def environment_model(services: tuple[ServiceDefinition, ...]) -> type[EnvironmentBase]:
    """The whole stack's model: the stack-wide keys, one section per service that has one, and `smoke`."""
    sections = {
        service.role: (service.spec, Field(default_factory=service.spec, description=service.description))
        for service in services
        if service.spec is not None
    }
    smoke = (SmokeSpec, Field(default_factory=SmokeSpec, description="Models the post-deploy smoke suite exercises."))
    model = create_model(
        "EnvironmentBase",
        __base__=EnvironmentBase,
        __doc__="One deployable environment of the TensorZero stack.",
        **sections,
        smoke=smoke,
    )
    model.services = services
    return model
