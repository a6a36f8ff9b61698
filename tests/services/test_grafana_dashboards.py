"""The dashboards' queries, run by the programs behind Grafana (Grafana itself cannot run here).

- PromQL: every expression of every stack's dashboards, Grafana's variables replaced by durations,
  passes `promtool check rules`, and `promtool test rules` evaluates each against input series and
  checks the numbers it returns.
- ClickHouse: every query, after the grafana-clickhouse-datasource macros are expanded exactly as
  the plugin's backend does it (pkg/macros/macros.go), runs in the ClickHouse engine of `chdb`
  against tables created with TensorZero's DDL holding generated rows; the latency, time-to-first-token,
  tokens, rate, comparison and request-log panels return what Python computes from those rows.
"""

import datetime
import json
import random
import re
import statistics
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Optional

import pytest
import yaml
from chdb_run import INFERENCE_TABLES, insert, tensorzero_tables, uuid7
from chdb_run import run as run_in_chdb
from conftest import STACKS
from promtool import run

from components.services import grafana, grafana_panels
from components.services import grafana_dashboards as dashboards
from components.services import grafana_queries as dashboard_queries

# What Grafana substitutes before a query leaves it; chosen so the fixtures below are exact.
RATE_INTERVAL = "4m"
RANGE = "1h"
GRAFANA_VARIABLES = {"$__rate_interval": RATE_INTERVAL, "$__range": RANGE}
GRAFANA_VARIABLE = re.compile(r"\$\{[^}]+\}|\$__\w+|\$[A-Za-z_]\w*")
CUSTOM_DATABASE = "pmoves_custom"  # a stack that names another database reads only that one


@dataclass(frozen=True)
class Query:
    variant: str
    panel: str
    ref_id: str
    text: str


def variants(deployments) -> dict[str, dict]:
    """Every dashboard the stacks provision, plus the edge's panels and another database's."""
    found = {}
    for stack in STACKS:
        for edge in (False, True):
            for file in grafana.dashboard_files(deployments[stack], edge_metrics=edge):
                if file.kind == "grafana-dashboard":
                    found[f"{stack}{'+edge' if edge else ''}:{file.path}"] = json.loads(file.content)
    found["custom-database"] = dashboards.overview(CUSTOM_DATABASE, database_metrics=False)
    return found


def queries(deployments, datasource_uid: str) -> list[Query]:
    return [
        Query(name, panel["title"], target["refId"], target.get("expr") or target.get("rawSql"))
        for name, model in variants(deployments).items()
        for panel, target in grafana_panels.targets(model)
        if target["datasource"]["uid"] == datasource_uid
    ]


# --- PromQL ----------------------------------------------------------------------------------------


