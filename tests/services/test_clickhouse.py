"""ClickHouse: config.d and users.d, volumes, health, the URL the gateway is given, and the schema.

What runs here for real:
- chdb's ClickHouse engine (tests/chdb_run.py, one process per scenario) loads the rendered config.d and
  users.d files, runs the rendered schema SQL against tables shaped like TensorZero's holding real
  rows, and answers the seed's queries verbatim; it writes and restores a backup on the `backups` disk.
- Debian's clickhouse-server 18.16 (an old but real server) starts with the rendered config.d/pmoves.xml
  and shows where unqualified queries land; its clickhouse-client runs the schema container's script.
What chdb cannot show, and is said where it matters: it opens no ports (the Prometheus endpoint), it
always runs as the `default` user, and it ignores `access_control_improvements`.
"""

import dataclasses
import json
import random
import re
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ElementTree
from collections import Counter, defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Optional
from urllib.parse import unquote, urlsplit

import pytest
import yaml
from chdb_run import INFERENCE_TABLES, insert, run, tensorzero_tables, uuid7
from conftest import (
    CANARIES,
    STACKS,
    container_of,
    containers,
    free_ports,
    load_minimal,
    planned_env,
    resources,
    unavailable,
)

from components.backupctl.clickhouse import ClickHouse as BackupctlClient
from components.backupctl.clickhouse import ClickHouseError
from components.core.envfiles import Variable
from components.core.errors import ConfigError
from components.core.names import METRICS_PATH
from components.core.plans import Endpoint
from components.core.render import RenderedFile
from components.operate.plan import plan
from components.services import clickhouse, clickhouse_schema
from components.services.clickhouse import SERVICE as CLICKHOUSE
from components.services.clickhouse import ClickHouseSpec
from components.services.gateway import SERVICE as GATEWAY
from components.services.grafana import SERVICE as GRAFANA
from components.stack.loader import Deployment

SEED_COUNT = "SELECT COUNT(*) FROM requests;"
SEED_BY_MODEL = "SELECT model, COUNT(*) as count FROM requests GROUP BY model;"
SEED_AVERAGE = "SELECT AVG(latency_ms) FROM requests WHERE model = 'claude-sonnet-4-5';"
SEED_LATEST = (
    "SELECT timestamp, model, request_tokens, response_tokens, latency_ms FROM requests "
    "ORDER BY timestamp DESC LIMIT 10;"
)
SEED_SLOW = (
    "SELECT model, AVG(latency_ms), MAX(latency_ms) FROM requests WHERE timestamp > now() - INTERVAL 1 HOUR "
    "GROUP BY model ORDER BY AVG(latency_ms) DESC;"
)
DAY = 86400
ODD_NAME = "it's a \\ `model`"  # quotes, a backslash and backticks, as a catalog key or model name could hold
# With the server's display_secrets_in_show_and_select (set for the test only): which password was loaded.
SHOW_SECRETS = "SETTINGS format_display_secrets_in_show_and_select = 1"


def by_name(files: list[RenderedFile]) -> dict[str, RenderedFile]:
    return {f.path.removeprefix("clickhouse/"): f for f in files}


def with_clickhouse(deployment: Deployment, **changes) -> Deployment:
    spec = deployment.spec.model_copy(update={"clickhouse": deployment.spec.clickhouse.model_copy(update=changes)})
    return dataclasses.replace(deployment, spec=spec)


def with_gateway(deployment: Deployment, **changes) -> Deployment:
    spec = deployment.spec.model_copy(update={"gateway": deployment.spec.gateway.model_copy(update=changes)})
    return dataclasses.replace(deployment, spec=spec)


def edit(text: str, pattern: str, replacement: str) -> str:
    """A test-side edit of a rendered file that must find what it edits."""
    edited, count = re.subn(pattern, replacement, text, flags=re.DOTALL)
    assert count == 1, f"{pattern!r} not found exactly once"
    return edited


# --- rendered files: what each stack gets ------------------------------------------------------------


def test_files_follow_the_spec(deployments, stack):
    deployment = deployments[stack]
    spec = deployment.spec.clickhouse
    files = by_name(clickhouse.config_files(deployment))
    expected = {"config.d/pmoves.xml"}
    expected |= {"config.d/prometheus.xml"} if spec.metrics else set()
    expected |= {"config.d/backups.xml"} if spec.backups else set()
    expected |= {"config.d/backups-offsite.xml"} if clickhouse.offsite_backups(deployment.spec) else set()
    if deployment.spec.deployed(GRAFANA):
        expected |= {"users.d/readonly.xml", "config.d/readonly-constraints.xml"}
    assert set(files) == expected
    for name, file in files.items():
        directory = clickhouse.CONFIG_DIR if name.startswith("config.d/") else clickhouse.USERS_DIR
        assert file.mount == f"{directory}/{name.split('/', 1)[1]}"
        assert file.kind == (
            clickhouse.SERVER_CONFIG if directory == clickhouse.CONFIG_DIR else clickhouse.USERS_CONFIG
        )
        assert ElementTree.fromstring(file.content).tag == "clickhouse"
    bare = with_clickhouse(deployment, metrics=False, backups=False)
    assert "config.d/prometheus.xml" not in by_name(clickhouse.config_files(bare))
    assert "config.d/backups.xml" not in by_name(clickhouse.config_files(bare))


def test_the_server_lands_unqualified_queries_in_the_tensorzero_database(deployments, stack):
    spec = deployments[stack].spec.clickhouse
    root = ElementTree.fromstring(by_name(clickhouse.config_files(deployments[stack]))["config.d/pmoves.xml"].content)
    assert root.findtext("default_database") == spec.database
    assert root.findtext("logger/level") == spec.log_level and root.findtext("logger/console") == "1"


def test_prometheus_section_serves_the_agreed_port_and_path(deployments, stack):
    files = by_name(clickhouse.config_files(deployments[stack]))
    prometheus = ElementTree.fromstring(files["config.d/prometheus.xml"].content).find("prometheus")
    assert prometheus.findtext("port") == str(clickhouse.METRICS_PORT)
    assert prometheus.findtext("endpoint") == METRICS_PATH
    assert {child.tag: child.text for child in prometheus if child.tag not in ("port", "endpoint")} == {
        "metrics": "true",
        "events": "true",
        "asynchronous_metrics": "true",
    }


