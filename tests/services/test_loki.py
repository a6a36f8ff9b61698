"""Loki: its rendered config follows the spec, and its container keeps logs on a protected volume.

No Loki binary runs here, so the config is checked for what this package decides in it.
"""

import yaml
from conftest import container_of

from components.services import loki
from components.services.loki import SERVICE as LOKI


def loki_stacks(deployments):
    return {stack: d for stack, d in deployments.items() if d.spec.deployed(LOKI)}


def test_logs_are_on_where_the_stack_files_say(deployments):
    assert sorted(loki_stacks(deployments)) == ["prod", "staging"]


def test_config_keeps_every_path_on_the_data_volume_and_the_spec_retention(deployments):
    for deployment in loki_stacks(deployments).values():
        [file] = loki.config_files(deployment)
        config = yaml.safe_load(file.content)
        assert file.mount == loki.CONFIG_PATH
        assert config["server"]["http_listen_port"] == LOKI.port
        assert config["limits_config"]["retention_period"] == deployment.spec.loki.retention
        assert config["compactor"]["retention_enabled"] is True
        storage = config["common"]["storage"]["filesystem"]
        paths = [config["common"]["path_prefix"], config["compactor"]["working_directory"], *storage.values()]
        assert all(path.startswith(loki.DATA_PATH) for path in paths), paths


def test_container_reads_its_config_and_keeps_data_on_a_protected_volume(plans, deployments):
    for stack, deployment in loki_stacks(deployments).items():
        inputs = container_of(plans[stack], LOKI.role)["inputs"]
        assert inputs["command"] == [f"-config.file={loki.CONFIG_PATH}"]
        assert [u["file"] for u in inputs["uploads"]] == [loki.CONFIG_PATH]
        [volume] = inputs["volumes"]
        assert volume == {
            "containerPath": loki.DATA_PATH,
            "volumeName": f"{deployment.spec.name_prefix}-tensorzero-loki-data",
        }
        assert "ports" not in inputs or inputs["ports"] == []  # internal: Grafana and Alloy reach it by alias


def test_no_loki_resource_when_logs_are_off(plans, deployments):
    for stack, deployment in deployments.items():
        if not deployment.spec.deployed(LOKI):
            assert not [r for r in plans[stack]["resources"] if "loki" in r["name"] or "alloy" in r["name"]]