def substituted(expression: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expression = expression.replace(variable, value)
    left = GRAFANA_VARIABLE.findall(expression)
    assert not left, f"Grafana variables the test does not know: {left} in {expression}"
    return expression


def test_every_promql_expression_passes_promtool_check_rules(deployments, tmp_path):
    found = queries(deployments, dashboard_queries.PROMETHEUS_UID)
    assert found
    expressions = sorted({substituted(q.text) for q in found})
    rules = {
        "groups": [
            {
                "name": "dashboards",
                "rules": [{"record": f"dashboard:expr_{i}", "expr": e} for i, e in enumerate(expressions)],
            }
        ]
    }
    (tmp_path / "dashboards.yml").write_text(yaml.safe_dump(rules, sort_keys=False))
    checked = run("promtool", "check", "rules", "dashboards.yml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(expressions)} rules found" in checked.stdout


def test_promtool_refuses_a_broken_expression(tmp_path):
    """The check above can fail: a dashboard typo would be caught, not passed over."""
    rules = {"groups": [{"name": "d", "rules": [{"record": "dashboard:broken", "expr": "sum by (le (rate(x[4m]))"}]}]}
    (tmp_path / "broken.yml").write_text(yaml.safe_dump(rules))
    assert run("promtool", "check", "rules", "broken.yml", cwd=tmp_path).returncode != 0


# Series as the scrape jobs label them (prometheus.scrape_jobs: job, service, instance), one sample a minute.
GATEWAY_TARGET = 'job="tensorzero",service="gateway",instance="tensorzero-gateway:3000"'
CLICKHOUSE_TARGET = 'job="clickhouse",service="clickhouse",instance="tensorzero-clickhouse:9363"'
# How the gateway labels a request naming a model, and one naming a function (model_name unset).
MODEL_CALL = 'endpoint="inference",function_name="tensorzero::default",model_name="local_chat"'
FUNCTION_CALL = 'endpoint="inference",function_name="pmoves_chat"'
OVERHEAD = f'tensorzero_inference_latency_overhead_seconds_bucket{{{GATEWAY_TARGET},function_name="f",variant_name="v"'
EDGE_CHAT = 'job="edge",route="/v1/chat/completions"'
DURATION = f'tensorzero_request_duration_seconds_bucket{{{EDGE_CHAT},model="claude_sonnet",status_class="2xx"'
INPUT_SERIES = {
    f"up{{{GATEWAY_TARGET}}}": "1x10",
    f"up{{{CLICKHOUSE_TARGET}}}": "1x10",
    'probe_success{job="blackbox-http",service="gateway",instance="http://tensorzero-gateway:3000/status"}': "1x10",
    'probe_success{job="blackbox-http",service="clickhouse",instance="http://tensorzero-clickhouse:8123/ping"}': "1x10",
    'probe_success{job="blackbox-http",service="ui",instance="http://tensorzero-ui:4000/health"}': "0x10",
    # A model called directly (1/s), a function (2/s), feedback (0.5/s), and another job that must not count.
    f"tensorzero_requests_total{{{GATEWAY_TARGET},{MODEL_CALL}}}": "0+60x10",
    f"tensorzero_requests_total{{{GATEWAY_TARGET},{FUNCTION_CALL}}}": "0+120x10",
    f'tensorzero_requests_total{{{GATEWAY_TARGET},endpoint="feedback",metric_name="helpful"}}': "0+30x10",
    'tensorzero_requests_total{job="elsewhere",endpoint="inference",function_name="x"}': "0+600x10",
    f"tensorzero_inferences_total{{{GATEWAY_TARGET},{MODEL_CALL}}}": "0+60x10",
    f"tensorzero_inferences_total{{{GATEWAY_TARGET},{FUNCTION_CALL}}}": "0+120x10",
    f'tensorzero_inferences_total{{{GATEWAY_TARGET},endpoint="batch_inference",function_name="f"}}': "0+1000x10",
    # Overhead: half the requests under 10 ms, all under 100 ms.
    f'{OVERHEAD},le="0.01"}}': "0+30x10",
    f'{OVERHEAD},le="0.1"}}': "0+60x10",
    f'{OVERHEAD},le="+Inf"}}': "0+60x10",
    f"tensorzero_input_tokens_total{{{GATEWAY_TARGET}}}": "0+600x10",
    f"tensorzero_output_tokens_total{{{GATEWAY_TARGET}}}": "0+120x10",
    f"ClickHouseMetrics_Query{{{CLICKHOUSE_TARGET}}}": "3x10",
    f"ClickHouseProfileEvents_InsertedRows{{{CLICKHOUSE_TARGET}}}": "0+6000x10",
    f"ClickHouseAsyncMetrics_MemoryResident{{{CLICKHOUSE_TARGET}}}": "1073741824x10",
    f"ClickHouseAsyncMetrics_DiskAvailable_default{{{CLICKHOUSE_TARGET}}}": "25x10",
    f"ClickHouseAsyncMetrics_DiskTotal_default{{{CLICKHOUSE_TARGET}}}": "100x10",
    f"ClickHouseAsyncMetrics_DiskAvailable_backups{{{CLICKHOUSE_TARGET}}}": "90x10",
    f"ClickHouseAsyncMetrics_DiskTotal_backups{{{CLICKHOUSE_TARGET}}}": "100x10",
    f"ClickHouseProfileEvents_RejectedInserts{{{CLICKHOUSE_TARGET}}}": "0x10",
    f"ClickHouseProfileEvents_DelayedInserts{{{CLICKHOUSE_TARGET}}}": "0+60x10",
    # The edge (issue 5): chat 8/s answered 200, 1/s 502, 1/s 404; embeddings 4/s, all 200.
    f'tensorzero_http_requests_total{{{EDGE_CHAT},status="200"}}': "0+480x10",
    f'tensorzero_http_requests_total{{{EDGE_CHAT},status="502"}}': "0+60x10",
    f'tensorzero_http_requests_total{{{EDGE_CHAT},status="404"}}': "0+60x10",
    'tensorzero_http_requests_total{job="edge",route="/v1/embeddings",status="200"}': "0+240x10",
    f'{DURATION},le="0.5"}}': "0+120x10",
    f'{DURATION},le="1"}}': "0+216x10",
    f'{DURATION},le="2.5"}}': "0+240x10",
    f'{DURATION},le="+Inf"}}': "0+240x10",
}
EVAL_TIME = "10m"
GATEWAY_LABELS = '{instance="tensorzero-gateway:3000",job="tensorzero",service="gateway"}'
CLICKHOUSE_LABELS = '{instance="tensorzero-clickhouse:9363",job="clickhouse",service="clickhouse"}'


def near(value: float, *labels: str) -> tuple:
    """Every series of the result within 1e-9 of `value` (quantile arithmetic is not exact in binary)."""
    return ("near", value, labels or ("{}",))


# (panel title, refId) -> exact samples {labels: value}, or near(...). Every expression must be here.
EXPECTED = {
    ("Gateway up", "A"): {f"up{GATEWAY_LABELS}": 1},
    ("Gateway up", "B"): {
        'probe_success{instance="http://tensorzero-gateway:3000/status",job="blackbox-http",service="gateway"}': 1
    },
    ("ClickHouse up", "A"): {f"up{CLICKHOUSE_LABELS}": 1},
    ("ClickHouse ping", "A"): {
        'probe_success{instance="http://tensorzero-clickhouse:8123/ping",job="blackbox-http",service="clickhouse"}': 1
    },
    ("Probes", "A"): {
        'probe_success{instance="http://tensorzero-gateway:3000/status",job="blackbox-http",service="gateway"}': 1,
        'probe_success{instance="http://tensorzero-clickhouse:8123/ping",job="blackbox-http",service="clickhouse"}': 1,
        'probe_success{instance="http://tensorzero-ui:4000/health",job="blackbox-http",service="ui"}': 0,
    },
    ("Requests per second by endpoint and model (gateway)", "A"): {
        '{endpoint="inference",function_name="tensorzero::default",model_name="local_chat"}': 1,
        '{endpoint="inference",function_name="pmoves_chat"}': 2,
        '{endpoint="feedback"}': 0.5,
    },
    ("Gateway overhead P50 / P99", "A"): near(0.01),
    ("Gateway overhead P50 / P99", "B"): near(0.01 + 0.09 * (0.99 - 0.5) / 0.5),
    ("Tokens per second (gateway counters, all models)", "A"): {"{}": 10},
    ("Tokens per second (gateway counters, all models)", "B"): {"{}": 2},
    # 60 + 120 inference requests a minute for 10 minutes; batch inferences are another endpoint.
    ("Inference requests without a stored result", "A"): {"{}": 1800},
    ("HTTP error share by route (edge)", "A"): {'{route="/v1/chat/completions"}': 0.1},
    ("HTTP error share by route (edge)", "B"): {'{route="/v1/chat/completions"}': 0.1},
    ("Request duration P95 by model (edge)", "A"): near(1 + 1.5 * (0.95 - 0.9) / 0.1, '{model="claude_sonnet"}'),
    ("Queries and inserted rows", "A"): {f"ClickHouseMetrics_Query{CLICKHOUSE_LABELS}": 3},
    ("Queries and inserted rows", "B"): {CLICKHOUSE_LABELS: 100},
    ("Resident memory", "A"): {f"ClickHouseAsyncMetrics_MemoryResident{CLICKHOUSE_LABELS}": 1073741824},
    ("Disk free", "A"): {
        '{disk="default",instance="tensorzero-clickhouse:9363",job="clickhouse",service="clickhouse"}': 0.25,
        '{disk="backups",instance="tensorzero-clickhouse:9363",job="clickhouse",service="clickhouse"}': 0.9,
    },
    ("Rejected and delayed inserts", "A"): {CLICKHOUSE_LABELS: 0},
    ("Rejected and delayed inserts", "B"): {CLICKHOUSE_LABELS: 1},
}


def expression_test(expression: str, expected) -> dict:
    if isinstance(expected, tuple):
        _, value, labels = expected
        expression = f"abs(({expression}) - {value!r}) < bool 1e-9"
        samples = [{"labels": label, "value": 1} for label in labels]
    else:
        samples = [{"labels": label, "value": value} for label, value in expected.items()]
    return {"expr": expression, "eval_time": EVAL_TIME, "exp_samples": samples}


def test_every_promql_expression_returns_the_expected_numbers(deployments, tmp_path):
    found = queries(deployments, dashboard_queries.PROMETHEUS_UID)
    missing = sorted({(q.panel, q.ref_id) for q in found} - set(EXPECTED))
    assert not missing, f"dashboard expressions without an expected result: {missing}"
    cases = {(q.panel, q.ref_id, substituted(q.text)) for q in found}
    document = {
        "rule_files": [],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [{"series": s, "values": v} for s, v in INPUT_SERIES.items()],
                "promql_expr_test": [expression_test(e, EXPECTED[(p, r)]) for p, r, e in sorted(cases)],
            }
        ],
    }
    (tmp_path / "dashboards.test.yml").write_text(yaml.safe_dump(document, sort_keys=False))
    tested = run("promtool", "test", "rules", "dashboards.test.yml", cwd=tmp_path)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


