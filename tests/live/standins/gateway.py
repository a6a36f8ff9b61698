"""Stand-in for the TensorZero gateway's /status, /health and /metrics (no gateway image here), on port 3000,
in front of TensorZero's REAL OpenAI-compatible routes: package `tensorzero` started on the stack's rendered
tensorzero.toml (`patch_openai_client` serves `/openai/v1/...` only). Every `/openai/v1/` request is
forwarded there unchanged, and the real gateway calls the stack's model providers.

Takes the real gateway's arguments (`--config-file ...`) and `TENSORZERO_CLICKHOUSE_URL`. The ClickHouse here
(Debian's 18.16) is too old for TensorZero's migrations, so the real routes run with observability off and this
stand-in records each answered inference as a `ModelInference` row itself, with the columns the gateway writes.
"""

import argparse
import base64
import hashlib
import json
import os
import sys
import threading
import time
import tomllib
import types
import urllib.error
import urllib.request
import uuid
from urllib.parse import quote, unquote, urlsplit

import tensorzero
from standin import DRAIN, JSON, TEXT, serve

ROUTES = {"chat/completions": "openai_chat_completions", "embeddings": "openai_embeddings"}
PREFIXES = ("tensorzero::model_name::", "tensorzero::embedding_model_name::")
TABLE = """CREATE TABLE IF NOT EXISTS ModelInference (
    id UUID, inference_id UUID, model_name String, model_provider_name String,
    input_tokens Nullable(UInt32), output_tokens Nullable(UInt32), response_time_ms Nullable(UInt32),
    ttft_ms Nullable(UInt32), cached UInt8, timestamp DateTime DEFAULT now()
) ENGINE = MergeTree() ORDER BY id"""

arguments = argparse.ArgumentParser()
arguments.add_argument("--config-file", required=True)
arguments.add_argument("--log-format", default="pretty")
config_path = arguments.parse_args().config_file
with open(config_path, "rb") as handle:
    config_bytes = handle.read()
config = tomllib.loads(config_bytes.decode())

clickhouse = urlsplit(os.environ["TENSORZERO_CLICKHOUSE_URL"])
database = clickhouse.path.strip("/") or "default"
credentials = f"{unquote(clickhouse.username or 'default')}:{unquote(clickhouse.password or '')}"
authorization = "Basic " + base64.b64encode(credentials.encode()).decode()


def clickhouse_query(sql: str, data: bytes = b"", in_database: bool = True) -> str:
    params = f"?database={quote(database)}&query={quote(sql)}" if in_database else f"?query={quote(sql)}"
    # POST: ClickHouse runs a GET read-only.
    request = urllib.request.Request(
        f"http://{clickhouse.hostname}:{clickhouse.port}/{params}", data=data, method="POST"
    )
    request.add_header("authorization", authorization)
    with urllib.request.urlopen(request, timeout=5) as answer:
        return answer.read().decode()


# The migrations the real gateway would run, for this old server: database and table, if missing.
for _ in range(50):
    try:
        clickhouse_query(f"CREATE DATABASE IF NOT EXISTS `{database}`", b"", in_database=False)
        clickhouse_query(TABLE)
        break
    except urllib.error.HTTPError as error:
        print(f"waiting for ClickHouse: {error}: {error.read().decode()[:300]}", file=sys.stderr, flush=True)
        time.sleep(0.2)
    except OSError as error:
        print(f"waiting for ClickHouse: {error}", file=sys.stderr, flush=True)
        time.sleep(0.2)
else:
    sys.exit("ClickHouse never answered; the real gateway would not start either")

offline = "/tmp/tensorzero-observability-off.toml"
with open(offline, "w") as handle:
    handle.write(config_bytes.decode().replace("observability.enabled = true", "observability.enabled = false"))
real = types.SimpleNamespace(base_url=None)
tensorzero.patch_openai_client(real, config_file=offline, async_setup=False)
real_base = str(real.base_url).rstrip("/")  # .../openai/v1
print(f"real TensorZero OpenAI-compatible routes at {real_base}", file=sys.stderr, flush=True)

lock = threading.Lock()
requests_total: dict[tuple[str, str], int] = {}
tokens = {"input": 0, "output": 0}
# Faults the live tests inject: /metrics answering 500; answered inferences not written to ClickHouse.
faults = {"metrics": False, "unlogged": False}


def provider_of(model: str) -> str:
    for table in ("models", "embedding_models"):
        if model in config.get(table, {}):
            return config[table][model]["routing"][0]
    return "unknown"


pending: list[str] = []  # rows answered but not yet written
FLUSH_EVERY_S = 0.2