def test_readonly_user_reads_its_password_from_the_environment(deployments, stack):
    deployment = deployments[stack]
    spec = deployment.spec.clickhouse
    readonly = by_name(clickhouse.config_files(deployment)).get("users.d/readonly.xml")
    env = {v.name: v for v in planned_env(deployment, "clickhouse")}
    if readonly is None:
        assert not deployment.spec.deployed(GRAFANA) and spec.readonly_password_var not in env
        return
    root = ElementTree.fromstring(readonly.content)
    user = root.find(f"users/{spec.readonly_user}")
    password = user.find("password")
    assert password.attrib == {"from_env": spec.readonly_password_var, "hide_in_preprocessed": "true"}
    assert not (password.text or "").strip()
    # The variable the file names reaches the container, as a secret: without it the password is empty.
    assert env[spec.readonly_password_var].secret
    assert env[spec.readonly_password_var].value == deployment.variable(spec.readonly_password_var).value
    profile = root.find(f"profiles/{user.findtext('profile')}")
    assert profile.findtext("readonly") == "1"
    assert [c.tag for c in profile.find("constraints")] == list(clickhouse.READONLY_CHANGEABLE)
    assert [q.text for q in user.findall("grants/query")] == [f"GRANT SELECT ON {spec.database}.*"]
    constraints = ElementTree.fromstring(
        by_name(clickhouse.config_files(deployment))["config.d/readonly-constraints.xml"].content
    )
    assert constraints.findtext("access_control_improvements/settings_constraints_replace_previous") == "true"


def test_no_rendered_file_holds_a_secret(deployments, stack):
    deployment = deployments[stack]
    for file in clickhouse.config_files(deployment) + clickhouse_schema.schema_files(deployment):
        for name, canary in CANARIES.items():
            assert canary not in file.content, f"{file.path} holds {name}"
    assert not any(canary in clickhouse_schema.apply_script() for canary in CANARIES.values())


# --- the schema SQL ----------------------------------------------------------------------------------


def test_model_is_the_upstream_name_of_the_provider_that_answered(deployments):
    upstream = {
        (u.model_key, u.provider): u.model for u in clickhouse_schema.upstream_models(deployments["prod"].translation)
    }
    # prod's catalog: claude_sonnet falls back to gpt_4o, then venice_llama (catalog/models.toml, prod.toml)
    assert upstream[("claude_sonnet", "anthropic")] == "claude-sonnet-4-5"
    assert upstream[("claude_sonnet", "openai")] == "gpt-4o"
    assert upstream[("claude_sonnet", "venice")] == "llama-3.3-70b"
    assert upstream[("gpt_4o", "openai")] == "gpt-4o"
    assert upstream[("gemma_embed_local", "ollama")] == "gemma:2b"


def test_schema_sql_follows_the_spec(deployments):
    deployment = deployments["prod"]
    spec = deployment.spec.clickhouse
    assert spec.retention_days == 365 and spec.requests_view
    sql = clickhouse_schema.schema_sql(deployment)
    assert f"CREATE OR REPLACE VIEW `{spec.database}`.`requests` AS" in sql
    assert sql.count("MODIFY TTL timestamp + INTERVAL 365 DAY;") == len(clickhouse_schema.RETENTION_TABLES)
    plain = clickhouse_schema.schema_sql(with_clickhouse(deployment, retention_days=None, requests_view=False))
    assert "TTL" not in plain and "CREATE" not in plain
    assert f"DROP VIEW IF EXISTS `{spec.database}`.`requests`;" in plain


def test_no_schema_without_the_tables_the_gateway_creates(deployments):
    assert clickhouse_schema.schema_files(with_gateway(deployments["dev"], observability=False)) == []
    [file] = clickhouse_schema.schema_files(deployments["dev"])
    assert (file.kind, file.mount) == ("clickhouse-schema-sql", clickhouse_schema.SQL_PATH)


# --- chdb: the SQL, the seed's queries, retention, backups and the read-only user --------------------


@dataclasses.dataclass(frozen=True)
class Call:
    """One ModelInference row: when, which routing entry answered, and what the view must call it."""

    ago_s: int
    model_key: str
    provider: str
    model: str  # what `requests.model` must say, written here by hand
    input_tokens: Optional[int]
    output_tokens: Optional[int]
    latency_ms: Optional[int]
    ttft_ms: Optional[int] = None
    cached: bool = False
    cost: Optional[str] = None


CALLS = [
    Call(300, "claude_sonnet", "anthropic", "claude-sonnet-4-5", 120, 40, 1200, 310, cost="0.002100000"),
    Call(900, "claude_sonnet", "anthropic", "claude-sonnet-4-5", 80, 20, 800, None, cost="0.000900000"),
    Call(1500, "claude_sonnet", "openai", "gpt-4o", 80, 30, 500),  # the fallback answered
    Call(2400, "gpt_4o", "openai", "gpt-4o", 50, 10, 350, 90),
    Call(3000, "venice_llama", "venice", "llama-3.3-70b", 60, 25, 950),
    Call(5400, "claude_sonnet", "anthropic", "claude-sonnet-4-5", 100, 50, 2000),
    Call(7200, "claude_sonnet", "venice", "llama-3.3-70b", 90, 45, 1700),  # the second fallback
    Call(10800, "gpt_4o", "openai", "gpt-4o", None, None, None, cached=True),  # no usage reported
    Call(DAY, "legacy_model", "legacy", "legacy_model", 10, 5, 100),  # not in this catalog
    Call(2 * DAY, "gemma_embed_local", "ollama", "gemma:2b", 12, None, 40),
    Call(3 * DAY, "claude_sonnet", "anthropic", "claude-sonnet-4-5", 70, 35, 1000),
    Call(10 * DAY, "gpt_4o", "openai", "gpt-4o", 40, 20, 400),
    Call(400 * DAY, "claude_sonnet", "anthropic", "claude-sonnet-4-5", 99, 99, 9999),  # past prod's 365 days
]
INFERENCE_AGES = {"ChatInference": (600, 400 * DAY), "JsonInference": (1200, 500 * DAY)}


