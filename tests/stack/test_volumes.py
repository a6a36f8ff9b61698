"""Adopted volumes: existing data (PMOVES's ClickHouse rows, its pulled models) mounted by name, never owned.

Under Pulumi's mocks: an adopted volume is read by its id (`docker.Volume.get`), so it is no resource the
stack declares: `pulumi up` cannot create or replace it and `pulumi destroy` cannot delete it. The live
proof that the rows survive is tests/live/test_adopted_volume_live.py.
"""

import random

import pytest
from conftest import container_of, load_minimal, resources

from components.core.errors import ConfigError
from components.operate.plan import plan
from components.services import clickhouse, ollama
from components.services.clickhouse import SERVICE as CLICKHOUSE
from components.services.ollama import SERVICE as OLLAMA

PMOVES_DATA = "tensorzero-clickhouse-data"
PMOVES_MODELS = "pmoves-ollama-models"
PMOVES_MODELS_MOUNT = "/root/.ollama/models"  # where PMOVES's compose mounts it (not the image's /root/.ollama)


def adopting(tmp_path, **sections):
    return load_minimal(tmp_path, **sections)


@pytest.fixture(scope="module")
def adopted(tmp_path_factory):
    deployment = adopting(
        tmp_path_factory.mktemp("adopted"),
        clickhouse={"adopt_volumes": {"data": {"name": PMOVES_DATA}}, "database": "default"},
        ollama={"adopt_volumes": {"models": {"name": PMOVES_MODELS, "mount": PMOVES_MODELS_MOUNT}}},
    )
    return deployment, plan(deployment)


def mounts(container: dict) -> dict[str, str]:
    return {v["containerPath"]: v["volumeName"] for v in container["inputs"]["volumes"]}


def test_an_adopted_volume_is_mounted_by_name_and_is_no_resource_of_the_stack(adopted):
    deployment, desired = adopted
    declared = {r["inputs"]["name"] for r in resources(desired, "volume:Volume")}
    assert PMOVES_DATA not in declared and PMOVES_MODELS not in declared
    # The backups volume is not adopted: the stack still creates (and protects) its own.
    assert declared == {"pmoves-test-tensorzero-clickhouse-backups", "pmoves-test-tensorzero-prometheus-data",
                        "pmoves-test-tensorzero-grafana-data"}  # fmt: skip
    store, models = container_of(desired, CLICKHOUSE.role), container_of(desired, OLLAMA.role)
    assert mounts(store)[clickhouse.DATA_PATH] == PMOVES_DATA
    assert mounts(models) == {PMOVES_MODELS_MOUNT: PMOVES_MODELS}
    # Read by id, on the provider of the host it lives on, before the container that mounts it.
    read = {r["id"]: r for r in desired["external"]}
    assert set(read) == {PMOVES_DATA, PMOVES_MODELS}
    for volume, container in ((PMOVES_DATA, store), (PMOVES_MODELS, models)):
        assert read[volume]["type"] == "docker:index/volume:Volume"
        assert read[volume]["provider"] == container["provider"]
        assert read[volume]["urn"] in container["dependencies"]


def test_stacks_that_adopt_nothing_have_no_external_resources(plans, deployments, stack):
    adopts = [v for p in deployments[stack].plans.values() for v in p.volumes if v.adopted]
    assert bool(adopts) == ("external" in plans[stack])
    owned = {r["inputs"]["name"] for r in resources(plans[stack], "volume:Volume")}
    assert not owned & {v.docker_name for v in adopts}


def test_prod_adopts_pmoves_clickhouse_data_and_keeps_logging_to_its_database(plans, deployments):
    spec = deployments["prod"].spec
    assert spec.clickhouse.database == clickhouse.PMOVES_DATABASE
    assert mounts(container_of(plans["prod"], CLICKHOUSE.role))[clickhouse.DATA_PATH] == PMOVES_DATA
    [url] = [v.value for v in deployments["prod"].plans["gateway"].env if v.name == "TENSORZERO_CLICKHOUSE_URL"]
    assert url.endswith("/default")
    assert not [n for n in deployments["prod"].notices if "adopt_volumes" in n]


def test_adopting_data_into_another_database_is_a_notice(tmp_path):
    deployment = adopting(tmp_path, clickhouse={"adopt_volumes": {"data": {"name": PMOVES_DATA}}})
    [notice] = [n for n in deployment.notices if n.startswith("clickhouse.adopt_volumes.data:")]
    assert "logs to database 'tensorzero'; PMOVES's compose logged to 'default'" in notice


