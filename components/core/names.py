"""Names the whole project agrees on; each service's own hostnames, ports and paths live in its module."""

from pathlib import Path

# The checkout: stacks/, catalog/, envfiles/ and templates/ are read from here (the package is installed editable).
PROJECT_DIR = Path(__file__).resolve().parents[2]

PROJECT = "pmoves-tensorzero"
TYPE_PREFIX = "tensorzero:stack"

# Docker labels on every container: how logs, smoke checks and operators find a stack's containers.
PROJECT_LABEL = "com.pmoves.project"
STACK_LABEL = "com.pmoves.stack"
SERVICE_LABEL = "com.pmoves.service"
# Docker's own networks: a container on `host` or `none` can join no other, and `bridge` takes no aliases.
DOCKER_RESERVED_NETWORKS = ("bridge", "host", "none")

METRICS_PATH = "/metrics"  # where the gateway, Grafana, Loki, Alloy and the exporters serve Prometheus text

# How OpenAI-compatible clients name a TensorZero model (FACTS: a bare chat model name is a 400).
CHAT_MODEL_PREFIX = "tensorzero::model_name::"
EMBEDDING_MODEL_PREFIX = "tensorzero::embedding_model_name::"
FUNCTION_PREFIX = "tensorzero::function_name::"
TENSORZERO_NAME_PREFIX = "tensorzero::"  # names in this form pass the edge untouched

# Ollama as PMOVES's callers and catalog know it: read by the catalog's routing and by the Ollama service.
OLLAMA_ALIAS = "pmoves-ollama"  # the stack's own Ollama
# The container names of PMOVES's compose, by role: what the seed's runbook execs into (`seed_container_names`).
SEED_CONTAINERS = {"clickhouse": "tensorzero-clickhouse", "ui": "tensorzero-ui", "ollama": "pmoves-ollama"}
# The volumes PMOVES's compose keeps its data in: a stack's own volume must never take one of these names.
COMPOSE_VOLUMES = ("tensorzero-clickhouse-data", "pmoves-ollama-models")
OLLAMA_PORT = 11434
OLLAMA_API_PATH = "/v1"  # Ollama's OpenAI-compatible routes

# Project-local, git-ignored: what a command remembers between runs (never a credential).
CACHE_DIR = ".cache"

DEFAULT_ENV_LAYERS = ("env.shared.generated", "env.shared", ".env.generated", ".env.local")


def stack_file(stack: str) -> str:
    """The stack file of `stack`, relative to the project."""
    return f"stacks/Pulumi.{stack}.yaml"


# How a PEM value begins: TLS material given by variable is checked as TLS (core/pem.py), not as a password.
PEM_BEGIN = "-----BEGIN "
