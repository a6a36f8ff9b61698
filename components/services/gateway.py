"""The TensorZero gateway: the rendered tensorzero.toml, its keys, and the ClickHouse it logs to."""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from pydantic import Field

from components.core.envfiles import Variable
from components.core.monitoring import GATEWAY_JOB
from components.core.names import METRICS_PATH
from components.core.plans import Hardening, Monitoring, Scrape, Secret, ServicePlan
from components.core.render import RenderedFile, render, toml_tables
from components.core.types import ImageRef, Port
from components.model.environment import ServiceDefinition
from components.model.settings import PUBLISHED_PORT, ServiceSpec
from components.services import clickhouse, ollama

if TYPE_CHECKING:
    from components.model.context import Context
    from components.model.resolved import ResolvedStack

ALIAS = "tensorzero-gateway"
PORT = 3000
STATUS_PATH = "/status"  # liveness; touches no database
HEALTH_PATH = "/health"  # checks ClickHouse too: 503 naming the failing part
CONFIG_DIR = "/app/config"  # files the config names by path are resolved from here
CONFIG_PATH = f"{CONFIG_DIR}/tensorzero.toml"
HEALTHCHECK = ("wget", "--spider", "--tries", "1", f"http://localhost:{PORT}{STATUS_PATH}")
USER = 1000  # the image's `gateway` (its Dockerfile's `useradd` on debian:bookworm-slim: the first UID, 1000)
COMMAND = ("--config-file", CONFIG_PATH, "--log-format", "json")
CLUSTER_NAME_ENV = "TENSORZERO_CLICKHOUSE_CLUSTER_NAME"  # FACTS: a replicated ClickHouse cluster's name


class GatewaySpec(ServiceSpec):
    image: ImageRef = Field("tensorzero/gateway:2026.6.0", description="Pinned gateway image; same tag as the UI.")
    port: Optional[Port] = Field(3030, description=PUBLISHED_PORT)
    observability: bool = Field(True, description="Log inferences to ClickHouse (`gateway.observability.enabled`).")
    async_writes: bool = Field(
        False, description="Write observability rows without waiting (`observability.async_writes`)."
    )
    debug: bool = Field(False, description="Gateway debug logging (`gateway.debug`); logs prompts, keep off in prod.")
    drain_s: int = Field(
        120,
        ge=1,
        le=3600,
        description="After SIGTERM, how long a replaced gateway may finish its in-flight (also streaming) "
        "requests before it is killed.",
    )


def config_file(deployment: ResolvedStack) -> RenderedFile:
    translation = deployment.translation
    content = render(
        "gateway/tensorzero.toml.j2",
        stack=deployment.stack,
        gateway=deployment.spec.gateway,
        models=translation.models,
        embedding_models=translation.embedding_models,
        functions=translation.functions,
        native=toml_tables(translation.native),
    )
    return RenderedFile("gateway/tensorzero.toml", "tensorzero-config", SERVICE.role, CONFIG_PATH, content)


def config_files(deployment: ResolvedStack) -> list[RenderedFile]:
    """tensorzero.toml and, beside it, every file its tables name by path (templates, JSON schemas)."""
    named = [
        RenderedFile(f"gateway/{file.path}", file.kind, SERVICE.role, f"{CONFIG_DIR}/{file.path}", file.content)
        for file in deployment.translation.files
    ]
    return [config_file(deployment), *named]


def plan(ctx: Context) -> ServicePlan:
    """Only what the gateway reads: where ClickHouse is, and the keys its config names."""
    spec = ctx.spec
    store = clickhouse.server(ctx)
    # The stack's Ollamas the catalog routes models to: the translation addressed each by the endpoint rule.
    routed = [s for s in ollama.servers(ctx.spec) if s.alias in ctx.deployment.translation.ollama_pulls]
    for server in routed:
        ctx.reach(server)
    env, outputs = [], {}
    if spec.gateway.observability:
        url = clickhouse.connection_url(spec.clickhouse, ctx.credential("clickhouse.password_var"), store)
        env.append(url)
        if external := spec.clickhouse.external:
            outputs["clickhouse_url"] = Secret(url.value)  # the smoke suite's, as the stack's own ClickHouse gives
            if external.cluster_name:
                env.append(ctx.from_spec(CLUSTER_NAME_ENV, "clickhouse.external.cluster_name"))
    deployment = ctx.deployment
    # The gateway will not start while a variable its config names with `env::` has no value.
    for use in deployment.translation.key_uses:
        if why := deployment.unsupplied(use.variable):
            where = deployment.catalog.sources[use.table_key]
            ctx.problem(
                use.table_key, f"provider '{use.provider}' needs {use.variable}, {why}", file=where, missing=True
            )
    for name in deployment.translation.variables:
        if why := deployment.unsupplied(name):
            env.append(Variable(name, "", f"named by the catalog: {why.removeprefix('but ')}", True, missing=True))
        else:
            found = deployment.variable(name)
            # Whatever `env::` names is a provider credential, however the variable is called.
            env.append(Variable(name, found.value, found.source, True))
    # Uploads and envs force replacement in pulumi-docker, so the gateway restarts exactly
    # when its rendered config or its environment changes. Behind the edge it publishes no port, so the
    # new container starts (under a new name) and is healthy before the old one is stopped and drains.
    # Its image's own non-root user (FACTS), by UID on both targets: a cluster's "restricted" asks for one.
    return ServicePlan(
        rolling=not ctx.placement.ports,
        stop_grace_s=spec.gateway.drain_s,
        command=COMMAND,
        env=tuple(env),
        files=tuple(config_files(ctx.deployment)),
        healthcheck=HEALTHCHECK,
        # ClickHouse must be healthy first: the gateway runs its migrations at start.
        waits_for=(clickhouse.SERVICE.role, *(server.role for server in routed)),
        image_tools=frozenset({"wget"}),
        outputs=outputs,
        hardening=Hardening(user=USER),
    )


SERVICE = ServiceDefinition(
    role="gateway",
    component="Gateway",
    plan=plan,
    description="The TensorZero gateway.",
    spec=GatewaySpec,
    container="tensorzero-gateway",
    alias=ALIAS,
    port=PORT,
    monitoring=lambda spec: Monitoring(scrapes=(Scrape(GATEWAY_JOB, METRICS_PATH),), probe=STATUS_PATH),
    replicated=True,
    autoscaled=True,
)
