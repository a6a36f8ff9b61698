"""The stack's Grafana dashboards, as code (grafana-foundation-sdk), rendered deterministically: panels and rows
over the queries of grafana_queries.py, built from the blocks of grafana_panels.py."""

from typing import Optional

from grafana_foundation_sdk.builders import expr, logs, stat, table
from grafana_foundation_sdk.models.dashboard import DynamicConfigValue

from components.core.monitoring import SERVICE_LABEL
from components.services import clickhouse, gateway
from components.services.grafana_panels import Row, assemble, series, up_stat
from components.services.grafana_queries import (
    CLICKHOUSE_DS,
    CLICKHOUSE_SCRAPE,
    DISK_FREE,
    EXPRESSION_DS,
    GATEWAY_SCRAPE,
    INFERENCE_RATE_SQL,
    LATEST_REQUESTS_SQL,
    LOKI_DS,
    MIXED_DS,
    MODEL_COMPARISON_SQL,
    PERCENTILES_SQL,
    PROBES,
    REQUEST_RATE,
    REQUESTED_INFERENCES,
    STORED_INFERENCES_SQL,
    TOKENS_SQL,
    ClickHouseQuery,
    edge_duration,
    edge_status_share,
    logql,
    overhead,
    probe,
    promql,
    token_rate,
)

OVERVIEW_UID = "tensorzero-overview"
LOGS_UID = "tensorzero-logs"


def health_row(database_metrics: bool) -> Row:
    database = (
        up_stat(
            "ClickHouse up",
            "1 when Prometheus scrapes ClickHouse's built-in metrics endpoint.",
            [promql(f"up{CLICKHOUSE_SCRAPE}", "scrape", instant=True)],
        )
        if database_metrics
        else up_stat(
            "ClickHouse ping",
            "1 when ClickHouse answers /ping to the blackbox exporter (its metrics endpoint is off).",
            [promql(probe(clickhouse.SERVICE.role), "ping", instant=True)],
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
                    promql(probe(gateway.SERVICE.role), "probe", ref_id="B", instant=True),
                ],
            ),
            database,
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
    selected = f'{{{stack}, service="{gateway.SERVICE.role}"'
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
                        [
                            logql(
                                f'sum by (level) (count_over_time({selected}, level=~"WARN|ERROR"}}[1m]))', "{{level}}"
                            )
                        ],
                        LOKI_DS,
                        span=24,
                    ),
                    logs.Panel()
                    .title("Gateway errors")
                    .datasource(LOKI_DS)
                    .with_target(logql(f'{selected}, level="ERROR"}}'))
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


def dashboards(
    database: str, *, database_metrics: bool, logs_stack: Optional[str], edge_metrics: bool = False
) -> dict[str, dict]:
    """File name -> dashboard model, for every dashboard this stack provisions."""
    found = {"tensorzero.json": overview(database, database_metrics=database_metrics, edge_metrics=edge_metrics)}
    if logs_stack is not None:
        found["tensorzero-logs.json"] = logs_dashboard(logs_stack)
    return found
