"""The environment spec: one pydantic model per stack, the single source of truth.

Each top-level field is one key of the stack's config (`stacks/Pulumi.<stack>.yaml`, namespace
`pmoves-tensorzero:`). The stack-wide keys are declared here; each service's section is declared by its
own module and the registry assembles the whole `Environment` (registry.py). The placement and endpoint
rules below are the only place that decides who reaches whom at which address.
"""

import datetime
import ipaddress
from dataclasses import replace
from enum import Enum
from functools import cached_property
from typing import Annotated, ClassVar, Optional

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from components.core.names import DEFAULT_ENV_LAYERS
from components.core.plans import Endpoint, Front, Placement, PublishedPort, ServiceDefinition
from components.core.types import (
    ContainerPath,
    DnsName,
    DockerHostURL,
    DockerName,
    EnvName,
    FilePath,
    HostAddress,
    Identifier,
    ImageRef,
    IPAddress,
    IPv4Address,
    KubernetesName,
    LabelKey,
    LabelValue,
    Line,
    MemoryMB,
    Port,
    ProjectPath,
    image_tag,
    is_ip_address,
)

# The seed's own credentials, and the images' defaults: fine on a laptop, refused where data matters.
SEED_DEFAULT_CREDENTIAL = "tensorzero"
SEED_DEFAULT_CREDENTIALS = (SEED_DEFAULT_CREDENTIAL, "admin")  # compared case-insensitively
MIN_PASSWORD_LENGTH = 12  # outside dev

PUBLISHED_PORT = "Host port the service is published on; null keeps it internal."
LOOPBACK = "127.0.0.1"
CLUSTER = "cluster"  # the one "host" of a stack on Kubernetes
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
DOCKER_DNS = "127.0.0.11"  # Docker's embedded resolver on user-defined networks


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Tier(str, Enum):
    dev = "dev"
    staging = "staging"
    prod = "prod"


