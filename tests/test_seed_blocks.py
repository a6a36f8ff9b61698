"""Every code block of the seed (../shared/seed/tensorzero-in-pmoves.md), run literally against prod as rendered.

BLOCKS lists each block in the seed's order with its outcome on prod and how it is run; the tests iterate over
that list, each runner running the block's own text (read from the seed, never retyped here) and checking the
outcome its row claims. The only substitutions are the ones a row names: the documented key header
(`Authorization: Bearer $TENSORZERO_API_KEY`), prod's ClickHouse credential for the seed's default one, and
host:port where a block's address is not free on this machine (REWRITES). The inventory fails when the seed
gains, loses or changes a block, so no block goes unlisted.

Run here: env blocks as an env layer of prod (validate), curl and Python blocks against prod's rendered edge
under real nginx + Lua in front of TensorZero's real routes (tests/edge_rig.py: prod_edge), SQL in chdb on TensorZero's
tables and the package's schema SQL, config blocks through the catalog and TensorZero's own loader, the
Prometheus job through promtool. Run on the live Docker engine (tests/live/test_seed_blocks_live.py): the
`docker exec -it tensorzero-clickhouse ...` blocks, the compose commands' `make` equivalents, the blocks calling
`localhost:8123` and the Prometheus job and query in real Prometheus servers. Under CI the seed must be present
(a copy of shared/ beside the project); elsewhere its absence skips.
"""

import json
import os
import random
import re
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import tomli
import yaml
from chdb_run import insert, run, tensorzero_tables, uuid7
from conftest import CANARIES, MINIMAL_ENV, make_project, minimal_config, tensorzero_gateway, write_canary_env
from edge_rig import prod_edge, rig, ui_stand_in  # noqa: F401 (fixtures the curl blocks run against)
from promtool import run as promtool
from test_readme import curl_statuses

from components.core.errors import ConfigError
from components.core.monitoring import EDGE_DURATION
from components.core.names import PROJECT_DIR
from components.services import clickhouse, clickhouse_schema, edge, gateway
from components.services.clickhouse import SERVICE as CLICKHOUSE
from components.services.edge import SERVICE as EDGE
from components.stack.loader import load
from components.stack.seed import SEED_VARIABLES

KEY = CANARIES["TENSORZERO_API_KEY"]  # prod's `pmoves` caller's key, from the canary env layer
SEED = PROJECT_DIR.parent / "shared" / "seed" / "tensorzero-in-pmoves.md"
FENCE = re.compile(r"^(?P<indent> *)```(?P<info>\w*)\n(?P<body>.*?)^(?P=indent)```", re.M | re.S)

# How each block runs: the runner's name, a test here or in tests/live/test_seed_blocks_live.py.
ENV, CURL, PYTHON, SQL, CATALOG, GATEWAY_TABLE, PROMETHEUS = (
    "env",
    "curl",
    "python",
    "sql",
    "catalog",
    "gateway",
    "prom",
)
LIVE_EXEC, LIVE_COMPOSE, LIVE_CURL, LIVE_PROMETHEUS = "live-exec", "live-compose", "live-curl", "live-prometheus"
NOT_RUN = "not run"
LIVE = {LIVE_EXEC, LIVE_COMPOSE, LIVE_CURL, LIVE_PROMETHEUS}

VERBATIM = "works verbatim on prod"
KEYED = "works with only the documented key added (Authorization: Bearer $TENSORZERO_KEY)"
SEED_CREDENTIAL = (
    "the seed's default credential tensorzero/tensorzero is refused on prod (validate; the server); "
    "with prod's user and password instead it works"
)
WARNED = "validate names each variable nothing reads and where the stack takes its value from"
TRANSLATED = "seed config format: the catalog translates it and TensorZero's own loader reads the result"
GATEWAY_TABLE_OUTCOME = (
    "a [gateway] table in a catalog file is refused with where to set it; prod's gateway has observability on "
    "and TensorZero's loader reads its rendered config"
)
COMPOSE = "a docker compose command: its `make` equivalent (README) runs on a live labelled container"
DROP_IT = "`-it` made `-i`: stdin kept, no TTY in tests"
# host:port the seed calls, where each is answered here when not free on this machine: the row's rewrite.
REWRITES = {
    "http://localhost:3030": "the rig edge's plain API listener (prod: 127.0.0.1:3030 -> edge:3000)",
    "http://tensorzero-gateway:3000": "the same listener (prod: alias tensorzero-gateway on PMOVES's networks)",
    "http://localhost:4000": "the rig edge's UI listener (prod: 127.0.0.1:4000 -> edge:4000)",
    "http://localhost:8123": "the live tensorzero-clickhouse's published port on 127.0.0.1 (8123 when free)",
}


