"""The compatibility edge: OpenResty in front of the gateway, so the seed's documented calls work unchanged.

PMOVES services `POST /v1/chat/completions` with `"model": "claude-sonnet-4-5"`, send
`Authorization: Bearer $TENSORZERO_API_KEY` and graph `tensorzero_request_duration_seconds`;
the real gateway serves `/openai/v1/...`, wants `tensorzero::model_name::KEY`, ignores the key
and exports no such metric. The edge, configured only by the files rendered here, closes that gap:
it takes the gateway's alias and public port, rewrites the two OpenAI routes and bare model names,
checks the key, and counts every request. Everything else passes through.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

from pydantic import Field

from components.core.monitoring import EDGE_DURATION, EDGE_JOB, EDGE_REQUESTS
from components.core.names import METRICS_PATH, TENSORZERO_NAME_PREFIX
from components.core.plans import Endpoint, Monitoring, Scrape, ServicePlan
from components.core.render import RenderedFile, render
from components.core.types import Identifier, ImageRef, NginxSize, Port
from components.model.environment import Front, ServiceDefinition
from components.model.settings import ServiceSpec
from components.services import edge_access, gateway, openresty
from components.services.edge_access import EdgeAccess
from components.services.edge_models import name_map, served_models

if TYPE_CHECKING:
    from components.model.context import Context
    from components.model.resolved import ResolvedStack

PORT = 3000  # the API, plain HTTP: what containers on the stack's network call
UI_PORT = 4000  # the UI behind its login (the UI's own port number)
TLS_PORTS = {PORT: 3443, UI_PORT: 4443}  # with TLS on, the published ports map to these HTTPS listeners
METRICS_PORT = 9145  # the edge's own metrics for Prometheus: never published, open on the stack's own network only
# No PMOVES caller needs the metrics port (PMOVES's Prometheus scrapes the gateway's /metrics at the API port): on
# Docker, where the edge joins PMOVES's networks too, it answers only on the stack's, at this alias's addresses.
OWN_NETWORK_PORTS = (METRICS_PORT,)
OWN_NETWORK_ALIAS = "tensorzero-edge-internal"  # the edge's name on the stack's own network alone
GATEWAY_BEHIND_EDGE_ALIAS = "tensorzero-gateway-core"  # where the real gateway answers once the edge fronts it
OWN_METRICS_PATH = "/edge/metrics"  # the edge's own Prometheus text; /metrics stays the gateway's
HEALTH_PATH = "/edge/health"  # answered by the edge itself: its healthcheck
PREFIX = "/usr/local/openresty/nginx"  # the OpenResty image's nginx prefix (-p)
CONFIG_PATH = "/etc/nginx/conf.d/default.conf"  # included inside the image's http block
LUA_DIR = "pmoves-edge"  # under PREFIX: the edge's Lua module and settings
UI = "ui"  # fronted when edge.serve_ui: its published port is the edge's, behind a login
UI_HEALTH_PATH = "/health"  # the UI's own liveness, open: it says nothing about what the UI holds
UPSTREAM = "pmoves_gateway"  # the upstream block whose peer the Lua balancer picks
RESOLVE_EVERY_S = 0.5  # how often the gateway's alias is resolved again (a swap adds and removes a container)
AVOID_FAILED_S = 3  # a gateway a connection to failed is skipped this long (draining, or gone before DNS says so)
UPSTREAM_TRIES = 3  # a connection that fails before an answer is tried on the next gateway...
RETRY_WINDOW_S = 6  # ...within this many seconds of the request's start (two connect timeouts and then some)
KEEPALIVE_CONNECTIONS = 64  # idle connections to the gateway(s) each worker keeps
# A streamed answer goes over a fresh connection, never a pooled one. On a kept-alive connection Linux delays
# the edge's ACKs (up to 40 ms: it waits to piggyback them on the next request), and the gateway writes without
# TCP_NODELAY, so Nagle holds its last small write (the stream's end) until that ACK: every stream ended 40 ms
# late (tcpdump in docs/edge.md). A fresh connection ACKs at once; it costs one loopback/LAN connect per stream.
STREAM_UPSTREAM = "pmoves_gateway_fresh"
# Each worker counts its requests in its own memory and adds them to the shared metrics this often, and before
# it serves a scrape: a shared-dict update per request cost more than all the rest of the edge's logging.
METRICS_FLUSH_S = 1
ACCESS_LOG_BUFFER = "buffer=64k flush=1s"  # nginx writes the access log when 64k are held, or a second has passed


class EdgeSpec(ServiceSpec, EdgeAccess):
    """The compatibility edge: the seed's API (`/v1/...`, bare model names, bearer keys) in front of the gateway."""

    enabled: bool = Field(True, description="Put the compatibility edge in front of the gateway.")
    image: ImageRef = Field(openresty.IMAGE, description="Pinned OpenResty image.")
    host: Identifier = Field("main", description="Key in `hosts`; must be the gateway's host.")
    port: Optional[Port] = Field(
        None,
        description="Host port the edge publishes. Null takes gateway.port, and the gateway itself is not published.",
    )
    client_max_body_size: NginxSize = Field(
        "32m", description="Largest request body accepted (nginx size: 512k, 32m; at most 1g)."
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
# Liveness and health answer without a key, as the seed's health checks expect; each is forwarded to that
# exact upstream path (never the raw URI: `/health%2F..%2Finference` must not reach the gateway keyless).
OPEN_PATHS = (gateway.HEALTH_PATH, gateway.STATUS_PATH)
# Routes named in the metrics; every other path is counted as route "other" (bounded label values).
COUNTED_ROUTES = (*(r.path for r in MODEL_ROUTES), *OPEN_PATHS, METRICS_PATH, "/inference", "/feedback")

# From an embedding (tens of ms) to a long unstreamed generation (minutes).
DURATION_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 60, 120, 300)
METRICS_DICT = "pmoves_edge_metrics"
METRICS_DICT_SIZE = "4m"  # a few hundred bytes per series; models x routes x status classes x buckets
LIMITS_DICT = "pmoves_edge_limits"
LIMITS_DICT_SIZE = "1m"  # one counter per caller and minute
CLIENT_BODY_BUFFER_SIZE = "1m"  # larger bodies spool to the container's temp dir, read back for the rewrite
CONNECT_TIMEOUT_S = 2  # a gateway that does not accept within this is skipped (a lost SYN is resent after 1 s)
RESOLVER_VALID = "10s"  # the UI's address, resolved by nginx itself
# Every error nginx itself can answer a caller with, answered in the OpenAI error shape instead of its HTML page.
ERROR_MESSAGES = {
    400: "malformed request",
    405: "method not allowed here",
    408: "the request was not received in time",
    411: "a request body needs its length",
    414: "request line too long",
    500: "the edge failed to handle the request",
}
ERROR_STATUSES = (413, 502, 503, 504)
# Errors met while reading the request line can go to a location by URI only (not a named one).
REQUEST_ERROR_PATH = "/.pmoves-edge/error"
SETTINGS_FILE = "settings.json"
LUA_MODULE = "pmoves_edge.lua"