# --- ClickHouse ------------------------------------------------------------------------------------

START = 1748779200  # 2025-06-01 12:00:00 UTC: the dashboard's time range is [START, END]
END = START + 179
INTERVAL_S = 60  # Grafana's interval for the panel; the plugin's $__timeInterval and $__interval_s


def expand_macros(sql: str, start: int = START, end: int = END, interval_s: int = INTERVAL_S) -> str:
    """The plugin's macro expansion, as grafana/clickhouse-datasource pkg/macros/macros.go writes it."""
    seconds = max(interval_s, 1)

    def window(column: str, bound) -> str:
        return f"{column} >= {bound(start)} AND {column} <= {bound(end)}"

    def datetime(t: int) -> str:
        return f"toDateTime({t})"

    def datetime64(t: int) -> str:
        return f"fromUnixTimestamp64Milli({t * 1000})"

    macros = {
        "fromTime": lambda args: datetime(start),
        "toTime": lambda args: datetime(end),
        "fromTime_ms": lambda args: datetime64(start),
        "toTime_ms": lambda args: datetime64(end),
        "timeFilter": lambda args: window(args[0], datetime),
        "timeFilter_ms": lambda args: window(args[0], datetime64),
        "timeInterval": lambda args: f"toStartOfInterval(toDateTime({args[0]}), INTERVAL {seconds} second)",
        "timeInterval_ms": lambda args: (
            f"toStartOfInterval(toDateTime64({args[0]}, 3), INTERVAL {seconds * 1000} millisecond)"
        ),
        "interval_s": lambda args: str(seconds),
    }

    def expand(match: re.Match) -> str:
        name, args = match.group(1), match.group(2)
        if name not in macros:
            raise AssertionError(f"macro $__{name} is not one the ClickHouse plugin expands")
        return macros[name]([a.strip() for a in args.split(",")] if args is not None else [])

    expanded = re.sub(r"\$__(\w+)(?:\(([^)]*)\))?", expand, sql)
    assert not GRAFANA_VARIABLE.findall(expanded), expanded
    return expanded


