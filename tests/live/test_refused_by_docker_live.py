"""What `validate` refuses because Docker would: each case is refused by the loader with its key, and the
local Docker engine, sent the same request the Docker target makes of it (targets/docker.py: the container
on the stack's network with its hostname, each joined network with the same alias, volumes and read-only
host files as binds), refuses it too; the accepted form of each passes the engine.
"""

import secrets

import pytest
from conftest import MINIMAL_CATALOG, MINIMAL_ENV, make_project, minimal_config, refusals

from components.services.clickhouse import BACKUPS_MOUNT
from components.stack.loader import load

from .engine import DockerFailed, docker

IMAGE = "pmoves-test/debian:bookworm"  # any image: the engine refuses before anything runs


def problems_of(root, **config) -> list[str]:
    project = make_project(
        root, minimal_config(**config), {"catalog.toml": MINIMAL_CATALOG, "env/env.shared": MINIMAL_ENV}
    )
    return refusals(lambda: load("test", project_dir=project))


@pytest.fixture
def engine(live_images):
    """A throwaway user network and a `create` that removes what it made (containers, named volumes)."""
    name = f"pmoves-refused-{secrets.token_hex(4)}"
    docker("network", "create", name)
    made: list[tuple[str, str]] = []

    def create(*args: str) -> str:
        for value in args:
            if value.startswith(f"{name}-vol"):
                made.append(("volume", value.split(":")[0]))
        container = docker("create", "--network", name, "--network-alias", "svc", *args, IMAGE, "true").strip()
        made.append(("container", container))
        return container

    yield name, create
    for kind, item in reversed(made):
        try:
            docker(kind, "rm", "-f", item) if kind == "container" else docker("volume", "rm", "-f", item)
        except DockerFailed:
            pass
    docker("network", "rm", name)


@pytest.mark.parametrize("reserved", ["host", "bridge", "none"])
def test_joining_dockers_own_networks_is_refused(tmp_path, engine, reserved):
    found = problems_of(tmp_path / "declared", hosts={"main": {"networks": [reserved]}})
    assert len(found) == 1 and found[0].startswith("hosts.main.networks:") and "Docker's own network" in found[0]
    found = problems_of(tmp_path / "joined", gateway={"networks": [reserved]})
    assert found == [
        f"gateway.networks: '{reserved}' is Docker's own network: a container beside the stack's network cannot join it"
    ]

    network, create = engine
    container = create()
    with pytest.raises(DockerFailed, match="network-scoped alias is supported only"):
        docker("network", "connect", "--alias", "svc", reserved, container)
    joined = create()  # the accepted form: another user-defined network, with the alias
    other = f"{network}-other"
    docker("network", "create", other)
    try:
        docker("network", "connect", "--alias", "svc", other, joined)
        docker("network", "disconnect", other, joined)
    finally:
        docker("network", "rm", other)


def test_an_adopted_volume_on_the_backups_path_is_refused(tmp_path, engine):
    adopted = {"data": {"name": "pmoves-clickhouse-data", "mount": BACKUPS_MOUNT}}
    found = problems_of(tmp_path, clickhouse={"adopt_volumes": adopted})
    assert found == [
        f"clickhouse.adopt_volumes.data.mount: volume 'data' and volume 'backups' are both mounted at {BACKUPS_MOUNT}: "
        "Docker refuses that"
    ], found

    network, create = engine
    with pytest.raises(DockerFailed, match="Duplicate mount point"):
        create("-v", f"{network}-vol1:{BACKUPS_MOUNT}", "-v", f"{network}-vol2:{BACKUPS_MOUNT}")
    create("-v", f"{network}-vol1:/var/lib/clickhouse", "-v", f"{network}-vol2:{BACKUPS_MOUNT}")


def test_a_relative_tls_file_is_refused(tmp_path, engine):
    tls = {"enabled": True, "certificate_file": "tls/cert.pem", "key_file": "/etc/tls/key.pem"}
    found = problems_of(tmp_path, edge={"tls": tls})
    assert any("certificate_file 'tls/cert.pem' must be an absolute path on the Docker host" in line for line in found)

    _, create = engine
    with pytest.raises(DockerFailed, match="use absolute path"):
        create("-v", "tls/cert.pem:/etc/pmoves-edge/tls/certificate.pem:ro")
    (tmp_path / "cert.pem").write_text("")
    create("-v", f"{tmp_path / 'cert.pem'}:/etc/pmoves-edge/tls/certificate.pem:ro")