@dataclass(frozen=True)
class Block:
    first: str  # how the block's first non-blank line starts
    outcome: str  # what prod does with it
    runner: str  # which test runs it (NOT_RUN: `shown` says why)
    shown: str = ""  # substitutions made, the equivalent run, or why not run

    @property
    def live(self) -> bool:
        return self.runner in LIVE


BLOCKS = [
    Block("┌──", "a diagram", NOT_RUN, "nothing to run"),
    Block("TENSORZERO_BASE_URL=http://localhost:3030", VERBATIM + "; " + WARNED, ENV, "the URL: curl blocks below"),
    Block("TENSORZERO_CLICKHOUSE_USER=tensorzero", WARNED + "; " + SEED_CREDENTIAL, ENV),
    Block("curl http://localhost:8123/ping", VERBATIM, LIVE_CURL, "8123 published on 127.0.0.1 as prod does"),
    Block("# Environment variables in docker-compose.yml", VERBATIM + "; " + WARNED, ENV,
          "TENSORZERO_API_KEY= is a caller's: the key in .env.local (later layer) is the documented key"),
    Block("[gateway]", GATEWAY_TABLE_OUTCOME + "; its [models.*] tables: " + TRANSLATED, GATEWAY_TABLE,
          "FACTS.md: TensorZero refuses `url = env::...` under gateway.observability.clickhouse"),
    Block("TENSORZERO_OBS_CLICKHOUSE_URL=", WARNED, ENV),
    Block("TENSORZERO_BASE_URL=http://tensorzero-gateway:3000", VERBATIM + "; " + WARNED, ENV),
    Block("OPENAI_API_KEY=sk-...", "read: the providers' keys", ENV),
    Block("cd pmoves && make up-tensorzero", "PMOVES's own Makefile: `make up STACK=prod` here", NOT_RUN,
          "needs the Pulumi CLI and PMOVES's main host; the plan it applies is tested in tests/stack"),
    Block("# ClickHouse", VERBATIM + " (4000 is the UI behind the edge's login: a 401 without it)", LIVE_CURL),
    Block("[gateway]", GATEWAY_TABLE_OUTCOME, GATEWAY_TABLE),
    Block("cd pmoves && docker compose restart tensorzero-gateway", COMPOSE, LIVE_COMPOSE,
          "make restart STACK=prod SERVICE=gateway"),
    Block("import os", VERBATIM + " (it sends the documented key)", PYTHON, "TENSORZERO_BASE_URL, TENSORZERO_API_KEY"),
    Block("curl -X POST http://localhost:3030/v1/chat/completions", KEYED, CURL),
    Block("curl -X POST http://localhost:3030/v1/embeddings", KEYED, CURL),
    Block("# Connect to ClickHouse", SEED_CREDENTIAL, LIVE_EXEC, DROP_IT + "; the sample queries typed in, one each"),
    Block("# In prometheus.yml", VERBATIM, PROMETHEUS, "promtool here; a real Prometheus on the live stack's network"),
    Block("[models.my_new_model]", TRANSLATED, CATALOG),
    Block("[providers.openai]", TRANSLATED, CATALOG),
    Block("[providers.anthropic]", TRANSLATED, CATALOG),
    Block("[providers.ollama]", TRANSLATED + " (base_url names the stack's own Ollama)", CATALOG),
    Block("[providers.venice]", TRANSLATED + " (the seed's Venice URL corrected, with a notice)", CATALOG),
    Block("# Use TensorZero for embeddings", VERBATIM + " (callers' variables: not the stack's)", ENV,
          "the embedding model name through the edge: the curl runner"),
    Block("# Via ClickHouse", SEED_CREDENTIAL, LIVE_EXEC, DROP_IT),
    Block("# Export to JSON", SEED_CREDENTIAL, LIVE_EXEC, DROP_IT),
    Block("# Create backup", SEED_CREDENTIAL + "; its BACKUP: `make backup` (backupctl) is the equivalent", LIVE_EXEC,
          "prod keeps PMOVES's rows in `default`: no database tensorzero (chdb, which lacks the .zip writer); "
          "Debian's 18.16 predates BACKUP"),
    Block("docker compose logs tensorzero-clickhouse", COMPOSE + "; its curl verbatim", LIVE_COMPOSE,
          "make logs STACK=prod SERVICE=tensorzero-clickhouse"),
    Block("docker compose logs tensorzero-gateway", COMPOSE, LIVE_COMPOSE,
          'make logs STACK=prod SERVICE=gateway | grep "error\\|unknown field"'),
    Block("[gateway]", GATEWAY_TABLE_OUTCOME, GATEWAY_TABLE),
    Block("docker compose exec tensorzero-gateway env", COMPOSE, LIVE_COMPOSE,
          "make exec STACK=prod SERVICE=gateway CMD=env | grep TENSORZERO"),
    Block("docker exec -it tensorzero-clickhouse clickhouse-client", SEED_CREDENTIAL, LIVE_EXEC, DROP_IT),
    Block("histogram_quantile(", VERBATIM + " (the edge's metric, on the stack's Prometheus)", LIVE_PROMETHEUS),
    Block("SELECT model, AVG(latency_ms)", VERBATIM + " (the requests view the stack creates)", SQL),
]  # fmt: skip