def model_inference_rows(database: str, now: int, rng: random.Random) -> list[str]:
    statements = []
    for call in CALLS:
        statements.append(
            insert(
                f"{database}.ModelInference",
                {
                    "id": uuid7((now - call.ago_s) * 1000 + 250, rng),
                    "inference_id": uuid7((now - call.ago_s) * 1000, rng),
                    "raw_request": "{}",
                    "raw_response": "{}",
                    "model_name": call.model_key,
                    "model_provider_name": call.provider,
                    "input_tokens": call.input_tokens,
                    "output_tokens": call.output_tokens,
                    "response_time_ms": call.latency_ms,
                    "ttft_ms": call.ttft_ms,
                    "input_messages": "[]",
                    "output": "[]",
                    "cached": call.cached,
                    "cost": None if call.cost is None else Decimal(call.cost),
                },
            )
        )
    for table, ages in INFERENCE_AGES.items():
        for age in ages:
            statements.append(
                insert(
                    f"{database}.{table}",
                    {
                        "id": uuid7((now - age) * 1000, rng),
                        "function_name": "pmoves_summarize",
                        "variant_name": "claude",
                        "episode_id": uuid7((now - age) * 1000, rng),
                        "input": "{}",
                        "output": "{}",
                        INFERENCE_TABLES[table]: "{}",
                        "inference_params": "{}",
                    },
                )
            )
    return statements


BASE_USERS = """<clickhouse>
    <!-- Stand-in for the image's users.xml: chdb always runs as `default`. -->
    <profiles><default/></profiles>
    <users>
        <default><password></password><networks><ip>::/0</ip></networks><profile>default</profile>
            <quota>default</quota><access_management>1</access_management></default>
    </users>
    <quotas><default/></quotas>
</clickhouse>
"""
# What the image's entrypoint writes for CLICKHOUSE_USER (docker/server/entrypoint.sh), without its
# `<default remove="remove">`: chdb has no way to log in as anyone but `default`.
ENTRYPOINT_USER = """<clickhouse>
    <users>
        <{user}>
            <profile>default</profile>
            <networks><ip>::/0</ip></networks>
            <password>{password}</password>
            <quota>default</quota>
            <access_management>1</access_management>
        </{user}>
    </users>
</clickhouse>
"""


def chdb_layout(root: Path, deployment: Deployment, keep_constraints: bool, backups: Optional[Path] = None) -> Path:
    """A ClickHouse config tree for chdb: the rendered config.d and users.d files, with only the edits
    chdb needs (each named), the backups disk at `backups` (default root/backups); returns the main config file."""
    spec = deployment.spec.clickhouse
    for directory in ("config.d", "users.d"):
        (root / directory).mkdir(parents=True)
    (root / "users.xml").write_text(BASE_USERS)
    (root / "config.xml").write_text(
        f"<clickhouse><users_config>{root}/users.xml</users_config>"
        # So SHOW CREATE USER can show which password the server really loaded.
        "<display_secrets_in_show_and_select>1</display_secrets_in_show_and_select></clickhouse>"
    )
    password = deployment.variable(spec.password_var).value
    (root / "users.d" / "default-user.xml").write_text(ENTRYPOINT_USER.format(user=spec.user, password=password))
    for name, file in by_name(clickhouse.config_files(deployment)).items():
        text = file.content
        if name == "config.d/pmoves.xml":
            # chdb keeps a `default` database of its own and refuses another server default_database;
            # the real server's handling is shown with clickhouse-server below.
            text = edit(text, r"<default_database>[^<]*</default_database>", "")
        if name == "config.d/backups.xml":
            text = text.replace(clickhouse.BACKUPS_PATH, f"{backups or root / 'backups'}/")
        if name == "users.d/readonly.xml" and not keep_constraints:
            # chdb ignores access_control_improvements, so it refuses changeable_in_readonly; see
            # test_chdb_reads_the_readonly_constraint for the file as rendered.
            text = edit(text, r"<constraints>.*</constraints>", "")
        (root / name).write_text(text)
    return root / "config.xml"


@dataclasses.dataclass(frozen=True)
class Seeded:
    deployment: Deployment
    now: int
    root: Path
    steps: dict[str, dict]


@pytest.fixture(scope="module")
def seeded(deployments, tmp_path_factory) -> Seeded:
    """prod's files (Grafana, retention 365 days, backups, fallbacks) over TensorZero-shaped tables, in the
    package's own database (prod keeps logging to PMOVES's `default`, which a scenario cannot drop and restore)."""
    deployment = with_clickhouse(deployments["prod"], database=ClickHouseSpec().database)
    spec = deployment.spec.clickhouse
    root = tmp_path_factory.mktemp("chdb-seeded")
    config = chdb_layout(root / "server", deployment, keep_constraints=False)
    db = spec.database
    now = int(time.time())
    named = {
        "tables": ";\n".join(tensorzero_tables(db)),
        "rows": ";\n".join(model_inference_rows(db, now, random.Random(7))),
        "before": f"SELECT (SELECT count() FROM {db}.ModelInference), (SELECT count() FROM {db}.ChatInference), "
        f"(SELECT count() FROM {db}.JsonInference)",
    }
    steps = list(named.items())
    # Off switches first, on tables without a view yet: dropping nothing must succeed too.
    steps.append(
        (
            "schema-off",
            clickhouse_schema.schema_sql(with_clickhouse(deployment, retention_days=None, requests_view=False)),
        )
    )
    views = f"SELECT name FROM system.tables WHERE database = '{db}' AND engine = 'View' ORDER BY name"
    steps.append(("views-off", views))
    steps.append(
        ("literal", f"SELECT {clickhouse_schema.sql_string(ODD_NAME)} AS {clickhouse_schema.sql_identifier(ODD_NAME)}")
    )
    for stack in STACKS:  # every stack's SQL runs, twice; prod's last, so its view and TTLs stay
        sql = clickhouse_schema.schema_sql(deployment if stack == "prod" else deployments[stack])
        steps += [(f"schema-{stack}-1", sql), (f"schema-{stack}-2", sql)]
    optimize = ";\n".join(f"OPTIMIZE TABLE {db}.{t} FINAL" for t in clickhouse_schema.RETENTION_TABLES)
    steps += [
        ("optimize", optimize),
        ("after", named["before"]),
        ("views", views),
        ("ttl", f"SELECT name, engine_full FROM system.tables WHERE database = '{db}' ORDER BY name"),
        # The real server makes `db` the session's database (config.d default_database, shown below with
        # clickhouse-server); chdb needs it said.
        ("use", f"USE {db}"),
        ("count", SEED_COUNT),
        ("by-model", SEED_BY_MODEL),
        ("average", SEED_AVERAGE),
        ("latest", SEED_LATEST),
        ("slow", SEED_SLOW),
        ("columns", "SELECT provider, model_key, ttft_ms, cached, cost FROM requests ORDER BY timestamp DESC LIMIT 1"),
        ("disks", "SELECT name, path FROM system.disks ORDER BY name"),
        ("backup", f"BACKUP DATABASE {db} TO Disk('{clickhouse.BACKUPS_DISK}', 'tensorzero_backup')"),
        ("backup-zip", f"BACKUP DATABASE {db} TO Disk('{clickhouse.BACKUPS_DISK}', 'tensorzero_backup.zip')"),
        ("drop", f"DROP DATABASE {db} SYNC"),
        ("restore", f"RESTORE DATABASE {db} FROM Disk('{clickhouse.BACKUPS_DISK}', 'tensorzero_backup')"),
        ("restored", f"SELECT count() FROM {db}.requests"),
        ("outside", f"BACKUP DATABASE {db} TO File('/tmp/not-the-backups-volume')"),
        ("readonly-user", f"SHOW CREATE USER {spec.readonly_user} {SHOW_SECRETS}"),
        ("seed-user", f"SHOW CREATE USER {spec.user} {SHOW_SECRETS}"),
        ("grants", f"SELECT access_type, database, table FROM system.grants WHERE user_name = '{spec.readonly_user}'"),
        ("ro-read", f"SELECT count() FROM {db}.ModelInference SETTINGS profile = '{clickhouse.READONLY_PROFILE}'"),
        (
            "ro-write",
            f"INSERT INTO {db}.ChatInference SETTINGS profile = '{clickhouse.READONLY_PROFILE}' "
            f"SELECT * FROM {db}.ChatInference",
        ),
    ]
    result = run(
        {
            "connect": f"file:{root / 'data'}?config-file={config}",
            "steps": [sql for _, sql in steps],
            "result": str(root / "result.json"),
        },
        env={spec.readonly_password_var: deployment.variable(spec.readonly_password_var).value},
    )
    assert result["connect_error"] is None, result["connect_error"]
    return Seeded(deployment, now, root, dict(zip([name for name, _ in steps], result["steps"], strict=True)))


def rows(seeded: Seeded, step: str) -> list[list]:
    assert "error" not in seeded.steps[step], f"{step}: {seeded.steps[step].get('error')}"
    return seeded.steps[step]["rows"]


def kept() -> list[Call]:
    """The calls prod's 365-day retention keeps."""
    return [c for c in CALLS if c.ago_s < 365 * DAY]


def test_catalog_names_reach_the_sql_as_they_are(seeded):
    assert rows(seeded, "literal") == [[ODD_NAME]]


def test_schema_sql_runs_for_every_stack_and_again(seeded):
    for step in ("tables", "rows", "optimize", "schema-off"):
        rows(seeded, step)
    for stack in STACKS:
        rows(seeded, f"schema-{stack}-1")
        rows(seeded, f"schema-{stack}-2")


def test_the_views_the_smoke_suite_queries_are_the_views_the_sql_creates(seeded, deployments):
    off = with_clickhouse(deployments["prod"], retention_days=None, requests_view=False)
    assert [name for [name] in rows(seeded, "views-off")] == clickhouse_schema.views(off) == []
    assert [name for [name] in rows(seeded, "views")] == clickhouse_schema.views(deployments["prod"]) == ["requests"]


def test_seed_count_and_per_model_counts(seeded):
    assert [[int(n) for n in row] for row in rows(seeded, "count")] == [[len(kept())]]
    assert {model: int(n) for model, n in rows(seeded, "by-model")} == dict(Counter(c.model for c in kept()))


def test_seed_average_counts_only_what_that_model_answered(seeded):
    latencies = [c.latency_ms for c in kept() if c.model == "claude-sonnet-4-5" and c.latency_ms is not None]
    [[average]] = rows(seeded, "average")
    assert average == pytest.approx(sum(latencies) / len(latencies))
    # The fallback rows of claude_sonnet are not in it: they count for the model that answered.
    assert len(latencies) < sum(c.model_key == "claude_sonnet" for c in kept())


def test_seed_latest_ten_newest_first(seeded):
    newest = sorted(kept(), key=lambda c: c.ago_s)[:10]
    expected = [
        [time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(seeded.now - c.ago_s)), c.model]
        + [None if v is None else v for v in (c.input_tokens, c.output_tokens, c.latency_ms)]
        for c in newest
    ]
    assert rows(seeded, "latest") == expected


def test_seed_slow_requests_of_the_last_hour(seeded):
    latencies = defaultdict(list)
    for call in kept():
        if call.ago_s < 3600 and call.latency_ms is not None:
            latencies[call.model].append(call.latency_ms)
    expected = sorted(((m, sum(v) / len(v), max(v)) for m, v in latencies.items()), key=lambda r: -r[1])
    returned = rows(seeded, "slow")
    assert [(m, pytest.approx(a), int(x)) for m, a, x in returned] == [(m, pytest.approx(a), x) for m, a, x in expected]
    assert len(returned) == 3  # three models answered in the last hour


def test_view_extras_come_from_model_inference(seeded):
    newest = min(CALLS, key=lambda c: c.ago_s)
    [[provider, model_key, ttft, cached, cost]] = rows(seeded, "columns")
    assert (provider, model_key, ttft, cached) == (newest.provider, newest.model_key, newest.ttft_ms, newest.cached)
    assert Decimal(str(cost)) == Decimal(newest.cost)


def test_retention_drops_rows_past_the_ttl(seeded):
    before = [int(n) for n in rows(seeded, "before")[0]]
    after = [int(n) for n in rows(seeded, "after")[0]]
    assert before == [len(CALLS), 2, 2]
    assert after == [len(kept()), 1, 1]
    ttl = {name: engine for name, engine in rows(seeded, "ttl")}
    for table in clickhouse_schema.RETENTION_TABLES:
        assert "TTL timestamp + toIntervalDay(365)" in ttl[table]


def test_backups_disk_writes_and_restores(seeded):
    disks = dict(rows(seeded, "disks"))
    assert disks[clickhouse.BACKUPS_DISK] == f"{seeded.root / 'server' / 'backups'}/"
    [[_, status]] = rows(seeded, "backup")
    assert status == "BACKUP_CREATED"
    assert (seeded.root / "server" / "backups" / "tensorzero_backup" / ".backup").is_file()
    [[_, status]] = rows(seeded, "restore")
    assert status == "RESTORED"
    assert [[int(n) for n in row] for row in rows(seeded, "restored")] == [[len(kept())]]
    # Only the declared disk and path take backups.
    assert "not allowed for backups" in seeded.steps["outside"]["error"]


