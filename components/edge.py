"""The compatibility edge: OpenResty in front of the gateway, so the seed's documented calls work unchanged.

PMOVES services `POST /v1/chat/completions` with `"model": "claude-sonnet-4-5"`, send
`Authorization: Bearer $TENSORZERO_API_KEY` and graph `tensorzero_request_duration_seconds`;
the real gateway serves `/openai/v1/...`, wants `tensorzero::model_name::KEY`, ignores the key
and exports no such metric. The edge, configured only by the files rendered here, closes that gap:
it takes the gateway's alias and public port, rewrites the two OpenAI routes and bare model names,
checks the key, and counts every request. Everything else passes through.
"""

import json
from collections import defaultdict
from dataclasses import dataclass
from typing import Optional

import pulumi

from .container import ContainerPlan, ServiceComponent, served_variables
from .envfiles import Variable
from .host import Placement
from .loader import Deployment
from .names import (
    CHAT_MODEL_PREFIX,
    DOCKER_DNS,
    EDGE,
    EDGE_API_KEY_ENV,
    EDGE_CONFIG_PATH,
    EDGE_HEALTH_PATH,
    EDGE_LUA_DIR,
    EDGE_METRICS_PATH,
    EDGE_PREFIX,
    EMBEDDING_MODEL_PREFIX,
    FUNCTION_PREFIX,
    GATEWAY_STATUS_PATH,
    METRICS_PATH,
    TENSORZERO_NAME_PREFIX,
    TYPE_PREFIX,
)
from .render import RenderedFile, render
from .spec import EdgeSpec, Endpoint


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
OPEN_PATHS = ("/health", GATEWAY_STATUS_PATH, METRICS_PATH)
# Routes named in the metrics; every other path is counted as route "other" (bounded label values).
COUNTED_ROUTES = (*(r.path for r in MODEL_ROUTES), *OPEN_PATHS, "/inference", "/feedback")

DURATION_METRIC = "tensorzero_request_duration_seconds"
REQUESTS_METRIC = "tensorzero_http_requests_total"
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
COMMAND = ("/usr/bin/openresty", "-g", f"daemon off; env {EDGE_API_KEY_ENV};")
# The OpenResty bookworm image has neither curl nor wget; bash (Essential in Debian) speaks TCP itself.
HEALTHCHECK = (
    "bash",
    "-c",
    f"exec 3<>/dev/tcp/127.0.0.1/{EDGE.port} && printf 'GET {EDGE_HEALTH_PATH} HTTP/1.0\\r\\n\\r\\n' >&3 "
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
    return Variable(EDGE_API_KEY_ENV, found.value, found.source, True)


def settings(deployment: Deployment) -> dict:
    """Every decision the Lua module carries out; it holds no key, only whether one is required."""
    spec = deployment.spec.edge
    models = served_models(deployment)
    maps = {kind: name_map(served) for kind, served in models.items()}
    return {
        "auth": {"required": auth_variable(deployment) is not None, "env": EDGE_API_KEY_ENV},
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
            "duration": DURATION_METRIC,
            "duration_help": "Time from the edge receiving a request to its last byte sent, "
            "by catalog model, route and status class.",
            "requests": REQUESTS_METRIC,
            "requests_help": "Requests answered by the edge, by route and HTTP status.",
            "buckets": list(DURATION_BUCKETS),
            "routes": list(COUNTED_ROUTES),
            "own_paths": [EDGE_HEALTH_PATH, EDGE_METRICS_PATH],
        },
    }


def config_files(deployment: Deployment, upstream: Endpoint, *, listen: str = str(EDGE.port)) -> list[RenderedFile]:
    """conf.d/default.conf (inside the image's http block), the Lua module and its settings.

    `listen` is the nginx listen address; tests bind a free loopback port, the container port 3000.
    """
    spec = deployment.spec.edge
    lua_dir = f"{EDGE_PREFIX}/{EDGE_LUA_DIR}"
    conf = render(
        "edge/default.conf.j2",
        stack=deployment.stack,
        lua_dir=EDGE_LUA_DIR,
        settings_file=SETTINGS_FILE,
        metrics_dict=METRICS_DICT,
        metrics_dict_size=METRICS_DICT_SIZE,
        resolver=DOCKER_DNS,
        resolver_valid=RESOLVER_VALID,
        listen=listen,
        upstream=upstream,
        client_max_body_size=spec.client_max_body_size,
        client_body_buffer_size=CLIENT_BODY_BUFFER_SIZE,
        connect_timeout_s=CONNECT_TIMEOUT_S,
        upstream_timeout_s=spec.upstream_timeout_s,
        error_statuses=ERROR_STATUSES,
        health_path=EDGE_HEALTH_PATH,
        metrics_path=EDGE_METRICS_PATH,
        open_paths=OPEN_PATHS,
        model_routes=MODEL_ROUTES,
    )
    document = json.dumps(settings(deployment), indent=2, sort_keys=True)

    def lua(file: str, kind: str, **values) -> RenderedFile:
        return RenderedFile(
            f"edge/{EDGE_LUA_DIR}/{file}", kind, EDGE.role, f"{lua_dir}/{file}", render(f"edge/{file}.j2", **values)
        )

    return [
        RenderedFile("edge/conf.d/default.conf", "openresty-config", EDGE.role, EDGE_CONFIG_PATH, conf),
        lua(LUA_MODULE, "openresty-lua"),
        lua(SETTINGS_FILE, "openresty-edge-settings", document=document),
    ]


def environment(deployment: Deployment) -> list[Variable]:
    """The key, when the stack supplies one (a secret); nothing else is read from the environment."""
    key = auth_variable(deployment)
    return [*([key] if key else []), *served_variables(deployment.spec.edge, deployment.variables)]


class Edge(ServiceComponent):
    def __init__(
        self,
        name: str,
        spec: EdgeSpec,
        placement: Placement,
        *,
        env: list[Variable],
        files: list[RenderedFile],
        depends_on: list[pulumi.Resource],
        opts: Optional[pulumi.ResourceOptions] = None,
    ):
        super().__init__(f"{TYPE_PREFIX}:Edge", name, None, opts)
        # Uploads and envs force replacement: the edge restarts exactly when its files or key change.
        self.run(
            name,
            EDGE,
            spec,
            placement,
            ContainerPlan(env=env, healthcheck=HEALTHCHECK, command=COMMAND, files=files, depends_on=depends_on),
        )
        self.register_outputs({"container": self.container.name})
