"""What the backup tests run against: an S3 server (moto), ClickHouse's engine behind its HTTP interface
(tests/chdb_http.py), and backupctl itself as the container runs it.

backupctl runs as `python -m backupctl` from its files as the stack uploads them (rendered into a directory
of their own, `components` not importable), with the environment the stack's plan gives its container;
only the addresses (the stand-in's port, the backups directory) are this machine's.
"""

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

from conftest import free_port, planned_env
from promtool import write_mounted

from components.backupctl.clickhouse import ClickHouse
from components.services import backup
from components.services.clickhouse import BACKUPS_PATH

HERE = Path(__file__).resolve().parent
BUCKET = "backups"


class Moto:
    """moto's S3-compatible server on 127.0.0.1 with one bucket."""

    def __init__(self):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        server = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or shutil.which("moto_server")
        assert server, "moto_server is not installed (requirements-test.txt: moto[server])"
        self.process = subprocess.Popen(
            [server, "-H", "127.0.0.1", "-p", str(self.port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        for _ in range(100):
            try:
                urllib.request.urlopen(urllib.request.Request(f"{self.url}/{BUCKET}", method="PUT"), timeout=2)
                return
            except OSError:
                time.sleep(0.1)
        raise AssertionError("moto_server did not start")

    def close(self):
        self.process.terminate()
        self.process.wait(timeout=30)


def with_offsite(deployment, url: Optional[str]):
    """The deployment with backup.offsite pointing at `url` (None: no off-host copy)."""
    spec = deployment.spec
    offsite = None if url is None else (spec.backup.offsite or backup.OffsiteSpec(url=url))
    offsite = offsite and offsite.model_copy(update={"url": url})
    section = spec.backup.model_copy(update={"offsite": offsite})
    return replace(deployment, spec=spec.model_copy(update={"backup": section}))


@dataclass
class Server:
    """ClickHouse's engine with the stack's rendered config, behind the HTTP stand-in."""

    process: subprocess.Popen
    port: int
    client: ClickHouse

    def stop(self):
        self.process.stdin.close()
        self.process.wait(timeout=60)


def start_server(deployment, root: Path, data: Path, backups: Path) -> Server:
    """A fresh ClickHouse (the rendered config.d, the backups disk at `backups`) with `data` as its volume."""
    from test_clickhouse import chdb_layout

    config = chdb_layout(root, deployment, keep_constraints=False, backups=backups)
    env = {v.name: v.value for v in planned_env(deployment, "clickhouse")}
    spec = deployment.spec.clickhouse
    password = env["CLICKHOUSE_PASSWORD"]
    root.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [sys.executable, str(HERE / "chdb_http.py"), str(data), str(config), spec.user, password],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=(root / "server.log").open("w"),  # chdb logs every statement
        text=True,
        env={**os.environ, **env, "TZ": "UTC"},
    )
    line = process.stdout.readline()
    assert line.strip().isdigit(), f"the ClickHouse stand-in did not start: {line!r}"
    port = int(line)
    return Server(process, port, ClickHouse(f"http://127.0.0.1:{port}", spec.user, password, spec.database))


def program_dir(deployment, root: Path) -> Path:
    """backupctl's files as the stack uploads them, in a directory of their own."""
    files = [f for f in deployment.plans["backup"].files if f.kind == backup.KIND]
    write_mounted(root, files)
    return root / backup.PROGRAM_DIR.lstrip("/")


def backupctl_env(deployment, server: Server, backups: Path, **overrides) -> dict[str, str]:
    """The backup container's environment from the plan, with this machine's addresses."""
    env = {v.name: v.value for v in planned_env(deployment, "backup")}
    assert env["BACKUP_PATH"] == BACKUPS_PATH.rstrip("/")
    env.update({"CLICKHOUSE_URL": f"http://127.0.0.1:{server.port}", "BACKUP_PATH": str(backups), **overrides})
    return env


def backupctl(program: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    environment = {"PATH": os.environ["PATH"], "TZ": "UTC", **env, "PYTHONPATH": str(program)}
    return subprocess.run(
        [sys.executable, "-m", "backupctl", *args], env=environment, capture_output=True, text=True, timeout=600
    )
