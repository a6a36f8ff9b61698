"""The monitoring contract: job names, labels, metric names and the PromQL that alerts and dashboards share.

Like kubernetes-mixin's config.libsonnet, every selector is written once here; the services' plans name
their scrape jobs from it, the alert rules (prometheus.py) and the dashboards (dashboards.py) build their
expressions from it, and the edge exports the metrics it names.

Metric names of ClickHouse's built-in endpoint, as its source writes them (ClickHouse/ClickHouse):
- prefixes `ClickHouseProfileEvents_` (counters), `ClickHouseMetrics_`, `ClickHouseAsyncMetrics_` (gauges):
  src/Server/PrometheusMetricsWriter.{h,cpp};
- `MemoryResident`, `OSMemoryTotal`, `CGroupMemoryTotal` ("0 or very large value means unlimited"; added by
  PR #45301, cgroup v2 by #45999, both 23.x): src/Common/AsynchronousMetrics.cpp;
- `DiskTotal_<disk>`, `DiskAvailable_<disk>` for every disk of the server:
  src/Interpreters/ServerAsynchronousMetrics.cpp;
- `RejectedInserts` ("rejected with 'Too many parts'"): src/Common/ProfileEvents.cpp.
"""

# Jobs the expressions select; the other services' jobs are named after their role.
GATEWAY_JOB = "tensorzero"  # the seed's prometheus.yml names the gateway's job so
EDGE_JOB = "tensorzero-edge"
CLICKHOUSE_JOB = "clickhouse"
PROBE_JOB = "blackbox-http"
BACKUP_JOB = "backup"
SERVICE_LABEL = "service"  # every target names the service it watches, for alerts and dashboards
RATE_WINDOW = "5m"

# The gateway's own metrics (FACTS: counters labelled endpoint, function_name, model_name; no status).
GATEWAY_REQUESTS = "tensorzero_requests_total"
GATEWAY_INFERENCES = "tensorzero_inferences_total"
GATEWAY_TOKENS = "tensorzero_{kind}_tokens_total"  # kind: input or output
GATEWAY_OVERHEAD_BUCKETS = "tensorzero_inference_latency_overhead_seconds_bucket"

# The edge's metrics: what the seed graphs, and the status codes the gateway does not export.
EDGE_DURATION = "tensorzero_request_duration_seconds"
EDGE_REQUESTS = "tensorzero_http_requests_total"

PROBE_SUCCESS = "probe_success"

# backupctl's metrics (components/backupctl/serve.py), each labelled with its `destination` (local, offsite).
BACKUP_LAST_SUCCESS = "pmoves_backup_last_success_timestamp_seconds"
BACKUP_LAST_RUN_SUCCESS = "pmoves_backup_last_run_success"
BACKUP_RUNS = "pmoves_backup_runs_total"
BACKUP_DESTINATION_LABEL = "destination"
CLICKHOUSE_ASYNC = "ClickHouseAsyncMetrics_"
CLICKHOUSE_EVENTS = "ClickHouseProfileEvents_"


def selector(**matchers: str) -> str:
    """`{a="x", b="y"}`; empty when there is no matcher."""
    return "{" + ", ".join(f'{k}="{v}"' for k, v in matchers.items()) + "}" if matchers else ""


def overhead_quantile(quantile: float, window: str, **matchers: str) -> str:
    """The gateway's own overhead (not the provider's latency) at `quantile`, over every function."""
    buckets = GATEWAY_OVERHEAD_BUCKETS + selector(**matchers)
    return f"histogram_quantile({quantile}, sum by (le) (rate({buckets}[{window}])))"


def clickhouse_disk_free(**matchers: str) -> str:
    """Free share of every ClickHouse disk (`default`, `backups`), labelled `disk`."""
    extra = "".join(f', {k}="{v}"' for k, v in matchers.items())
    return " / ".join(
        f'label_replace({{__name__=~"{CLICKHOUSE_ASYNC}Disk{kind}_.+"{extra}}}, "disk", "$1", '
        f'"__name__", "{CLICKHOUSE_ASYNC}Disk{kind}_(.+)")'
        for kind in ("Available", "Total")
    )