def test_a_models_volume_keeps_its_own_mount_unless_told(tmp_path):
    deployment = adopting(tmp_path, ollama={"adopt_volumes": {"models": {"name": PMOVES_MODELS}}})
    [volume] = deployment.plans[OLLAMA.role].volumes
    assert (volume.docker_name, volume.mount, volume.adopted) == (PMOVES_MODELS, ollama.MODELS_PATH, True)


@pytest.mark.parametrize(
    ("sections", "key", "message"),
    [
        (
            {"clickhouse": {"adopt_volumes": {"logs": {"name": "old-logs"}}}},
            "clickhouse.adopt_volumes.logs",
            "clickhouse has no volume 'logs' (its volumes: backups, data)",
        ),
        (
            {"clickhouse": {"adopt_volumes": {"data": {"name": "shared"}, "backups": {"name": "shared"}}}},
            "clickhouse.adopt_volumes.backups",
            "'shared' is adopted by clickhouse.adopt_volumes.data already",
        ),
        (
            {"clickhouse": {"adopt_volumes": {"data": {"name": "pmoves-test-tensorzero-prometheus-data"}}}},
            "clickhouse.adopt_volumes.data",
            "'pmoves-test-tensorzero-prometheus-data' is the prometheus's own volume in this stack",
        ),
    ],
    ids=["unknown-volume", "adopted-twice", "own-volume"],
)
def test_an_adoption_that_cannot_hold_is_refused(tmp_path, sections, key, message):
    with pytest.raises(ConfigError) as failure:
        adopting(tmp_path, **sections)
    assert [(p.key, p.message) for p in failure.value.problems] == [(key, message)]


def test_a_relative_mount_is_refused(tmp_path):
    with pytest.raises(ConfigError) as failure:
        adopting(tmp_path, ollama={"adopt_volumes": {"models": {"name": PMOVES_MODELS, "mount": "models"}}})
    [problem] = failure.value.problems
    assert problem.key == "ollama.adopt_volumes.models.mount"
    assert "'models' is not an absolute path inside a container" in problem.message


def test_pmoves_default_database_backs_up_and_restores_under_another_name(deployments, tmp_path):
    """prod logs to PMOVES's `default` database; README's backup commands for it, run by ClickHouse's engine
    (chdb) on prod's rendered config (its `backups` disk). `default` itself cannot be restored over."""
    from chdb_run import insert, run, tensorzero_tables, uuid7
    from test_clickhouse import chdb_layout

    deployment = deployments["prod"]
    database = deployment.spec.clickhouse.database
    config = chdb_layout(tmp_path / "server", deployment, keep_constraints=False)
    rng = random.Random(3)
    row = {"raw_request": "", "raw_response": "", "model_name": "m", "model_provider_name": "p", "input_messages": ""}
    rows = [
        {"id": uuid7(1_700_000_000_000 + i, rng), "inference_id": uuid7(1, rng), **row, "output": ""} for i in range(7)
    ]
    steps = [
        tensorzero_tables(database)[1],
        insert(f"{database}.ModelInference", *rows),
        f"BACKUP DATABASE {database} TO Disk('backups', 'pmoves')",
        f"RESTORE DATABASE {database} AS restored FROM Disk('backups', 'pmoves') "
        "SETTINGS allow_different_database_def = true",
        "SELECT count() FROM restored.ModelInference",
    ]
    env = {deployment.spec.clickhouse.readonly_password_var: "r"}
    result = run({"connect": f"file:{tmp_path / 'data'}?config-file={config}", "steps": steps,
                  "result": str(tmp_path / "result.json")}, env=env)  # fmt: skip
    assert database == "default"
    assert [step.get("error") for step in result["steps"]] == [None] * len(steps)
    assert result["steps"][-1]["rows"] == [[7]]


@pytest.mark.parametrize("prefix", ["pmoves"])
def test_a_prefix_taking_a_compose_volumes_name_is_refused_unless_adopted(tmp_path, prefix):
    """`name_prefix: pmoves` would name the stack's own Ollama volume `pmoves-ollama-models`: PMOVES's compose
    volume, mounted as if new and deletable by `destroy`. Refused, naming the fix; adopting it is accepted."""
    with pytest.raises(ConfigError) as refused:
        adopting(tmp_path / "own", name_prefix=prefix, volume_prefix=None)
    problems = [p for p in refused.value.problems if p.key == "name_prefix"]
    assert problems and "the volume PMOVES's compose keeps its data in" in problems[0].message, refused.value
    deployment = adopting(
        tmp_path / "adopted",
        name_prefix=prefix,
        clickhouse={"adopt_volumes": {"data": {"name": PMOVES_DATA}}, "database": "default"},
        ollama={"adopt_volumes": {"models": {"name": PMOVES_MODELS, "mount": PMOVES_MODELS_MOUNT}}},
    )
    assert deployment.plans[OLLAMA.role].volumes[0].adopted
