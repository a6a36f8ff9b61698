"""What a service runs, as data: the pure plan a service's `plan(ctx)` returns, and what it is made of.

Nothing here imports Pulumi. A service module (components/services/) returns a `ServicePlan`; a deployment
target (components/targets/) turns plans into resources, and `render`, `env`, Prometheus and the rule tests
read the same plans. Which services a stack has is model/environment.py's `ServiceDefinition`.
"""

from dataclasses import dataclass, field
from typing import Any, Optional

from components.core.envfiles import Variable
from components.core.render import RenderedFile


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    scheme: str = "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"


@dataclass(frozen=True)
class PublishedPort:
    """A container port published on the Docker host, at `ip` (the service's bind address)."""

    internal: int
    external: int
    ip: str
    origin: str = ""  # the service whose port it is (a front publishes the ports of what it fronts)


@dataclass(frozen=True)
class Placement:
    """Where a service runs and how it is addressed; computed from the spec before any plan."""

    host: str  # key of spec.hosts
    alias: Optional[str]  # hostname on the host's network; None for a service with no container of its own
    port: Optional[int]  # port inside the container
    published: Optional[int]  # host port of `port`, None when internal
    bind: str = "127.0.0.1"  # host address its ports are published on
    ports: tuple[PublishedPort, ...] = ()  # every port the container publishes (`published` first)


@dataclass(frozen=True)
class Volume:
    """A named Docker volume the service mounts; every volume here holds data that must outlive the container."""

    name: str  # Pulumi name after the service's: "data" -> "clickhouse-data"
    docker_name: str  # Docker name after the stack's name_prefix; adopted: the existing volume's whole name
    mount: str  # path inside the container
    adopted: bool = False  # exists already (`adopt_volumes`): read, mounted, never created or deleted

    def docker_name_in(self, name_prefix: str) -> str:
        return self.docker_name if self.adopted else f"{name_prefix}-{self.docker_name}"


@dataclass(frozen=True)
class VolumeMount:
    """Another service's volume, mounted here too (the backup container reads the backups volume)."""

    owner: str  # role of the service that declares the volume
    volume: str  # that Volume's `name`
    mount: str  # path inside this container


@dataclass(frozen=True)
class SecretFile:
    """A file whose content is a credential (a TLS key): uploaded as a Pulumi secret, never rendered."""

    mount: str
    variable: Variable


@dataclass(frozen=True)
class HostPath:
    source: str  # path on the Docker host, mounted read-only
    target: str
    key: str  # the stack-file setting that mounts it
    on_cluster: str  # what to set instead where no pod gets a host's files (the Kubernetes target)


ROOT_HOME = "/root"  # root's HOME in the images here: mode 700, closed to any other user


@dataclass(frozen=True)
class Hardening:
    """How a service's container is confined beyond its image's defaults; both targets read it.

    Every container runs with no-new-privileges and without the capabilities it does not need. A service whose
    image runs as a non-root user names it (`user`): it then keeps no capability at all, and on a cluster its
    pod meets the Pod Security Standard "restricted". A service left at None runs as its image's root: an
    exception its plan says why, keeping Docker's defaults less ROOT_DROPPED.
    """

    user: Optional[int] = None  # the image's own non-root UID (and GID); None: its root, an explained exception
    capabilities: tuple[str, ...] = ()  # added back after dropping all, for a non-root user; named with why
    # Where Docker keeps the image's root (the exception its plan names), the UID (and GID) its pod runs as on a
    # cluster instead: there fsGroup hands the pod its volumes, which on Docker only a root entrypoint's chown does.
    cluster_user: Optional[int] = None
    # Directories a non-root pod must write that its image left to root (nginx's temp paths): each an emptyDir.
    scratch: tuple[str, ...] = ()
    # A HOME for a non-root pod whose image's HOME is root's (/root, mode 700, closed to any other user): on a
    # cluster HOME is set to it and a volume under /root is mounted at the same place under it.
    home: Optional[str] = None

    @property
    def pod_user(self) -> Optional[int]:
        """The UID a cluster's pod runs as: the image's own, else the one named for a cluster; None: root."""
        return self.user if self.user is not None else self.cluster_user

    def cluster_path(self, path: str) -> str:
        """Where a volume the image mounts under /root is mounted on a cluster (under `home`)."""
        if self.home and (path == ROOT_HOME or path.startswith(f"{ROOT_HOME}/")):
            return self.home + path.removeprefix(ROOT_HOME)
        return path


# Docker's default capabilities that no root image here uses: raw sockets (ping, spoofing), device nodes,
# the kernel audit log, file capabilities, chroot. Dropped from every container that keeps root.
ROOT_DROPPED = ("AUDIT_WRITE", "MKNOD", "NET_RAW", "SETFCAP", "SYS_CHROOT")


@dataclass(frozen=True)
class OneShot:
    """A container that runs once per change of its inputs and exits (a model pull, a schema apply).

    It runs the image of service `image_of`, once that service's container exists, and carries that
    service's label; or, where the stack runs no such container, `image`, pulled for it alone.
    """

    name: str  # Pulumi name after the service's: "pull-gemma-2b" -> "ollama-pull-gemma-2b"
    docker_name: str  # after the stack's name_prefix
    image_of: str
    entrypoint: str
    command: tuple[str, ...]
    env: tuple[Variable, ...]
    files: tuple[RenderedFile, ...] = ()
    after: tuple[str, ...] = ()  # roles whose containers must be up first
    mounts: tuple[VolumeMount, ...] = ()
    # Roles whose containers are created only after this one-shot ran and exited 0 (declared later in the
    # registry): a failure stops `pulumi up` before them. Other one-shots' exit codes are only reported.
    before: tuple[str, ...] = ()
    image: Optional[str] = None


