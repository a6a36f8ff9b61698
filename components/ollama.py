"""Ollama: local models, with the catalog's Ollama models pulled at deploy."""

import re
from typing import Optional

import pulumi
import pulumi_docker as docker

from .container import ContainerPlan, ServiceComponent, data_volume, one_shot_container, served_variables
from .envfiles import Variable
from .host import Placement
from .loader import Deployment
from .names import OLLAMA, OLLAMA_MODELS_PATH, TYPE_PREFIX
from .spec import OllamaSpec

# The image ships neither curl nor wget; its own client asks the server.
HEALTHCHECK = ("ollama", "list")
OLLAMA_BINARY = "/bin/ollama"


def environment(deployment: Deployment) -> list[Variable]:
    return [
        Variable("OLLAMA_HOST", f"0.0.0.0:{OLLAMA.port}", "components/ollama.py", False),
        *served_variables(deployment.spec.ollama, deployment.variables),
    ]


def slug(model: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", model.lower()).strip("-")


class Ollama(ServiceComponent):
    def __init__(
        self,
        name: str,
        spec: OllamaSpec,
        placement: Placement,
        *,
        env: list[Variable],
        pulls: list[str],
        protect_data: bool,
        opts: Optional[pulumi.ResourceOptions] = None,
    ):
        super().__init__(f"{TYPE_PREFIX}:Ollama", name, None, opts)
        self.models = data_volume(self, f"{name}-models", "ollama-models", placement, protect_data)
        self.run(
            name,
            OLLAMA,
            spec,
            placement,
            ContainerPlan(
                env=env,
                healthcheck=HEALTHCHECK,
                volumes=[(self.models, OLLAMA_MODELS_PATH)],
                gpu=spec.gpu,
            ),
        )
        self.pulls = [self._pull(name, spec, model) for model in (pulls if spec.pull_models else [])]
        self.register_outputs({"container": self.container.name})

    def _pull(self, name: str, spec: OllamaSpec, model: str) -> docker.Container:
        """A one-shot `ollama pull` beside the server; re-run only when the model changes."""
        return one_shot_container(
            self,
            f"{name}-pull-{slug(model)}",
            f"ollama-pull-{slug(model)}",
            OLLAMA,
            self.placement,
            image=self.container.image,
            entrypoint=OLLAMA_BINARY,
            command=["pull", model],
            env=[Variable("OLLAMA_HOST", f"{OLLAMA.alias}:{OLLAMA.port}", "components/ollama.py", False)],
            depends_on=[self.container],
        )
