"""Backups and the restore drill, proven with the real engine: rows written, backed up (the backups disk and
an S3-compatible server), wiped, restored into a fresh engine with an empty data volume, and the seed's
queries answering exactly as before; a corrupt or missing backup refused with nothing touched.

ClickHouse is chdb's engine (the modern BACKUP/RESTORE; tests/chdb_http.py serves its HTTP interface),
loading the stack's rendered config.d (the backups disk, the off-host endpoint with `from_env` credentials);
S3 is moto's server; backupctl runs from the files the stack uploads, with the environment its plan gives.
"""

import json
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from backupctl_harness import Moto, Server, backupctl, backupctl_env, program_dir, start_server, with_offsite
from chdb_run import tensorzero_tables
from test_clickhouse import SEED_AVERAGE, SEED_BY_MODEL, SEED_COUNT, SEED_LATEST, SEED_SLOW, model_inference_rows

from components import clickhouse_schema
from components.backupctl.s3 import S3
from components.backupctl.store import DESCRIPTION

SEED_QUERIES = (SEED_COUNT, SEED_BY_MODEL, SEED_AVERAGE, SEED_LATEST, SEED_SLOW)
PREFIX = "prod"  # the S3 prefix under the bucket
EXIT_REFUSED = 2


@pytest.fixture(scope="module")
def moto():
    server = Moto()
    yield server
    server.close()


def statements(sql: str) -> list[str]:
    """A rendered SQL file as single statements (the HTTP interface takes one at a time)."""
    found = []
    for chunk in sql.split(";\n"):
        if any(line.strip() and not line.strip().startswith("--") for line in chunk.splitlines()):
            found.append(chunk)
    return found


def answers(server: Server) -> list:
    """The seed's queries' answers; GROUP BY without ORDER BY has no order, so those rows are sorted."""
    return [
        sorted(rows) if query == SEED_BY_MODEL else rows
        for query, rows in ((q, server.client.run(q)) for q in SEED_QUERIES)
    ]


def write_rows(server: Server, database: str, seed: int) -> None:
    for statement in model_inference_rows(database, int(time.time()), random.Random(seed)):
        server.client.run(statement)


@dataclass
class Drill:
    deployment: object
    program: Path
    backups: Path  # the backups volume, which outlives the data volume
    root: Path
    env: dict  # backupctl's environment (its ClickHouse address is set per server)
    outputs: dict = field(default_factory=dict)  # step -> CompletedProcess
    answers: dict = field(default_factory=dict)  # backup name -> the seed's answers when it was taken

    def fresh(self, name: str, backups: Path | None = None) -> Server:
        """A new engine with an empty data volume, and the given backups volume."""
        return start_server(
            self.deployment, self.root / name / "config", self.root / name / "data", backups or self.backups
        )

    def run(self, server: Server, *args: str, **env):
        return backupctl(self.program, {**self.env, "CLICKHOUSE_URL": f"http://127.0.0.1:{server.port}", **env}, *args)

    def s3(self) -> S3:
        env = self.env
        return S3(env["BACKUP_OFFSITE_URL"], env["BACKUP_OFFSITE_ACCESS_KEY"], env["BACKUP_OFFSITE_SECRET_KEY"])

    def listing(self, server: Server) -> dict:
        listed = self.run(server, "list", "--json")
        assert listed.returncode == 0, listed.stderr
        return json.loads(listed.stdout)


@pytest.fixture(scope="module")
def drill(deployments, moto, tmp_path_factory) -> Drill:
    """prod's stack, its off-host copies going to moto: rows, a full backup, more rows, an incremental one;
    then the data volume is deleted."""
    root = tmp_path_factory.mktemp("backup-drill")
    deployment = with_offsite(deployments["prod"], f"{moto.url}/backups/{PREFIX}")
    backups = root / "backups-volume"
    backups.mkdir()
    program = program_dir(deployment, root / "program")
    server = start_server(deployment, root / "a" / "config", root / "a" / "data", backups)
    found = Drill(deployment, program, backups, root, backupctl_env(deployment, server, backups))
    database = deployment.spec.clickhouse.database
    try:
        for statement in tensorzero_tables(database) + statements(clickhouse_schema.schema_sql(deployment)):
            server.client.run(statement, "system")
        write_rows(server, database, 1)
        for step, args in (("full", ("backup",)), ("incremental", ("backup", "--kind", "scheduled"))):
            found.outputs[step] = found.run(server, *args)
            found.answers[step] = answers(server)
            write_rows(server, database, 2)  # rows after the backup: not in it
        found.outputs["list"] = found.run(server, "list", "--json")
        found.outputs["drill"] = found.run(server, "drill")
        found.outputs["drill-offsite"] = found.run(server, "drill", "--destination", "offsite")
    finally:
        server.stop()
    shutil.rmtree(root / "a" / "data")  # the host lost its data volume
    return found


def names(drill: Drill, destination: str = "local") -> list[str]:
    return [b["name"] for b in json.loads(drill.outputs["list"].stdout)[destination]]


