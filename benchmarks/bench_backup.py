"""Backup and restore of 1 million ModelInference rows in ClickHouse's engine (chdb), and their size on disk.

    python benchmarks/bench_backup.py [ROWS [RUNS]]    (make bench-backup: 1 million rows, 3 runs)

Rows are TensorZero's ModelInference (the pinned release's schema, tests/chdb_run.py) with JSON-ish raw
request/response bodies of a few hundred bytes, ids UUIDv7 over the last 30 days. Each phase runs in a
fresh process with its own data directory, as backupctl and a new server would:

1. load the rows; `BACKUP DATABASE ... TO Disk('backups', full)`;
2. 1% more rows; `BACKUP ... SETTINGS base_backup = full` (the incremental the schedule takes);
   then the same full backup to an S3-compatible server (moto, on 127.0.0.1: no network in the figure);
3. a fresh engine with an empty data directory: `RESTORE DATABASE ... FROM` the incremental (its base
   comes along), then `CHECK TABLE` (what backupctl restore verifies) and the row count.
"""

import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

import honest  # noqa: E402
from chdb_run import MODEL_INFERENCE_DDL  # noqa: E402

DATABASE = "tensorzero"
CONFIG = """<clickhouse>
    <storage_configuration><disks><backups><type>local</type><path>{backups}/</path></backups></disks>
    </storage_configuration>
    <backups><allowed_disk>backups</allowed_disk><allowed_path>{backups}/</allowed_path></backups>
    <s3><offsite><endpoint>{s3}/</endpoint><access_key_id>bench</access_key_id>
        <secret_access_key>bench</secret_access_key></offsite></s3>
</clickhouse>
"""
INSERT = """INSERT INTO {db}.ModelInference (id, inference_id, raw_request, raw_response, model_name,
    model_provider_name, input_tokens, output_tokens, response_time_ms, ttft_ms, input_messages, output, cached)
SELECT
    generateUUIDv7(number), generateUUIDv7(number + 1),
    concat('{{"model":"', m, '","messages":[{{"role":"user","content":"question ', toString(number % 9973), '"}}]}}'),
    concat('{{"id":"chatcmpl-', toString(number), '","choices":[{{"message":{{"content":"answer ',
        toString(number % 7919), '"}}}}],"usage":{{"prompt_tokens":', toString(number % 500), '}}}}'),
    m, p, number % 500, number % 300, 200 + number % 3000, 50 + number % 400,
    concat('[{{"role":"user","content":"question ', toString(number % 9973), '"}}]'),
    concat('[{{"type":"text","text":"answer ', toString(number % 7919), '"}}]'),
    number % 20 = 0
FROM (SELECT number, ['claude_sonnet', 'gpt_4o', 'venice_llama'][number % 3 + 1] AS m,
    ['anthropic', 'openai', 'venice'][number % 3 + 1] AS p FROM numbers({start}, {rows}))"""


