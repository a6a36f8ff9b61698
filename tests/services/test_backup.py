"""Backups and the restore drill, proven with the real engine: rows written, backed up (the backups disk and
an S3-compatible server), wiped, restored into a fresh engine with an empty data volume, and the seed's
queries answering exactly as before; a corrupt or missing backup refused with nothing touched.

ClickHouse is chdb's engine (the modern BACKUP/RESTORE; tests/chdb_http.py serves its HTTP interface),
loading the stack's rendered config.d (the backups disk, the off-host endpoint with `from_env` credentials);
S3 is moto's server; backupctl runs from the files the stack uploads, with the environment its plan gives.
"""

import itertools
import json
import random
import shutil
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from backupctl_harness import (
    Moto,
    Server,
    backupctl,
    backupctl_env,
    program_dir,
    start_server,
    with_offsite,
)
from chdb_run import tensorzero_tables
from conftest import free_port
from promtool import run
from test_clickhouse import SEED_AVERAGE, SEED_BY_MODEL, SEED_COUNT, SEED_LATEST, SEED_SLOW, model_inference_rows

from components.backupctl import serve as scheduler
from components.backupctl.jobs import Settings, take
from components.backupctl.s3 import S3
from components.backupctl.store import DESCRIPTION, Backup, to_delete
from components.services import clickhouse_schema

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
    database = drill.deployment.spec.clickhouse.database  # prod's: `default`, where PMOVES's gateway logs
    [aside] = [name for name in databases(restored) if name.startswith(f"{database}_before_restore_")]
    assert aside in replaced.stdout  # kept, not dropped


def corrupt_copy(drill: Drill, name: str) -> str:
    """A copy of backup `name` under a new backup name, one byte of its data flipped."""
    copy = "tensorzero-20010101T000001.000000Z-full"
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
    name = "tensorzero-20010101T000000.000000Z-full"
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


# --- schedule, chains and retention, with real backups -----------------------------------------------


@pytest.fixture
def scheduled(drill, tmp_path):
    """A fresh engine holding rows, an empty backups volume and an empty S3 prefix; backupctl's settings."""
    volume = tmp_path / "backups"
    volume.mkdir()
    server = drill.fresh(f"scheduled-{time.monotonic_ns()}", backups=volume)
    shutil.copytree(drill.backups / names(drill)[0], volume / names(drill)[0])
    result = drill.run(server, "restore", names(drill)[0], BACKUP_PATH=str(volume))
    assert result.returncode == 0, result.stderr
    shutil.rmtree(volume / names(drill)[0])
    # Under the off-host prefix ClickHouse holds credentials for (its config.d/backups-offsite.xml).
    prefix = f"{drill.env['BACKUP_OFFSITE_URL']}/scheduled-{time.monotonic_ns()}"
    env = {**drill.env, "CLICKHOUSE_URL": f"http://127.0.0.1:{server.port}", "BACKUP_PATH": str(volume)}
    env |= {"BACKUP_OFFSITE_URL": prefix, "BACKUP_FULL_EVERY": "3", "BACKUP_KEEP": "1", "BACKUP_OFFSITE_KEEP": "2"}
    yield Settings.from_env(env), server
    server.stop()


def test_scheduled_backups_chain_incrementals_and_retention_drops_whole_chains(scheduled):
    """full_every 3: full, incr, incr, full, ... Locally one chain is kept (keep 1), off the host two (keep 2);
    a chain goes only once a newer full backup is complete, and never a backup something kept builds on."""
    settings, _ = scheduled
    clock = itertools.count(1_800_000_000, 7)  # every call of the clock: 7 seconds later
    seen = {}
    for _ in range(7):
        for outcome in take(settings, "scheduled", now=lambda: next(clock)):
            assert outcome.ok, outcome.error
            seen.setdefault(outcome.destination, []).append(outcome)
    for destination, keep in (("local", 1), ("offsite", 2)):
        kinds = [o.name.rsplit("-", 1)[1] for o in seen[destination]]
        assert kinds == ["full", "incr", "incr", "full", "incr", "incr", "full"]
        left = settings.destinations()[destination].backups()
        fulls = [b for b in left if b.full]
        assert len(fulls) == keep and all(b.complete for b in left)
        assert [b.name for b in left] == [o.name for o in seen[destination]][-(1 + 3 * (keep - 1)) :]
        assert {b.base for b in left if b.base} <= {b.name for b in left}  # every chain is whole
    deleted = [name for o in seen["local"] for name in o.deleted]
    assert len(deleted) == 6 and len(set(deleted)) == 6