def test_seeds_zip_backup_needs_what_chdb_lacks(seeded):
    """The seed writes `tensorzero_backup.zip`; chdb is built without minizip, the server image is not."""
    assert "minizip library is disabled" in seeded.steps["backup-zip"]["error"]


def test_readonly_user_as_the_server_loads_it(seeded):
    spec = seeded.deployment.spec.clickhouse
    password = seeded.deployment.variable(spec.readonly_password_var).value
    [[created]] = rows(seeded, "readonly-user")
    assert f"IDENTIFIED WITH plaintext_password BY '{password}'" in created  # from_env, resolved
    assert f"SETTINGS PROFILE `{clickhouse.READONLY_PROFILE}`" in created
    # The entrypoint's user keeps what its file says, next to ours.
    seed_password = seeded.deployment.variable(spec.password_var).value
    [[seed_user]] = rows(seeded, "seed-user")
    assert f"BY '{seed_password}'" in seed_user
    assert rows(seeded, "grants") == [["SELECT", spec.database, None]]
    assert [[int(n) for n in row] for row in rows(seeded, "ro-read")] == [[len(kept())]]
    assert "readonly mode" in seeded.steps["ro-write"]["error"]


def test_chdb_reads_the_readonly_constraint(deployments, tmp_path):
    """The rendered users.d/readonly.xml as it is: chdb's parser reaches our changeable_in_readonly constraint
    on max_execution_time and asks for the switch config.d/readonly-constraints.xml sets (chdb itself
    ignores access_control_improvements; the server applies it from config.d)."""
    deployment = deployments["prod"]
    config = chdb_layout(tmp_path / "server", deployment, keep_constraints=True)
    result = run(
        {"connect": f"file:{tmp_path / 'data'}?config-file={config}", "steps": [], "result": str(tmp_path / "r.json")}
    )
    assert result["connect_error"] is not None
    assert "Setting changeable_in_readonly for max_execution_time is not allowed unless " in result["stderr"]
    assert "settings_constraints_replace_previous is enabled" in result["stderr"]


def test_prometheus_section_is_accepted_by_chdb(seeded):
    """chdb loaded config.d/prometheus.xml with the rest (the seeded scenario connected); it opens no
    ports, so the endpoint itself is not exercised here."""
    assert (seeded.root / "server" / "config.d" / "prometheus.xml").read_text() == by_name(
        clickhouse.config_files(seeded.deployment)
    )["config.d/prometheus.xml"].content


# --- clickhouse-server 18.16: the server's default database and the schema container's script ---------

SERVER = shutil.which("clickhouse-server")
CLIENT = shutil.which("clickhouse-client")
CUSTOM_DATABASE = "pmoves_observability"
TEST_USER, TEST_PASSWORD = "schema_test", "pw-for-the-script-test"