def du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def phase(name: str, root: Path, rows: int) -> dict:
    """Run one phase in a fresh process (chdb's engine starts once per process)."""
    done = subprocess.run(
        [sys.executable, __file__, "--phase", name, str(root), str(rows)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"phase {name} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_phase(name: str, root: Path, rows: int) -> dict:
    import chdb

    data = root / ("data" if name == "backup" else "fresh")
    connection = chdb.connect(f"file:{data}?config-file={root / 'config.xml'}")

    def timed(sql: str) -> float:
        start = time.perf_counter()
        connection.query(sql)
        return time.perf_counter() - start

    result = {}
    if name == "backup":
        connection.query(f"CREATE DATABASE {DATABASE}")
        connection.query(MODEL_INFERENCE_DDL.format(db=DATABASE))
        result["load_s"] = timed(INSERT.format(db=DATABASE, start=0, rows=rows))
        connection.query(f"OPTIMIZE TABLE {DATABASE}.ModelInference FINAL")
        active = f"SELECT sum(bytes_on_disk) FROM system.parts WHERE active AND database = '{DATABASE}'"
        result["data_bytes"] = int(str(connection.query(active, "CSV")).strip())
        result["full_s"] = timed(f"BACKUP DATABASE {DATABASE} TO Disk('backups', 'full')")
        result["full_bytes"] = du(root / "backups" / "full")
        timed(INSERT.format(db=DATABASE, start=rows, rows=rows // 100))
        result["incremental_s"] = timed(
            f"BACKUP DATABASE {DATABASE} TO Disk('backups', 'incr') SETTINGS base_backup = Disk('backups', 'full')"
        )
        result["incremental_bytes"] = du(root / "backups" / "incr")
        s3 = (root / "s3").read_text()
        result["offsite_s"] = timed(f"BACKUP DATABASE {DATABASE} TO S3('{s3}/full')")
    else:
        result["restore_s"] = timed(f"RESTORE DATABASE {DATABASE} FROM Disk('backups', 'incr')")
        result["check_s"] = timed(f"CHECK TABLE {DATABASE}.ModelInference")
        result["rows"] = int(str(connection.query(f"SELECT count() FROM {DATABASE}.ModelInference", "CSV")).strip())
    connection.close()
    return result


def moto() -> tuple[subprocess.Popen, str]:
    """moto's S3-compatible server on 127.0.0.1, one bucket: the off-host destination (MinIO in PMOVES)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or "moto_server"
    process = subprocess.Popen([server, "-H", "127.0.0.1", "-p", str(port)], stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/bench", method="PUT"))
            return process, f"http://127.0.0.1:{port}/bench"
        except OSError:
            time.sleep(0.1)
    raise SystemExit("moto_server did not start")


def once(rows: int) -> dict:
    root = Path(tempfile.mkdtemp(prefix="bench-backup-"))
    server, url = moto()
    try:
        (root / "backups").mkdir()
        prefix = f"{url}/{root.name}"
        (root / "s3").write_text(prefix)
        (root / "config.xml").write_text(CONFIG.format(backups=root / "backups", s3=prefix))
        measured = phase("backup", root, rows) | phase("restore", root, rows)
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(root, ignore_errors=True)
    assert measured["rows"] == rows + rows // 100, measured
    return measured


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    before = honest.load_average()
    runs = [once(rows) for _ in range(int(sys.argv[2]) if len(sys.argv) > 2 else 3)]
    after = honest.load_average()
    median = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
    mib = 1024 * 1024
    steps = [
        ("the table (active parts, after the load)", None, median["data_bytes"]),
        ("full backup to the `backups` disk", median["full_s"], median["full_bytes"]),
        ("incremental backup (+1% rows)", median["incremental_s"], median["incremental_bytes"]),
        ("full backup off the host (S3: moto on 127.0.0.1)", median["offsite_s"], None),
        ("restore into a fresh engine (incremental + its base)", median["restore_s"], None),
        ("CHECK TABLE of the restored table", median["check_s"], None),
    ]
    print(f"{rows:,} ModelInference rows (+{rows // 100:,} for the incremental); median of {len(runs)} runs")
    busy = honest.busy(before) or honest.busy(after)
    print(
        f"load average (1/5/15 min) before: {honest.fmt_load(before)}, after: {honest.fmt_load(after)}"
        + ("; BUSY MACHINE: not comparable with an idle run" if busy else "")
        + f"; command: {honest.command_line()}"
    )
    print("| step | seconds | size on disk, MiB |")
    print("|---|---:|---:|")
    for step, seconds, size in steps:
        shown_s = "" if seconds is None else f"{seconds:.2f}"
        shown_size = "" if size is None else f"{size / mib:.1f}"
        print(f"| {step} | {shown_s} | {shown_size} |")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--phase":
        print(json.dumps(run_phase(sys.argv[2], Path(sys.argv[3]), int(sys.argv[4]))))
    else:
        main()
