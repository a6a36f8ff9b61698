"""backupctl under its own faults, with the real engine (chdb behind its HTTP stand-in), a real full disk (a
small tmpfs as the backups volume), and S3 stores that refuse, are closed or never answer: a partial or
corrupt backup is reported, refused by restore and removed by the next run; list, restore and serve never die
on one; an off-host store that fails makes the run fail, with the metric the BackupFailed alert reads, in
bounded time."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from backupctl_harness import Moto, backupctl, backupctl_env, program_dir, start_server, with_offsite
from chdb_run import tensorzero_tables
from conftest import free_port, unavailable
from test_backup import statements, write_rows

from components.backupctl import serve as scheduler
from components.backupctl.jobs import Settings
from components.backupctl.s3 import ATTEMPTS, TIMEOUT_S
from components.backupctl.store import DESCRIPTION
from components.services import clickhouse_schema

EXIT_FAILED, EXIT_REFUSED = 1, 2
ROOMY = "64m"


def mount_tmpfs(path: Path, size: str, remount: bool = False) -> None:
    options = f"{'remount,' if remount else ''}size={size},mode=0777"
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True, text=True)
    if done.returncode != 0:
        unavailable(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")


class Rig:
    """staging's stack without its off-host copy; ClickHouse holding rows; the backups volume a tmpfs."""

    def __init__(self, deployment, root: Path):
        self.deployment = deployment
        self.backups = root / "backups"
        self.backups.mkdir()
        mount_tmpfs(self.backups, ROOMY)
        self.program = program_dir(deployment, root / "program")
        self.server = start_server(deployment, root / "config", root / "data", self.backups)
        self.env = backupctl_env(deployment, self.server, self.backups)
        database = deployment.spec.clickhouse.database
        for statement in tensorzero_tables(database) + statements(clickhouse_schema.schema_sql(deployment)):
            self.server.client.run(statement, "system")
        write_rows(self.server, database, 1)

    def run(self, *args: str, **env) -> subprocess.CompletedProcess:
        return backupctl(self.program, {**self.env, **env}, *args)

    def listing(self, **env) -> dict:
        listed = self.run("list", "--json", **env)
        assert listed.returncode == 0 and "Traceback" not in listed.stderr, listed.stderr
        return json.loads(listed.stdout)

    def good_backup(self) -> str:
        taken = self.run("backup")
        assert taken.returncode == 0, taken.stdout + taken.stderr
        return next(b["name"] for b in reversed(self.listing()["local"]) if b["complete"])

    def close(self):
        self.server.stop()
        subprocess.run(["umount", str(self.backups)], check=False)


@pytest.fixture(scope="module")
def rig(deployments, tmp_path_factory):
    found = Rig(with_offsite(deployments["staging"], None), tmp_path_factory.mktemp("backup-faults"))
    yield found
    found.close()


def broken(rig: Rig, good: str, content: bytes) -> str:
    """A copy of backup `good` under a new name whose description is `content`: what a full disk leaves."""
    name = "tensorzero-20010101T000000.000000Z-full"
    shutil.copytree(rig.backups / good, rig.backups / name)
    (rig.backups / name / DESCRIPTION).write_bytes(content)
    return name


@pytest.mark.parametrize(
    ("content", "problem"), [(b"", "is empty"), (b"<config><base_backup>", "is unreadable")], ids=["empty", "garbage"]
)
def test_a_corrupt_backup_is_listed_refused_and_removed_by_the_next_run(rig, content, problem):
    good = rig.good_backup()
    name = broken(rig, good, content)
    listed = {b["name"]: b for b in rig.listing()["local"]}
    assert not listed[name]["complete"] and problem in listed[name]["problem"]
    text = rig.run("list")
    assert text.returncode == 0 and f"{name}" in text.stdout and "CORRUPT" in text.stdout, text.stderr
    refused = rig.run("restore", name, "--replace")
    assert refused.returncode == EXIT_REFUSED and "Traceback" not in refused.stderr
    assert f"backup {name} on disk 'backups' is corrupt" in refused.stderr and "nothing was changed" in refused.stderr
    restored = rig.run("restore", good, "--replace")  # a good one beside it still restores
    assert restored.returncode == 0, restored.stderr
    taken = rig.run("backup")
    assert taken.returncode == 0, taken.stdout + taken.stderr
    assert f"removed corrupt {name} (its {DESCRIPTION} {problem}" in taken.stdout
    assert not (rig.backups / name).exists()