HEALTHCHECK = openresty.healthcheck(PORT, HEALTH_PATH)


def command(deployment: ResolvedStack) -> tuple[str, ...]:
    """The image's command plus nginx's `env` directives (main level, which conf.d cannot reach): nginx clears
    every other variable from its workers."""
    keep = "".join(f" env {name};" for name in edge_access.env_names(deployment))
    return (openresty.BINARY, "-g", f"daemon off; {openresty.PID}{keep}")


def own_network_alias(spec) -> Optional[str]:
    """Where the edge's metrics server checks a connection's local address: on Docker, when the edge joins networks
    beyond the stack's (nginx listens on every address; Docker assigns them at run time). On a cluster a
    NetworkPolicy limits it; alone on the stack's network, it needs no check (and no DNS)."""
    return OWN_NETWORK_ALIAS if spec.kubernetes is None and spec.edge.networks else None


def settings(deployment: ResolvedStack, upstream: Endpoint) -> dict:
    """Every decision the Lua module carries out; it holds no key, only which callers' keys to read."""
    spec = deployment.spec.edge
    models = served_models(deployment)
    maps = {kind: name_map(served) for kind, served in models.items()}
    return {
        "access": edge_access.settings(deployment),
        "upstream": {
            "host": upstream.host,
            "port": upstream.port,
            "resolver": deployment.spec.dns_resolver,
            "resolve_every_s": RESOLVE_EVERY_S,
            "avoid_failed_s": AVOID_FAILED_S,
            "tries": UPSTREAM_TRIES,
            "stream_name": STREAM_UPSTREAM,
        },
        "own_network_alias": own_network_alias(deployment.spec),
        "limits_dict": LIMITS_DICT,
        "passthrough_prefix": TENSORZERO_NAME_PREFIX,
        "models": {kind: names for kind, (names, _) in maps.items()},
        "ambiguous": {kind: ambiguous for kind, (_, ambiguous) in maps.items()},
        "targets": {kind: {m.key: m.target for m in served} for kind, served in models.items()},
        "labels": {kind: {name: m.key for m in served for name in m.accepted} for kind, served in models.items()},
        "served": {kind: sorted(m.key for m in served) for kind, served in models.items()},
        "errors": {
            **{str(status): message for status, message in ERROR_MESSAGES.items()},
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
            "requests_help": "Requests answered by the edge, by route, HTTP status and caller (the key's name).",
            "buckets": list(DURATION_BUCKETS),
            "flush_every_s": METRICS_FLUSH_S,
            "routes": list(COUNTED_ROUTES),
            "own_paths": [HEALTH_PATH, OWN_METRICS_PATH],
        },
    }


