"""The seed's variables, carried over into an env layer: told at validate when nothing reads them."""

from conftest import MINIMAL_ENV, load_minimal

from components.stack.seed import SEED_VARIABLES

SEED_ENV = (
    "TENSORZERO_CLICKHOUSE_USER=tensorzero\n"
    "TENSORZERO_CLICKHOUSE_URL=http://tensorzero:tensorzero@tensorzero-clickhouse:8123/default\n"
    "TENSORZERO_OBS_CLICKHOUSE_URL=http://tensorzero-clickhouse:8123\n"
    "TENSORZERO_OBS_CLICKHOUSE_DB=tensorzero\n"
    "TENSORZERO_OBS_CLICKHOUSE_USER=tensorzero\n"
    "TENSORZERO_OBS_CLICKHOUSE_PASSWORD=tensorzero\n"
    "TENSORZERO_GATEWAY_URL=http://tensorzero-gateway:3000\n"
)


def seed_notices(deployment) -> dict[str, str]:
    return {name: n for n in deployment.notices for name in SEED_VARIABLES if f": {name} is set, but" in n}


def test_every_seed_variable_nothing_reads_is_told_with_where_its_value_comes_from(tmp_path):
    deployment = load_minimal(tmp_path, env=MINIMAL_ENV + SEED_ENV)
    found = seed_notices(deployment)
    assert set(found) == {line.split("=")[0] for line in SEED_ENV.splitlines()}
    assert "clickhouse.user" in found["TENSORZERO_CLICKHOUSE_USER"]
    assert "clickhouse.database" in found["TENSORZERO_OBS_CLICKHOUSE_DB"]
    assert all(notice.startswith("env/env.shared:") for notice in found.values())  # the layer and line
    # Told, not refused: the stack still validates.
    assert deployment.plans


def test_a_seed_variable_the_stack_file_names_is_read_and_not_told(tmp_path):
    deployment = load_minimal(
        tmp_path,
        env=MINIMAL_ENV + SEED_ENV,
        clickhouse={"password_var": "TENSORZERO_OBS_CLICKHOUSE_PASSWORD"},
    )
    found = seed_notices(deployment)
    assert "TENSORZERO_OBS_CLICKHOUSE_PASSWORD" not in found and "TENSORZERO_CLICKHOUSE_USER" in found