def flush() -> None:
    """Rows go to ClickHouse in batches, as the gateway's batch writes send them: one insert per batch, not per
    inference (18.16 makes a part per insert, and the answer never waits for ClickHouse)."""
    with lock:
        batch = pending[:]
        pending.clear()
    if not batch:
        return
    try:
        clickhouse_query("INSERT INTO ModelInference FORMAT JSONEachRow", "\n".join(batch).encode())
    except (OSError, urllib.error.HTTPError) as error:
        print(f"rows not written, kept for the next batch: {error}", file=sys.stderr, flush=True)
        with lock:
            pending[:0] = batch


def flush_forever() -> None:
    while True:
        time.sleep(FLUSH_EVERY_S)
        flush()


threading.Thread(target=flush_forever, daemon=True).start()
DRAIN.before_exit.append(flush)  # a drained gateway writes what it still holds before it goes


def record(route: str, body: dict, answer: dict, elapsed_ms: int) -> None:
    model = body.get("model", "")
    for prefix in PREFIXES:
        model = model.removeprefix(prefix)
    usage = answer.get("usage") or {}
    row = {
        "id": str(uuid.uuid4()),
        "inference_id": answer.get("id") if _is_uuid(answer.get("id")) else str(uuid.uuid4()),
        "model_name": model,
        "model_provider_name": provider_of(model),
        "input_tokens": usage.get("prompt_tokens"),
        "output_tokens": usage.get("completion_tokens"),
        "response_time_ms": elapsed_ms,
        "ttft_ms": None,
        "cached": 0,
    }
    with lock:
        if not faults["unlogged"]:  # the injected fault: the inference is answered but not logged
            pending.append(json.dumps(row))
        key = (ROUTES[route], model)
        requests_total[key] = requests_total.get(key, 0) + 1
        tokens["input"] += usage.get("prompt_tokens") or 0
        tokens["output"] += usage.get("completion_tokens") or 0


def _is_uuid(value) -> bool:
    try:
        uuid.UUID(str(value))
        return True
    except ValueError:
        return False


def relay(answer):
    """A streamed answer of the real routes, chunk by chunk as it arrives."""
    with answer:
        while chunk := answer.read1(65536):
            yield chunk


def forward(request):
    route = request.route_path.removeprefix("/openai/v1/")
    raw = request.body()
    upstream = urllib.request.Request(f"{real_base}/{route}", data=raw, method="POST")
    upstream.add_header("content-type", request.headers.get("content-type", JSON))
    if json.loads(raw or b"{}").get("stream"):
        answer = urllib.request.urlopen(upstream, timeout=60)
        return answer.status, relay(answer), answer.headers.get("content-type", "text/event-stream")
    started = time.monotonic()
    try:
        with urllib.request.urlopen(upstream, timeout=60) as answer:
            status, payload = answer.status, answer.read()
    except urllib.error.HTTPError as error:
        status, payload = error.code, error.read()
    if status == 200 and route in ROUTES:
        record(route, json.loads(raw), json.loads(payload), int((time.monotonic() - started) * 1000))
    return status, payload, JSON


def health(request):
    try:
        ok = clickhouse_query("SELECT 1").strip() == "1"
    except (OSError, urllib.error.HTTPError):
        ok = False
    body = {"gateway": "ok", "clickhouse": "ok" if ok else "error", "postgres": "ok"}
    return (200 if ok else 503), body, JSON


def metrics(request):
    if faults["metrics"]:
        return 500, "metrics fault injected by the live tests\n", TEXT
    lines = ["# TYPE tensorzero_requests_total counter", "# TYPE tensorzero_inferences_total counter"]
    with lock:
        for (endpoint, model), count in sorted(requests_total.items()):
            labels = f'endpoint="{endpoint}",function_name="tensorzero::default",model_name="{model}"'
            lines += [
                f"tensorzero_requests_total{{{labels}}} {count}",
                f"tensorzero_inferences_total{{{labels}}} {count}",
            ]
        lines += [
            f"tensorzero_input_tokens_total {tokens['input']}",
            f"tensorzero_output_tokens_total {tokens['output']}",
        ]
    return 200, "\n".join(lines) + "\n", TEXT


def fault(request):
    """Not a gateway route: lets the live tests break /metrics (Prometheus reports the target down) or stop
    writing inferences to ClickHouse (the smoke suite must see the rows not grow)."""
    faults.update(request.json())
    return 200, faults, JSON


status = {"status": "ok", "version": tensorzero.__version__, "config_hash": hashlib.sha256(config_bytes).hexdigest()}
serve(
    3000,
    {
        ("GET", "/status"): lambda request: (200, status, JSON),
        ("GET", "/health"): health,
        ("GET", "/metrics"): metrics,
        ("POST", "/stand-in/fault"): fault,
    },
    prefixes={("POST", "/openai/v1/"): forward},
)