def test_macro_expansion_refuses_what_the_plugin_does_not_know():
    assert expand_macros("WHERE $__timeFilter(ts)") == f"WHERE ts >= toDateTime({START}) AND ts <= toDateTime({END})"
    with pytest.raises(AssertionError, match="__interval "):
        expand_macros("SELECT $__interval ")


MODELS = {"local_chat": ("ollama",), "claude_sonnet": ("anthropic", "openai"), "gpt_4o": ("openai",)}


@dataclass(frozen=True)
class Row:
    timestamp: int  # seconds; the id's UUIDv7 milliseconds floor to it, as UUIDv7ToDateTime does
    id: str
    model: str
    provider: str
    input_tokens: Optional[int]
    output_tokens: Optional[int]
    response_time_ms: int
    ttft_ms: Optional[int]
    cached: bool
    cost: Optional[Decimal]


def generate_rows(rng: random.Random) -> list[Row]:
    """Per model, per minute of the range: a few calls; some cached, streamed, token-less or free. Plus calls
    just outside the range, which no panel may count."""
    rows = []
    seconds = [START + m * 60 + s for m in range(3) for s in sorted(rng.sample(range(60), 9))]
    seconds += [START - 30, START - 1, END + 1, END + 40]
    for model, providers in MODELS.items():
        for second in seconds:
            latency = rng.randint(40, 6000)
            rows.append(
                Row(
                    timestamp=second,
                    id=uuid7(second * 1000 + rng.randrange(1000), rng),
                    model=model,
                    provider=rng.choice(providers),
                    input_tokens=None if rng.random() < 0.05 else rng.randint(1, 4000),
                    output_tokens=None if rng.random() < 0.05 else rng.randint(1, 2000),
                    response_time_ms=latency,
                    ttft_ms=rng.randint(5, latency) if rng.random() < 0.6 else None,
                    cached=rng.random() < 0.15,
                    cost=None if model == "local_chat" else Decimal(rng.randint(1, 10**7)) / Decimal(10**9),
                )
            )
    return rows