@dataclass(frozen=True)
class Scrape:
    """Prometheus scrapes this service's metrics under `job`."""

    job: str
    path: str
    port: Optional[int] = None  # an internal port other than the service's own (never published)
    host: Optional[str] = None  # a hostname of it other than its alias (one only the stack's network has)
    switch: Optional[str] = None  # spec key that turns this scrape off: named when it cannot be reached


@dataclass(frozen=True)
class Target:
    service: str  # role of the service it watches: the `service` label
    address: str  # host:port to scrape, or the URL the blackbox exporter probes


@dataclass(frozen=True)
class Prober:
    """A job of probes that a prober service (the blackbox exporter) runs for Prometheus."""

    service: str  # the prober's role: Prometheus asks it
    job: str
    path: str  # the prober's own path Prometheus asks
    module: str
    targets: tuple[Target, ...]


@dataclass(frozen=True)
class Monitoring:
    """How Prometheus watches a service; known from the spec alone, before any plan."""

    scrapes: tuple[Scrape, ...] = ()
    probe: Optional[str] = None  # path a prober asks to learn whether the service answers


@dataclass(frozen=True)
class Secret:
    """A stack output value that stays secret (Pulumi marks it so)."""

    value: Any


@dataclass(frozen=True)
class ServicePlan:
    """Everything one service runs, as data.

    A service's `plan(ctx)` fills in what is its own; the planner adds what every service has the same
    way: role, component, placement, image, container name, memory limit, `extra_env`, monitoring,
    `reaches`, `callers` and the networks it joins.
    """

    command: tuple[str, ...] = ()
    env: tuple[Variable, ...] = ()
    files: tuple[RenderedFile, ...] = ()
    volumes: tuple[Volume, ...] = ()
    mounts: tuple[VolumeMount, ...] = ()
    host_paths: tuple[HostPath, ...] = ()
    healthcheck: tuple[str, ...] = ()  # a command the image can run; exit 0 means healthy
    gpu: bool = False
    one_shots: tuple[OneShot, ...] = ()
    waits_for: tuple[str, ...] = ()  # roles whose containers must be healthy before this one starts
    prober: Optional[Prober] = None  # probes this service runs for Prometheus (the blackbox exporter)
    image_tools: frozenset[str] = frozenset()  # what the image ships that a healthcheck may run
    outputs: dict[str, Any] = field(default_factory=dict)  # stack outputs this service adds
    # How callers prove who they are at its published ports ("bearer keys", "Grafana login"); None: anyone
    # who reaches them gets in, which only a loopback bind address makes safe.
    authentication: Optional[str] = None
    # It would authenticate once credentials nobody supplies yet are: its exposure is then a missing credential.
    awaiting_credentials: bool = False
    secret_files: tuple["SecretFile", ...] = ()  # files whose content is a credential (uploaded as secrets)
    stop_grace_s: Optional[int] = None  # how long `docker stop` waits after SIGTERM (in-flight requests drain)
    hardening: Hardening = Hardening()
    rolling: bool = False  # replaced create-before-delete under a name that changes with what forces replacement
    role: str = ""
    component: str = ""  # Pulumi component type after the project's type prefix
    placement: Optional[Placement] = None
    image: Optional[str] = None  # None: no long-running container, only one-shots
    docker_name: Optional[str] = None  # container name after the stack's name_prefix
    seed_name: Optional[str] = None  # the whole container name PMOVES's compose gave it (`seed_container_names`)
    memory_mb: Optional[int] = None
    monitoring: Monitoring = Monitoring()  # from the definition
    reaches: tuple[str, ...] = ()  # roles whose addresses it was given
    networks: tuple[str, ...] = ()  # existing networks of its host it joins (never the stack's resources)
    # Docker target: hostnames it takes on the stack's own network only, and its ports that answer only there
    # (its own listener checks which network a connection arrived on); elsewhere every port answers everywhere.
    own_network_aliases: tuple[str, ...] = ()
    own_network_ports: tuple[int, ...] = ()
    notices: tuple[str, ...] = ()  # what `validate` tells the operator about this plan (not a problem)
    callers: tuple[tuple[str, int], ...] = ()  # (role, port) of every service given this one's address

    def container_name(self, name_prefix: str) -> str:
        """Its container's Docker name: the seed's where the stack carries it, else after the name_prefix."""
        return self.seed_name or f"{name_prefix}-{self.docker_name}"

    def ports(self) -> list[int]:
        """Every port others reach it on: its own, and the internal ones they were given."""
        own = [self.placement.port] if self.placement.port else []
        return sorted({*own, *(port for _, port in self.callers)})

    @property
    def runs_container(self) -> bool:
        return self.image is not None

    def all_files(self) -> tuple[RenderedFile, ...]:
        """Each file once, though the container and its one-shots may mount the same one."""
        return tuple(dict.fromkeys(self.files + tuple(f for shot in self.one_shots for f in shot.files)))
