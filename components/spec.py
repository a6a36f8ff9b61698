"""The environment spec: one pydantic model per stack, the single source of truth.

Each top-level field is one key of the stack's config (`stacks/Pulumi.<stack>.yaml`, namespace
`pmoves-tensorzero:`). The stack-wide keys are declared here; each service's section is declared by its
own module and the registry assembles the whole `Environment` (registry.py). The placement and endpoint
rules below are the only place that decides who reaches whom at which address.
"""

import ipaddress
from dataclasses import replace
from enum import Enum
from typing import ClassVar, Optional

from pydantic import BaseModel, ConfigDict, Field, create_model

from .names import DEFAULT_ENV_LAYERS
from .service import Endpoint, Placement, ServiceDefinition
from .types import DockerName, EnvName, HostAddress, Identifier, ImageRef, IPAddress, KubernetesName, Port, image_tag

# The seed's own credentials, and the images' defaults: fine on a laptop, refused where data matters.
SEED_DEFAULT_CREDENTIAL = "tensorzero"
SEED_DEFAULT_CREDENTIALS = (SEED_DEFAULT_CREDENTIAL, "admin")

PUBLISHED_PORT = "Host port the service is published on; null keeps it internal."
CLUSTER = "cluster"  # the one "host" of a stack on Kubernetes
DOCKER_DNS = "127.0.0.11"  # Docker's embedded resolver on user-defined networks
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


class IngressSpec(StrictModel):
    class_name: str = Field("nginx", description="IngressClass of the cluster's ingress controller.")
    host: HostAddress = Field(description="Hostname callers use for the gateway (the edge).")
    ui_host: Optional[HostAddress] = Field(None, description="Hostname of the UI; null serves no UI ingress.")
    tls_secret: Optional[KubernetesName] = Field(
        None, description="Existing kubernetes.io/tls Secret for both hosts; null serves plain HTTP."
    )
    controller_namespace: KubernetesName = Field(
        "ingress-nginx", description="Namespace of the ingress controller: the only one NetworkPolicies let in."
    )


class KubernetesSpec(StrictModel):
    """The stack on a Kubernetes cluster instead of Docker hosts: same services, plans and files."""

    context: str = Field(min_length=1, description="kubeconfig context of the cluster.")
    namespace: KubernetesName = Field(description="Namespace every object of the stack lives in.")
    create_namespace: bool = Field(True, description="Declare the namespace; false uses an existing one.")
    storage_class: Optional[KubernetesName] = Field(None, description="StorageClass of data volumes; null: default.")
    volume_size_gb: dict[str, int] = Field(
        default_factory=dict, description="Size of each data volume by `<service>-<volume>` (default 10 GiB)."
    )
    replicas: int = Field(2, ge=2, le=50, description="Replicas of the stateless front (gateway, edge).")
    max_replicas: int = Field(
        6, ge=2, le=200, description="Upper bound the gateway's HorizontalPodAutoscaler scales to."
    )
    cpu_target_percent: int = Field(70, ge=10, le=100, description="CPU utilisation the autoscaler aims at.")
    default_memory_mb: int = Field(1024, ge=64, le=1048576, description="Memory limit of a service with no memory_mb.")
    dns_resolver: IPAddress = Field(
        "10.43.0.10",
        description="The cluster DNS Service's IP (k3s 10.43.0.10, kubeadm 10.96.0.10): nginx resolves with it.",
    )
    cluster_domain: str = Field(
        "cluster.local", pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", description="The cluster's DNS domain."
    )
    gpu_node_selector: dict[str, str] = Field(
        default_factory=lambda: {"nvidia.com/gpu.present": "true"},
        description="Node labels a GPU service (ollama.gpu) is scheduled on.",
    )
    ingress: Optional[IngressSpec] = Field(None, description="Ingress for the edge (and the UI); null: none.")
    prometheus_operator: bool = Field(
        False,
        description="Also declare ServiceMonitors, a PrometheusRule and dashboard ConfigMaps for a cluster that "
        "runs the Prometheus Operator and Grafana's dashboard sidecar.",
    )


