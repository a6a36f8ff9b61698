"""The stack's Grafana dashboards, as code (grafana-foundation-sdk), rendered deterministically.

Where each number comes from, and why (FACTS.md, TensorZero's source):
- The gateway's counters (`tensorzero_requests_total`, `tensorzero_inferences_total`) are
  incremented when a request *starts*, before any provider answers, with labels `endpoint`,
  `function_name` and `model_name` (the last only when the caller named a model). They carry no
  status, so they count traffic, never failures.
- End-to-end latency, time to first token, tokens per model and cost exist only in ClickHouse:
  one `ModelInference` row per model call that *succeeded* (`response_time_ms`, `ttft_ms` for
  streamed calls, `input_tokens`, `output_tokens`, `cached`, `cost`). A failed call writes no row.
- So the error share the stack can measure without the edge of issue 5 is "inference requests
  counted by the gateway that never produced a stored inference" (Prometheus minus ClickHouse),
  next to the blackbox probes; the edge's status-code metrics are added with `edge_metrics=True`.

ClickHouse queries use the grafana-clickhouse-datasource macros (`$__timeFilter`,
`$__timeInterval`, `$__interval_s`), which the plugin expands on Grafana's server.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

from grafana_foundation_sdk.builders import dashboard, expr, logs, loki, prometheus, stat, table, timeseries
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.runtime import UnknownDataquery
from grafana_foundation_sdk.models.dashboard import DataSourceRef, DynamicConfigValue, Threshold, ThresholdsMode

from .edge import DURATION_METRIC, REQUESTS_METRIC
from .names import CLICKHOUSE, GATEWAY
from .prometheus import GATEWAY_JOB, PROBE_JOB, SERVICE_LABEL

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

OVERVIEW_UID = "tensorzero-overview"
LOGS_UID = "tensorzero-logs"
CLICKHOUSE_JOB = CLICKHOUSE.role  # prometheus.scrape_jobs names ClickHouse's job after its role
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

GATEWAY_SCRAPE = f'{{job="{GATEWAY_JOB}"}}'
CLICKHOUSE_SCRAPE = f'{{job="{CLICKHOUSE_JOB}"}}'
REQUEST_RATE = (
    f"sum by (endpoint, function_name, model_name) (rate(tensorzero_requests_total{GATEWAY_SCRAPE}[$__rate_interval]))"
)
REQUESTED_INFERENCES = (
    f'sum(increase(tensorzero_inferences_total{{job="{GATEWAY_JOB}", endpoint="inference"}}[$__range]))'
)


def overhead(quantile: float) -> str:
    buckets = f"tensorzero_inference_latency_overhead_seconds_bucket{GATEWAY_SCRAPE}"
    return f"histogram_quantile({quantile}, sum by (le) (rate({buckets}[$__rate_interval])))"


def token_rate(kind: str) -> str:
    return f"sum(rate(tensorzero_{kind}_tokens_total{GATEWAY_SCRAPE}[$__rate_interval]))"


PROBES = f'probe_success{{job="{PROBE_JOB}"}}'


def probe(role: str) -> str:
    return f'probe_success{{job="{PROBE_JOB}", {SERVICE_LABEL}="{role}"}}'


# Every ClickHouse disk (`default`, `backups`), as prometheus.clickhouse_alerts selects them.
DISK_FREE = " / ".join(
    f'label_replace({{__name__=~"ClickHouseAsyncMetrics_Disk{kind}_.+", job="{CLICKHOUSE_JOB}"}}, "disk", "$1", '
    f'"__name__", "ClickHouseAsyncMetrics_Disk{kind}_(.+)")'
    for kind in ("Available", "Total")
)


def edge_status_share(status_pattern: str) -> str:
    """Issue 5's edge exports these; only dashboards rendered with `edge_metrics=True` use them."""
    total = f"sum by (route) (rate({REQUESTS_METRIC}[$__rate_interval]))"
    matching = f'sum by (route) (rate({REQUESTS_METRIC}{{status=~"{status_pattern}"}}[$__rate_interval]))'
    return f"{matching} / {total}"


def edge_duration(quantile: float) -> str:
    buckets = f"{DURATION_METRIC}_bucket"
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