def test_backups_are_taken_to_the_disk_and_off_the_host(drill):
    for step in ("full", "incremental"):
        result = drill.outputs[step]
        assert result.returncode == 0, result.stdout + result.stderr
        assert [line.split()[1] for line in result.stdout.splitlines()] == ["local:", "offsite:"]
    listing = json.loads(drill.outputs["list"].stdout)
    for destination in ("local", "offsite"):
        full, incremental = listing[destination][:2]
        assert full["kind"] == "manual" and full["base"] is None and full["complete"]
        assert incremental["kind"] == "incr" and incremental["base"] == full["name"]
        assert 0 < incremental["size_bytes"] < full["size_bytes"] * 2
    # On the backups volume and in the bucket, as ClickHouse wrote them.
    assert (drill.backups / names(drill)[0] / DESCRIPTION).is_file()
    assert drill.s3().get(names(drill, "offsite")[0], DESCRIPTION).startswith(b"<config>")


def restored_answers(drill: Drill, server: Server, name: str, *options: str) -> list:
    result = drill.run(server, "restore", name, *options)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"restored {name}" in result.stdout
    return answers(server)


@pytest.mark.parametrize("step", ["full", "incremental"])
def test_restore_into_a_fresh_engine_from_the_backups_volume(drill, step):
    """A new engine and an empty data volume; the backups volume survived: the seed's queries answer as
    they did when the backup was taken (an incremental one brings its base along)."""
    name = names(drill)[0 if step == "full" else 1]
    server = drill.fresh(f"local-{step}")
    try:
        assert restored_answers(drill, server, name) == drill.answers[step]
    finally:
        server.stop()


def test_restore_from_off_the_host_when_both_volumes_are_lost(drill, tmp_path):
    """The host is gone, backups volume included: a new engine, empty volumes, the off-host copy."""
    empty = tmp_path / "new-backups-volume"
    empty.mkdir()
    server = drill.fresh("offsite", backups=empty)
    try:
        name = names(drill, "offsite")[1]
        result = drill.run(server, "restore", name, "--destination", "offsite", BACKUP_PATH=str(empty))
        assert result.returncode == 0, result.stdout + result.stderr
        assert answers(server) == drill.answers["incremental"]
    finally:
        server.stop()


def test_the_drill_command_passes_on_a_running_stack(drill):
    for step in ("drill", "drill-offsite"):
        result = drill.outputs[step]
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.rstrip().endswith("drill: passed")
        assert "restored:" in result.stdout  # the seed's queries ran against the restored copy


@pytest.fixture
def restored(drill):
    """A fresh engine holding the full backup, restored."""
    server = drill.fresh(f"restored-{time.monotonic_ns()}")
    result = drill.run(server, "restore", names(drill)[0])
    assert result.returncode == 0, result.stderr
    yield server
    server.stop()


def databases(server: Server) -> list[str]:
    return [name for [name] in server.client.run("SELECT name FROM system.databases ORDER BY name", "system")]


def test_restore_refuses_a_database_holding_rows_unless_replaced(drill, restored):
    before, held = answers(restored), databases(restored)
    refused = drill.run(restored, "restore", names(drill)[1])
    assert refused.returncode == EXIT_REFUSED
    assert "holds" in refused.stderr and "needs --replace" in refused.stderr and "nothing was changed" in refused.stderr
    assert (answers(restored), databases(restored)) == (before, held)
    replaced = drill.run(restored, "restore", names(drill)[1], "--replace")
    assert replaced.returncode == 0, replaced.stderr
    assert answers(restored) == drill.answers["incremental"]
    [aside] = [name for name in databases(restored) if name.startswith("tensorzero_before_restore_")]
    assert aside in replaced.stdout  # kept, not dropped


def corrupt_copy(drill: Drill, name: str) -> str:
    """A copy of backup `name` under a new backup name, one byte of its data flipped."""
    copy = "tensorzero-20010101T000001Z-full"
    shutil.copytree(drill.backups / name, drill.backups / copy)
    [data] = sorted((drill.backups / copy / "data").rglob("data.bin"))[:1]
    content = bytearray(data.read_bytes())
    content[len(content) // 2] ^= 0xFF
    data.write_bytes(bytes(content))
    return copy


def test_a_corrupt_backup_fails_restore_and_touches_nothing(drill, restored):
    copy = corrupt_copy(drill, names(drill)[0])
    try:
        before, held = answers(restored), databases(restored)
        result = drill.run(restored, "restore", copy, "--replace")
        assert result.returncode == EXIT_REFUSED, result.stdout + result.stderr
        assert f"backup {copy}" in result.stderr and "cannot be restored" in result.stderr
        assert "nothing was changed" in result.stderr
        assert (answers(restored), databases(restored)) == (before, held)  # no scratch copy left either
    finally:
        shutil.rmtree(drill.backups / copy)


@pytest.mark.parametrize("case", ["missing", "unfinished"])
def test_a_missing_or_unfinished_backup_is_refused_by_name(drill, restored, case):
    name = "tensorzero-20010101T000000Z-full"
    if case == "unfinished":
        shutil.copytree(drill.backups / names(drill)[0], drill.backups / name)
        (drill.backups / name / DESCRIPTION).unlink()
    try:
        before = answers(restored)
        result = drill.run(restored, "restore", name, "--replace")
        assert result.returncode == EXIT_REFUSED
        expected = "is unfinished" if case == "unfinished" else f"no backup {name}"
        assert expected in result.stderr and "nothing was changed" in result.stderr, result.stderr
        if case == "missing":
            assert names(drill)[0] in result.stderr  # what is there instead
        assert answers(restored) == before
    finally:
        shutil.rmtree(drill.backups / name, ignore_errors=True)