@dataclass(frozen=True)
class Layout:
    """Where the edge's servers listen and find their TLS files; tests use free loopback ports and a temp dir."""

    api: str = str(PORT)
    ui: str = str(UI_PORT)
    metrics: str = str(METRICS_PORT)
    api_tls: str = str(TLS_PORTS[PORT])
    ui_tls: str = str(TLS_PORTS[UI_PORT])
    api_published: Optional[str] = None  # the gateway's published port inside the network too; None: from the stack
    tls_certificate: str = edge_access.TLS_CERTIFICATE
    tls_key: str = edge_access.TLS_KEY


def config_files(
    deployment: ResolvedStack, upstream: Endpoint, ui: Optional[Endpoint] = None, *, layout: Layout = Layout()
) -> list[RenderedFile]:
    """conf.d/default.conf (inside the image's http block), the Lua module and its settings.

    `ui` is where the UI answers when the edge serves it behind its login.
    """
    # nginx and the Lua module resolve these themselves, with no search domain: a Service's full name on a cluster.
    upstream, ui = deployment.spec.qualified(upstream), ui and deployment.spec.qualified(ui)
    spec = deployment.spec.edge
    published = layout.api_published or inside_published_port(deployment.spec)
    lua_dir = f"{PREFIX}/{LUA_DIR}"
    conf = render(
        "edge/default.conf.j2",
        stack=deployment.stack,
        lua_dir=LUA_DIR,
        settings_file=SETTINGS_FILE,
        metrics_dict=METRICS_DICT,
        metrics_dict_size=METRICS_DICT_SIZE,
        limits_dict=LIMITS_DICT,
        limits_dict_size=LIMITS_DICT_SIZE,
        resolver=deployment.spec.dns_resolver,
        resolver_valid=RESOLVER_VALID,
        listens=layout,
        api_published=published,
        inside_ports=inside_ports(deployment.spec, layout, published),
        upstream_name=UPSTREAM,
        stream_upstream_name=STREAM_UPSTREAM,
        access_log_buffer=ACCESS_LOG_BUFFER,
        keepalive=KEEPALIVE_CONNECTIONS,
        tries=UPSTREAM_TRIES,
        retry_window_s=RETRY_WINDOW_S,
        ui=ui if edge_access.serves_ui(deployment.spec) else None,
        ui_health=UI_HEALTH_PATH,
        tls=spec.tls.enabled,
        tls_certificate=layout.tls_certificate,
        tls_key=layout.tls_key,
        tls_protocols=" ".join(edge_access.TLS_PROTOCOLS),
        tls_ciphers=edge_access.TLS_CIPHERS,
        client_max_body_size=spec.client_max_body_size,
        client_body_buffer_size=CLIENT_BODY_BUFFER_SIZE,
        connect_timeout_s=CONNECT_TIMEOUT_S,
        upstream_timeout_s=spec.upstream_timeout_s,
        error_statuses=ERROR_STATUSES,
        request_error_statuses=tuple(ERROR_MESSAGES),
        request_error_path=REQUEST_ERROR_PATH,
        health_path=HEALTH_PATH,
        metrics_path=OWN_METRICS_PATH,
        metrics_own_network=own_network_alias(deployment.spec) is not None,
        gateway_metrics_path=METRICS_PATH,
        open_paths=OPEN_PATHS,
        model_routes=MODEL_ROUTES,
    )
    document = json.dumps(settings(deployment, upstream), indent=2, sort_keys=True)

    def lua(file: str, kind: str, **values) -> RenderedFile:
        return RenderedFile(
            f"edge/{LUA_DIR}/{file}", kind, SERVICE.role, f"{lua_dir}/{file}", render(f"edge/{file}.j2", **values)
        )

    return [
        RenderedFile("edge/conf.d/default.conf", "openresty-config", SERVICE.role, CONFIG_PATH, conf),
        lua(LUA_MODULE, "openresty-lua"),
        lua(SETTINGS_FILE, "openresty-edge-settings", document=document),
    ]


def inside_published_port(spec) -> Optional[str]:
    """`tensorzero-gateway:<gateway.port>` (the seed's 3030) answers in the network as on the host's loopback."""
    port = spec.edge.port or spec.gateway.port
    taken = {PORT, UI_PORT, METRICS_PORT, *TLS_PORTS.values()}
    return str(port) if port is not None and port not in taken else None


