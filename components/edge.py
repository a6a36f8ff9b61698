"""The compatibility edge: OpenResty in front of the gateway, so the seed's documented calls work unchanged.

PMOVES services `POST /v1/chat/completions` with `"model": "claude-sonnet-4-5"`, send
`Authorization: Bearer $TENSORZERO_API_KEY` and graph `tensorzero_request_duration_seconds`;
the real gateway serves `/openai/v1/...`, wants `tensorzero::model_name::KEY`, ignores the key
and exports no such metric. The edge, configured only by the files rendered here, closes that gap:
it takes the gateway's alias and public port, rewrites the two OpenAI routes and bare model names,
checks the key, and counts every request. Everything else passes through.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

from pydantic import Field

from . import gateway
from .envfiles import Variable
from .monitoring import EDGE_DURATION, EDGE_JOB, EDGE_REQUESTS
from .names import (
    CHAT_MODEL_PREFIX,
    EMBEDDING_MODEL_PREFIX,
    FUNCTION_PREFIX,
    METRICS_PATH,
    TENSORZERO_NAME_PREFIX,
)
from .render import RenderedFile, render
from .service import Endpoint, Front, Monitoring, Scrape, ServiceDefinition, ServicePlan
from .spec import ServiceSpec
from .types import EnvName, ImageRef, Port

if TYPE_CHECKING:
    from .deployment import Deployment
    from .planner import Context

PORT = 3000
GATEWAY_BEHIND_EDGE_ALIAS = "tensorzero-gateway-core"  # where the real gateway answers once the edge fronts it
OWN_METRICS_PATH = "/edge/metrics"  # the edge's own Prometheus text; /metrics stays the gateway's
HEALTH_PATH = "/edge/health"  # answered by the edge itself: its healthcheck
PREFIX = "/usr/local/openresty/nginx"  # the OpenResty image's nginx prefix (-p)
CONFIG_PATH = "/etc/nginx/conf.d/default.conf"  # included inside the image's http block
LUA_DIR = "pmoves-edge"  # under PREFIX: the edge's Lua module and settings
API_KEY_ENV = "TENSORZERO_API_KEY"  # the seed's name; the edge reads its key from it


class EdgeSpec(ServiceSpec):
    """The compatibility edge: the seed's API (`/v1/...`, bare model names, bearer key) in front of the gateway."""

    enabled: bool = Field(True, description="Put the compatibility edge in front of the gateway.")
    image: ImageRef = Field("openresty/openresty:1.27.1.2-bookworm", description="Pinned OpenResty image.")
    host: str = Field("main", description="Key in `hosts`; must be the gateway's host.")
    port: Optional[Port] = Field(
        None,
        description="Host port the edge publishes. Null takes gateway.port, and the gateway itself is not published.",
    )
    api_key_var: Optional[EnvName] = Field(
        API_KEY_ENV,
        description="Variable (env layer or stack secret) holding the key callers send as `Authorization: Bearer`; "
        "when it is unset or empty, or this is null, the edge asks for no key.",
    )
    client_max_body_size: str = Field(
        "32m", pattern=r"^[1-9][0-9]*[km]?$", description="Largest request body accepted (nginx size: 512k, 32m)."
    )
    upstream_timeout_s: int = Field(
        600,
        ge=1,
        le=3600,
        description="How long the gateway may stay silent: a whole unstreamed answer, or between chunks.",
    )


@dataclass(frozen=True)
class ModelRoute:
    path: str  # what callers send
    kind: str  # "chat" or "embedding": which names it takes
    mode: str  # "translate": the seed's route, bare names rewritten; "label": the gateway's own, untouched
    upstream_path: str  # where the gateway serves it


MODEL_ROUTES = (
    ModelRoute("/v1/chat/completions", "chat", "translate", "/openai/v1/chat/completions"),
    ModelRoute("/v1/embeddings", "embedding", "translate", "/openai/v1/embeddings"),
    ModelRoute("/openai/v1/chat/completions", "chat", "label", "/openai/v1/chat/completions"),
    ModelRoute("/openai/v1/embeddings", "embedding", "label", "/openai/v1/embeddings"),
)
# Liveness and the gateway's own metrics answer without a key, as the seed's health checks expect.
OPEN_PATHS = (gateway.HEALTH_PATH, gateway.STATUS_PATH, METRICS_PATH)
# Routes named in the metrics; every other path is counted as route "other" (bounded label values).
COUNTED_ROUTES = (*(r.path for r in MODEL_ROUTES), *OPEN_PATHS, "/inference", "/feedback")

