"""Every code block of the seed (../shared/seed/tensorzero-in-pmoves.md), listed with its outcome on the prod
stack and the test or program that shows it; the curl calls run here against the rendered edge in front of
TensorZero's real routes.

The inventory fails when the seed gains, loses or changes a block, so no block goes unlisted. Not every block
is run literally here (the `docker exec -it tensorzero-clickhouse ...` ones need PMOVES's host and its
credentials): the outcome names what shows it. Under CI the seed must be present (a copy of
shared/ beside the project); elsewhere its absence skips.
"""

import os
import re

import pytest
from edge_rig import API_KEY, keyed_edge, rig  # noqa: F401 (fixtures the curl blocks run against)
from test_readme import curl_statuses

from components.core.names import PROJECT_DIR

SEED = PROJECT_DIR.parent / "shared" / "seed" / "tensorzero-in-pmoves.md"
FENCE = re.compile(r"^(?P<indent> *)```(?P<info>\w*)\n(?P<body>.*?)^(?P=indent)```", re.M | re.S)

VERBATIM = "works verbatim on prod"
KEYED = "works with only the documented key added (Authorization: Bearer $TENSORZERO_API_KEY)"
COMPOSE = "a docker compose command: its equivalent is listed in the README"
SEED_CREDENTIAL = "uses the seed's default credential tensorzero/tensorzero, refused outside dev"
CONTAINER = "prod carries the seed's container name tensorzero-clickhouse (tests/stack/test_seed_runbook.py)"
TRANSLATED = "seed config format: translated by the catalog (tests/catalog), never loaded by TensorZero as written"
WARNED = "seed variables: validate names each one nothing reads (tests/stack/test_seed_variables.py)"
# (first line of the block, outcome, where it is shown)
BLOCKS = [
    ("┌──", "a diagram", "-"),
    ("TENSORZERO_BASE_URL=http://localhost:3030", VERBATIM, "tests/stack/test_seed_runbook.py (loopback plain face)"),
    ("TENSORZERO_CLICKHOUSE_USER=tensorzero", WARNED + "; " + SEED_CREDENTIAL, "tests/stack/test_seed_variables.py"),
    ("curl http://localhost:8123/ping", VERBATIM, "tests/stack/test_seed_runbook.py (8123 on 127.0.0.1)"),
    ("# Environment variables in docker-compose.yml", WARNED, "tests/stack/test_seed_variables.py"),
    ("[gateway]", TRANSLATED, "FACTS.md: `unknown field 'clickhouse'`"),
    ("TENSORZERO_OBS_CLICKHOUSE_URL=", WARNED, "tests/stack/test_seed_variables.py"),
    ("TENSORZERO_BASE_URL=http://tensorzero-gateway:3000", VERBATIM, "the edge's plain listener on 3000"),
    ("OPENAI_API_KEY=sk-...", VERBATIM, "provider keys from env layers (tests/stack)"),
    ("cd pmoves && make up-tensorzero", "PMOVES's own Makefile: `make up STACK=prod` here", "docs/migration.md"),
    ("# ClickHouse", VERBATIM + " (4000 is the UI's login: a 401 without it)", "tests/stack/test_seed_runbook.py"),
    ("[gateway]", TRANSLATED + " (observability is on by default)", "tests/services/test_gateway.py"),
    ("cd pmoves && docker compose restart tensorzero-gateway", COMPOSE, "make restart SERVICE=gateway"),
    ("import os", KEYED, "tests/services/test_edge_access.py (bearer keys)"),
    ("curl -X POST http://localhost:3030/v1/chat/completions", KEYED, "run below"),
    ("curl -X POST http://localhost:3030/v1/embeddings", KEYED, "run below"),
    ("# Connect to ClickHouse", CONTAINER + "; " + SEED_CREDENTIAL, "make exec SERVICE=tensorzero-clickhouse"),
    ("# In prometheus.yml", VERBATIM, "tests/services/test_edge_access.py (/metrics keyless inside)"),
    ("[models.my_new_model]", TRANSLATED, "tests/catalog"),
    ("[providers.openai]", TRANSLATED, "tests/catalog"),
    ("[providers.anthropic]", TRANSLATED, "tests/catalog"),
    ("[providers.ollama]", TRANSLATED, "tests/catalog"),
    ("[providers.venice]", TRANSLATED, "tests/catalog"),
    ("# Use TensorZero for embeddings", VERBATIM, "PMOVES's callers' variables"),
    ("# Via ClickHouse", CONTAINER + "; " + SEED_CREDENTIAL, "make exec SERVICE=tensorzero-clickhouse"),
    ("# Export to JSON", CONTAINER + "; " + SEED_CREDENTIAL, "make exec SERVICE=tensorzero-clickhouse"),
    ("# Create backup", CONTAINER + "; " + SEED_CREDENTIAL, "make backup (docs/backups-and-upgrades.md)"),
    ("docker compose logs tensorzero-clickhouse", COMPOSE, "make logs SERVICE=tensorzero-clickhouse"),
    ("docker compose logs tensorzero-gateway", COMPOSE, "make logs SERVICE=gateway"),
    ("[gateway]", TRANSLATED, "tests/catalog"),
    ("docker compose exec tensorzero-gateway env", COMPOSE, "make exec SERVICE=gateway CMD=env"),
    ("docker exec -it tensorzero-clickhouse clickhouse-client", CONTAINER + "; " + SEED_CREDENTIAL, "make exec"),
    ("histogram_quantile(", "edge metric of that name (docs/monitoring.md)", "tests/services/test_prometheus.py"),
    ("SELECT model, AVG(latency_ms)", "the seed's requests view (docs/monitoring.md)", "tests/services (chdb)"),
]


@pytest.fixture(scope="module")
def seed() -> str:
    if not SEED.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{SEED} is missing: CI has a copy of shared/ beside the project")
        pytest.skip(f"{SEED} is not beside this project")
    return SEED.read_text()


def blocks(text: str) -> list[str]:
    return [match.group("body") for match in FENCE.finditer(text)]


def test_every_block_of_the_seed_is_listed_with_its_outcome(seed):
    found = [next(line.strip() for line in body.splitlines() if line.strip()) for body in blocks(seed)]
    assert len(found) == len(BLOCKS), found
    for first, (listed, outcome, shown) in zip(found, BLOCKS, strict=True):
        assert first.startswith(listed), (first, listed)
        assert outcome and shown


@pytest.mark.parametrize("route", ["/v1/chat/completions", "/v1/embeddings"])
def test_the_seeds_curl_calls_answer_with_the_documented_key(seed, route, keyed_edge, tmp_path):  # noqa: F811
    """The seed's curl, as written but for the key header the README documents, on the edge's plain listener
    (what prod publishes at http://localhost:3030): a 200; without the key, a JSON 401."""
    [block] = [body for body in blocks(seed) if body.startswith(f"curl -X POST http://localhost:3030{route}")]
    keyed = block.replace("\\\n", '-H "Authorization: Bearer $TENSORZERO_API_KEY" \\\n', 1)
    assert curl_statuses(keyed, keyed_edge.url, API_KEY, tmp_path) == [200]
    assert curl_statuses(block, keyed_edge.url, API_KEY, tmp_path) == [401]
