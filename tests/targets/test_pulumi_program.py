"""The real entry point, `__main__.py`, as `pulumi up` runs it: config from Pulumi, resources to the engine."""

import json
import logging
import runpy

import pulumi
import pytest
import yaml
from conftest import CANARIES, STACKS, env_templates
from pulumi.runtime.config import set_all_config

from components.core.envfiles import Variable
from components.core.names import PROJECT
from components.operate.plan import RecordingMonitor, plan, use_mocks
from components.stack.loader import PROJECT_DIR, read_stack_config
from components.targets.preflight import load

SECRETS = f"{PROJECT}:secrets"


def pulumi_config(stack: str, env_dir: str, **changes) -> dict[str, str]:
    """The stack file's config as the Pulumi CLI hands it to the program: JSON strings, secrets decrypted.

    The env layers come from `env_dir`; staging and prod get their credentials as stack secrets.
    """
    config = yaml.safe_load((PROJECT_DIR / f"stacks/Pulumi.{stack}.yaml").read_text())["config"]
    config[f"{PROJECT}:env_files"] = {"dir": env_dir}
    config.update({f"{PROJECT}:{key}": value for key, value in changes.items()})
    if stack != "dev":
        config[SECRETS] = dict(CANARIES)
    return {key: value if isinstance(value, str) else json.dumps(value) for key, value in config.items()}


def run_program(stack: str, config: dict[str, str], monitor: RecordingMonitor | None = None) -> RecordingMonitor:
    monitor = use_mocks(stack, monitor or RecordingMonitor())
    set_all_config(config, [SECRETS])

    @pulumi.runtime.test
    def run():
        runpy.run_path(str(PROJECT_DIR / "__main__.py"), run_name="__main__")

    try:
        run()
    finally:
        set_all_config({})
    return monitor


@pytest.mark.parametrize("stack", STACKS)
def test_main_declares_what_the_offline_plan_shows(stack, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    env_dir = str(env_templates(stack, tmp_path))
    monitor = run_program(stack, pulumi_config(stack, env_dir))
    declared = sorted(r["urn"] for r in monitor.recorded)
    secrets = {} if stack == "dev" else {k: Variable(k, v, "test", True) for k, v in CANARIES.items()}
    offline = load(stack, env_dir=env_dir, read_config=lambda: (read_stack_config(PROJECT_DIR, stack)[0], secrets))
    assert declared == [r["urn"] for r in plan(offline)["resources"]]
    assert not [v for v in CANARIES.values() if v in caplog.text]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"gateway": {"image": "tensorzero/gateway:2026.6.0", "port": 70000}},
            "stacks/Pulumi.dev.yaml: gateway.port: Input should be less than or equal to 65535",
        ),
        ({"tier": "production"}, "stacks/Pulumi.dev.yaml: tier: Input should be 'dev', 'staging' or 'prod'"),
        ({"catalog": {"files": ["catalog/missing.toml"]}}, "catalog/missing.toml: catalog file not found"),
    ],
)
def test_invalid_config_stops_before_any_resource_with_a_clean_message(changes, message, tmp_path):
    monitor = RecordingMonitor()
    with pytest.raises(pulumi.RunError) as failure:
        run_program("dev", pulumi_config("dev", str(env_templates("dev", tmp_path)), **changes), monitor)
    assert message in str(failure.value)
    assert monitor.recorded == []


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("bind_address", "bind_address: not read (a key of this project is written pmoves-tensorzero:bind_address"),
        ("pmoves-tensorzer:gateway", "did you mean pmoves-tensorzero:gateway?"),
    ],
)
def test_a_key_the_program_would_not_read_stops_it_too(key, message, tmp_path):
    """Under the CLI the config comes from Pulumi, not the file: the same rule holds there."""
    config = pulumi_config("dev", str(env_templates("dev", tmp_path)))
    config[key] = json.dumps({"port": 3031}) if ":" in key else "0.0.0.0"
    monitor = RecordingMonitor()
    with pytest.raises(pulumi.RunError) as failure:
        run_program("dev", config, monitor)
    assert message in str(failure.value)
    assert monitor.recorded == []
