"""What the dashboards ask, and of which datasource: every ClickHouse query and PromQL expression (from the
monitoring contract), as targets of the datasources Grafana provisions.

Where each number comes from, and why (FACTS.md, TensorZero's source):
- The gateway's counters (`tensorzero_requests_total`, `tensorzero_inferences_total`) are
  incremented when a request *starts*, before any provider answers, with labels `endpoint`,
  `function_name` and `model_name` (the last only when the caller named a model). They carry no
  status, so they count traffic, never failures.
- End-to-end latency, time to first token, tokens per model and cost exist only in ClickHouse:
  one `ModelInference` row per model call that *succeeded* (`response_time_ms`, `ttft_ms` for
  streamed calls, `input_tokens`, `output_tokens`, `cached`, `cost`). A failed call writes no row.
- So the error share the stack can measure without the edge is "inference requests counted by the
  gateway that never produced a stored inference" (Prometheus minus ClickHouse), next to the blackbox
  probes; the edge's status-code metrics are added with `edge_metrics=True`.

ClickHouse queries use the grafana-clickhouse-datasource macros (`$__timeFilter`,
`$__timeInterval`, `$__interval_s`), which the plugin expands on Grafana's server.
"""

from grafana_foundation_sdk.builders import loki, prometheus
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.cog.runtime import UnknownDataquery
from grafana_foundation_sdk.models.dashboard import DataSourceRef

from components.core.monitoring import (
    CLICKHOUSE_JOB,
    EDGE_DURATION,
    EDGE_REQUESTS,
    GATEWAY_INFERENCES,
    GATEWAY_JOB,
    GATEWAY_REQUESTS,
    GATEWAY_TOKENS,
    PROBE_JOB,
    PROBE_SUCCESS,
    SERVICE_LABEL,
    clickhouse_disk_free,
    overhead_quantile,
    selector,
)

# Datasource uids: fixed, so provisioned dashboards name them directly (no `${DS_...}` inputs).
PROMETHEUS_UID = "prometheus"
CLICKHOUSE_UID = "clickhouse"
LOKI_UID = "loki"
CLICKHOUSE_PLUGIN = "grafana-clickhouse-datasource"
PROMETHEUS_DS = DataSourceRef(type_val="prometheus", uid=PROMETHEUS_UID)
CLICKHOUSE_DS = DataSourceRef(type_val=CLICKHOUSE_PLUGIN, uid=CLICKHOUSE_UID)
LOKI_DS = DataSourceRef(type_val="loki", uid=LOKI_UID)
# Grafana's built-ins: a panel mixing datasources, and server-side expressions over their results.
MIXED_DS = DataSourceRef(type_val="datasource", uid="-- Mixed --")
EXPRESSION_DS = DataSourceRef(type_val="__expr__", uid="__expr__")
BUILTIN_UIDS = frozenset({MIXED_DS.uid, EXPRESSION_DS.uid})

QUANTILES = (0.5, 0.95, 0.99)

# --- ClickHouse (the `{db}` placeholder is the stack's database, an Identifier) ---------------------

# Exact quantiles (linear interpolation, like Excel's PERCENTILE.INC): what the panel shows can be
# recomputed from the rows. Cache hits answer without a provider and would hide its latency.
_PERCENTILES = ",\n    ".join(f"quantileExactInclusive({q})({{column}}) AS p{round(q * 100)}" for q in QUANTILES)
PERCENTILES_SQL = f"""SELECT
    $__timeInterval(timestamp) AS time,
    model_name,
    {_PERCENTILES}
FROM {{db}}.ModelInference
WHERE $__timeFilter(timestamp) AND NOT cached AND {{column}} IS NOT NULL
GROUP BY time, model_name
ORDER BY time, model_name"""

INFERENCE_RATE_SQL = """SELECT
    $__timeInterval(timestamp) AS time,
    model_name,
    count() / $__interval_s AS inferences_per_second
FROM {db}.ModelInference
WHERE $__timeFilter(timestamp)
GROUP BY time, model_name
ORDER BY time, model_name"""

TOKENS_SQL = """SELECT
    $__timeInterval(timestamp) AS time,
    model_name,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens
FROM {db}.ModelInference
WHERE $__timeFilter(timestamp)
GROUP BY time, model_name
ORDER BY time, model_name"""

MODEL_COMPARISON_SQL = """SELECT
    model_name AS model,
    arrayStringConcat(arraySort(groupUniqArray(model_provider_name)), ', ') AS providers,
    count() AS requests,
    countIf(cached) AS cache_hits,
    avgIf(response_time_ms, NOT cached) AS avg_latency_ms,
    quantileExactInclusiveIf(0.95)(response_time_ms, NOT cached) AS p95_latency_ms,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    toFloat64(sum(cost)) AS cost
FROM {db}.ModelInference
WHERE $__timeFilter(timestamp)
GROUP BY model_name
ORDER BY requests DESC, model"""

STORED_INFERENCES_SQL = """SELECT
    (SELECT count() FROM {db}.ChatInference WHERE $__timeFilter(timestamp))
    + (SELECT count() FROM {db}.JsonInference WHERE $__timeFilter(timestamp)) AS stored_inferences"""

# The seed's "View Request Logs" query, answered from the table TensorZero really writes.
LATEST_REQUESTS_SQL = """SELECT
    timestamp,
    model_name AS model,
    model_provider_name AS provider,
    input_tokens AS request_tokens,
    output_tokens AS response_tokens,
    response_time_ms AS latency_ms
FROM {db}.ModelInference
WHERE $__timeFilter(timestamp)
ORDER BY timestamp DESC
LIMIT 50"""

# --- Prometheus ------------------------------------------------------------------------------------

GATEWAY_SCRAPE = selector(job=GATEWAY_JOB)
CLICKHOUSE_SCRAPE = selector(job=CLICKHOUSE_JOB)
REQUEST_RATE = (
    f"sum by (endpoint, function_name, model_name) (rate({GATEWAY_REQUESTS}{GATEWAY_SCRAPE}[$__rate_interval]))"
)
REQUESTED_INFERENCES = f"sum(increase({GATEWAY_INFERENCES}{selector(job=GATEWAY_JOB, endpoint='inference')}[$__range]))"


def overhead(quantile: float) -> str:
    return overhead_quantile(quantile, "$__rate_interval", job=GATEWAY_JOB)


def token_rate(kind: str) -> str:
    return f"sum(rate({GATEWAY_TOKENS.format(kind=kind)}{GATEWAY_SCRAPE}[$__rate_interval]))"


PROBES = f"{PROBE_SUCCESS}{selector(job=PROBE_JOB)}"


def probe(role: str) -> str:
    return f"{PROBE_SUCCESS}{selector(job=PROBE_JOB, **{SERVICE_LABEL: role})}"


# Every ClickHouse disk (`default`, `backups`), as the ClickHouseDiskPressure alert selects them.
DISK_FREE = clickhouse_disk_free(job=CLICKHOUSE_JOB)


def edge_status_share(status_pattern: str) -> str:
    """Issue 5's edge exports these; only dashboards rendered with `edge_metrics=True` use them."""
    total = f"sum by (route) (rate({EDGE_REQUESTS}[$__rate_interval]))"
    matching = f'sum by (route) (rate({EDGE_REQUESTS}{{status=~"{status_pattern}"}}[$__rate_interval]))'
    return f"{matching} / {total}"


def edge_duration(quantile: float) -> str:
    buckets = f"{EDGE_DURATION}_bucket"
    return f"histogram_quantile({quantile}, sum by (le, model) (rate({buckets}[$__rate_interval])))"


# --- Targets -------------------------------------------------------------------------------------


class ClickHouseQuery(cogbuilder.Builder[cogvariants.Dataquery]):
    """A raw-SQL target of grafana-clickhouse-datasource 4.x, which the SDK has no builder for."""

    def __init__(self, sql: str, *, ref_id: str = "A", as_table: bool = False):
        self.target = {
            "datasource": {"type": CLICKHOUSE_DS.type_val, "uid": CLICKHOUSE_DS.uid},
            "editorType": "sql",
            # The plugin's QueryType (src/types/sql.ts) and the format it maps it to (src/data/utils.ts).
            "format": 1 if as_table else 0,
            "queryType": "table" if as_table else "timeSeries",
            "rawSql": sql,
            "refId": ref_id,
        }

    def build(self) -> UnknownDataquery:
        return UnknownDataquery(dict(self.target))


def promql(expression: str, legend: str = "", *, ref_id: str = "A", instant: bool = False) -> prometheus.Dataquery:
    query = prometheus.Dataquery().expr(expression).ref_id(ref_id).datasource(PROMETHEUS_DS)
    if legend:
        query = query.legend_format(legend)
    return query.instant() if instant else query.range()


def logql(expression: str, legend: str = "", *, ref_id: str = "A") -> loki.Dataquery:
    query = loki.Dataquery().expr(expression).ref_id(ref_id).datasource(LOKI_DS)
    return query.legend_format(legend) if legend else query
