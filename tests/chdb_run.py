"""Run SQL in the ClickHouse engine of `chdb`, one scenario per child process.

chdb's embedded server starts once per process, with one data path and one config, so each scenario
runs in a process of its own: `run(job)` starts `python tests/chdb_run.py`, which connects with
`job["connect"]` (a chdb connection string: `file:<dir>`, with `?config-file=<xml>` to load one), runs
`job["steps"]` in order on that one connection and reports, for every step, its rows (JSONCompact) and
column names (its text when the statement names its own FORMAT), or its error. A failing step does not
stop the next ones, so a test can expect an error and go on.

Also here: TensorZero's tables as its migrations leave them, and UUIDv7 ids for chosen instants (the
tables' `timestamp` is MATERIALIZED from the id, as in TensorZero).
"""

import json
import os
import random
import subprocess
import sys
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any, Optional

# TensorZero's tables as the migrations of the pinned release (2026.6.0, 0000 to 0053) leave them
# (tensorzero-core/src/db/clickhouse/migration_manager/migrations): 0000 creates them with `timestamp
# DateTime MATERIALIZED UUIDv7ToDateTime(id)`; later ones make latency (0008) and tokens (0015)
# Nullable, add `cached` (with the inference cache), `system`, `input_messages`, `output`,
# `finish_reason`, `snapshot_hash`, `cost Nullable(Decimal(18, 9))` (0047) and the provider cache token
# columns (0051). No column the release lacks: a query naming one must fail here as it would there.
MODEL_INFERENCE_DDL = """CREATE TABLE {db}.ModelInference (
    id UUID,
    inference_id UUID,
    raw_request String,
    raw_response String,
    model_name LowCardinality(String),
    model_provider_name LowCardinality(String),
    input_tokens Nullable(UInt32),
    output_tokens Nullable(UInt32),
    response_time_ms Nullable(UInt32),
    ttft_ms Nullable(UInt32),
    timestamp DateTime MATERIALIZED UUIDv7ToDateTime(id),
    system Nullable(String),
    input_messages String,
    output String,
    cached Bool DEFAULT false,
    finish_reason Nullable(Enum8('stop' = 1, 'length' = 2, 'tool_call' = 3, 'content_filter' = 4, 'unknown' = 5,
        'stop_sequence' = 6)),
    snapshot_hash Nullable(UInt256),
    provider_cache_read_input_tokens Nullable(UInt32),
    provider_cache_write_input_tokens Nullable(UInt32),
    cost Nullable(Decimal(18, 9))
) ENGINE = MergeTree ORDER BY inference_id"""
INFERENCE_DDL = """CREATE TABLE {db}.{table} (
    id UUID,
    function_name LowCardinality(String),
    variant_name LowCardinality(String),
    episode_id UUID,
    input String,
    output String,
    {specific} String,
    inference_params String,
    processing_time_ms Nullable(UInt32),
    timestamp DateTime MATERIALIZED UUIDv7ToDateTime(id),
    tags Map(String, String) DEFAULT map(),
    extra_body Nullable(String),
    ttft_ms Nullable(UInt32),
    snapshot_hash Nullable(UInt256)
) ENGINE = MergeTree ORDER BY (function_name, variant_name, episode_id)"""
INFERENCE_TABLES = {"ChatInference": "tool_params", "JsonInference": "output_schema"}


def tensorzero_tables(database: str) -> list[str]:
    return [
        f"CREATE DATABASE IF NOT EXISTS {database}",
        MODEL_INFERENCE_DDL.format(db=database),
        *(INFERENCE_DDL.format(db=database, table=t, specific=s) for t, s in INFERENCE_TABLES.items()),
    ]


def uuid7(unix_ms: int, rng: random.Random) -> str:
    """A UUIDv7 (RFC 9562) whose 48-bit timestamp is `unix_ms`."""
    value = (unix_ms & (1 << 48) - 1) << 80 | 0x7 << 76 | rng.getrandbits(12) << 64 | 0b10 << 62 | rng.getrandbits(62)
    return str(uuid.UUID(int=value))


def literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, Decimal)):
        return str(value)
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def insert(table: str, *rows: dict[str, Any]) -> str:
    """One INSERT of `rows`, which all name the same columns."""
    columns = list(rows[0])
    assert all(list(row) == columns for row in rows), "rows name different columns"
    values = ", ".join("(" + ", ".join(literal(row[c]) for c in columns) + ")" for row in rows)
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES {values}"


def run(job: dict, env: Optional[dict[str, str]] = None, timeout: int = 300) -> dict:
    """Run a job in a fresh process; returns {"connect_error": str|None, "steps": [{"rows", "columns"} or
    {"error"}], "stderr": ...}: chdb writes why a config was refused to stderr, not into the exception."""
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve())],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "TZ": "UTC", **(env or {})},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return {**json.loads(Path(job["result"]).read_text()), "stderr": done.stderr}


def _main() -> None:
    import chdb

    job = json.load(sys.stdin)
    report: dict[str, Any] = {"connect_error": None, "steps": []}
    try:
        connection = chdb.connect(job["connect"])
    except Exception as error:  # the config itself was refused: that is the answer
        report["connect_error"] = str(error)
    else:
        for sql in job["steps"]:
            try:
                text = str(connection.query(sql, "JSONCompact"))
                try:
                    answer = json.loads(text) if text.strip() else {"meta": [], "data": []}
                except json.JSONDecodeError:  # the statement named its own FORMAT: its text, as ClickHouse wrote it
                    report["steps"].append({"text": text})
                    continue
                report["steps"].append({"rows": answer["data"], "columns": [c["name"] for c in answer["meta"]]})
            except Exception as error:
                report["steps"].append({"error": str(error)})
        connection.close()
    Path(job["result"]).write_text(json.dumps(report))


if __name__ == "__main__":
    _main()
