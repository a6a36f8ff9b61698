"""Live tests: real programs in containers on the local Docker engine (images: tests/live/build-images).

Without a reachable engine these tests skip with the reason, except under CI (env CI set), where they
fail: CI must run them (.ci/system-deps installs and starts the engine).
"""

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from .engine import engine_problem, fleet_of
from .livestack import LiveStack, SecondHost, live_deployment, start

BUILD_IMAGES = Path(__file__).resolve().parent / "build-images"
BUILD_TIMEOUT_S = 1200  # a cold build (debootstrap and three images) takes about a minute here
STANDIN_PYTHON = (3, 11)  # Debian bookworm's python3, in pmoves-test/python


def cannot_run(reason: str) -> None:
    """Skip with the reason; under CI, fail: there the live tests must run."""
    if os.environ.get("CI"):
        pytest.fail(f"live tests cannot run under CI: {reason}; .ci/system-deps prepares the machine")
    pytest.skip(f"live tests: {reason}")


@pytest.fixture(scope="session")
def docker_engine() -> None:
    problem = engine_problem()
    if problem is not None:
        cannot_run(f"no Docker engine ({problem})")


@pytest.fixture(scope="session")
def live_images(docker_engine, pytestconfig) -> None:
    """Builds (or finds built) the test images, its progress on the terminal: a cold build takes a minute."""
    reporter = pytestconfig.pluginmanager.get_plugin("terminalreporter")
    say = reporter.write_line if reporter else print
    say(f"\nlive tests: {BUILD_IMAGES.name} (about a minute on a cold machine, seconds once built)")
    started = time.monotonic()
    process = subprocess.Popen(["bash", str(BUILD_IMAGES)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    timer = threading.Timer(BUILD_TIMEOUT_S, process.kill)
    timer.start()
    output = []
    try:
        for line in process.stdout:
            output.append(line)
            if line.startswith("build-images:"):
                say(f"  {line.rstrip()}")
    finally:
        timer.cancel()
    if process.wait() != 0:
        pytest.fail(f"{BUILD_IMAGES} failed (or ran past {BUILD_TIMEOUT_S}s):\n{''.join(output)[-4000:]}")
    say(f"live tests: images ready in {time.monotonic() - started:.0f}s")


@pytest.fixture(scope="session")
def fleet(live_images):
    """The session's containers and networks."""
    with fleet_of("live") as fleet:
        yield fleet


@pytest.fixture(scope="session")
def live_stack(fleet, tmp_path_factory) -> LiveStack:
    if sys.version_info[:2] != STANDIN_PYTHON:
        # The gateway stand-in imports this interpreter's `tensorzero` (and its compiled dependencies).
        cannot_run(f"the venv's Python is {sys.version.split()[0]}; the stand-in image runs {STANDIN_PYTHON}")
    network = fleet.create_network("gpu")
    address = fleet.gateway_address(network)
    gpu = SecondHost(network, address, free_port(address))
    return start(fleet, live_deployment(tmp_path_factory.mktemp("live-project"), fleet.prefix, gpu), gpu)


def free_port(address: str) -> int:
    """A port nothing listens on at `address` now (the engine binds it next)."""
    with socket.socket() as probe:
        probe.bind((address, 0))
        return probe.getsockname()[1]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    fleet = getattr(item, "funcargs", {}).get("fleet")
    if report.failed and fleet is not None and fleet.containers:
        report.sections.append(("container logs", fleet.logs()))
    return report