class DockerHost(StrictModel):
    url: DockerHostURL = Field(
        "unix:///var/run/docker.sock",
        description="Docker daemon this host's provider talks to (unix://, tcp:// or ssh://).",
    )
    address: HostAddress = Field(
        "127.0.0.1",
        description="Address at which services published on this host are reached, "
        "by operators and by services placed on other hosts.",
    )
    bind_address: IPAddress = Field(
        LOOPBACK,
        description="Host address the ports of this host's services are published on, unless a service sets "
        "its own `bind_address`. Beyond loopback, Docker's published ports bypass host firewalls such as ufw.",
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
    host: Identifier = Field("main", description="Key in `hosts` of the Docker host this service runs on.")
    port: Optional[Port] = Field(description=PUBLISHED_PORT)
    bind_address: Optional[IPAddress] = Field(
        None, description="Host address its ports are published on; null takes its host's `bind_address`."
    )
    memory_mb: Optional[MemoryMB] = Field(None, description="Memory limit of the container in MB (64 to 4194304).")
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
    caller: Optional[Identifier] = Field(
        None, description="Edge caller (edge.keys) whose key the smoke suite sends; null: the first with a key."
    )


class EnvFilesSpec(StrictModel):
    dir: FilePath = Field(
        description="Directory of the env layers, relative to the project (and inside it); an absolute path "
        "is an operator's directory elsewhere, which `validate` names."
    )
    layers: list[ProjectPath] = Field(
        default_factory=lambda: list(DEFAULT_ENV_LAYERS),
        description="Env files read in order; a later file wins. Missing files are skipped.",
    )


class CatalogSpec(StrictModel):
    files: list[ProjectPath] = Field(
        min_length=1, description="Catalog files in the seed's format, merged in order; inside the project."
    )
    models: Optional[list[Identifier]] = Field(
        None,
        description="Catalog models (seed format or native) this environment serves; null serves them all. "
        "Functions keep the variants whose models are served.",
    )
    variables: dict[EnvName, Line] = Field(
        default_factory=dict,
        description="Values of the catalog's `${NAME}` placeholders for this environment, where no env layer or "
        "stack secret sets NAME (an account id in a URL); never credentials.",
    )


CONFIRMATIONS = "data_loss_confirmations"


class Confirmation(StrictModel):
    """A person's confirmation of one change that deletes data (components/stack/guards.py)."""

    change: Line = Field(
        min_length=3,
        description="The change confirmed, as validate or diff names it: `protect_data: false`, "
        "`clickhouse.retention_days: 90`, `clickhouse.backups: false`, `volume <docker name>: replace`.",
    )
    by: Line = Field(min_length=2, description="Who confirmed it.")
    date: datetime.date = Field(description="When (YYYY-MM-DD).")
    reason: Optional[Line] = Field(None, description="Why, for whoever reads the stack file next.")


class IngressSpec(StrictModel):
    class_name: KubernetesName = Field("nginx", description="IngressClass of the cluster's ingress controller.")
    host: DnsName = Field(description="Hostname callers use for the gateway (the edge).")
    ui_host: Optional[DnsName] = Field(None, description="Hostname of the UI; null serves no UI ingress.")
    tls_secret: Optional[KubernetesName] = Field(
        None, description="Existing kubernetes.io/tls Secret for both hosts; null serves plain HTTP."
    )
    controller_namespace: KubernetesName = Field(
        "ingress-nginx", description="Namespace of the ingress controller: the only one NetworkPolicies let in."
    )

    @model_validator(mode="after")
    def _two_hosts(self):
        if self.ui_host == self.host:
            raise ValueError(f"ui_host {self.ui_host} is also host: the UI would take the gateway's callers")
        return self


class KubernetesSpec(StrictModel):
    """The stack on a Kubernetes cluster instead of Docker hosts: same services, plans and files."""

    context: Line = Field(min_length=1, description="kubeconfig context of the cluster.")
    namespace: KubernetesName = Field(description="Namespace every object of the stack lives in.")
    create_namespace: bool = Field(True, description="Declare the namespace; false uses an existing one.")
    storage_class: Optional[KubernetesName] = Field(None, description="StorageClass of data volumes; null: default.")
    volume_size_gb: dict[KubernetesName, Annotated[int, Field(ge=1, le=65536)]] = Field(
        default_factory=dict, description="Size of each data volume by `<service>-<volume>` (default 10 GiB)."
    )
    replicas: int = Field(2, ge=2, le=50, description="Replicas of the stateless front (gateway, edge).")
    max_replicas: int = Field(
        6, ge=2, le=200, description="Upper bound the gateway's HorizontalPodAutoscaler scales to."
    )
    cpu_target_percent: int = Field(70, ge=10, le=100, description="CPU utilisation the autoscaler aims at.")
    default_memory_mb: int = Field(1024, ge=64, le=1048576, description="Memory limit of a service with no memory_mb.")
    dns_resolver: IPv4Address = Field(
        "10.43.0.10",
        description="The cluster DNS Service's IP (k3s 10.43.0.10, kubeadm 10.96.0.10): nginx resolves with it.",
    )
    cluster_domain: DnsName = Field("cluster.local", description="The cluster's DNS domain.")
    gpu_node_selector: dict[LabelKey, LabelValue] = Field(
        default_factory=lambda: {"nvidia.com/gpu.present": "true"},
        description="Node labels a GPU service (ollama.gpu) is scheduled on.",
    )
    ingress: Optional[IngressSpec] = Field(None, description="Ingress for the edge (and the UI); null: none.")
    prometheus_operator: bool = Field(
        False,
        description="Also declare ServiceMonitors, a PrometheusRule and dashboard ConfigMaps for a cluster that "
        "runs the Prometheus Operator and Grafana's dashboard sidecar.",
    )

    @model_validator(mode="after")
    def _scaling_range(self):
        if self.max_replicas < self.replicas:
            raise ValueError(f"max_replicas {self.max_replicas} is below replicas {self.replicas}")
        if self.create_namespace and self.namespace in SYSTEM_NAMESPACES:
            raise ValueError(
                f"namespace {self.namespace} is the cluster's own: name one for the stack, or set create_namespace "
                "false to use it as it is"
            )
        return self


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
    volume_prefix: Optional[DockerName] = Field(
        None,
        description="Prefix of the data volumes' Docker names; null: name_prefix. Set it to the old name_prefix "
        "before renaming name_prefix, so the volumes (and their data) keep their names.",
    )
    protect_data: Optional[bool] = Field(
        None, description="Protect data volumes from `pulumi destroy`; defaults to true outside dev."
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
        if isinstance(data, dict) and "bind_address" in data:
            raise ValueError(
                "the stack-wide bind_address is gone: set hosts.<host>.bind_address, and <service>.bind_address "
                "for a service that must differ (publish beyond loopback only what authenticates)"
            )
        return data

    @property
    def data_volume_prefix(self) -> str:
        return self.volume_prefix or self.name_prefix

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
                    internal = definition.published_as(self, front.port)[0]
                    taken.append(PublishedPort(internal, external, bind, front.role))
        primary = (
            [PublishedPort(definition.published_as(self, own.port)[0], own.published, bind, origin)]
            if own.published is not None
            else []
        )
        return replace(own, bind=bind, ports=tuple(primary + taken))

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


def host_problems(spec: EnvironmentBase) -> list[tuple[str, str]]:
    """(key, problem) of every deployed service placed on a host `hosts` does not name; plans need none."""
    if spec.kubernetes is not None:
        return []  # one cluster: `hosts` and each section's `host` are not read
    return [
        (f"{spec.key(service)}.host", f"'{host}' is not one of hosts ({', '.join(sorted(spec.hosts))})")
        for service in spec.deployed_services
        if service.spec and (host := service.placement(spec, service).host) not in spec.hosts
    ]


def placement_problems(spec: EnvironmentBase) -> list[tuple[str, str]]:
    """(key, problem) of every rule that holds across services: hosts, host ports, fronts, images, each
    service's own cross-field checks. Reachability is checked as the plans ask for addresses (planner.py)."""
    problems = host_problems(spec)
    if problems:
        return problems  # the rules below need every host to exist
    deployed = spec.deployed_services
    seen: dict[tuple[str, int], str] = {}
    for service in deployed:
        placement = spec.placement(service)
        for published in placement.ports:
            where = (placement.host, published.external)
            if where in seen:
                problems.append(
                    (
                        f"{spec.key(published.origin or service)}.port",
                        f"{published.external} is already published by {seen[where]} on host '{placement.host}'",
                    )
                )
            seen.setdefault(where, service.role)
    for service in deployed:
        for front in spec.fronts_served(service):
            host, fronted_host = spec.placement(service).host, spec.placement(front.role).host
            if host != fronted_host:
                problems.append(
                    (
                        f"{spec.key(service)}.host",
                        f"'{host}' must be the {front.role}'s host '{fronted_host}'; "
                        f"the {service.role} reaches the {front.role} on that host's network",
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
    if not service.spec or spec.kubernetes is not None:
        return []  # on a cluster, any network is refused with the other Docker-only settings (kubernetes_cluster.py)
    section, key = spec.section(service), f"{spec.key(service)}.networks"
    host = spec.placement(service).host  # a section without a host of its own runs on another's (backup's)
    declared = spec.hosts[host].networks if host in spec.hosts else []
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
                    f"'{name}' is not declared in hosts.{host}.networks ({listed}): the stack joins only "
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