def setup_statements(database: str, rows: list[Row], inferences: dict[str, list[int]], rng) -> list[str]:
    statements = tensorzero_tables(database)
    calls = [
        {
            "id": r.id,
            "inference_id": uuid7(r.timestamp * 1000, rng),
            "raw_request": "{}",
            "raw_response": "{}",
            "model_name": r.model,
            "model_provider_name": r.provider,
            "input_tokens": r.input_tokens,
            "output_tokens": r.output_tokens,
            "response_time_ms": r.response_time_ms,
            "ttft_ms": r.ttft_ms,
            "input_messages": "[]",
            "output": "[]",
            "cached": r.cached,
            "cost": r.cost,
        }
        for r in rows
    ]
    statements.append(insert(f"{database}.ModelInference", *calls))
    for table, seconds in inferences.items():
        stored = [
            {
                "id": uuid7(s * 1000 + 500, rng),
                "function_name": "pmoves_chat",
                "variant_name": "v",
                "episode_id": uuid7(s * 1000, rng),
                "input": "{}",
                "output": "{}",
                INFERENCE_TABLES[table]: "{}",
                "inference_params": "{}",
            }
            for s in seconds
        ]
        statements.append(insert(f"{database}.{table}", *stored))
    return statements


@dataclass(frozen=True)
class Scenario:
    rows: dict[str, list[Row]]  # database -> rows
    stored: dict[str, int]  # database -> ChatInference + JsonInference rows in range
    results: dict[str, dict]  # expanded SQL -> {"rows": [...]} or {"error": ...}
    queries: list[Query]
    databases: dict[str, str]  # variant -> the database its queries read

    def rows_of(self, variant: str) -> list[Row]:
        return self.rows[self.databases[variant]]


def answers(step: dict) -> dict:
    """A chdb_run step as the panels are read: rows by column name, or the error."""
    if "error" in step:
        return step
    return {"rows": [dict(zip(step["columns"], row, strict=True)) for row in step["rows"]]}


