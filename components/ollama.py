"""Ollama: local models, with the catalog's Ollama models pulled at deploy."""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from typing import TYPE_CHECKING, Optional

from pydantic import Field

from .envfiles import Variable
from .service import Monitoring, OneShot, ServiceDefinition, ServicePlan, Volume
from .spec import PUBLISHED_PORT, ServiceSpec
from .types import ImageRef, Port

if TYPE_CHECKING:
    from .planner import Context

ALIAS = "pmoves-ollama"
PORT = 11434
API_PATH = "/v1"  # Ollama's OpenAI-compatible routes
VERSION_PATH = "/api/version"  # Ollama exports no metrics; this answers once it serves
MODELS_PATH = "/root/.ollama"
# The image ships neither curl nor wget; its own client asks the server.
HEALTHCHECK = ("ollama", "list")
BINARY = "/bin/ollama"


class OllamaSpec(ServiceSpec):
    enabled: bool = Field(True, description="Deploy the stack's own Ollama (`pmoves-ollama`).")
    image: ImageRef = Field("ollama/ollama:0.12.6", description="Pinned Ollama image.")
    port: Optional[Port] = Field(PORT, description=PUBLISHED_PORT)
    gpu: bool = Field(False, description="Request every NVIDIA GPU of the host.")
    pull_models: bool = Field(True, description="Pull the catalog's Ollama models at deploy.")


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


def pull(model: str, name: str) -> OneShot:
    """A one-shot `ollama pull` beside the server; re-run only when the model changes."""
    return OneShot(
        name=f"pull-{name}",
        docker_name=f"ollama-pull-{name}",
        image_of=SERVICE.role,
        entrypoint=BINARY,
        command=("pull", model),
        env=(Variable("OLLAMA_HOST", f"{ALIAS}:{PORT}", "components/ollama.py", False),),
        after=(SERVICE.role,),
    )


def plan(ctx: Context) -> ServicePlan:
    spec: OllamaSpec = ctx.section
    models = ctx.deployment.translation.ollama_pulls
    return ServicePlan(
        env=(Variable("OLLAMA_HOST", f"0.0.0.0:{PORT}", "components/ollama.py", False),),
        volumes=(Volume("models", "ollama-models", MODELS_PATH),),
        healthcheck=HEALTHCHECK,
        gpu=spec.gpu,
        one_shots=tuple(pull(model, name) for model, name in pull_names(models).items()) if spec.pull_models else (),
        image_tools=frozenset({"ollama"}),
        outputs={"ollama_models": list(models)},
    )


SERVICE = ServiceDefinition(
    role="ollama",
    component="Ollama",
    plan=plan,
    description="Local models.",
    spec=OllamaSpec,
    container="ollama",
    alias=ALIAS,
    port=PORT,
    monitoring=lambda spec: Monitoring(probe=VERSION_PATH),
    exposure_fix="Ollama has no authentication: keep it on loopback and let ollama_guard (enabled, with the "
    "gateway host's address in ollama_guard.allow) publish its port on a private address",
)
