"""Ollama: local models, each catalog model pulled at deploy into the Ollama it runs on.

A stack runs its own Ollama (`pmoves-ollama`, the `ollama` section) and any number of further ones
(`ollama.instances`: a GPU box, an edge host such as PMOVES's `jetson-ollama`). Each is one container on its
host answering to its own hostname; the catalog names the one a model runs on by that hostname
(`base_url = "http://jetson-ollama:11434"`), the gateway reaches it by the endpoint rule, and exactly the
models routed to it are pulled into it, on its host.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import replace
from typing import TYPE_CHECKING, Optional

from pydantic import Field

from components.core.envfiles import Variable
from components.core.names import OLLAMA_ALIAS, OLLAMA_API_PATH, OLLAMA_PORT
from components.core.plans import Hardening, Monitoring, OneShot, ServicePlan, Volume
from components.core.types import Hostname, ImageRef, InstanceName, Port
from components.model.environment import ServiceDefinition
from components.model.settings import PUBLISHED_PORT, ServiceSpec

if TYPE_CHECKING:
    from components.model.context import Context
    from components.model.environment import EnvironmentBase as Environment

ALIAS = OLLAMA_ALIAS
INSTANCE_ALIAS = "{name}-ollama"  # an instance's hostname unless its entry says otherwise: `jetson-ollama`
PORT = OLLAMA_PORT
API_PATH = OLLAMA_API_PATH
VERSION_PATH = "/api/version"  # Ollama exports no metrics; this answers once it serves
MODELS_PATH = "/root/.ollama"
# ollama/ollama names no user of its own; on a cluster it runs as this one, its HOME (keys, models) on its volume.
CLUSTER_USER = 10002
CLUSTER_HOME = "/home/ollama"
# The image ships neither curl nor wget; its own client asks the server.
HEALTHCHECK = ("ollama", "list")
BINARY = "/bin/ollama"


class OllamaServer(ServiceSpec):
    """What every Ollama of the stack has."""

    image: ImageRef = Field("ollama/ollama:0.12.6", description="Pinned Ollama image.")
    port: Optional[Port] = Field(PORT, description=PUBLISHED_PORT)
    gpu: bool = Field(False, description="Request every NVIDIA GPU of the host.")
    pull_models: bool = Field(True, description="Pull the catalog's models that run on it at deploy.")


class OllamaInstance(OllamaServer):
    """A further Ollama of the stack: its own container (`ollama-<name>`), host, hostname and models."""

    image: Optional[ImageRef] = Field(None, description="Pinned Ollama image; null takes ollama.image.")
    alias: Optional[Hostname] = Field(
        None,
        description="Hostname it answers to, and by which the catalog routes models to it (`base_url`); "
        "null: `<name>-ollama`.",
    )


class OllamaSpec(OllamaServer):
    enabled: bool = Field(True, description="Deploy the stack's own Ollama (`pmoves-ollama`).")
    instances: dict[InstanceName, OllamaInstance] = Field(
        default_factory=dict,
        description="Further Ollamas by name (`jetson`), each on its host with its hostname; deployed whether or not "
        "the stack's own is.",
    )


def slug(model: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", model.lower()).strip("-")


def pull_names(models: tuple[str, ...]) -> dict[str, str]:
    """Each model's pull-container name: its slug; where two models share a slug (`qwen2.5:0.5b`,
    `qwen2-5-0-5b`), each of them also gets a hash of its own name, so no two containers share a name."""
    shared = Counter(slug(model) for model in models)
    return {
        model: slug(model)
        if shared[slug(model)] == 1
        else f"{slug(model)}-{hashlib.sha256(model.encode()).hexdigest()[:8]}"
        for model in models
    }


def servers(spec: Environment) -> list[ServiceDefinition]:
    """Every Ollama the stack deploys: its own, then its instances."""
    return [s for s in spec.deployed_services if s.component == SERVICE.component]


def pull(ctx: Context, model: str, name: str) -> OneShot:
    """A one-shot `ollama pull` beside its server, on the server's host; re-run only when the model changes."""
    service = ctx.service
    return OneShot(
        name=f"pull-{name}",
        docker_name=f"{service.container}-pull-{name}",
        image_of=service.role,
        entrypoint=BINARY,
        command=("pull", model),
        env=(Variable("OLLAMA_HOST", f"{ctx.placement.alias}:{PORT}", "components/services/ollama.py", False),),
        after=(service.role,),
    )