# --- Panels --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    title: str
    panels: Sequence[cogbuilder.Builder]


def series(title: str, description: str, unit: str, targets, datasource=PROMETHEUS_DS, span=12):
    panel = timeseries.Panel().title(title).description(description).unit(unit).datasource(datasource)
    return panel.targets(list(targets)).span(span).height(8)


def up_stat(title: str, description: str, targets) -> stat.Panel:
    steps = [Threshold(value=None, color="red"), Threshold(value=1, color="green")]
    return (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(PROMETHEUS_DS)
        .targets(list(targets))
        .thresholds(dashboard.ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps(steps))
        .span(6)
        .height(4)
    )


def health_row(database_metrics: bool) -> Row:
    clickhouse = (
        up_stat(
            "ClickHouse up",
            "1 when Prometheus scrapes ClickHouse's built-in metrics endpoint.",
            [promql(f"up{CLICKHOUSE_SCRAPE}", "scrape", instant=True)],
        )
        if database_metrics
        else up_stat(
            "ClickHouse ping",
            "1 when ClickHouse answers /ping to the blackbox exporter (its metrics endpoint is off).",
            [promql(probe(CLICKHOUSE.role), "ping", instant=True)],
        )
    )
    return Row(
        "Health",
        [
            up_stat(
                "Gateway up",
                "1 when Prometheus scrapes the gateway's /metrics and the blackbox exporter gets 200 from /status.",
                [
                    promql(f"up{GATEWAY_SCRAPE}", "scrape", instant=True),
                    promql(probe(GATEWAY.role), "probe", ref_id="B", instant=True),
                ],
            ),
            clickhouse,
            up_stat(
                "Probes",
                "probe_success of every blackbox probe (gateway /status, ClickHouse /ping, UI /health, "
                "Ollama /api/version): 1 when the service answered 2xx.",
                [promql(PROBES, f"{{{{{SERVICE_LABEL}}}}}", instant=True)],
            ).span(12),
        ],
    )


def traffic_row(db: str) -> Row:
    return Row(
        "Traffic",
        [
            series(
                "Requests per second by endpoint and model (gateway)",
                "rate(tensorzero_requests_total): counted when a request starts, success or not. model_name is "
                "set only when the caller named a model; function calls show the function instead.",
                "reqps",
                [promql(REQUEST_RATE, "{{endpoint}} {{function_name}} {{model_name}}")],
            ),
            series(
                "Model inferences per second by model (ClickHouse)",
                "Successful model calls per second from ModelInference, including those made for functions, "
                "fallbacks and cache hits.",
                "reqps",
                [ClickHouseQuery(INFERENCE_RATE_SQL.format(db=db))],
                CLICKHOUSE_DS,
            ),
        ],
    )


def latency_row(db: str) -> Row:
    return Row(
        "Latency",
        [
            series(
                "Latency P50 / P95 / P99 by model",
                "ModelInference.response_time_ms of successful, non-cached model calls: the provider's answer "
                "time as the gateway saw it. Exact quantiles per interval.",
                "ms",
                [ClickHouseQuery(PERCENTILES_SQL.format(db=db, column="response_time_ms"))],
                CLICKHOUSE_DS,
            ),
            series(
                "Time to first token P50 / P95 / P99 by model",
                "ModelInference.ttft_ms: recorded for streamed calls only; non-streamed calls have none.",
                "ms",
                [ClickHouseQuery(PERCENTILES_SQL.format(db=db, column="ttft_ms"))],
                CLICKHOUSE_DS,
            ),
            series(
                "Gateway overhead P50 / P99",
                "tensorzero_inference_latency_overhead_seconds: what the gateway itself adds, not the provider's "
                "time. TensorZero exports no end-to-end latency metric.",
                "s",
                [promql(overhead(q), f"p{round(q * 100)}", ref_id=r) for q, r in ((0.5, "A"), (0.99, "B"))],
            ),
        ],
    )