def test_serve_keeps_serving_beside_a_corrupt_backup(rig):
    """The container's own command: it starts, answers its health and metrics, and takes no traceback."""
    name = broken(rig, rig.good_backup(), b"")
    port = free_port()
    environment = {"PATH": os.environ["PATH"], "TZ": "UTC", **rig.env, "PYTHONPATH": str(rig.program)}
    environment |= {"BACKUP_METRICS_PORT": str(port), "BACKUP_EVERY_S": "86400"}
    process = subprocess.Popen(
        [sys.executable, "-m", "backupctl", "serve"], env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.stderr.read().decode()
            try:
                text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
                break
            except OSError:
                assert time.monotonic() < deadline, "serve never answered"
                time.sleep(0.2)
        assert 'pmoves_backup_last_success_timestamp_seconds{destination="local"}' in text
        assert 'pmoves_backup_last_success_timestamp_seconds{destination="local"} 0\n' not in text
    finally:
        process.terminate()
        process.wait(timeout=30)
        shutil.rmtree(rig.backups / name, ignore_errors=True)
    assert b"Traceback" not in process.stderr.read()


def test_a_disk_that_fills_up_mid_backup_fails_the_run_and_leaves_nothing_behind(rig):
    good = rig.good_backup()
    used = sum(f.stat().st_size for f in (rig.backups / good).rglob("*") if f.is_file())
    free = shutil.disk_usage(rig.backups).free
    # Room for part of one more backup, not all of it.
    tight = (shutil.disk_usage(rig.backups).used + used // 2) // 4096 * 4096 + 4096
    mount_tmpfs(rig.backups, str(tight), remount=True)
    try:
        assert shutil.disk_usage(rig.backups).free < used < free
        before = set(os.listdir(rig.backups))
        failed = rig.run("backup")
        assert failed.returncode == EXIT_FAILED and "Traceback" not in failed.stderr, failed.stdout + failed.stderr
        assert "FAILED  local" in failed.stdout
        assert set(os.listdir(rig.backups)) == before  # its partial backup removed, whatever ClickHouse left
        assert rig.listing()["local"] and rig.run("list").returncode == 0
        restored = rig.run("restore", good, "--replace")
        assert restored.returncode == 0, restored.stderr
    finally:
        mount_tmpfs(rig.backups, ROOMY, remount=True)
    again = rig.run("backup")
    assert again.returncode == 0, again.stdout + again.stderr


def silent_listener() -> tuple[socket.socket, int]:
    """A port that accepts connections and never answers (a host behind a dropping firewall, a hung store)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    return listener, listener.getsockname()[1]


def offsite(url: str) -> dict:
    return {"BACKUP_OFFSITE_URL": url, "BACKUP_OFFSITE_ACCESS_KEY": "AKIDEXAMPLE", "BACKUP_OFFSITE_SECRET_KEY": "x"}


@pytest.fixture(scope="module")
def moto_with_auth():
    """moto's server checking every request's credentials (INITIAL_NO_AUTH_ACTION_COUNT=0): unknown keys get 403."""
    server = Moto.__new__(Moto)
    server.port = free_port()
    server.url = f"http://127.0.0.1:{server.port}"
    binary = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or shutil.which("moto_server")
    server.process = subprocess.Popen(
        [binary, "-H", "127.0.0.1", "-p", str(server.port)],
        env={**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "0"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(100):
        try:
            urllib.request.urlopen(server.url, timeout=2)
            break
        except urllib.error.HTTPError:
            break  # it answers, if only to refuse
        except OSError:
            time.sleep(0.1)
    yield server
    server.close()


@pytest.mark.parametrize("store", ["closed port", "never answers", "403"])
def test_a_failing_off_host_store_fails_the_run_in_bounded_time_and_raises_the_alert(rig, store, moto_with_auth):
    listener = None
    if store == "closed port":
        url = f"http://127.0.0.1:{free_port()}/backups/prod"
        said, bound = "cannot reach", 15
    elif store == "never answers":
        listener, port = silent_listener()
        url = f"http://127.0.0.1:{port}/backups/prod"
        said, bound = "timed out", ATTEMPTS * TIMEOUT_S + 15
    else:
        url = f"{moto_with_auth.url}/backups/prod"
        said, bound = "HTTP 403", 15
    try:
        started = time.monotonic()
        result = rig.run("backup", **offsite(url))
        took = time.monotonic() - started
        assert result.returncode == EXIT_FAILED and "Traceback" not in result.stderr, result.stdout + result.stderr
        [local, remote] = result.stdout.strip().splitlines()[-2:]
        assert local.startswith("ok      local: ") and remote.startswith("FAILED  offsite: ")
        assert said in remote, remote
        assert took < bound + 30, f"{store}: the run took {took:.0f}s"  # the local backup's own time, on a busy box
        # What serve records, and what BackupFailed reads (components/services/prometheus.py).
        state = scheduler.State(Settings.from_env({**rig.env, **offsite(url)}))
        [outcome] = scheduler.run_once(state, ["offsite"])
        assert not outcome.ok and said in outcome.error
        assert 'pmoves_backup_last_run_success{destination="offsite"} 0' in state.exposition()
    finally:
        if listener:
            listener.close()


def test_clickhouse_that_never_answers_fails_within_the_statements_budget():
    """The schedule gives a BACKUP statement at most its interval (Settings.backup_timeout_s), not 6 hours."""
    from components.backupctl.clickhouse import ClickHouse, ClickHouseError

    listener, port = silent_listener()
    try:
        started = time.monotonic()
        with pytest.raises(ClickHouseError, match="did not answer within 2s"):
            ClickHouse(f"http://127.0.0.1:{port}", "u", "p", "d").run("SELECT 1", timeout_s=2)
        assert time.monotonic() - started < 10
    finally:
        listener.close()
    assert Settings(**{**BASE_SETTINGS, "every_s": 3600}).backup_timeout_s == 3600
    assert Settings(**{**BASE_SETTINGS, "every_s": 86400 * 7}).backup_timeout_s == 6 * 3600


BASE_SETTINGS = {"clickhouse_url": "http://x", "user": "u", "password": "p", "database": "d", "disk": "b"}
BASE_SETTINGS |= {"disk_path": "/nonexistent"}
