"""The stack file's settings that are not one service's: hosts, env files, catalog, confirmations, Kubernetes.

Each service's own section is a `ServiceSpec` declared in its module (components/services/); the registry
assembles them with these into the stack's `Environment` (model/environment.py).
"""

import datetime
import errno
import functools
import ipaddress
import os
import re
import socket
from enum import Enum
from typing import Annotated, Optional
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from components.core.envfiles import entropy_bits
from components.core.names import DEFAULT_ENV_LAYERS, DOCKER_RESERVED_NETWORKS
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
    StrictModel,
    VolumeName,
)
from components.core.urls import is_loopback_host, shown_host

# The seed's own credentials, and the images' defaults: fine on a laptop, refused where data matters.
SEED_DEFAULT_CREDENTIAL = "tensorzero"
SEED_DEFAULT_CREDENTIALS = (SEED_DEFAULT_CREDENTIAL, "admin")  # compared case-insensitively
MIN_PASSWORD_LENGTH = 12  # outside dev
# A password outside dev: its characters spread enough that it is not one repeated (32 × 'a' has 0 bits; 12
# characters of 8 different ones about 36), by the same estimate as a key's.
MIN_PASSWORD_BITS = 36
# The dev template's passwords (envfiles/dev/env.shared.example): known to anyone who read it, refused beyond dev.
DEV_TEMPLATE_PREFIX = "pmoves-dev-"
# A caller's key outside dev: long, and its characters spread enough that it was generated, not typed
# (`openssl rand -hex 32` gives 64 characters and about 240 bits by the estimate below).
MIN_KEY_LENGTH = 32
MIN_KEY_BITS = 96  # Shannon entropy of its characters' spread, times its length (32 random hex digits: ~118)
# The spread above misses structure ('ab' * 20, the alphabet, 'Password123!' twice); zxcvbn, an estimator nobody
# here wrote, finds repeats, sequences, keyboard walks and dictionary words. Its score 3 means at least 10^8
# guesses: out of reach online (Grafana locks an account after failed logins, the edge throttles each address)
# while a typed password of four unrelated words still passes. `openssl rand -hex 32` scores 4 (about 10^60).
MIN_GUESS_SCORE = 3
GUESS_MAX_LENGTH = 72  # zxcvbn refuses longer input (its matching grows fast): the first 72 characters are rated
# Words this stack's credentials are guessed from first: its own names, its tiers, what a password is for.
GUESS_CONTEXT = (
    "pmoves", "tensorzero", "clickhouse", "grafana", "gateway", "ollama", "prod", "staging", "dev", "readonly",
    "admin", "password", "secret", "changeme",
)  # fmt: skip
GENERATE = "make one with `openssl rand -hex 32`"


def is_public_credential(value: str) -> bool:
    """A value anyone can know: a seed or image default, or the dev template's."""
    return value.lower() in SEED_DEFAULT_CREDENTIALS or value.lower().startswith(DEV_TEMPLATE_PREFIX)


def password_weakness(value: str) -> Optional[str]:
    """Why a password is too weak to accept beyond dev; None when it is not."""
    if value.lower() in SEED_DEFAULT_CREDENTIALS:
        return f"the default password '{value}' is refused"
    if value.lower().startswith(DEV_TEMPLATE_PREFIX):
        return f"'{DEV_TEMPLATE_PREFIX}...' is the dev template's password, known to anyone who read it; refused"
    if len(value) < MIN_PASSWORD_LENGTH:
        return f"{len(value)} characters; a password has at least {MIN_PASSWORD_LENGTH}"
    if (bits := entropy_bits(value)) < MIN_PASSWORD_BITS:
        return f"about {bits:.0f} bits of entropy, too predictable; a password has at least {MIN_PASSWORD_BITS}"
    return guessable(value, "a password")


def key_weakness(value: str) -> Optional[str]:
    """Why a caller's key is too weak to accept beyond dev; None when it is not."""
    if len(value) < MIN_KEY_LENGTH:
        return f"{len(value)} characters; a key has at least {MIN_KEY_LENGTH} (`openssl rand -hex 32`)"
    bits = entropy_bits(value)
    if bits < MIN_KEY_BITS:
        return (
            f"about {bits:.0f} bits of entropy, too predictable; a key has at least {MIN_KEY_BITS} "
            "(`openssl rand -hex 32`)"
        )
    return guessable(value, "a key")