# From an embedding (tens of ms) to a long unstreamed generation (minutes).
DURATION_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 60, 120, 300)
METRICS_DICT = "pmoves_edge_metrics"
METRICS_DICT_SIZE = "4m"  # a few hundred bytes per series; models x routes x status classes x buckets
CLIENT_BODY_BUFFER_SIZE = "1m"  # larger bodies spool to the container's temp dir, read back for the rewrite
CONNECT_TIMEOUT_S = 10
RESOLVER_VALID = "10s"
ERROR_STATUSES = (413, 502, 503, 504)
SETTINGS_FILE = "settings.json"
LUA_MODULE = "pmoves_edge.lua"

# nginx's -g: `env` must be at the main level, which the image's nginx.conf gives conf.d no way to reach.
COMMAND = ("/usr/bin/openresty", "-g", f"daemon off; env {API_KEY_ENV};")
# The OpenResty bookworm image has neither curl nor wget; bash (Essential in Debian) speaks TCP itself.
HEALTHCHECK = (
    "bash",
    "-c",
    f"exec 3<>/dev/tcp/127.0.0.1/{PORT} && printf 'GET {HEALTH_PATH} HTTP/1.0\\r\\n\\r\\n' >&3 "
    "&& head -n 1 <&3 | grep -q ' 200 '",
)


@dataclass(frozen=True)
class ServedModel:
    key: str  # catalog key: the name TensorZero knows
    upstream_name: Optional[str]  # the primary provider's own model name
    target: str  # the full name a bare name becomes
    accepted: tuple[str, ...]  # full names the gateway accepts for it as they are


def served_models(deployment: Deployment) -> dict[str, list[ServedModel]]:
    """Chat and embedding models of the rendered tensorzero.toml, with every name that reaches them."""
    translation = deployment.translation
    native = translation.native
    sampled = {f.model for f in translation.functions if f.name == f.model}

    def chat(key: str, upstream: Optional[str]) -> ServedModel:
        # A model with catalog sampling defaults is called through its generated function, so a bare
        # name gets the temperature and max_tokens the catalog promises.
        names = (CHAT_MODEL_PREFIX + key, *((FUNCTION_PREFIX + key,) if key in sampled else ()))
        return ServedModel(key, upstream, names[-1], names)

    def embedding(key: str, upstream: Optional[str]) -> ServedModel:
        return ServedModel(key, upstream, EMBEDDING_MODEL_PREFIX + key, (EMBEDDING_MODEL_PREFIX + key, key))

    def primary(table: dict) -> Optional[str]:
        routing = table.get("routing") or []
        return (table.get("providers") or {}).get(routing[0], {}).get("model_name") if routing else None

    return {
        "chat": [chat(m.name, m.providers[0].fields.get("model_name")) for m in translation.models]
        + [chat(key, primary(table)) for key, table in native.get("models", {}).items()],
        "embedding": [embedding(m.name, m.providers[0].fields.get("model_name")) for m in translation.embedding_models]
        + [embedding(key, primary(table)) for key, table in native.get("embedding_models", {}).items()],
    }


