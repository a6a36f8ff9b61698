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
from backupctl_harness import Moto, backupctl_env, start_server, with_offsite
from chdb_run import tensorzero_tables
from conftest import free_port
from test_backup import answers, statements
from test_clickhouse import model_inference_rows

from components.core.errors import ConfigError
from components.core.names import PROJECT, PROJECT_LABEL, SERVICE_LABEL, STACK_LABEL
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
    name = f"{fleet.prefix}-{deployment.plans['backup'].docker_name}"
    files = {f.mount: f.content for f in deployment.plans["backup"].files}
    args = ["create", "--name", name, "--network", "host", *stack_labels(fleet.prefix, "backup")]
    args += ["--volume", f"{volume}:{BACKUPS_MOUNT}"] + [a for key in env for a in ("--env", key)]
    docker(*args, IMAGE, *backup.COMMAND[1:], env=env)
    fleet.containers["backup"] = Container(name, "backup")
    docker("cp", "-", f"{name}:/", data=tar_of(files))
    docker("start", name)
    # As Pulumi names it: each generation of the rolling gateway has a suffix of its own.
    gateway = f"{fleet.prefix}-{deployment.plans['gateway'].docker_name}-{secrets.token_hex(4)}"
    docker(
        "run",
        "-d",
        "--name",
        gateway,
        *stack_labels(fleet.prefix, "gateway"),
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


def stack_labels(prefix: str, role: str) -> list[str]:
    """The labels targets/docker.py puts on a stack's container, plus the test fleet's own."""
    labels = {PROJECT_LABEL: PROJECT, STACK_LABEL: prefix, SERVICE_LABEL: role, "org.pmoves.test": prefix}
    return [arg for key, value in labels.items() for arg in ("--label", f"{key}={value}")]


def states(deployment) -> dict:
    """Every container of the stack: its state, with the time it last started."""
    listed = docker("ps", "--all", "--quiet", "--filter", f"label={STACK_LABEL}={deployment.spec.name_prefix}")
    return {c["Name"]: c["State"] for c in json.loads(docker("inspect", *listed.split()))}


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

    before_refusals = states(deployment)
    assert len(before_refusals) == 2 and all(state["Running"] for state in before_refusals.values())
    refused = verb(deployment, "restore", "prod", "--from", local["name"])
    assert refused == 2  # the database holds rows: refused, nothing changed
    captured = capfd.readouterr()
    assert "needs --replace" in captured.err and " stop " not in captured.out
    assert verb(deployment, "restore", "prod", "--from", local["name"] + "-typo", "--replace") == 2
    assert "no backup" in capfd.readouterr().err
    with pytest.raises(ConfigError, match="needs a backup's name"):
        verb(deployment, "restore", "prod", "--from", "")
    assert states(deployment) == before_refusals  # nothing stopped, restarted or removed
    [gateway] = [name for name, up in operate.containers(deployment, "gateway") if up]
    assert gateway != f"{deployment.spec.name_prefix}-{deployment.plans['gateway'].docker_name}"
    first_start = started_at(gateway)
    server.client.run("TRUNCATE TABLE ModelInference")
    assert verb(deployment, "restore", "prod", "--from", offsite["name"], "--offsite", "--replace") == 0
    assert f"stop {gateway}" in capfd.readouterr().out  # stopped by the name the labels found
    assert answers(server) == before
    assert started_at(gateway) != first_start  # stopped for the restore, started again
    assert json.loads(docker("inspect", gateway))[0]["State"]["Running"]

    assert verb(deployment, "restore-drill", "prod") == 0
    assert "drill: passed" in capfd.readouterr().out