@pytest.fixture(scope="module")
def seed() -> str:
    if not SEED.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{SEED} is missing: CI has a copy of shared/ beside the project")
        pytest.skip(f"{SEED} is not beside this project")
    return SEED.read_text()


def blocks(text: str) -> list[str]:
    return [match.group("body") for match in FENCE.finditer(text)]


def first_line(body: str) -> str:
    return next(line.strip() for line in body.splitlines() if line.strip())


def rows(runner: str) -> list[int]:
    """The indexes of the blocks a runner runs: its tests' parameters."""
    return [index for index, block in enumerate(BLOCKS) if block.runner == runner]


def body(seed: str, index: int) -> str:
    """The block's text, its list indentation removed (as a reader copies it)."""
    return textwrap.dedent(blocks(seed)[index])


def test_every_block_of_the_seed_is_listed_with_its_outcome(seed):
    found = [first_line(body) for body in blocks(seed)]
    assert len(found) == len(BLOCKS), found
    for first, block in zip(found, BLOCKS, strict=True):
        assert first.startswith(block.first), (first, block.first)
        assert block.outcome and (block.runner != NOT_RUN or block.shown)


def test_every_runner_has_its_test():
    """A row's runner names a test that iterates over it: here, or in the live module."""
    here = Path(__file__).read_text()
    live = (Path(__file__).parent / "live" / "test_seed_blocks_live.py").read_text()
    for runner in {block.runner for block in BLOCKS} - {NOT_RUN}:
        constant = next(name for name, value in globals().items() if value == runner and name.isupper())
        text = live if runner in LIVE else here
        assert f"rows({constant})" in text, runner


def test_the_seeds_addresses_are_where_prod_publishes_them(deployments):
    """What the REWRITES stand for: prod publishes the edge's plain API and UI listeners and ClickHouse's HTTP port
    on 127.0.0.1 at the seed's port numbers, and the edge answers `tensorzero-gateway:3000` on PMOVES's networks."""
    spec = deployments["prod"].spec
    loopback = {(p.external, p.internal) for p in spec.placement(EDGE).ports if p.ip == "127.0.0.1"}
    assert loopback == {(3030, edge.PORT), (4000, edge.UI_PORT)}
    [published] = spec.placement(CLICKHOUSE).ports
    assert (published.ip, published.external) == ("127.0.0.1", 8123)
    assert EDGE.alias == "tensorzero-gateway" and edge.PORT == 3000
    assert {"pmoves_api", "pmoves_monitoring"} <= set(deployments["prod"].plans[EDGE.role].networks)


# --- env blocks: an env layer of prod, as the seed's compose read them ------------------------------------


def prod_with_layer(tmp_path: Path, text: str, layer: str = "env.shared"):
    """prod with its template layers and canary `.env.local`, `text` appended to `layer`."""
    directory = write_canary_env("prod", tmp_path / "env")
    with (directory / layer).open("a") as file:
        file.write("\n" + text)
    return load("prod", env_dir=str(directory))


def told(deployment) -> set[str]:
    return {name for notice in deployment.notices for name in SEED_VARIABLES if f": {name} is set, but" in notice}


def assignments(text: str) -> dict[str, str]:
    found = {}
    for line in text.splitlines():
        name, equals, value = line.partition("=")
        if equals and not name.lstrip().startswith("#"):
            found[name.strip()] = value.split("#")[0].strip()
    return found


