"""The bounds the spec sets are the readers' own: at the bound the real program accepts the rendered file,
past what the program can read `validate` refuses (tests/stack/test_malformed.py has those rows).

nginx reads the edge's `client_max_body_size`, promtool the scrape interval and alert durations, the Docker
engine the memory limit."""

import dataclasses
import io
import subprocess
import tarfile

import pytest
from conftest import unavailable
from edge_rig import nginx_t
from test_prometheus import rendered, run

from components.core import types
from components.core.plans import Endpoint
from components.services import edge
from components.services.prometheus import SERVICE as PROMETHEUS

MEMORY_MAX_MB = 4 * 1024 * 1024  # the spec's MemoryMB bound


def with_section(deployment, role: str, **changes):
    """The deployment with one section changed, bypassing validation (to render what validate would refuse)."""
    spec = deployment.spec
    section = getattr(spec, role).model_copy(update=changes)
    return dataclasses.replace(deployment, spec=spec.model_copy(update={role: section}))


@pytest.mark.parametrize(("size", "accepted"), [(types.NGINX_SIZE_MAX, True), ("99999999999999999999m", False)])
def test_nginx_takes_the_largest_body_size_the_spec_allows(deployments, tmp_path, size, accepted):
    deployment = with_section(deployments["dev"], "edge", client_max_body_size=size)
    files = edge.config_files(deployment, Endpoint(edge.GATEWAY_BEHIND_EDGE_ALIAS, 3000))
    assert f"client_max_body_size {size};" in files[0].content
    checked = nginx_t(files, tmp_path, deployment)
    assert (checked.returncode == 0) is accepted, checked.stderr


@pytest.mark.parametrize(("interval", "accepted"), [("1s", True), ("5m", True), ("999999999999s", False)], ids=str)
def test_promtool_takes_the_scrape_intervals_the_spec_allows(deployments, tmp_path, interval, accepted):
    deployment = with_section(deployments["dev"], PROMETHEUS.role, scrape_interval=interval)
    config, _ = rendered(deployment, tmp_path)
    checked = run("promtool", "check", "config", str(config))
    assert (checked.returncode == 0) is accepted, checked.stdout + checked.stderr


def test_promtool_takes_the_longest_alert_duration_the_spec_allows(deployments, tmp_path):
    spec = deployments["dev"].spec.prometheus
    alerts = spec.alerts.model_copy(update={"for_duration": "1d"})
    config, rules = rendered(with_section(deployments["dev"], PROMETHEUS.role, alerts=alerts), tmp_path)
    checked = run("promtool", "check", "rules", str(rules))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "for: 1d" in rules.read_text()


@pytest.fixture(scope="module")
def empty_image():
    """The smallest image there is (an empty tarball, `docker import`ed): enough for `docker create`."""
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        unavailable("no Docker engine (.ci/system-deps starts one)")
    buffer = io.BytesIO()
    tarfile.open(fileobj=buffer, mode="w").close()
    name = "pmoves-test/empty:bounds"
    subprocess.run(["docker", "import", "-", name], input=buffer.getvalue(), check=True, capture_output=True)
    yield name
    subprocess.run(["docker", "rmi", "--force", name], capture_output=True)


@pytest.mark.parametrize(("memory_mb", "accepted"), [(MEMORY_MAX_MB, True), (10**17, False)], ids=str)
def test_the_docker_engine_takes_the_largest_memory_limit_the_spec_allows(empty_image, memory_mb, accepted):
    name = f"pmoves-test-bounds-{memory_mb}"
    created = subprocess.run(
        ["docker", "create", "--name", name, "--memory", f"{memory_mb}m", empty_image, "/none"],
        capture_output=True,
        text=True,
    )
    subprocess.run(["docker", "rm", "--force", name], capture_output=True)
    assert (created.returncode == 0) is accepted, created.stderr
    assert types.MemoryMB.__metadata__[0].metadata[-1].le == MEMORY_MAX_MB