@pytest.fixture(scope="module")
def scenario(deployments, tmp_path_factory) -> Scenario:
    rng = random.Random(20250601)
    rows = generate_rows(rng)
    # Each stack's own database (prod keeps PMOVES's `default`) holds the same rows; another holds fewer.
    databases = {d.spec.clickhouse.database: rows for d in deployments.values()}
    databases[CUSTOM_DATABASE] = [r for r in rows if r.model == "local_chat"]
    inferences = {
        "ChatInference": [START + 5 * i for i in range(30)] + [START - 10, END + 5],
        "JsonInference": [START + 7 * i + 1 for i in range(7)] + [END + 30],
    }
    setup = []
    for database, content in databases.items():
        setup += setup_statements(database, content, inferences, rng)
    found = queries(deployments, dashboard_queries.CLICKHOUSE_UID)
    expanded = list(dict.fromkeys(expand_macros(q.text) for q in found))
    directory = tmp_path_factory.mktemp("dashboards-chdb")
    ran = run_in_chdb(
        {"connect": f"file:{directory / 'data'}", "steps": setup + expanded, "result": str(directory / "result.json")}
    )
    assert ran["connect_error"] is None, ran["connect_error"]
    done, answered = ran["steps"][: len(setup)], ran["steps"][len(setup) :]
    refused = [(sql, step["error"]) for sql, step in zip(setup, done, strict=True) if "error" in step]
    assert not refused, refused
    results = {sql: answers(step) for sql, step in zip(expanded, answered, strict=True)}
    stored = {d: sum(START <= s <= END for seconds in inferences.values() for s in seconds) for d in databases}

    def database(variant: str) -> str:  # variants are "<stack>[+edge]:<path>" (variants())
        stack = variant.split(":")[0].removesuffix("+edge")
        return CUSTOM_DATABASE if variant == "custom-database" else deployments[stack].spec.clickhouse.database

    variant_databases = {variant: database(variant) for variant in variants(deployments)}
    return Scenario(databases, stored, results, found, variant_databases)


def results(scenario: Scenario, panel: str) -> dict[str, list[dict]]:
    """Variant -> rows the panel's query returned."""
    found = {q.variant: scenario.results[expand_macros(q.text)] for q in scenario.queries if q.panel == panel}
    assert found, f"no ClickHouse query in a panel titled {panel!r}"
    for variant, result in found.items():
        assert "error" not in result, f"{variant}: {result.get('error')}"
    return {variant: result["rows"] for variant, result in found.items()}


def in_range(rows: list[Row]) -> list[Row]:
    return [r for r in rows if START <= r.timestamp <= END]


