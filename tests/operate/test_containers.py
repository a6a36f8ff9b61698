"""`logs`, `exec`, `restart`: the seed's `docker compose` commands, one line each, on the stack's own names."""

import pytest

from components.core.errors import ConfigError
from components.operate import backups, cli, containers

GATEWAY_GENERATION = "1a2b3c4d"  # the rolling gateway's name suffix, as Pulumi's RandomId gives it


@pytest.fixture
def listed(monkeypatch):
    """A stand-in for `docker ps --filter label=...` (tests/live/test_containers_live.py runs the real engine): each
    role's one running container, named as the plan names it, the gateway with its generation suffix."""

    def running(deployment, role):
        plan = deployment.plans[role]
        name = plan.container_name(deployment.spec.name_prefix)
        return [(f"{name}-{GATEWAY_GENERATION}" if plan.rolling else name, True)]

    monkeypatch.setattr(backups, "containers", running)


def test_the_seeds_compose_names_and_the_roles_reach_the_stacks_containers(deployments, listed):
    prod = deployments["prod"]
    host = prod.spec.hosts["main"].url
    clickhouse = "tensorzero-clickhouse"  # prod carries the seed's container names
    for service in ("clickhouse", "tensorzero-clickhouse"):
        assert containers.command(prod, "exec", service, ["clickhouse-client", "--user", "pmoves_tz"]) == [
            "docker", "-H", host, "exec", "-i", clickhouse, "clickhouse-client", "--user", "pmoves_tz",
        ]  # fmt: skip
    gateway = f"{prod.spec.name_prefix}-tensorzero-gateway-{GATEWAY_GENERATION}"
    logs = containers.command(prod, "logs", "tensorzero-gateway", ["-f"])
    assert logs == ["docker", "-H", host, "logs", "--tail", "200", "-f", gateway]
    # The Jetson's Ollama runs on the GPU host: the command goes there.
    gpu = prod.spec.hosts["gpu"].url
    assert containers.command(prod, "restart", "ollama-jetson")[:3] == ["docker", "-H", gpu]
    with pytest.raises(ConfigError, match="no such service"):
        containers.command(prod, "restart", "tensorzero-nope")


def test_the_cli_verbs_run_the_command(monkeypatch, canary_env_dirs, listed):
    ran = []
    monkeypatch.setattr(containers, "_run", lambda command: ran.append(command) or 0)
    parser = cli.parser()
    args = parser.parse_args(
        ["exec", "prod", "--env-dir", canary_env_dirs["prod"], "tensorzero-clickhouse", "--", "clickhouse-client"]
    )
    assert args.handler(args) == 0
    assert ran[-1][-2:] == ["tensorzero-clickhouse", "clickhouse-client"]