@functools.cache  # a credential is checked for every service that uses it, and zxcvbn takes milliseconds each
def guessable(value: str, what: str) -> Optional[str]:
    """Why zxcvbn finds the value too easy to guess beyond dev (its warning, never the value); None when not."""
    from zxcvbn import zxcvbn  # here, not above: only a credential beyond dev is rated, `validate dev` stays fast

    text = value[:GUESS_MAX_LENGTH]
    rating = zxcvbn(text, user_inputs=list(GUESS_CONTEXT))
    why = rating["feedback"]["warning"].rstrip(".") or "no long random stretch"
    if rating["score"] >= MIN_GUESS_SCORE:
        # zxcvbn prices each separator between the stack's own words as a random character: what is left without
        # those words is rated too ("pmoves-tensorzero-prod" leaves "--").
        rest = re.sub("|".join(GUESS_CONTEXT), "", text.lower())
        if rest == text.lower():
            return None
        rating = zxcvbn(rest or "-", user_inputs=list(GUESS_CONTEXT))
        if rating["score"] >= MIN_GUESS_SCORE:
            return None
        why = "little besides this stack's own names and words"
    return (
        f"guessed in about 10^{rating['guesses_log10']:.0f} tries by zxcvbn's estimate ({why}); {GENERATE}: "
        f"{what} needs 10^8 or more (zxcvbn score {MIN_GUESS_SCORE})"
    )


def is_single_line(value: str) -> bool:
    return not any(character < " " or character == "\x7f" for character in value)


PUBLISHED_PORT = "Host port the service is published on; null keeps it internal."
LOOPBACK = "127.0.0.1"
CLUSTER = "cluster"  # the one "host" of a stack on Kubernetes
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
DOCKER_DNS = "127.0.0.11"  # Docker's embedded resolver on user-defined networks


def can_bind(address: str) -> bool:
    """Whether this machine holds `address` (a socket can bind it); loopback and "every address" always."""
    parsed = ipaddress.ip_address(address)
    if parsed.is_loopback or parsed.is_unspecified:
        return True
    with socket.socket(socket.AF_INET6 if parsed.version == 6 else socket.AF_INET) as probe:
        try:
            probe.bind((address, 0))
        except OSError as error:
            return error.errno != errno.EADDRNOTAVAIL  # anything else is not this check's to judge
    return True


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

    @property
    def on_this_machine(self) -> bool:
        """Whether its engine is this machine's (a unix socket, or tcp:// or ssh:// to loopback): its host paths and
        addresses are this machine's."""
        engine = urlsplit(self.url)
        return engine.scheme == "unix" or is_loopback_host(engine.hostname or "")

    @property
    def engine(self) -> str:
        """Which Docker engine the URL reaches, one spelling for each: a socket by its real path (`/var/run` is a
        link to `/run`), an ssh:// or tcp:// one by user, host and port."""
        engine = urlsplit(self.url)
        if engine.scheme == "unix":
            return f"unix://{os.path.realpath(engine.path)}"
        user = f"{engine.username}@" if engine.username else ""
        port = f":{engine.port}" if engine.port else ""
        return f"{engine.scheme}://{user}{shown_host((engine.hostname or '').rstrip('.'))}{port}"

    @field_validator("networks")
    @classmethod
    def _no_reserved_network(cls, networks: list[str]) -> list[str]:
        if reserved := sorted(set(networks) & set(DOCKER_RESERVED_NETWORKS)):
            raise ValueError(
                f"{', '.join(reserved)}: Docker's own network, which a container beside the stack's network cannot "
                "join (`host` and `none` exclude every other, `bridge` takes no hostnames)"
            )
        return networks


class AdoptedVolume(StrictModel):
    """A data volume that exists already (PMOVES's `tensorzero-clickhouse-data`): mounted, never owned."""

    name: VolumeName = Field(description="The existing Docker volume's name, as `docker volume ls` shows it.")
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
        description="Further variables from the env layers this container receives, by name; never one the stack "
        "sets itself (a listed copy would replace it).",
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
    local_only: bool = Field(
        False,
        description="Serve only the models (of `models`, or of the whole catalog) whose every provider, fallbacks "
        "included, is one of this stack's Ollamas: PMOVES's local models, no hosted key needed.",
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