def epoch(text: str) -> int:
    return int(datetime.datetime.fromisoformat(text + "+00:00").timestamp())


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (Excel's PERCENTILE.INC), by the standard library."""
    if len(values) == 1:
        return float(values[0])
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


def test_every_clickhouse_query_runs_in_the_clickhouse_engine(scenario):
    assert len(scenario.queries) >= 7 * len(STACKS)
    failed = {f"{q.variant} / {q.panel}": scenario.results[expand_macros(q.text)] for q in scenario.queries}
    assert not {k: v["error"] for k, v in failed.items() if "error" in v}


@pytest.mark.parametrize(
    "panel, column",
    [
        ("Latency P50 / P95 / P99 by model", "response_time_ms"),
        ("Time to first token P50 / P95 / P99 by model", "ttft_ms"),
    ],
)
def test_percentile_panels_return_the_quantiles_of_the_rows(scenario, panel, column):
    for variant, returned in results(scenario, panel).items():
        groups = defaultdict(list)
        for row in in_range(scenario.rows_of(variant)):
            if not row.cached and getattr(row, column) is not None:
                groups[(row.timestamp - row.timestamp % INTERVAL_S, row.model)].append(getattr(row, column))
        assert sorted((epoch(r["time"]), r["model_name"]) for r in returned) == sorted(groups), variant
        for r in returned:
            values = groups[(epoch(r["time"]), r["model_name"])]
            for q in dashboard_queries.QUANTILES:
                assert r[f"p{round(q * 100)}"] == pytest.approx(percentile(values, q)), (variant, r, q)


def test_tokens_panel_sums_input_and_output_tokens_per_model_and_interval(scenario):
    for variant, returned in results(scenario, "Input / output tokens by model").items():
        sums = defaultdict(lambda: {"input_tokens": [], "output_tokens": []})
        for row in in_range(scenario.rows_of(variant)):
            bucket = sums[(row.timestamp - row.timestamp % INTERVAL_S, row.model)]
            bucket["input_tokens"] += [row.input_tokens] if row.input_tokens is not None else []
            bucket["output_tokens"] += [row.output_tokens] if row.output_tokens is not None else []
        assert len(returned) == len(sums)
        for r in returned:
            expected = sums[(epoch(r["time"]), r["model_name"])]
            for kind in ("input_tokens", "output_tokens"):
                assert int(r[kind]) == sum(expected[kind]), (variant, r, kind)


def test_inference_rate_panel_counts_calls_per_second(scenario):
    for variant, returned in results(scenario, "Model inferences per second by model (ClickHouse)").items():
        counts = defaultdict(int)
        for row in in_range(scenario.rows_of(variant)):
            counts[(row.timestamp - row.timestamp % INTERVAL_S, row.model)] += 1
        assert {(epoch(r["time"]), r["model_name"]): r["inferences_per_second"] for r in returned} == pytest.approx(
            {key: count / INTERVAL_S for key, count in counts.items()}
        )


def test_model_comparison_table_matches_the_rows(scenario):
    for variant, returned in results(scenario, "Model comparison").items():
        rows = in_range(scenario.rows_of(variant))
        models = sorted({r.model for r in rows})
        assert sorted(r["model"] for r in returned) == models, variant
        assert [int(r["requests"]) for r in returned] == sorted((int(r["requests"]) for r in returned), reverse=True)
        for r in returned:
            mine = [row for row in rows if row.model == r["model"]]
            served = [row.response_time_ms for row in mine if not row.cached]
            costs = [row.cost for row in mine if row.cost is not None]
            assert r["providers"] == ", ".join(sorted({row.provider for row in mine}))
            assert int(r["requests"]) == len(mine)
            assert int(r["cache_hits"]) == sum(row.cached for row in mine)
            assert r["avg_latency_ms"] == pytest.approx(statistics.mean(served))
            assert r["p95_latency_ms"] == pytest.approx(percentile(served, 0.95))
            assert int(r["input_tokens"]) == sum(row.input_tokens or 0 for row in mine)
            assert int(r["output_tokens"]) == sum(row.output_tokens or 0 for row in mine)
            if costs:
                assert r["cost"] == pytest.approx(float(sum(costs)), rel=1e-12)
            else:
                assert r["cost"] is None  # no cost configured: empty, not zero


def test_stored_inferences_count_chat_and_json_inferences_in_the_range(scenario):
    for variant, returned in results(scenario, "Inference requests without a stored result").items():
        assert [int(r["stored_inferences"]) for r in returned] == [scenario.stored[scenario.databases[variant]]]


def test_latest_requests_is_the_seed_request_log_newest_first(scenario):
    for variant, returned in results(scenario, "Latest requests").items():
        rows = sorted(in_range(scenario.rows_of(variant)), key=lambda r: r.timestamp, reverse=True)
        assert list(returned[0]) == [
            "timestamp",
            "model",
            "provider",
            "request_tokens",
            "response_tokens",
            "latency_ms",
        ]
        assert [epoch(r["timestamp"]) for r in returned] == [r.timestamp for r in rows[:50]]
        known = {(r.timestamp, r.model, r.provider, r.input_tokens, r.output_tokens, r.response_time_ms) for r in rows}
        for r in returned:
            tokens = [None if r[k] is None else int(r[k]) for k in ("request_tokens", "response_tokens")]
            assert (epoch(r["timestamp"]), r["model"], r["provider"], *tokens, int(r["latency_ms"])) in known


def test_the_rows_exercise_what_the_panels_filter(scenario):
    """Cache hits, unstreamed calls, missing tokens, free models and out-of-range calls are all present."""
    rows = scenario.rows["tensorzero"]
    assert any(r.cached for r in in_range(rows)) and any(r.ttft_ms is None for r in in_range(rows))
    assert any(r.input_tokens is None for r in rows) and any(r.cost is None for r in rows)
    assert any(not START <= r.timestamp <= END for r in rows)