def test_retention_keeps_what_a_kept_backup_builds_on():
    import datetime

    def at(hours: int) -> datetime.datetime:
        return datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc) + datetime.timedelta(hours=hours)

    backups = [
        Backup("a-full", at(0), "full", True),
        Backup("b-incr", at(1), "incr", True, base="a-full"),
        Backup("c-pre", at(2), "pre-upgrade", True),  # a full one, taken before an upgrade
        Backup("d-incr", at(3), "incr", True, base="b-incr"),  # built on the old chain after it
        Backup("e-unfinished", at(4), "full", False),
        Backup("f-unfinished", at(40), "full", False),  # may still be running
    ]
    dropped = {b.name for b in to_delete(backups, keep=1, now=at(41))}
    assert dropped == {"e-unfinished"}  # a-full and b-incr are what d-incr needs
    assert {b.name for b in to_delete(backups[:3], keep=1, now=at(41))} == {"a-full", "b-incr"}


# --- what Prometheus reads -------------------------------------------------------------------------


def test_metrics_say_when_the_last_good_backup_was_and_promtool_accepts_them(scheduled):
    settings, _ = scheduled
    settings = Settings(**{**settings.__dict__, "metrics_port": free_port()})
    stop = threading.Event()
    thread = threading.Thread(target=scheduler.serve, args=(settings, stop, 0.2), daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{settings.metrics_port}"
        deadline = time.monotonic() + 180  # the first run: a backup to the disk and one to S3, on a busy machine
        while True:
            try:
                text = urllib.request.urlopen(url + scheduler.METRICS_PATH, timeout=2).read().decode()
            except OSError:
                text = ""
            if 'pmoves_backup_last_run_success{destination="offsite"} 1' in text:
                break
            assert time.monotonic() < deadline, f"no successful off-host run reported:\n{text}"
            time.sleep(0.2)
        assert urllib.request.urlopen(url + scheduler.HEALTH_PATH, timeout=2).status == 200
    finally:
        stop.set()
        thread.join(timeout=60)
    checked = run("promtool", "check", "metrics", stdin=text)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    values = {
        line.split(" ")[0]: float(line.split(" ")[1]) for line in text.splitlines() if line and not line.startswith("#")
    }
    for destination in ("local", "offsite"):
        [newest] = settings.destinations()[destination].backups()
        assert values[f'pmoves_backup_last_success_timestamp_seconds{{destination="{destination}"}}'] == (
            newest.started.timestamp()
        )
        assert values[f'pmoves_backup_runs_total{{destination="{destination}",outcome="success"}}'] == 1
        assert values[f'pmoves_backup_kept{{destination="{destination}"}}'] == 1
        assert values[f'pmoves_backup_schedule_seconds{{destination="{destination}"}}'] == settings.every_s
    # Read back from the destinations, as after a restart: nothing is due before `every` has passed.
    state = scheduler.State(settings)
    state.refresh()
    assert state.due(time.time()) == []
    assert state.due(time.time() + settings.every_s + 1) == ["local", "offsite"]


def test_a_failed_run_is_counted_and_retried_later_not_at_once(scheduled):
    settings, server = scheduled
    state = scheduler.State(settings)
    state.refresh()
    assert state.due(time.time()) == ["local", "offsite"]  # nothing there yet
    server.stop()  # ClickHouse is down
    outcomes = scheduler.run_once(state, ["local"])
    assert [o.ok for o in outcomes] == [False] and "cannot reach ClickHouse" in outcomes[0].error
    text = state.exposition()
    assert 'pmoves_backup_last_run_success{destination="local"} 0' in text
    assert 'pmoves_backup_runs_total{destination="local",outcome="failure"} 1' in text
    assert 'pmoves_backup_last_success_timestamp_seconds{destination="local"} 0' in text  # BackupTooOld's input
    assert state.due(time.time()) == ["offsite"]  # local waits RETRY_S before trying again
    assert "local" in state.due(time.time() + scheduler.RETRY_S + 1)