def inside_ports(spec, layout: Layout, published: Optional[str]) -> list[str]:
    """Ports of the plain API listeners when only the stack's networks and the host's loopback reach them: with
    TLS on (the outside is sent to HTTPS) or the edge published on loopback with nothing forwarding the outside
    to it (`tls_terminated_by`). There, monitoring needs no key. On a cluster the ingress forwards the outside to
    the plain listener: none is inside."""
    loopback = ipaddress.ip_address(spec.bind_address("edge")).is_loopback and not spec.edge.tls_terminated_by
    if spec.kubernetes is not None or not (spec.edge.tls.enabled or loopback):
        return []
    return [listen.rsplit(":", 1)[-1] for listen in (layout.api, published) if listen]


def faces_notice(spec) -> tuple[str, ...]:
    """All addresses include loopback: the host's own callers get HTTPS there too, not the seed's plain URL."""
    bind = spec.bind_address("edge")
    if not spec.edge.tls.enabled or not ipaddress.ip_address(bind).is_unspecified or spec.kubernetes is not None:
        return ()
    port = spec.edge.port or spec.gateway.port
    return (
        f"edge: published with TLS on {bind}, which takes loopback too: http://localhost:{port} answers a JSON 400 "
        f"(use https); set edge.bind_address to the host's own address to keep plain HTTP on loopback",
    )


def plan(ctx: Context) -> ServicePlan:
    """The callers' keys and the UI's password (secrets) are all the edge reads from the environment."""
    deployment = ctx.deployment
    ui_endpoint = ctx.reach(UI) if edge_access.serves_ui(ctx.spec) else None
    secret_files, host_paths = edge_access.tls_files(ctx)
    own_network = own_network_alias(ctx.spec)
    # Told at validation, not discovered by a caller as a 404.
    for kind, served in served_models(deployment).items():
        for name, keys in name_map(served)[1].items():
            ctx.notice(
                f"edge: the bare {kind} model name '{name}' names {len(keys)} models; callers must send one of "
                f"{', '.join(keys)} instead (the edge answers '{name}' with a 404 listing them)"
            )
    # Uploads and envs force replacement: the edge restarts exactly when its files or keys change.
    return ServicePlan(
        hardening=openresty.WITHOUT_ROOT,  # Hardening exception: on Docker, its master starts as root
        command=command(deployment),
        env=edge_access.env(ctx),
        files=tuple(config_files(deployment, ctx.reach(gateway.SERVICE), ui_endpoint)),
        secret_files=secret_files,
        host_paths=host_paths,
        healthcheck=HEALTHCHECK,
        waits_for=(gateway.SERVICE.role, UI),
        image_tools=openresty.TOOLS,
        authentication=edge_access.authentication(deployment),
        awaiting_credentials=bool(ctx.section.keys) and not edge_access.callers(deployment),
        outputs=edge_access.outputs(ctx),
        notices=edge_access.tls_notices(ctx.spec) + faces_notice(ctx.spec),
        own_network_aliases=(own_network,) if own_network else (),
        own_network_ports=OWN_NETWORK_PORTS if own_network else (),
    )


def published_as(spec, port: int) -> tuple[int, str]:
    """With TLS on, a published port reaches the HTTPS listener beside the plain one (which stays internal)."""
    return (TLS_PORTS[port], "https") if spec.edge.tls.enabled else (port, "http")


SERVICE = ServiceDefinition(
    role="edge",
    component="Edge",
    plan=plan,
    description="The compatibility edge in front of the gateway (and the UI, behind a login).",
    spec=EdgeSpec,
    container="tensorzero-edge",
    alias=gateway.ALIAS,  # the seed's hostname for the gateway: callers reach the edge
    port=PORT,
    fronts=(
        Front(gateway.SERVICE.role, GATEWAY_BEHIND_EDGE_ALIAS),
        # The UI keeps its hostname (Prometheus probes it); only its published port is the edge's.
        Front(UI, None, UI_PORT, when=lambda spec: spec.edge.serve_ui),
    ),
    published_as=published_as,
    loopback_plain=True,
    checks=edge_access.tls_checks,
    # Scraped at the name only the stack's network has: an address on PMOVES's networks answers no metrics.
    monitoring=lambda spec: Monitoring(
        scrapes=(Scrape(EDGE_JOB, OWN_METRICS_PATH, port=METRICS_PORT, host=own_network_alias(spec)),)
    ),
    replicated=True,
    exposure_fix="supply a key for at least one caller in edge.keys (each one's variable, env layer or stack secret)",
)