def plan(ctx: Context) -> ServicePlan:
    spec: OllamaServer = ctx.section
    models = ctx.deployment.translation.ollama_pulls.get(ctx.placement.alias, ())
    # Hardening exception: on Docker, ollama/ollama runs as root, with its models under /root/.ollama, where
    # PMOVES's compose mounts them (and the GPU runtime's device nodes where `gpu`). On a cluster it runs as
    # CLUSTER_USER: `ollama serve` writes its key pair under $HOME/.ollama, so HOME moves out of /root (closed
    # to that user) and the models volume with it; the device plugin hands a non-root pod its GPU.
    return ServicePlan(
        env=(Variable("OLLAMA_HOST", f"0.0.0.0:{PORT}", "components/services/ollama.py", False),),
        volumes=(Volume("models", f"{ctx.service.container}-models", MODELS_PATH),),
        healthcheck=HEALTHCHECK,
        gpu=spec.gpu,
        one_shots=tuple(pull(ctx, model, name) for model, name in pull_names(models).items())
        if spec.pull_models
        else (),
        image_tools=frozenset({"ollama"}),
        # By role: the smoke suite asks each Ollama it can reach for exactly these.
        outputs={"ollama_models": {ctx.role: list(models)}},
        hardening=Hardening(cluster_user=CLUSTER_USER, home=CLUSTER_HOME),
    )


def instance_role(name: str) -> str:
    return f"{SERVICE.role}-{name}"


def instance(spec: Environment, name: str) -> ServiceDefinition:
    """One entry of `ollama.instances` as a service of its own, its section's defaults filled in."""
    entry = spec.ollama.instances[name]
    section = OllamaServer(image=entry.image or spec.ollama.image, **entry.model_dump(exclude={"alias", "image"}))
    role, alias, key = (
        instance_role(name),
        entry.alias or INSTANCE_ALIAS.format(name=name),
        f"ollama.instances.{name}",
    )
    return replace(
        SERVICE,
        role=role,
        container=f"{SERVICE.container}-{name}",
        alias=alias,
        description=f"Ollama instance '{name}'.",
        key=key,
        section_of=lambda _: section,
        instances=lambda _: (),
        checks=lambda spec: alias_problems(spec, role, alias, key),
    )


def instances(spec: Environment) -> tuple[ServiceDefinition, ...]:
    return tuple(instance(spec, name) for name in spec.ollama.instances)


def alias_problems(spec: Environment, role: str, alias: str, key: str) -> list[tuple[str, str]]:
    """Each Ollama answers to a hostname of its own: the catalog routes models to it by that name."""
    earlier = [s for s in spec.all_services[: [s.role for s in spec.all_services].index(role)]]
    others = [s for s in spec.all_services if s.component != SERVICE.component]
    owners = {SERVICE.alias: SERVICE.role}
    for other in (*others, *earlier):
        moved = [front.moved_alias for front in other.fronts]
        owners.update({name: other.role for name in (other.alias, *moved) if name})
    return [(f"{key}.alias", f"'{alias}' is already {owners[alias]}'s hostname")] if alias in owners else []


SERVICE = ServiceDefinition(
    role="ollama",
    component="Ollama",
    plan=plan,
    description="Local models: the stack's own Ollama and its further instances.",
    spec=OllamaSpec,
    container="ollama",
    alias=ALIAS,
    port=PORT,
    monitoring=lambda spec: Monitoring(probe=VERSION_PATH),
    exposure_fix="Ollama has no authentication: keep it on loopback and let ollama_guard (enabled, naming it in "
    "ollama_guard.ollama if it is an instance, with the gateway host's address in ollama_guard.allow) publish its "
    "port on a private address",
    instances=instances,
)
