"""The smoke suite checks a deployed stack; `python -m components smoke <stack>` runs it.

It reads the stack outputs from the file the command names and a deadline for the whole run. Without
them (a plain `pytest tests`) it collects nothing: its own tests are tests/live/test_smoke_live.py.
"""

import json
import os
from pathlib import Path

import httpx
import pytest

from components.operate.smoke import BUDGET_VAR, DEADLINE_VAR, OUTPUTS_VAR
from components.operate.smoke_outputs import ClickHouseAccess, StackOutputs

from .probes import Budget, ClickHouseQueries, DockerHosts, how_to_query

if OUTPUTS_VAR not in os.environ:
    collect_ignore_glob = ["test_*.py"]


def _outputs() -> StackOutputs:
    return StackOutputs.from_document(json.loads(Path(os.environ[OUTPUTS_VAR]).read_text()))


def pytest_generate_tests(metafunc):
    if "container_role" in metafunc.fixturenames:
        metafunc.parametrize("container_role", sorted(_outputs().containers))
    if "ollama_role" in metafunc.fixturenames:
        # Each of the stack's Ollamas (its own, then its instances); "ollama" alone when the outputs name none,
        # so a stack without one reports the check as skipped rather than not collecting it.
        metafunc.parametrize("ollama_role", list(_outputs().ollama_servers()) or ["ollama"])


@pytest.fixture(scope="session")
def outputs() -> StackOutputs:
    return _outputs()


@pytest.fixture(scope="session")
def budget(outputs) -> Budget:
    return Budget(float(os.environ[DEADLINE_VAR]), float(os.environ[BUDGET_VAR]), outputs.redactor())


@pytest.fixture(scope="session")
def http():
    with httpx.Client(follow_redirects=False, headers={"user-agent": "pmoves-smoke"}) as client:
        yield client


@pytest.fixture(scope="session")
def clickhouse(outputs) -> ClickHouseAccess:
    access = outputs.clickhouse()
    if access is None:
        pytest.skip("clickhouse: no clickhouse_url in the outputs")
    return access


@pytest.fixture(scope="session")
def docker_hosts(budget) -> DockerHosts:
    return DockerHosts(budget)


@pytest.fixture(scope="session")
def clickhouse_queries(outputs, http, docker_hosts) -> ClickHouseQueries:
    return how_to_query(outputs, http, docker_hosts)