def name_map(models: list[ServedModel]) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Bare name -> catalog key, and the upstream names shared by several keys (answered with a 404 naming them).

    A catalog key always names itself; an upstream name names its model unless it is another
    model's key or several models use it.
    """
    names = {m.key: m.key for m in models}
    owners: dict[str, list[str]] = defaultdict(list)
    for model in models:
        if model.upstream_name and model.upstream_name not in names:
            owners[model.upstream_name].append(model.key)
    ambiguous = {name: sorted(keys) for name, keys in owners.items() if len(keys) > 1}
    names.update({name: keys[0] for name, keys in owners.items() if len(keys) == 1})
    return dict(sorted(names.items())), dict(sorted(ambiguous.items()))


def auth_variable(deployment: Deployment) -> Optional[Variable]:
    """The key callers must send, under the name the edge reads; None when the stack supplies none."""
    spec = deployment.spec.edge
    found = deployment.variables.get(spec.api_key_var) if spec.api_key_var else None
    if found is None or found.value == "":
        return None
    return Variable(API_KEY_ENV, found.value, found.source, True)


def settings(deployment: Deployment) -> dict:
    """Every decision the Lua module carries out; it holds no key, only whether one is required."""
    spec = deployment.spec.edge
    models = served_models(deployment)
    maps = {kind: name_map(served) for kind, served in models.items()}
    return {
        "auth": {"required": auth_variable(deployment) is not None, "env": API_KEY_ENV},
        "passthrough_prefix": TENSORZERO_NAME_PREFIX,
        "models": {kind: names for kind, (names, _) in maps.items()},
        "ambiguous": {kind: ambiguous for kind, (_, ambiguous) in maps.items()},
        "targets": {kind: {m.key: m.target for m in served} for kind, served in models.items()},
        "labels": {kind: {name: m.key for m in served for name in m.accepted} for kind, served in models.items()},
        "served": {kind: sorted(m.key for m in served) for kind, served in models.items()},
        "errors": {
            "413": f"request body larger than {spec.client_max_body_size}",
            "502": "the TensorZero gateway is unreachable",
            "503": "the TensorZero gateway is unavailable",
            "504": f"the TensorZero gateway did not answer within {spec.upstream_timeout_s} s",
        },
        "metrics": {
            "dict": METRICS_DICT,
            "duration": EDGE_DURATION,
            "duration_help": "Time from the edge receiving a request to its last byte sent, "
            "by catalog model, route and status class.",
            "requests": EDGE_REQUESTS,
            "requests_help": "Requests answered by the edge, by route and HTTP status.",
            "buckets": list(DURATION_BUCKETS),
            "routes": list(COUNTED_ROUTES),
            "own_paths": [HEALTH_PATH, OWN_METRICS_PATH],
        },
    }


def config_files(deployment: Deployment, upstream: Endpoint, *, listen: str = str(PORT)) -> list[RenderedFile]:
    """conf.d/default.conf (inside the image's http block), the Lua module and its settings.

    `listen` is the nginx listen address; tests bind a free loopback port, the container port 3000.
    """
    spec = deployment.spec.edge
    lua_dir = f"{PREFIX}/{LUA_DIR}"
    conf = render(
        "edge/default.conf.j2",
        stack=deployment.stack,
        lua_dir=LUA_DIR,
        settings_file=SETTINGS_FILE,
        metrics_dict=METRICS_DICT,
        metrics_dict_size=METRICS_DICT_SIZE,
        resolver=deployment.spec.dns_resolver,
        resolver_valid=RESOLVER_VALID,
        listen=listen,
        upstream=deployment.spec.qualified(upstream),
        client_max_body_size=spec.client_max_body_size,
        client_body_buffer_size=CLIENT_BODY_BUFFER_SIZE,
        connect_timeout_s=CONNECT_TIMEOUT_S,
        upstream_timeout_s=spec.upstream_timeout_s,
        error_statuses=ERROR_STATUSES,
        health_path=HEALTH_PATH,
        metrics_path=OWN_METRICS_PATH,
        open_paths=OPEN_PATHS,
        model_routes=MODEL_ROUTES,
    )
    document = json.dumps(settings(deployment), indent=2, sort_keys=True)

    def lua(file: str, kind: str, **values) -> RenderedFile:
        return RenderedFile(
            f"edge/{LUA_DIR}/{file}", kind, SERVICE.role, f"{lua_dir}/{file}", render(f"edge/{file}.j2", **values)
        )

    return [
        RenderedFile("edge/conf.d/default.conf", "openresty-config", SERVICE.role, CONFIG_PATH, conf),
        lua(LUA_MODULE, "openresty-lua"),
        lua(SETTINGS_FILE, "openresty-edge-settings", document=document),
    ]


def plan(ctx: Context) -> ServicePlan:
    """The key, when the stack supplies one (a secret), is all the edge reads from the environment."""
    key = auth_variable(ctx.deployment)
    # Uploads and envs force replacement: the edge restarts exactly when its files or key change.
    return ServicePlan(
        command=COMMAND,
        env=(key,) if key else (),
        files=tuple(config_files(ctx.deployment, ctx.reach(gateway.SERVICE))),
        healthcheck=HEALTHCHECK,
        waits_for=(gateway.SERVICE.role,),
        # The bookworm image has neither curl nor wget; bash is Essential in Debian.
        image_tools=frozenset({"bash"}),
    )


SERVICE = ServiceDefinition(
    role="edge",
    component="Edge",
    plan=plan,
    description="The compatibility edge in front of the gateway.",
    spec=EdgeSpec,
    container="tensorzero-edge",
    alias=gateway.ALIAS,  # the seed's hostname for the gateway: callers reach the edge
    port=PORT,
    front=Front(gateway.SERVICE.role, GATEWAY_BEHIND_EDGE_ALIAS),
    monitoring=lambda spec: Monitoring(scrapes=(Scrape(EDGE_JOB, OWN_METRICS_PATH),)),
    replicated=True,
)