@pytest.mark.parametrize("index", rows(ENV))
def test_env_blocks_in_an_env_layer(seed, index, tmp_path):
    """In env.shared (the seed's gateway reads env.shared, then .env.local, which holds the real secrets), each
    block validates; each variable the stack does not read is told with where the stack takes it from."""
    text = body(seed, index)
    deployment = prod_with_layer(tmp_path, text)
    variables = assignments(text)
    read = {name for name in variables if name in CANARIES or name.endswith("_API_KEY")}
    assert told(deployment) == {name for name in variables if name in SEED_VARIABLES} - read
    for name in read & set(CANARIES):
        # A later layer wins: the block's empty or default value does not replace the real secret.
        assert deployment.variable(name).value == CANARIES[name], name
    for name, value in variables.items():
        if name.endswith("_API_KEY") and name not in CANARIES:
            assert deployment.variable(name).value == value  # the seed's placeholder key, read as given


def test_the_seeds_default_clickhouse_password_is_refused_on_prod(seed, tmp_path):
    """The block as the last layer (its password in force): refused, naming the layer, line and variable."""
    [index] = [i for i in rows(ENV) if BLOCKS[i].first.startswith("TENSORZERO_CLICKHOUSE_USER")]
    with pytest.raises(ConfigError) as refused:
        prod_with_layer(tmp_path, body(seed, index), layer=".env.local")
    [problem] = refused.value.problems
    line = (tmp_path / "env" / ".env.local").read_text().splitlines().index("TENSORZERO_CLICKHOUSE_PASSWORD=tensorzero")
    assert problem.file.endswith(f".env.local:{line + 1}")
    assert "TENSORZERO_CLICKHOUSE_PASSWORD: the default password 'tensorzero' is refused in prod" in str(problem)


# --- curl and Python blocks: the rendered prod-shaped edge under real nginx, TensorZero's real routes ------


def with_key(block: str) -> str:
    """The documented key header added after the first line of a curl call."""
    return block.replace("\\\n", '-H "Authorization: Bearer $TENSORZERO_API_KEY" \\\n', 1)


@pytest.mark.parametrize("index", rows(CURL))
def test_curl_blocks_answer_with_the_documented_key(seed, index, prod_edge, tmp_path):  # noqa: F811
    """As written: a JSON 401 (the seed's callers send their key; the block does not). With the key: 200."""
    block = body(seed, index)
    assert curl_statuses(with_key(block), prod_edge.url, KEY, tmp_path) == [200]
    assert curl_statuses(block, prod_edge.url, KEY, tmp_path) == [401]


def test_the_callers_embedding_model_variable_names_a_model_the_edge_serves(seed, prod_edge):  # noqa: F811
    """TENSORZERO_EMBED_MODEL of the Hi-RAG and `Use TensorZero for embeddings` blocks, as the model of a call."""
    for index in rows(ENV):
        model = assignments(body(seed, index)).get("TENSORZERO_EMBED_MODEL")
        if model is None:
            continue
        answer = requests.post(
            prod_edge.url + "/v1/embeddings",
            headers={"Authorization": f"Bearer {KEY}"},
            json={"model": model, "input": "Text to embed"},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["data"][0]["embedding"]


@pytest.mark.parametrize("index", rows(PYTHON))
def test_the_python_snippet_as_written(seed, index, prod_edge, tmp_path):  # noqa: F811
    """The snippet, executed as written (it imports the real `requests`), with the variables it reads set as a
    PMOVES service has them: the edge's URL and the caller's key."""
    script = tmp_path / "snippet.py"
    script.write_text(body(seed, index) + "\nprint(response.status_code, response.headers['content-type'])\n")
    env = {**os.environ, "TENSORZERO_BASE_URL": prod_edge.url, "TENSORZERO_API_KEY": KEY}
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout.split()) == (0, ["200", "application/json"]), done.stderr
    # Without the key (the variable empty, as the seed's env blocks leave it): the edge's JSON 401.
    env["TENSORZERO_API_KEY"] = ""
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout.split()) == (0, ["401", "application/json"]), done.stderr


# --- SQL: chdb on TensorZero's tables, prod's schema SQL (its requests view), in prod's database ------------


def seed_sql(text: str) -> list[str]:
    """The statements a block gives ClickHouse: each `--query "..."`, or the lines typed into the client."""
    queries = re.findall(r'--query "([^"]*)"', text)
    if queries or "clickhouse-client" not in text:
        return queries or [text]
    return [line.strip() for line in text.splitlines() if re.match(r"\s*(SELECT|SHOW)\b", line)]


