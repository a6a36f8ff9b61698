"""The operator's backup verbs against a running backup container: `backup`, `backups`, `restore` (which
stops and restarts the gateway around it) and `restore-drill`, each through `docker exec` as on a deployed
stack. The container runs backupctl from the files the stack uploads, with its planned environment, on the
test image's python3; ClickHouse is the engine behind tests/chdb_http.py and S3 is moto (on the host
network, which the container shares)."""

import argparse
import json
import random
import secrets
import time

import pytest
from backupctl_harness import Moto, backupctl_env, free_port, start_server, with_offsite
from chdb_run import tensorzero_tables
from test_backup import answers, statements
from test_clickhouse import model_inference_rows

from components.operate import backups as operate
from components.services import backup, clickhouse_schema
from components.services.clickhouse import BACKUPS_MOUNT

from .engine import Container, Fleet, docker, tar_of

IMAGE = "pmoves-test/python"


@pytest.fixture
def stack(live_images, deployments, tmp_path):
    """prod's plan under a prefix of its own: a ClickHouse with rows, its backup container, a gateway to stop.
    Its containers are not the session fleet's (the live stack's): they are removed here."""
    fleet = Fleet(f"pmoves-live-{secrets.token_hex(3)}")
    moto = Moto()
    base = with_offsite(deployments["prod"], f"{moto.url}/backups/live")
    spec = base.spec
    main = spec.hosts["main"].model_copy(update={"url": "unix:///var/run/docker.sock"})
    deployment = type(base)(
        **{
            **base.__dict__,
            "spec": spec.model_copy(update={"name_prefix": fleet.prefix, "hosts": {**spec.hosts, "main": main}}),
        }
    )
    volume = tmp_path / "backups"
    volume.mkdir(mode=0o777)
    server = start_server(deployment, tmp_path / "config", tmp_path / "data", volume)
    database = spec.clickhouse.database
    if database == "default":
        # chdb's own `default` is clickhouse-local's Overlay database; a clickhouse-server's is Atomic.
        server.client.run("DROP DATABASE default SYNC", "system")
        server.client.run("CREATE DATABASE default ENGINE = Atomic", "system")
    for statement in tensorzero_tables(database) + statements(clickhouse_schema.schema_sql(deployment)):
        server.client.run(statement, "system")
    for statement in model_inference_rows(database, int(time.time()), random.Random(3)):
        server.client.run(statement)
    env = backupctl_env(deployment, server, volume, BACKUP_PATH=BACKUPS_MOUNT, BACKUP_METRICS_PORT=str(free_port()))
    _, name = operate.container(deployment, backup.SERVICE.role)
    files = {f.mount: f.content for f in deployment.plans["backup"].files}
    args = ["create", "--name", name, "--network", "host", "--label", f"org.pmoves.test={fleet.prefix}"]
    args += ["--volume", f"{volume}:{BACKUPS_MOUNT}"] + [a for key in env for a in ("--env", key)]
    docker(*args, IMAGE, *backup.COMMAND[1:], env=env)
    fleet.containers["backup"] = Container(name, "backup")
    docker("cp", "-", f"{name}:/", data=tar_of(files))
    docker("start", name)
    _, gateway = operate.container(deployment, "gateway")
    docker(
        "run",
        "-d",
        "--name",
        gateway,
        "--label",
        f"org.pmoves.test={fleet.prefix}",
        IMAGE,
        "-c",
        "import time; time.sleep(3600)",
    )
    fleet.containers["gateway"] = Container(gateway, "gateway")
    try:
        yield deployment, server
    finally:
        fleet.remove()
        server.stop()
        moto.close()


def verb(deployment, *argv: str) -> int:
    """A CLI verb as `python -m components` runs it, on this deployment."""
    root = argparse.ArgumentParser()
    operate.register(root.add_subparsers(dest="command", required=True), lambda args: deployment)
    args = root.parse_args(list(argv))
    return args.handler(args)


def started_at(name: str) -> str:
    return json.loads(docker("inspect", name))[0]["State"]["StartedAt"]


def test_backup_list_restore_and_drill_through_the_backup_container(stack, capfd):
    deployment, server = stack
    before = answers(server)
    assert verb(deployment, "backup", "prod") == 0
    assert "ok      offsite: " in capfd.readouterr().out
    assert verb(deployment, "backups", "prod", "--json") == 0
    out = capfd.readouterr().out
    listing = json.loads(out[out.index("\n{") : out.rindex("}") + 1])
    # The container took its first scheduled backup when it started; then the operator's.
    [local], [offsite] = ([b for b in listing[d] if b["kind"] == "manual"] for d in ("local", "offsite"))
    assert local["complete"] and offsite["complete"]
    assert [b["kind"] for b in listing["local"]] == ["full", "manual"]

    refused = verb(deployment, "restore", "prod", "--from", local["name"])
    assert refused == 2  # the database holds rows: refused, nothing changed
    assert "needs --replace" in capfd.readouterr().err
    _, gateway = operate.container(deployment, "gateway")
    first_start = started_at(gateway)
    server.client.run("TRUNCATE TABLE ModelInference")
    assert verb(deployment, "restore", "prod", "--from", offsite["name"], "--offsite", "--replace") == 0
    assert answers(server) == before
    assert started_at(gateway) != first_start  # stopped for the restore, started again
    assert json.loads(docker("inspect", gateway))[0]["State"]["Running"]

    assert verb(deployment, "restore-drill", "prod") == 0
    assert "drill: passed" in capfd.readouterr().out
