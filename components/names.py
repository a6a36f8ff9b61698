"""Hostnames, ports and paths that the containers agree on, named once.

The aliases are the hostnames PMOVES services already use (see the seed
document); the ports are the ones each image listens on inside its container.
"""

from dataclasses import dataclass

PROJECT = "pmoves-tensorzero"
TYPE_PREFIX = "tensorzero:stack"

# Docker labels on every container: how logs, smoke checks and operators find a stack's containers.
PROJECT_LABEL = "com.pmoves.project"
STACK_LABEL = "com.pmoves.stack"
SERVICE_LABEL = "com.pmoves.service"


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
PROMETHEUS = Service("prometheus", "tensorzero-prometheus", 9090, "tensorzero-prometheus")
BLACKBOX = Service("blackbox", "tensorzero-blackbox", 9115, "tensorzero-blackbox")
GRAFANA = Service("grafana", "tensorzero-grafana", 3000, "tensorzero-grafana")
LOKI = Service("loki", "tensorzero-loki", 3100, "tensorzero-loki")
ALLOY = Service("alloy", "tensorzero-alloy", 12345, "tensorzero-alloy")

CLICKHOUSE_NATIVE_PORT = 9000  # clickhouse-client and the Grafana plugin's native protocol
CLICKHOUSE_METRICS_PORT = 9363  # ClickHouse's built-in Prometheus endpoint
CLICKHOUSE_METRICS_PATH = "/metrics"

GATEWAY_CONFIG_PATH = "/app/config/tensorzero.toml"
CLICKHOUSE_CONFIG_DIR = "/etc/clickhouse-server/config.d"
CLICKHOUSE_DATA_PATH = "/var/lib/clickhouse"
OLLAMA_MODELS_PATH = "/root/.ollama"
OLLAMA_API_PATH = "/v1"  # Ollama's OpenAI-compatible routes
CLICKHOUSE_USERS_DIR = "/etc/clickhouse-server/users.d"
CLICKHOUSE_BACKUPS_PATH = "/var/lib/clickhouse-backups/"
REQUESTS_VIEW = "requests"  # the seed's table of requests: a view the schema one-shot creates
CLICKHOUSE_BACKUPS_DISK = "backups"  # the seed's `BACKUP ... TO Disk('backups', ...)`
CLICKHOUSE_SCHEMA_SQL_PATH = "/opt/pmoves/clickhouse-schema.sql"  # where the one-shot schema container reads it
PROMETHEUS_CONFIG_PATH = "/etc/prometheus/prometheus.yml"
PROMETHEUS_RULES_DIR = "/etc/prometheus/rules"
PROMETHEUS_DATA_PATH = "/prometheus"
BLACKBOX_CONFIG_PATH = "/etc/blackbox_exporter/config.yml"
GRAFANA_PROVISIONING_DIR = "/etc/grafana/provisioning"
GRAFANA_DASHBOARDS_DIR = "/var/lib/grafana-dashboards"
GRAFANA_DATA_PATH = "/var/lib/grafana"
LOKI_CONFIG_PATH = "/etc/loki/config.yaml"
LOKI_DATA_PATH = "/loki"
ALLOY_CONFIG_PATH = "/etc/alloy/config.alloy"
DOCKER_SOCKET = "/var/run/docker.sock"

# What Prometheus scrapes and the blackbox exporter probes (the healthchecks answer on the same paths).
METRICS_PATH = "/metrics"  # the gateway, Grafana, Loki and the exporters
GATEWAY_STATUS_PATH = "/status"  # liveness; touches no database
UI_HEALTH_PATH = "/health"
OLLAMA_VERSION_PATH = "/api/version"  # Ollama exports no metrics; this answers once it serves
CLICKHOUSE_PING_PATH = "/ping"
PROMETHEUS_HEALTH_PATH = "/-/healthy"  # Prometheus and the blackbox exporter alike
BLACKBOX_PROBE_PATH = "/probe"

# How OpenAI-compatible clients name a TensorZero model (FACTS: a bare chat model name is a 400).
CHAT_MODEL_PREFIX = "tensorzero::model_name::"
EMBEDDING_MODEL_PREFIX = "tensorzero::embedding_model_name::"
FUNCTION_PREFIX = "tensorzero::function_name::"
TENSORZERO_NAME_PREFIX = "tensorzero::"  # names in this form pass the edge untouched

# The compatibility edge (OpenResty) takes the gateway's alias and port, so the seed's calls reach it;
# the real gateway moves to an internal alias that the UI and Prometheus use directly.
EDGE = Service("edge", "tensorzero-gateway", 3000, "tensorzero-edge")
GATEWAY_BEHIND_EDGE_ALIAS = "tensorzero-gateway-core"
EDGE_METRICS_PATH = "/edge/metrics"  # the edge's own Prometheus text; /metrics stays the gateway's
EDGE_HEALTH_PATH = "/edge/health"  # answered by the edge itself: its healthcheck
EDGE_PREFIX = "/usr/local/openresty/nginx"  # the OpenResty image's nginx prefix (-p)
EDGE_CONFIG_PATH = "/etc/nginx/conf.d/default.conf"  # included inside the image's http block
EDGE_LUA_DIR = "pmoves-edge"  # under EDGE_PREFIX: the edge's Lua module and settings
EDGE_API_KEY_ENV = "TENSORZERO_API_KEY"  # the seed's name; the edge reads its key from it
DOCKER_DNS = "127.0.0.11"  # Docker's embedded resolver on user-defined networks

SERVICES = (CLICKHOUSE, GATEWAY, EDGE, UI, OLLAMA, PROMETHEUS, BLACKBOX, GRAFANA, LOKI, ALLOY)

DEFAULT_ENV_LAYERS = ("env.shared.generated", "env.shared", ".env.generated", ".env.local")
