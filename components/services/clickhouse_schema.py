"""What the stack adds to TensorZero's ClickHouse tables, applied once the gateway's migrations ran.

The gateway creates its tables at start (FACTS: migrations run at gateway start), so nothing can be
declared on them before it is up: not in ClickHouse's init scripts, which run before the gateway.
The mechanism is a one-shot container, like Ollama's pulls: the ClickHouse image itself (it has
`clickhouse-client` and `sh`), on the stack network, started after the gateway. It waits, with a
bounded number of tries, until `EXISTS TABLE ModelInference` answers 1, then runs the rendered SQL.
Every statement is idempotent, and a changed SQL file is a changed upload, which replaces (re-runs)
the container. What it applies:

- the seed's `requests` view over ModelInference (`clickhouse.requests_view`), with `model` mapped
  to the upstream model name from the catalog;
- a TTL on the inference tables (`clickhouse.retention_days`).

A failed run does not fail `pulumi up`: pulumi-docker waits for an attached container but ignores its
exit code. The component's `exit_code` output and `docker logs <name_prefix>-tensorzero-clickhouse-schema`
tell; `pulumi up --replace` on the container runs it again.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from components.catalog.translation import Translation
from components.core.envfiles import Variable
from components.core.plans import OneShot, ServicePlan
from components.core.render import RenderedFile, render
from components.model.environment import ServiceDefinition
from components.services import clickhouse

if TYPE_CHECKING:
    from components.model.context import Context
    from components.model.resolved import ResolvedStack

REQUESTS_VIEW = "requests"  # the seed's table of requests: a view this one-shot creates
SQL_PATH = "/opt/pmoves/clickhouse-schema.sql"  # where the one-shot reads it
GATEWAY = "gateway"  # runs TensorZero's migrations at start: healthy means the tables exist
KIND = "clickhouse-schema-sql"
RETENTION_TABLES = ("ModelInference", "ChatInference", "JsonInference")
WAIT_TRIES = 60
WAIT_DELAY_S = 5


def apply_script(sql_path: str = SQL_PATH, tries: int = WAIT_TRIES, delay_s: float = WAIT_DELAY_S) -> str:
    """The schema container's `sh -c` script.

    Only variable references: the password reaches clickhouse-client from the container's environment,
    never from text rendered here (plans, state and `docker inspect` show this command as it is).
    """
    return f"""set -eu
# The password goes to clickhouse-client in a config file only this script reads, never on its command line
# (where `ps` on the host would show it): printf is a shell builtin, so no process carries it either.
umask 077
config="$(mktemp)"
trap 'rm -f "$config"' EXIT
password="$(printf '%s' "$CLICKHOUSE_PASSWORD" | sed -e 's/&/\\&amp;/g' -e 's/</\\&lt;/g' -e 's/>/\\&gt;/g')"
printf '<config><password>%s</password></config>\\n' "$password" >"$config"
client() {{
    clickhouse-client --config-file "$config" --host "$CLICKHOUSE_HOST" --port "$CLICKHOUSE_PORT" \\
        ${{CLICKHOUSE_SECURE:+--secure}} --user "$CLICKHOUSE_USER" --database "$CLICKHOUSE_DATABASE" "$@"
}}
tries=0
until [ "$(client --query 'EXISTS TABLE ModelInference' 2>/dev/null)" = 1 ]; do
    tries=$((tries + 1))
    if [ "$tries" -ge {tries} ]; then
        echo "no $CLICKHOUSE_DATABASE.ModelInference after {tries} tries: did the gateway run its migrations?" >&2
        exit 1
    fi
    sleep {delay_s}