SQL_BLOCKS = sorted([*rows(SQL), *rows(LIVE_EXEC)])  # the live docker exec blocks' SQL runs here too


def backup_variants(sql: str, database: str) -> list[str]:
    """The seed's BACKUP with chdb's missing .zip writer taken out of the way (a directory backup), then also in
    prod's database: what shows why the statement fails on prod, and that the disk it names is there."""
    unzipped = sql.replace(".zip'", "'")
    return [unzipped, unzipped.replace("DATABASE tensorzero", f"DATABASE {database}")]


@pytest.fixture(scope="module")
def chdb_answers(seed, deployments, tmp_path_factory) -> dict[str, dict]:
    """Every SQL statement of the seed's blocks, run in chdb after prod's schema SQL, over a few rows of the
    last hour; by statement."""
    deployment = deployments["prod"]
    database = deployment.spec.clickhouse.database
    root = tmp_path_factory.mktemp("seed-sql")
    rng, now = random.Random(19), int(time.time()) * 1000
    model_rows = [
        {"id": uuid7(now - ago, rng), "inference_id": uuid7(now - ago, rng), "raw_request": "{}", "raw_response": "{}",
         "model_name": key, "model_provider_name": provider, "input_tokens": 10, "output_tokens": 5,
         "response_time_ms": latency, "input_messages": "[]", "output": "[]"}
        for ago, key, provider, latency in [(60_000, "claude_sonnet", "anthropic", 900),
                                            (120_000, "claude_sonnet", "anthropic", 1100),
                                            (180_000, "gpt_4o", "openai", 300)]
    ]  # fmt: skip
    statements = [statement for index in SQL_BLOCKS for statement in seed_sql(body(seed, index))]
    statements += [
        variant for sql in statements if sql.startswith("BACKUP") for variant in backup_variants(sql, database)
    ]
    setup = [*tensorzero_tables(database), insert(f"{database}.ModelInference", *model_rows)]
    setup += [clickhouse_schema.schema_sql(deployment), f"USE {database}"]
    # The server's config as far as these statements need it: prod's rendered backups disk, at a path here.
    (root / "config.d").mkdir()
    (root / "config.xml").write_text("<clickhouse></clickhouse>")
    [backups] = [f for f in clickhouse.config_files(deployment) if f.path.endswith("config.d/backups.xml")]
    (root / "config.d" / "backups.xml").write_text(backups.content.replace(clickhouse.BACKUPS_PATH, f"{root}/backups/"))
    connect = f"file:{root / 'data'}?config-file={root / 'config.xml'}"
    result = run({"connect": connect, "steps": setup + statements, "result": str(root / "r.json")})
    assert result["connect_error"] is None
    for step, sql in zip(result["steps"], setup, strict=False):
        assert "error" not in step, (sql, step)
    return dict(zip(statements, result["steps"][len(setup) :], strict=True))


@pytest.mark.parametrize("index", SQL_BLOCKS)
def test_the_seeds_sql_in_clickhouses_engine(seed, index, chdb_answers, deployments):
    """Each statement as the seed writes it, on prod's database (where the server's default_database lands it).
    The requests view answers every query; the BACKUP names a database prod does not have."""
    database = deployments["prod"].spec.clickhouse.database
    for sql in seed_sql(body(seed, index)):
        answer = chdb_answers[sql]
        if sql.startswith("BACKUP"):
            assert "minizip library is disabled" in answer["error"]  # chdb's build, not the server image's
            unzipped, in_prod = (chdb_answers[variant] for variant in backup_variants(sql, database))
            assert "Database tensorzero does not exist" in unzipped["error"], unzipped
            assert in_prod["rows"][0][1] == "BACKUP_CREATED", in_prod
            continue
        assert "error" not in answer, (sql, answer)
        if "FORMAT JSONEachRow" in sql:
            exported = [json.loads(line) for line in answer["text"].splitlines()]
            assert len(exported) == 3 and {"model", "latency_ms", "request_tokens"} <= set(exported[0])
        elif "FROM requests" in sql:
            assert answer["rows"], sql
        if sql.startswith("SHOW TABLES"):
            assert {"requests", "ModelInference", "ChatInference", "JsonInference"} <= {r[0] for r in answer["rows"]}
        if "AVG(latency_ms)" in sql and "GROUP BY" in sql:
            assert answer["rows"][0][0] == "claude-sonnet-4-5" and answer["rows"][0][1] == 1000