def tokens_row(db: str) -> Row:
    return Row(
        "Tokens and cost",
        [
            series(
                "Input / output tokens by model",
                "Sums of ModelInference.input_tokens and output_tokens per interval (cache hits included).",
                "short",
                [ClickHouseQuery(TOKENS_SQL.format(db=db))],
                CLICKHOUSE_DS,
            ),
            series(
                "Tokens per second (gateway counters, all models)",
                "tensorzero_input_tokens_total / tensorzero_output_tokens_total carry no model label.",
                "short",
                [promql(token_rate(k), k, ref_id=r) for k, r in (("input", "A"), ("output", "B"))],
            ),
            table.Panel()
            .title("Model comparison")
            .description(
                "Per model over the dashboard's range: successful calls, cache hits, average and P95 latency "
                "(non-cached), tokens, and cost (empty when no cost is configured for the model)."
            )
            .datasource(CLICKHOUSE_DS)
            .with_target(ClickHouseQuery(MODEL_COMPARISON_SQL.format(db=db), as_table=True))
            .span(24)
            .height(8),
        ],
    )


def errors_row(db: str, edge_metrics: bool) -> Row:
    counts = DynamicConfigValue(id_val="unit", value="short")  # A and B are counts; only C is a share
    share = (
        stat.Panel()
        .title("Inference requests without a stored result")
        .description(
            "A: inference requests the gateway counted over the range (tensorzero_inferences_total, "
            'endpoint="inference"). B: inferences stored in ChatInference + JsonInference. C = (A - B) / A: '
            "requests that failed, plus any still in flight or not yet flushed by async writes. TensorZero "
            "records no failures itself; the edge (issue 5) adds status codes."
        )
        .datasource(MIXED_DS)
        .targets(
            [
                promql(REQUESTED_INFERENCES, "requested", instant=True),
                ClickHouseQuery(STORED_INFERENCES_SQL.format(db=db), ref_id="B", as_table=True),
                expr.TypeMath().ref_id("C").datasource(EXPRESSION_DS).expression("($A - $B) / $A"),
            ]
        )
        .unit("percentunit")
        .override_by_query("A", [counts])
        .override_by_query("B", [counts])
        .span(12)
        .height(8)
    )
    panels = [share]
    if edge_metrics:
        panels += [
            series(
                "HTTP error share by route (edge)",
                "Share of the edge's requests answered 5xx and 4xx (tensorzero_http_requests_total).",
                "percentunit",
                [
                    promql(edge_status_share(p), f"{{{{route}}}} {p[0]}xx", ref_id=r)
                    for p, r in (("5..", "A"), ("4..", "B"))
                ],
                span=12,
            ),
            series(
                "Request duration P95 by model (edge)",
                "The seed's query, summed per model: histogram_quantile(0.95, "
                "rate(tensorzero_request_duration_seconds_bucket[5m])).",
                "s",
                [promql(edge_duration(0.95), "{{model}}")],
                span=24,
            ),
        ]
    return Row("Errors", panels)


def clickhouse_row() -> Row:
    return Row(
        "ClickHouse",
        [
            series(
                "Queries and inserted rows",
                "Running queries, and rows inserted per second (the gateway's observability writes).",
                "short",
                [
                    promql(f"ClickHouseMetrics_Query{CLICKHOUSE_SCRAPE}", "running queries"),
                    promql(
                        f"rate(ClickHouseProfileEvents_InsertedRows{CLICKHOUSE_SCRAPE}[$__rate_interval])",
                        "inserted rows/s",
                        ref_id="B",
                    ),
                ],
                span=8,
            ),
            series(
                "Resident memory",
                "ClickHouseAsyncMetrics_MemoryResident.",
                "bytes",
                [promql(f"ClickHouseAsyncMetrics_MemoryResident{CLICKHOUSE_SCRAPE}", "resident")],
                span=8,
            ),
            series(
                "Disk free",
                "Free share of each ClickHouse disk (default, backups).",
                "percentunit",
                [promql(DISK_FREE, "{{disk}}")],
                span=8,
            ),
            series(
                "Rejected and delayed inserts",
                "Inserts refused or slowed for 'too many parts': observability rows lost or late.",
                "short",
                [
                    promql(
                        f"rate(ClickHouseProfileEvents_{event}Inserts{CLICKHOUSE_SCRAPE}[$__rate_interval])",
                        event.lower(),
                        ref_id=r,
                    )
                    for event, r in (("Rejected", "A"), ("Delayed", "B"))
                ],
                span=24,
            ),
        ],
    )


def requests_row(db: str) -> Row:
    return Row(
        "Requests",
        [
            table.Panel()
            .title("Latest requests")
            .description(
                "The seed's request log (timestamp, model, request_tokens, response_tokens, latency_ms), "
                "read from ModelInference."
            )
            .datasource(CLICKHOUSE_DS)
            .with_target(ClickHouseQuery(LATEST_REQUESTS_SQL.format(db=db), as_table=True))
            .span(24)
            .height(10)
        ],
    )


# --- Dashboards ----------------------------------------------------------------------------------


def assemble(uid: str, title: str, description: str, rows: Sequence[Row]) -> dict:
    """The dashboard's JSON model; panel ids follow their order, so they only change when it does."""
    board = (
        dashboard.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["tensorzero", "pmoves"])
        .time("now-6h", "now")
        .refresh("1m")
        .timezone("browser")
    )
    next_id = 1
    for row in rows:
        board = board.with_row(dashboard.Row(row.title).id(next_id))
        next_id += 1
        for panel in row.panels:
            board = board.with_panel(panel.id(next_id))
            next_id += 1
    return json.loads(json.dumps(board.build(), cls=JSONEncoder))


def overview(database: str, *, database_metrics: bool, edge_metrics: bool = False) -> dict:
    rows = [
        health_row(database_metrics),
        traffic_row(database),
        latency_row(database),
        tokens_row(database),
        errors_row(database, edge_metrics),
    ]
    if database_metrics:
        rows.append(clickhouse_row())
    rows.append(requests_row(database))
    return assemble(
        OVERVIEW_UID,
        "TensorZero",
        "The TensorZero gateway: traffic, latency, tokens, cost, errors and ClickHouse health.",
        rows,
    )


def logs_dashboard(stack_label: str) -> dict:
    """Gateway WARN/ERROR counts from the JSON logs Alloy ships (labels `stack`, `service`, `level`)."""
    stack = f'stack="{stack_label}"'
    gateway = f'{{{stack}, service="{GATEWAY.role}"'
    return assemble(
        LOGS_UID,
        "TensorZero logs",
        "Container logs shipped by Grafana Alloy to Loki.",
        [
            Row(
                "Gateway",
                [
                    series(
                        "Gateway WARN / ERROR lines per minute",
                        "The gateway logs JSON; Alloy turns its `level` field into a label.",
                        "short",
                        [logql(f'sum by (level) (count_over_time({gateway}, level=~"WARN|ERROR"}}[1m]))', "{{level}}")],
                        LOKI_DS,
                        span=24,
                    ),
                    logs.Panel()
                    .title("Gateway errors")
                    .datasource(LOKI_DS)
                    .with_target(logql(f'{gateway}, level="ERROR"}}'))
                    .span(24)
                    .height(10),
                ],
            ),
            Row(
                "Stack",
                [
                    series(
                        "Log lines per minute by service",
                        "Every container of the stack, by its `service` label.",
                        "short",
                        [logql(f"sum by (service) (count_over_time({{{stack}}}[1m]))", "{{service}}")],
                        LOKI_DS,
                        span=24,
                    )
                ],
            ),
        ],
    )


def to_json(model: dict) -> str:
    """Sorted keys and a trailing newline: a re-render is byte-identical and diffs stay reviewable."""
    return json.dumps(model, indent=2, sort_keys=True) + "\n"


def dashboards(
    database: str, *, database_metrics: bool, logs_stack: Optional[str], edge_metrics: bool = False
) -> dict[str, dict]:
    """File name -> dashboard model, for every dashboard this stack provisions."""
    found = {"tensorzero.json": overview(database, database_metrics=database_metrics, edge_metrics=edge_metrics)}
    if logs_stack is not None:
        found["tensorzero-logs.json"] = logs_dashboard(logs_stack)
    return found


def targets(model: dict):
    """(panel, target) for every query of a dashboard model, rows' nested panels included."""
    for panel in model.get("panels", []):
        for inner in [panel, *panel.get("panels", [])]:
            for target in inner.get("targets", []):
                yield inner, target
