"""Each container runs and is healthy, where its Docker host answers (testinfra's docker view)."""

import json

import pytest
import testinfra

from .probes import NotYet, shown


def describe(name: str, state: dict) -> str:
    status = state.get("Status", "?")
    if status != "running":
        error = f", error: {state['Error']}" if state.get("Error") else ""
        return f"container {name} is {status} (exit code {state.get('ExitCode')}{error})"
    health = state["Health"]
    last = (health.get("Log") or [{}])[-1]
    return (
        f"container {name} is running but {health.get('Status')} "
        f"(last healthcheck: exit {last.get('ExitCode')}: {shown(last.get('Output', ''))})"
    )


def test_running_and_healthy(container_role, outputs, budget, docker_hosts, monkeypatch):
    name = outputs.containers[container_role]
    url = outputs.docker_hosts.get(container_role)
    if not url:
        pytest.skip(f"{container_role}: no docker_hosts.{container_role} in the outputs")
    why = docker_hosts.why_not(url)
    if why:
        pytest.skip(f"{container_role}: Docker host {url} is not reachable from here: {why}")
    monkeypatch.setenv("DOCKER_HOST", url)
    host = testinfra.get_host("local://")

    def attempt(timeout):
        inspected = host.run("docker inspect --type container %s", name)
        if inspected.rc != 0 and "no such" in inspected.stderr.lower():
            # A container that does not exist will not start by waiting: only one that exists is waited for.
            pytest.fail(f"{container_role}: no container {name} on {url}: is the stack deployed?")
        if inspected.rc != 0:
            raise NotYet(f"no container {name}: {shown(inspected.stderr)}")
        state = json.loads(inspected.stdout)[0]["State"]
        healthy = state.get("Health") is None or state["Health"].get("Status") == "healthy"
        if state.get("Status") != "running" or not healthy:
            raise NotYet(describe(name, state))

    budget.wait(attempt, service=container_role, endpoint=f"docker inspect {name} on {url}")
