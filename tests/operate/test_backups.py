"""The operator's `restore` in order, with the Docker engine replaced by a recorder (a stand-in: the live test,
tests/live/test_backup_live.py, runs the same verb against real containers): what it runs, and what it never runs."""

import pytest

from components.operate import backups


@pytest.fixture
def engine(monkeypatch):
    """Containers found by label: one running gateway generation, one backup container; every command recorded."""
    found = {"gateway": [("pmoves-prod-tensorzero-gateway-1a2b3c4d", True)], "backup": [("pmoves-prod-backup", True)]}
    monkeypatch.setattr(backups, "containers", lambda deployment, role: found.get(role, []))
    return []


def test_a_refused_check_stops_nothing(deployments, engine):
    def run(command):
        engine.append(command)
        return 2 if command[-1] == "--check" else 0

    assert backups.restore(deployments["prod"], ["tensorzero-x-full"], run) == 2
    assert [c[-1] for c in engine] == ["--check"]  # asked, refused, nothing stopped


def test_ctrl_c_during_the_restore_starts_the_gateway_again(deployments, engine):
    def run(command):
        engine.append(command)
        if "restore" in command and command[-1] != "--check":
            raise KeyboardInterrupt
        return 0

    with pytest.raises(KeyboardInterrupt):
        backups.restore(deployments["prod"], ["tensorzero-x-full"], run)
    gateway = "pmoves-prod-tensorzero-gateway-1a2b3c4d"
    assert [c[-1] for c in engine] == ["--check", gateway, "tensorzero-x-full", gateway]
    assert [c[3] for c in engine] == ["exec", "stop", "exec", "start"]


@pytest.mark.parametrize("name", ["", "  ", "--replace"])
def test_a_missing_or_flag_like_name_is_refused_before_anything_runs(deployments, engine, name):
    with pytest.raises(backups.ConfigError, match="backup's name"):
        backups.restore(deployments["prod"], [name], lambda command: engine.append(command) or 0)
    assert engine == []
