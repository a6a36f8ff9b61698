"""`logs`, `exec`, `restart`: the seed's `docker compose` commands, one line each, on the stack's own names."""

import pytest

from components.core.errors import ConfigError
from components.operate import cli, containers


def test_the_seeds_compose_names_and_the_roles_reach_the_stacks_containers(deployments):
    prod = deployments["prod"]
    host = prod.spec.hosts["main"].url
    clickhouse = "tensorzero-clickhouse"  # prod carries the seed's container names
    for service in ("clickhouse", "tensorzero-clickhouse"):
        assert containers.command(prod, "exec", service, ["clickhouse-client", "--user", "pmoves_tz"]) == [
            "docker", "-H", host, "exec", "-i", clickhouse, "clickhouse-client", "--user", "pmoves_tz",
        ]  # fmt: skip
    gateway = f"{prod.spec.name_prefix}-tensorzero-gateway"
    logs = containers.command(prod, "logs", "tensorzero-gateway", ["-f"])
    assert logs == ["docker", "-H", host, "logs", "--tail", "200", "-f", gateway]
    # The Jetson's Ollama runs on the GPU host: the command goes there.
    gpu = prod.spec.hosts["gpu"].url
    assert containers.command(prod, "restart", "ollama-jetson")[:3] == ["docker", "-H", gpu]
    with pytest.raises(ConfigError, match="no such service"):
        containers.command(prod, "restart", "tensorzero-nope")


def test_the_cli_verbs_run_the_command(monkeypatch, canary_env_dirs):
    ran = []
    monkeypatch.setattr(containers, "_run", lambda command: ran.append(command) or 0)
    parser = cli.parser()
    args = parser.parse_args(
        ["exec", "prod", "--env-dir", canary_env_dirs["prod"], "tensorzero-clickhouse", "--", "clickhouse-client"]
    )
    assert args.handler(args) == 0
    assert ran[-1][-2:] == ["tensorzero-clickhouse", "clickhouse-client"]