@dataclasses.dataclass(frozen=True)
class Server:
    port: int
    deployment: Deployment
    http_port: int = 0

    def query(self, sql: str, user: str = "default", password: str = "") -> str:
        done = subprocess.run(
            [CLIENT, "--port", str(self.port), "--user", user, "--password", password, "--query", sql],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()


def server_files(root: Path, users_xml: str) -> dict[str, int]:
    """Debian's config.xml and users.xml, test-only ports and paths in config.d/, `users_xml` in users.d/."""
    for name in ("config.xml", "users.xml"):
        shutil.copy(f"/etc/clickhouse-server/{name}", root / name)
    (root / "config.d").mkdir()
    (root / "users.d").mkdir()
    ports = dict(zip(("http_port", "tcp_port", "interserver_http_port"), free_ports(3), strict=True))
    paths = {
        "path": "data/",
        "tmp_path": "data/tmp/",
        "user_files_path": "data/user_files/",
        "format_schema_path": "data/schemas/",
    }
    (root / "config.d" / "zz-test.xml").write_text(
        "<yandex>"
        + "".join(f'<{k} replace="replace">{v}</{k}>' for k, v in ports.items())
        + "".join(f'<{k} replace="replace">{root}/{v}</{k}>' for k, v in paths.items())
        + '<tcp_port_secure remove="remove"/>'
        # Errors on stderr, not in /var/log/clickhouse-server.
        + '<logger replace="replace"><console>1</console><level>error</level></logger></yandex>'
    )
    (root / "users.d" / "test.xml").write_text(users_xml)
    return ports


@pytest.fixture(scope="module")
def server(deployments, tmp_path_factory):
    """Debian's ClickHouse 18.16 with the rendered config.d/pmoves.xml as it is (database made custom, to
    see it follow the spec), plus test-only ports and paths; a fresh data directory."""
    if not (SERVER and CLIENT):
        unavailable("Debian's clickhouse-server and clickhouse-client are not both installed (.ci/system-deps)")
    deployment = with_clickhouse(deployments["dev"], database=CUSTOM_DATABASE)
    root = tmp_path_factory.mktemp("clickhouse-server")
    ports = server_files(
        root,
        f"<yandex><users><{TEST_USER}><password>{TEST_PASSWORD}</password><networks><ip>::/0</ip></networks>"
        f"<profile>default</profile><quota>default</quota></{TEST_USER}></users></yandex>",
    )
    (root / "config.d" / "pmoves.xml").write_text(
        by_name(clickhouse.config_files(deployment))["config.d/pmoves.xml"].content
    )
    process = subprocess.Popen(
        [SERVER, f"--config-file={root / 'config.xml'}"], cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    running = Server(ports["tcp_port"], deployment, ports["http_port"])
    try:
        for _ in range(100):
            if (
                subprocess.run(
                    [CLIENT, "--port", str(running.port), "--query", "SELECT 1"], capture_output=True
                ).returncode
                == 0
            ):
                break
            assert process.poll() is None, process.stderr.read().decode()[-2000:]
            time.sleep(0.2)
        yield running
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_server_creates_and_lands_in_the_tensorzero_database(server):
    assert CUSTOM_DATABASE in server.query("SELECT name FROM system.databases").split()
    assert server.query("SELECT currentDatabase()") == CUSTOM_DATABASE
    assert server.query("SELECT currentDatabase()", TEST_USER, TEST_PASSWORD) == CUSTOM_DATABASE


# ENTRYPOINT_USER (above) in 18.16's root element, without access management, which 18.16 predates: the
# password between its tags as the entrypoint puts it, unescaped.
ENTRYPOINT_USER_XML = ENTRYPOINT_USER.replace("clickhouse>", "yandex>").replace(
    "            <access_management>1</access_management>\n", ""
)


@pytest.mark.parametrize(
    ("password", "starts"),
    [("c-0123456789&abcdef", False), ("c-0123456789<abcdef", False), ("c-0123456789>\"'$!;abcdef", True)],
)
def test_the_password_rule_is_what_the_server_can_read(password, starts, tmp_path, deployments):
    """A password the spec refuses stops the real server; one it accepts logs in (`validate` decides the same)."""
    if not (SERVER and CLIENT):
        unavailable("Debian's clickhouse-server and clickhouse-client are not both installed (.ci/system-deps)")
    refused = set(password) & set(clickhouse.XML_UNSAFE)
    assert bool(refused) is not starts
    ports = server_files(tmp_path, ENTRYPOINT_USER_XML.format(user=TEST_USER, password=password))
    process = subprocess.Popen(
        [SERVER, f"--config-file={tmp_path / 'config.xml'}"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        for _ in range(100):
            login = [CLIENT, "--port", str(ports["tcp_port"]), "--user", TEST_USER, "--password", password]
            if subprocess.run([*login, "--query", "SELECT 1"], capture_output=True).returncode == 0:
                break
            if process.poll() is not None:
                break
            time.sleep(0.2)
        if starts:
            assert process.poll() is None, process.stderr.read().decode()[-2000:]
        else:
            assert process.wait(timeout=30) != 0
            assert "SAXParseException" in process.stderr.read().decode()
    finally:
        process.terminate()
        process.wait(timeout=30)


def apply(server: Server, sql_file: Path, tries: int, password: str = TEST_PASSWORD) -> subprocess.Popen:
    env = {
        v.name: v.value
        for v in planned_env(server.deployment, "clickhouse-schema", "apply")
        if v.name not in ("CLICKHOUSE_USER", "CLICKHOUSE_PASSWORD", "CLICKHOUSE_HOST", "CLICKHOUSE_PORT")
    }
    env.update(
        CLICKHOUSE_HOST="127.0.0.1",
        CLICKHOUSE_PORT=str(server.port),
        CLICKHOUSE_USER=TEST_USER,
        CLICKHOUSE_PASSWORD=password,
        PATH="/usr/bin:/bin",
    )
    script = clickhouse_schema.apply_script(sql_path=str(sql_file), tries=tries, delay_s=0.2)
    return subprocess.Popen(["sh", "-c", script], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def command_lines_for(seconds: float, program: str, secret: str) -> tuple[list[str], list[str]]:
    """Every process command line seen over `seconds` that runs `program`, and those holding `secret`."""
    seen: set[str] = set()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                seen.add(cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace"))
            except OSError:
                pass
    return [c for c in seen if program in c], [c for c in seen if secret in c]


def test_schema_script_waits_for_the_gateways_table_then_applies(server, tmp_path):
    """The container's script, run by `sh` with the real clickhouse-client against a real server. The SQL
    here is a stand-in that 18.16 understands; the rendered SQL is proven with chdb above."""
    db = CUSTOM_DATABASE
    sql_file = tmp_path / "schema.sql"
    sql_file.write_text(
        "CREATE TABLE IF NOT EXISTS applied (x UInt8) ENGINE = Memory;\nINSERT INTO applied VALUES (1);\n"
    )
    server.query(f"DROP TABLE IF EXISTS {db}.ModelInference")
    server.query(f"DROP TABLE IF EXISTS {db}.applied")

    gave_up = apply(server, sql_file, tries=3)
    out, err = gave_up.communicate(timeout=60)
    assert gave_up.returncode == 1 and "ModelInference after 3 tries" in err
    assert server.query(f"EXISTS TABLE {db}.applied") == "0"

    waiting = apply(server, sql_file, tries=100)
    clients, leaked = command_lines_for(1.5, "clickhouse-client", TEST_PASSWORD)
    assert clients, "no clickhouse-client was seen running: the scan checked nothing"
    assert leaked == [], "the password was on a command line, where `ps` shows it"
    assert waiting.poll() is None  # still waiting for the gateway's migrations
    server.query(f"CREATE TABLE {db}.ModelInference (x UInt8) ENGINE = Memory")
    out, err = waiting.communicate(timeout=60)
    assert waiting.returncode == 0, err
    assert server.query(f"SELECT count() FROM {db}.applied") == "1"
    assert f"applied {sql_file}" in out

    # The password comes from the environment: a wrong one never gets in.
    refused = apply(server, sql_file, tries=2, password="wrong")
    refused.communicate(timeout=60)
    assert refused.returncode == 1
    assert server.query(f"SELECT count() FROM {db}.applied") == "1"


# --- under mocks: the ClickHouse container and the schema container ----------------------------------


def test_config_is_uploaded_without_shadowing_the_entrypoint_files(plans, deployments, stack):
    container = container_of(plans[stack], CLICKHOUSE.role)
    uploads = {u["file"]: u["content"] for u in container["inputs"]["uploads"]}
    assert uploads == {f.mount: f.content for f in clickhouse.config_files(deployments[stack])}
    # The entrypoint writes users.d/default-user.xml; users.d is not mounted as a whole.
    assert f"{clickhouse.USERS_DIR}/default-user.xml" not in uploads
    assert clickhouse.USERS_DIR not in [v["containerPath"] for v in container["inputs"]["volumes"]]


def test_data_and_backups_live_on_protected_volumes(plans, deployments, stack):
    spec = deployments[stack].spec
    mounts = {
        m["containerPath"]: m["volumeName"] for m in container_of(plans[stack], CLICKHOUSE.role)["inputs"]["volumes"]
    }
    adopted = spec.clickhouse.adopt_volumes
    data = adopted["data"].name if "data" in adopted else f"{spec.name_prefix}-tensorzero-clickhouse-data"
    expected = {clickhouse.DATA_PATH: data}
    if spec.clickhouse.backups:
        expected[clickhouse.BACKUPS_PATH.rstrip("/")] = f"{spec.name_prefix}-tensorzero-clickhouse-backups"
    assert mounts == expected
    volumes = {r["inputs"]["name"]: r for r in resources(plans[stack], "volume:Volume")}
    for name in expected.values():
        # An adopted volume is no resource of the stack (tests/stack/test_volumes.py): nothing to protect.
        assert name in {v.name for v in adopted.values()} or volumes[name]["protect"] == spec.protected


def test_healthcheck_pings_the_http_interface(plans, stack):
    check = container_of(plans[stack], CLICKHOUSE.role)["inputs"]["healthcheck"]["tests"]
    assert check[-1] == f"http://127.0.0.1:{CLICKHOUSE.port}/ping"


def test_environment_names_user_database_and_secret_password(deployments, stack):
    deployment = deployments[stack]
    env = {v.name: v for v in planned_env(deployment, "clickhouse")}
    assert env["CLICKHOUSE_USER"].value == deployment.spec.clickhouse.user
    assert env["CLICKHOUSE_DB"].value == deployment.spec.clickhouse.database
    assert env["CLICKHOUSE_PASSWORD"].secret and not env["CLICKHOUSE_USER"].secret
    assert env["CLICKHOUSE_DEFAULT_ACCESS_MANAGEMENT"].value == "1"
    offsite = clickhouse.offsite_backups(deployment.spec)
    assert [v.name for v in env.values() if v.secret] == ["CLICKHOUSE_PASSWORD"] + (
        [deployment.spec.clickhouse.readonly_password_var] if deployment.spec.deployed(GRAFANA) else []
    ) + ([offsite.access_key_var, offsite.secret_key_var] if offsite else [])


def test_connection_url_survives_any_password():
    password = "p@ss:w/rd#?%&"
    url = clickhouse.connection_url(
        ClickHouseSpec(user="tz_user", database="tensorzero"),
        Variable("PW", password, "test", True),
        Endpoint(CLICKHOUSE.alias, CLICKHOUSE.port),
    )
    parts = urlsplit(url.value)
    assert (parts.scheme, parts.hostname, parts.port, parts.path) == ("http", CLICKHOUSE.alias, 8123, "/tensorzero")
    assert (parts.username, unquote(parts.password)) == ("tz_user", password)
    assert url.secret


SCHEMA_TYPE = ":ClickHouseSchema"


def is_wired(desired: dict) -> bool:
    return any(r["type"].endswith(SCHEMA_TYPE) for r in desired["resources"])


@pytest.fixture(scope="module")
def schema_plans(plans) -> dict[str, dict]:
    return plans


def schema_container(desired: dict) -> dict:
    [component] = [r for r in desired["resources"] if r["type"].endswith(SCHEMA_TYPE)]
    [container] = [r for r in resources(desired, "container:Container") if r["parent"] == component["urn"]]
    return container


def test_schema_container_runs_once_after_the_gateway_on_the_stack_network(schema_plans, deployments, stack):
    desired, deployment = schema_plans[stack], deployments[stack]
    run_once = schema_container(desired)
    inputs = run_once["inputs"]
    store, gate = container_of(desired, CLICKHOUSE.role), container_of(desired, GATEWAY.role)
    assert (inputs["attach"], inputs["mustRun"], inputs["restart"], inputs["logs"]) == (True, False, "no", True)
    assert run_once["delete_before_replace"]
    assert gate["urn"] in run_once["dependencies"]
    assert run_once["provider"] == store["provider"]  # on ClickHouse's host
    assert inputs["image"] == store["inputs"]["image"]  # the ClickHouse image: it has clickhouse-client and sh
    # The stack's own network, where ClickHouse answers too; one-shots join no other.
    assert [n["name"] for n in inputs["networksAdvanced"]] == [store["inputs"]["networksAdvanced"][0]["name"]]
    assert inputs["entrypoints"] + inputs["command"] == list(clickhouse_schema.COMMAND)
    assert [u["file"] for u in inputs["uploads"]] == [clickhouse_schema.SQL_PATH]
    assert inputs["uploads"][0]["content"] == clickhouse_schema.schema_files(deployment)[0].content
    names = [item.split("=", 1)[0] for item in inputs["envs"]]
    assert names == [v.name for v in planned_env(deployment, "clickhouse-schema", "apply")]


def test_schema_container_connects_natively_with_a_secret_password(deployments, stack):
    env = {v.name: v for v in planned_env(deployments[stack], "clickhouse-schema", "apply")}
    assert (env["CLICKHOUSE_HOST"].value, env["CLICKHOUSE_PORT"].value) == (
        CLICKHOUSE.alias,
        str(clickhouse.NATIVE_PORT),
    )
    assert env["CLICKHOUSE_PASSWORD"].secret
    assert [name for name, v in env.items() if v.secret] == ["CLICKHOUSE_PASSWORD"]
    # The client reads it from a config file the script writes; never from its command line (`ps` shows that).
    script = clickhouse_schema.apply_script()
    assert "--password" not in script and '--config-file "$config"' in script


def test_schema_plan_holds_no_secret(schema_plans, stack):
    text = json.dumps(schema_container(schema_plans[stack]))
    assert not [name for name, canary in CANARIES.items() if canary in text]


def test_the_stack_declares_the_schema_container(plans, stack):
    """Needs stack.py to declare ClickHouseSchema (see components/schema.py); fails until it does."""
    assert is_wired(plans[stack])


def test_backupctl_speaks_clickhouses_http_interface(server):
    """Debian's clickhouse-server 18.16: answers in JSONCompact, Basic auth, its own errors passed on."""
    url = f"http://127.0.0.1:{server.http_port}"
    client = BackupctlClient(url, TEST_USER, TEST_PASSWORD, CUSTOM_DATABASE)
    assert client.run("SELECT 1, 'it''s', currentDatabase()") == [[1, "it's", CUSTOM_DATABASE]]
    assert client.run("SELECT currentDatabase()", "system") == [["system"]]
    with pytest.raises(ClickHouseError, match="(?i)password"):
        BackupctlClient(url, TEST_USER, "wrong", CUSTOM_DATABASE).run("SELECT 1")
    with pytest.raises(ClickHouseError, match="Code: 62"):  # 18.16 has no BACKUP: its syntax error, as it says
        client.run("BACKUP DATABASE x TO Disk('backups', 'y')")
    with pytest.raises(ClickHouseError, match="cannot reach ClickHouse"):
        BackupctlClient("http://127.0.0.1:9", TEST_USER, TEST_PASSWORD, CUSTOM_DATABASE).run("SELECT 1")


# --- an external ClickHouse: the stack runs none of its own ------------------------------------------------

EXTERNAL = {"host": "ch.pmoves.internal", "cluster_name": "tensorzero_cluster"}


@pytest.fixture(scope="module")
def external(tmp_path_factory):
    """A stack using an existing, replicated ClickHouse over TLS (the backup service is off: see below)."""
    root = tmp_path_factory.mktemp("external-clickhouse")
    return load_minimal(root, clickhouse={"external": EXTERNAL, "retention_days": 30}, backup={"enabled": False})


def test_an_external_clickhouse_is_used_and_none_is_run(external):
    desired = plan(external)
    assert not external.spec.deployed(CLICKHOUSE)
    assert not [r for r in resources(desired, "volume:Volume") if "clickhouse" in r["name"]]
    assert CLICKHOUSE.role not in containers(desired)
    env = dict(v.split("=", 1) for v in container_of(desired, GATEWAY.role)["inputs"]["envs"])
    # TLS on the HTTP port; the replicated cluster's name, as TensorZero reads it (FACTS).
    assert env["TENSORZERO_CLICKHOUSE_URL"] == "https://tensorzero:[secret]@ch.pmoves.internal:8443/tensorzero"
    assert env["TENSORZERO_CLICKHOUSE_CLUSTER_NAME"] == "tensorzero_cluster"
    # The smoke suite still finds it: the gateway's plan gives the outputs' clickhouse_url.
    assert urlsplit(external.plans[GATEWAY.role].outputs["clickhouse_url"].value).hostname == "ch.pmoves.internal"
    [datasources] = [f for f in external.plans[GRAFANA.role].files if f.kind == "grafana-datasources"]
    [store] = [d for d in yaml.safe_load(datasources.content)["datasources"] if d["uid"] == "clickhouse"]
    assert {k: store["jsonData"][k] for k in ("host", "port", "secure")} == {
        "host": "ch.pmoves.internal",
        "port": 8443,
        "secure": True,
    }


def test_the_schema_one_shot_pulls_its_own_image_and_speaks_tls_to_the_native_port(external):
    desired = plan(external)
    [apply] = [r for r in resources(desired, "container:Container") if r["name"] == "clickhouse-schema-apply"]
    [image] = [r for r in resources(desired, "remoteImage:RemoteImage") if r["name"] == "clickhouse-schema-apply-image"]
    assert image["inputs"]["name"] == external.spec.clickhouse.image
    env = dict(v.split("=", 1) for v in apply["inputs"]["envs"])
    assert (env["CLICKHOUSE_HOST"], env["CLICKHOUSE_PORT"], env["CLICKHOUSE_SECURE"]) == (
        "ch.pmoves.internal",
        "9440",
        "True",
    )


@pytest.mark.parametrize("secure", [True, False])
def test_the_schema_script_adds_secure_exactly_when_asked(tmp_path, secure):
    """The script run by a real `sh`; clickhouse-client is a STAND-IN that records its arguments and says the
    table exists (no TLS ClickHouse server runs here)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "args"
    fake = bin_dir / "clickhouse-client"
    fake.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {record}\necho 1\n')
    fake.chmod(0o755)
    sql = tmp_path / "schema.sql"
    sql.write_text("SELECT 1;\n")
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "CLICKHOUSE_HOST": "ch.pmoves.internal",
        "CLICKHOUSE_PORT": "9440",
        "CLICKHOUSE_USER": "tensorzero",
        "CLICKHOUSE_PASSWORD": "pw",
        "CLICKHOUSE_DATABASE": "tensorzero",
        **({"CLICKHOUSE_SECURE": "True"} if secure else {}),
    }
    script = clickhouse_schema.apply_script(sql_path=str(sql), tries=1, delay_s=0)
    done = subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    calls = record.read_text().splitlines()
    assert len(calls) == 2  # the wait, then the SQL
    assert all(("--secure" in call.split()) is secure for call in calls), calls


def test_the_ddl_goes_to_every_replica_in_clickhouses_own_syntax(external):
    """Every statement of the rendered SQL, `ON CLUSTER` included, parsed by ClickHouse's own parser
    (`formatQuery`, in chdb): no replicated cluster runs here to execute it."""
    sql = clickhouse_schema.schema_sql(external)
    statements = [s.strip() for s in re.sub(r"^--.*$", "", sql, flags=re.M).split(";") if s.strip()]
    assert len(statements) == 1 + len(clickhouse_schema.RETENTION_TABLES)
    assert all(" ON CLUSTER `tensorzero_cluster`" in statement for statement in statements)
    probe = "import chdb, json, sys\nfor s in json.load(sys.stdin):\n    chdb.query('SELECT formatQuery(' + s + ')')\n"
    quoted = json.dumps([clickhouse_schema.sql_string(s) for s in statements])
    parsed = subprocess.run([sys.executable, "-c", probe], input=quoted, capture_output=True, text=True, timeout=120)
    assert parsed.returncode == 0, parsed.stderr[-2000:]
    broken = json.dumps(
        [clickhouse_schema.sql_string(statements[0].replace("ON CLUSTER `tensorzero_cluster`", "ON CLUSTER"))]
    )
    refused = subprocess.run([sys.executable, "-c", probe], input=broken, capture_output=True, text=True, timeout=120)
    assert refused.returncode != 0 and "Syntax error" in refused.stderr


@pytest.mark.parametrize(
    ("section", "key", "message"),
    [
        ({"external": {"host": "127.0.0.1"}}, "clickhouse.external", "each container's own loopback"),
        ({"external": {"host": "ch.x", "http_port": 9440}}, "clickhouse.external", "both 9440"),
        ({"external": {"host": "ch.x"}, "adopt_volumes": {"data": {"name": "tensorzero-clickhouse-data"}}},
         "clickhouse", "adopt_volumes: not used with external"),
    ],
    ids=["loopback", "one-port-twice", "own-volume"],
)  # fmt: skip
def test_an_external_clickhouse_that_cannot_be_reached_or_drops_a_setting_is_refused(tmp_path, section, key, message):
    with pytest.raises(ConfigError) as failure:
        load_minimal(tmp_path, clickhouse=section, backup={"enabled": False})
    assert [(p.key, message in p.message) for p in failure.value.problems] == [(key, True)], failure.value


def test_an_ipv6_address_is_bracketed_in_the_url():
    url = clickhouse.connection_url(
        ClickHouseSpec(external={"host": "fd00::5"}), Variable("P", "pw", "test", True), Endpoint("fd00::5", 8443)
    )
    parts = urlsplit(url.value)
    assert (parts.scheme, parts.hostname, parts.port) == ("https", "fd00::5", 8443)


def test_backups_of_an_external_clickhouse_are_refused_naming_the_key(tmp_path):
    with pytest.raises(ConfigError) as failure:
        load_minimal(tmp_path, clickhouse={"external": EXTERNAL})
    [problem] = [p for p in failure.value.problems if p.key == "backup.enabled"]
    assert "which an external ClickHouse does not have" in problem.message