class Unreachable(Exception):
    """A service cannot reach another where the spec placed them; `key` is the spec key to change."""

    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key = key
        self.message = message


ServiceRef = ServiceDefinition | str


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


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
    kubernetes: Optional[KubernetesSpec] = Field(
        None, description="Deploy to this Kubernetes cluster instead of the Docker hosts; null: Docker."
    )

    @property
    def protected(self) -> bool:
        return self.tier != Tier.dev if self.protect_data is None else self.protect_data

    def definition(self, service: ServiceRef) -> ServiceDefinition:
        role = role_of(service)
        return next(s for s in self.services if s.role == role)

    def section(self, service: ServiceRef) -> ServiceSpec:
        """The service's own section of the stack file."""
        return getattr(self, role_of(service))

    def deployed(self, service: ServiceRef) -> bool:
        definition = self.definition(service)
        if definition.follows:
            return self.deployed(definition.follows)
        if definition.is_deployed:
            return definition.is_deployed(self)
        return getattr(self.section(definition), "enabled", True)

    @property
    def deployed_services(self) -> list[ServiceDefinition]:
        return [s for s in self.services if self.deployed(s)]

    def placement(self, service: ServiceRef) -> Placement:
        """Where the service runs and how it is addressed; a deployed front takes over what it fronts."""
        placement = self._placement(self.definition(service))
        if self.kubernetes is not None:
            # One namespace: every Service answers at its name (the alias) and port; the ingress publishes.
            return replace(placement, host=CLUSTER, published=None)
        return placement

    def _placement(self, definition: ServiceDefinition) -> Placement:
        own = definition.placement(self, definition)
        front = next((s for s in self.deployed_services if s.front and s.front.role == definition.role), None)
        if front is not None:
            takes_port = self.section(front).port is None
            return replace(own, alias=front.front.moved_alias, published=None if takes_port else own.published)
        if definition.front and self.deployed(definition) and self.section(definition).port is None:
            fronted = self.definition(definition.front.role)
            return replace(own, published=fronted.placement(self, fronted).published)
        return own

    @property
    def dns_resolver(self) -> str:
        """The resolver a program that does its own DNS (nginx) asks: Docker's embedded one, or the cluster's."""
        return DOCKER_DNS if self.kubernetes is None else self.kubernetes.dns_resolver

    def qualified(self, endpoint: Endpoint) -> Endpoint:
        """`endpoint` for a resolver that applies no search domain (nginx): a Service's full name on a cluster."""
        if self.kubernetes is None or _is_ip(endpoint.host):
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
        if port is not None:
            raise Unreachable(role, f"port {port} of {role} is internal to host '{there.host}'")
        if there.published is None or ipaddress.ip_address(self.bind_address).is_loopback:
            raise Unreachable(
                f"{role}.port",
                f"reaches {role} on host '{there.host}' through its published port, so {role}.port must be set "
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
    for service in deployed if spec.kubernetes is None else ():
        if service.spec and spec.section(service).host not in spec.hosts:
            host = spec.section(service).host
            problems.append((f"{service.role}.host", f"'{host}' is not one of hosts ({', '.join(sorted(spec.hosts))})"))
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
                    f"{service.role}.port",
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
                        f"{service.role}.host",
                        f"'{host}' must be the {service.front.role}'s host '{fronted_host}'; "
                        f"the {service.role} reaches the {service.front.role} on that host's network",
                    )
                )
        problems += service.checks(spec)
        if spec.tier != Tier.dev and service.spec and image_tag(spec.section(service).image) == "latest":
            image = spec.section(service).image
            problems.append((f"{service.role}.image", f"'{image}' uses 'latest', refused in {spec.tier.value}"))
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
