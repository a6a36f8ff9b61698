"""Live: the move from PMOVES's compose keeps every inference row. A "previous deployment" (a ClickHouse run the
way PMOVES's compose runs it: user and password `tensorzero`, the gateway logging to database `default`) writes
rows into a named volume and is removed, volume kept, as `docker compose down` does. Then the stack's ClickHouse,
as its plan declares it (its own user and password, `clickhouse.database: default`, the volume adopted), mounts
that volume: every row is there, and the seed's `requests` queries answer over the old rows.

The server is Debian's ClickHouse 18.16 (pmoves-test/clickhouse, built from Debian packages); the `requests`
view is livestack.py's stand-in SQL for that old server (the real one is proven in chdb by test_clickhouse.py).
"""

import json
import random
import uuid
from collections import Counter

import httpx
import pytest
from conftest import GRAFANA_CREDENTIALS_ENV, UI_LOGIN_ENV, make_project, minimal_config, resources

from components.operate.plan import plan
from components.services import clickhouse
from components.services.clickhouse import SERVICE as CLICKHOUSE
from components.stack.loader import load

from .engine import Fleet, NotReady, fleet_of, wait_for
from .livestack import REQUESTS_VIEW_STANDIN, env_of

PMOVES_USER = PMOVES_PASSWORD = "tensorzero"  # PMOVES's compose defaults
PMOVES_DATABASE = "default"  # its TENSORZERO_CLICKHOUSE_URL ends in /default
STACK_USER, STACK_PASSWORD = "pmoves_tz", "adopted-canary-pw-4e7b"
# The ModelInference columns the seed's `requests` view reads, in 18.16's dialect (as the gateway stand-in
# creates the table: tests/live/standins/gateway.py).
MODEL_INFERENCE = """CREATE TABLE IF NOT EXISTS {database}.ModelInference (
    id UUID, inference_id UUID, model_name String, model_provider_name String,
    input_tokens Nullable(UInt32), output_tokens Nullable(UInt32), response_time_ms Nullable(UInt32),
    ttft_ms Nullable(UInt32), cached UInt8, timestamp DateTime DEFAULT now()
) ENGINE = MergeTree() ORDER BY id"""
MODELS = ("claude-sonnet-4-5", "gpt-4o", "qwen2.5:0.5b")
ROWS = 60


@pytest.fixture(scope="module")
def fleet(live_images):
    """Containers, network and volume of this module only: the session's live stack is not touched."""
    with fleet_of("adopt") as fleet:
        yield fleet


def query(url: str, user: str, password: str, sql: str, data: str = "") -> str:
    params = {"database": PMOVES_DATABASE, **({"query": sql} if data else {})}
    answer = httpx.post(url + "/", params=params, content=data or sql, auth=(user, password), timeout=10)
    if answer.status_code != 200:
        raise NotReady(f"`{sql.splitlines()[0][:100]}`: HTTP {answer.status_code}: {answer.text.strip()[:300]}")
    return answer.text


def rows_written(rng: random.Random) -> list[dict]:
    return [
        {
            "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "inference_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "model_name": rng.choice(MODELS),
            "model_provider_name": "p",
            "input_tokens": rng.randint(1, 500),
            "output_tokens": rng.randint(1, 500),
            "response_time_ms": rng.randint(50, 5000),
            "cached": 0,
        }
        for _ in range(ROWS)
    ]


def run_clickhouse(fleet: Fleet, role: str, env: list[tuple[str, str]], volume: tuple[str, str]) -> str:
    container = fleet.run(
        role,
        "pmoves-test/clickhouse",
        aliases=[CLICKHOUSE.alias],
        env=env,
        publish=[CLICKHOUSE.port],
        volumes=[volume],
        healthcheck=clickhouse.HEALTHCHECK,
    )
    container.wait_healthy()
    return container.url(CLICKHOUSE.port)


def adopting_deployment(root, volume: str):
    """The stack as PMOVES's operator writes it for the move: the old volume adopted, PMOVES's database kept."""
    config = minimal_config(
        clickhouse={
            "user": STACK_USER,
            "database": PMOVES_DATABASE,
            "adopt_volumes": {"data": {"name": volume}},
        },
    )
    env = f"TENSORZERO_CLICKHOUSE_PASSWORD={STACK_PASSWORD}\n{GRAFANA_CREDENTIALS_ENV}{UI_LOGIN_ENV}"
    catalog = '[models.gemma_embed_local]\nprovider = "ollama"\nmodel = "gemma:2b"\ntype = "embedding"\n'
    project = make_project(root, config, {"catalog.toml": catalog, "env/env.shared": env})
    return load("test", project_dir=project)


def test_an_adopted_volume_keeps_every_row_of_the_previous_deployment(fleet, tmp_path):
    volume = fleet.create_volume(f"{fleet.prefix}-tensorzero-clickhouse-data")
    # The previous deployment: PMOVES's compose, its defaults, its database.
    previous = [("CLICKHOUSE_USER", PMOVES_USER), ("CLICKHOUSE_PASSWORD", PMOVES_PASSWORD)]
    url = run_clickhouse(fleet, "previous", previous, (volume, clickhouse.DATA_PATH))
    written = rows_written(random.Random(10))
    query(url, PMOVES_USER, PMOVES_PASSWORD, MODEL_INFERENCE.format(database=PMOVES_DATABASE))
    rows = "\n".join(json.dumps(row) for row in written)
    query(url, PMOVES_USER, PMOVES_PASSWORD, "INSERT INTO ModelInference FORMAT JSONEachRow", rows)
    before = query(url, PMOVES_USER, PMOVES_PASSWORD, "SELECT id, response_time_ms FROM ModelInference ORDER BY id")
    fleet.remove_container("previous")  # `docker compose down`: the container goes, the volume stays

    # The stack, exactly as planned: no volume of its own where it adopts one.
    deployment = adopting_deployment(tmp_path / "project", volume)
    desired = plan(deployment)
    assert volume not in {r["inputs"]["name"] for r in resources(desired, "volume:Volume")}
    assert [r["id"] for r in desired["external"]] == [volume]
    [data] = [v for v in deployment.plans[CLICKHOUSE.role].volumes if v.adopted]
    assert (data.docker_name, data.mount) == (volume, clickhouse.DATA_PATH)
    url = run_clickhouse(fleet, "stack", env_of(deployment.plans[CLICKHOUSE.role].env), (data.docker_name, data.mount))

    def ask(sql: str) -> str:
        return wait_for(f"`{sql}`", lambda: query(url, STACK_USER, STACK_PASSWORD, sql), 30, fleet.logs)

    # Every row, under the stack's own user: the same ids and values.
    assert ask("SELECT id, response_time_ms FROM ModelInference ORDER BY id") == before
    assert len(before.splitlines()) == ROWS
    # What the schema one-shot adds once the gateway has migrated (here the 18.16 stand-in), then the seed's queries.
    ask(REQUESTS_VIEW_STANDIN.format(database=PMOVES_DATABASE))
    assert int(ask("SELECT COUNT(*) FROM requests")) == ROWS
    by_model = dict(
        line.split("\t")
        for line in ask("SELECT model, COUNT(*) as count FROM requests GROUP BY model").split("\n")
        if line
    )
    assert {model: int(n) for model, n in by_model.items()} == Counter(r["model_name"] for r in written)
    latencies = [r["response_time_ms"] for r in written if r["model_name"] == "claude-sonnet-4-5"]
    average = float(ask("SELECT AVG(latency_ms) FROM requests WHERE model = 'claude-sonnet-4-5'"))
    assert average == pytest.approx(sum(latencies) / len(latencies))
