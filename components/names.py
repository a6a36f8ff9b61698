"""Hostnames, ports and paths that the containers agree on, named once.

The aliases are the hostnames PMOVES services already use (see the seed
document); the ports are the ones each image listens on inside its container.
"""

from dataclasses import dataclass

PROJECT = "pmoves-tensorzero"
TYPE_PREFIX = "tensorzero:stack"


@dataclass(frozen=True)
class Service:
    role: str  # key in the spec, Pulumi names and stack outputs
    alias: str  # network alias other containers resolve
    port: int  # port the image listens on inside its container
    container: str  # Docker container name, after the stack's name_prefix


CLICKHOUSE = Service("clickhouse", "tensorzero-clickhouse", 8123, "tensorzero-clickhouse")
GATEWAY = Service("gateway", "tensorzero-gateway", 3000, "tensorzero-gateway")
UI = Service("ui", "tensorzero-ui", 4000, "tensorzero-ui")
OLLAMA = Service("ollama", "pmoves-ollama", 11434, "ollama")
SERVICES = (CLICKHOUSE, GATEWAY, UI, OLLAMA)

GATEWAY_CONFIG_PATH = "/app/config/tensorzero.toml"
CLICKHOUSE_CONFIG_DIR = "/etc/clickhouse-server/config.d"
CLICKHOUSE_DATA_PATH = "/var/lib/clickhouse"
OLLAMA_MODELS_PATH = "/root/.ollama"
OLLAMA_API_PATH = "/v1"  # Ollama's OpenAI-compatible routes

DEFAULT_ENV_LAYERS = ("env.shared.generated", "env.shared", ".env.generated", ".env.local")