done
client --multiquery < {sql_path}
echo "applied {sql_path} to $CLICKHOUSE_DATABASE"
"""


COMMAND = ("sh", "-c", apply_script())


def sql_string(value: str) -> str:
    """A ClickHouse string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def sql_identifier(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


@dataclass(frozen=True)
class UpstreamModel:
    """Which upstream model answered, for a ModelInference row's (model_name, model_provider_name)."""

    model_key: str
    provider: str
    model: str


def upstream_models(translation: Translation) -> list[UpstreamModel]:
    """Every routing entry of every model the stack serves, with the provider's own model name."""
    found = [
        UpstreamModel(routed.name, block.name, block.fields["model_name"])
        for routed in translation.models + translation.embedding_models
        for block in routed.providers
    ]
    for table in ("models", "embedding_models"):
        for name, model in translation.native.get(table, {}).items():
            for provider, fields in (model.get("providers") or {}).items():
                if isinstance(fields, dict) and isinstance(fields.get("model_name"), str):
                    found.append(UpstreamModel(name, provider, fields["model_name"]))
    return found


def applies(deployment: ResolvedStack) -> bool:
    return deployment.spec.deployed(SERVICE)


def views(deployment: ResolvedStack) -> list[str]:
    """The views the SQL creates, for the smoke suite to query: pulumi-docker ignores the one-shot's exit code."""
    return [REQUESTS_VIEW] if applies(deployment) and deployment.spec.clickhouse.requests_view else []


def schema_sql(deployment: ResolvedStack) -> str:
    spec = deployment.spec.clickhouse
    upstream = [
        {"model_key": sql_string(u.model_key), "provider": sql_string(u.provider), "model": sql_string(u.model)}
        for u in upstream_models(deployment.translation)
    ]
    return render(
        "clickhouse/schema/pmoves-schema.sql.j2",
        database=sql_identifier(spec.database),
        requests_view=spec.requests_view,
        view=sql_identifier(REQUESTS_VIEW),
        upstream=upstream,
        retention_days=spec.retention_days,
        retention_tables=RETENTION_TABLES,
        # On a replicated cluster each replica holds its own view, so the DDL goes to every one of them.
        on_cluster=f" ON CLUSTER {sql_identifier(spec.external.cluster_name)}"
        if spec.external and spec.external.cluster_name
        else "",
    )


def schema_files(deployment: ResolvedStack) -> list[RenderedFile]:
    """The SQL the schema container runs; none when the gateway creates no tables to apply it to."""
    if not applies(deployment):
        return []
    return [
        RenderedFile(
            path="clickhouse/schema/pmoves-schema.sql",
            kind=KIND,
            container=clickhouse.SERVICE.role,
            mount=SQL_PATH,
            content=schema_sql(deployment),
        )
    ]


def plan(ctx: Context) -> ServicePlan:
    """One one-shot on ClickHouse's host, with ClickHouse's image, started once the gateway is healthy."""
    server = clickhouse.server(ctx, native=True)
    password = ctx.credential("clickhouse.password_var")
    here = "components/services/clickhouse_schema.py"
    env = (
        Variable("CLICKHOUSE_HOST", server.host, here, False),
        Variable("CLICKHOUSE_PORT", str(server.port), here, False),
        ctx.from_spec("CLICKHOUSE_USER", "clickhouse.user"),
        password.renamed("CLICKHOUSE_PASSWORD"),
        ctx.from_spec("CLICKHOUSE_DATABASE", "clickhouse.database"),
    )
    if clickhouse.is_secure(ctx.spec.clickhouse):
        env += (ctx.from_spec("CLICKHOUSE_SECURE", "clickhouse.external.secure"),)
    apply = OneShot(
        name="apply",
        docker_name=f"{clickhouse.SERVICE.container}-schema",
        image_of=clickhouse.SERVICE.role,
        # Without a ClickHouse container of the stack's, its image is pulled for this one-shot alone.
        image=ctx.spec.clickhouse.image if ctx.spec.clickhouse.external else None,
        entrypoint=COMMAND[0],
        command=COMMAND[1:],
        env=env,
        files=tuple(schema_files(ctx.deployment)),
        after=(GATEWAY,),
    )
    return ServicePlan(one_shots=(apply,), outputs={"clickhouse_views": views(ctx.deployment)})


SERVICE = ServiceDefinition(
    role="clickhouse-schema",
    component="ClickHouseSchema",
    plan=plan,
    description="The seed's `requests` view and retention TTLs, applied after the gateway's migrations.",
    # The gateway creates ModelInference only when it logs to ClickHouse; without it there is nothing to wait for.
    is_deployed=lambda spec: spec.gateway.observability,
    # Beside ClickHouse, on its network; a one-shot has no hostname or port of its own.
    placement=lambda spec, _: replace(spec.placement(clickhouse.SERVICE), alias=None, port=None, published=None),
)