# --- config blocks: the catalog's translation, then TensorZero's own loader -------------------------------

GATEWAY_TABLES = re.compile(r"^\[gateway[^\]]*\]\n(?:[^\[].*\n|\n)*", re.M)


def translated(tmp_path: Path, catalog: str, monkeypatch) -> object:
    """A project whose catalog is `catalog` plus the minimal embedding model, loaded; TensorZero reads its gateway
    config (the providers' key variables set)."""
    base = '[models.gemma_embed_local]\nprovider = "ollama"\nmodel = "gemma:2b"\ntype = "embedding"\n'
    if "[models.gemma_embed_local]" in catalog:
        base = ""
    keys = "".join(
        f"{name}=canary-{name.lower()}\n" for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "VENICE_API_KEY")
    )
    project = make_project(
        tmp_path, minimal_config(), {"catalog.toml": base + catalog, "env/env.shared": MINIMAL_ENV + keys}
    )
    deployment = load("test", project_dir=project)
    variables = {v.name: v.value for v in deployment.plans[gateway.SERVICE.role].env}
    tensorzero_gateway(gateway.config_file(deployment).content, tmp_path, monkeypatch, variables)
    return deployment


@pytest.mark.parametrize("index", rows(CATALOG))
def test_config_blocks_translate_and_load_in_tensorzero(seed, index, tmp_path, monkeypatch):
    text = body(seed, index)
    deployment = translated(tmp_path, text, monkeypatch)
    config = tomli.loads(gateway.config_file(deployment).content)
    for table, entries in tomli.loads(text).items():
        for name in entries:
            if table == "models":
                assert name in config["models"], name
            else:  # a provider block: the provider's settings reach the models that use it, if any
                assert name in {"openai", "anthropic", "ollama", "venice"}


@pytest.mark.parametrize("index", rows(GATEWAY_TABLE))
def test_gateway_tables_are_refused_in_the_catalog_and_on_in_the_stack(seed, index, tmp_path, monkeypatch, deployments):
    text = body(seed, index)
    project = make_project(tmp_path / "p", minimal_config(), {"catalog.toml": text, "env/env.shared": MINIMAL_ENV})
    with pytest.raises(ConfigError) as refused:
        load("test", project_dir=project)
    assert any(
        p.key == "gateway" and "generated from the stack spec; set it there" in p.message
        for p in refused.value.problems
    )
    rest = GATEWAY_TABLES.sub("", text)
    if rest.strip().strip("#. \n"):
        translated(tmp_path / "rest", rest, monkeypatch)
    prod = gateway.config_file(deployments["prod"]).content
    assert tomli.loads(prod)["gateway"]["observability"]["enabled"] is True
    variables = {v.name: v.value for v in deployments["prod"].plans[gateway.SERVICE.role].env}
    tensorzero_gateway(prod, tmp_path, monkeypatch, variables)  # parses, then stops only at ClickHouse


# --- the Prometheus job: promtool on a prometheus.yml built from the block ----------------------------------


@pytest.mark.parametrize("index", rows(PROMETHEUS))
def test_the_prometheus_job_is_a_valid_config(seed, index, tmp_path):
    """The block is a prometheus.yml as written; the real Prometheus scrapes it on the live stack's network."""
    document = yaml.safe_load(body(seed, index))
    [job] = document["scrape_configs"]
    assert job["static_configs"][0]["targets"] == [f"{EDGE.alias}:{edge.PORT}"]
    (tmp_path / "prometheus.yml").write_text(body(seed, index))
    checked = promtool("promtool", "check", "config", str(tmp_path / "prometheus.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.parametrize("index", rows(LIVE_PROMETHEUS))
def test_the_latency_query_is_valid_promql_on_the_edges_metric(seed, index, tmp_path):
    """The query as a recording rule through promtool (it runs on the live stack's Prometheus in the live module);
    the histogram it reads is the one the edge exports."""
    [query] = [line for line in body(seed, index).splitlines() if line.strip()]
    assert f"{EDGE_DURATION}_bucket" in query
    rule = {"groups": [{"name": "seed", "rules": [{"record": "seed:latency:p95", "expr": query}]}]}
    (tmp_path / "seed.rules.yml").write_text(yaml.safe_dump(rule))
    checked = promtool("promtool", "check", "rules", str(tmp_path / "seed.rules.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr
