"""The edge's rendered files under a real nginx: what tests/test_edge*.py and benchmarks/bench_edge.py share.

Debian's nginx 1.22 with libnginx-mod-http-lua, lua-resty-core and lua-cjson (the modules OpenResty ships)
runs the exact files the package mounts into OpenResty, inside a main nginx.conf shaped like the OpenResty
image's own (conf.d included in its http block) and with the `-g` directives of the edge's container command.
Where the `tensorzero` package serves no route here (/health, /status, /metrics, /inference, /feedback), a
recording HTTP server is the gateway's stand-in, named so below.
"""

import http.client
import json
import os
import shutil
import socket
import socketserver
import struct
import subprocess
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import httpx
import pytest
from conftest import (
    MINIMAL_ENV,
    LocalServer,
    OpenAIMock,
    free_ports,
    make_project,
    minimal_config,
    openai_routes,
)

from components.core.plans import Endpoint
from components.model.settings import DOCKER_DNS
from components.services import edge, gateway, openresty
from components.services.edge import SERVICE as EDGE
from components.stack.loader import load

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
LUA_MODULES = ("/usr/lib/nginx/modules/ndk_http_module.so", "/usr/lib/nginx/modules/ngx_http_lua_module.so")
HOLD_S = 10.0  # how long the streaming provider holds its second chunk for the client to see the first

# The OpenResty image's nginx.conf (worker_processes 1, conf.d inside http), with Debian's Lua module
# loaded and every path inside the test's prefix; the edge's files are included unchanged.
MAIN_CONF = """{load_modules}
{user}
worker_processes 1;
error_log {prefix}/logs/error.log info;
events {{
    worker_connections 1024;
}}
http {{
    client_body_temp_path {prefix}/temp/body;
    proxy_temp_path {prefix}/temp/proxy;
    fastcgi_temp_path {prefix}/temp/fastcgi;
    uwsgi_temp_path {prefix}/temp/uwsgi;
    scgi_temp_path {prefix}/temp/scgi;
    keepalive_timeout 65;
    include {prefix}/conf.d/*.conf;
}}
"""

HELLO = [{"role": "user", "content": "Hello"}]


def place(files, prefix: Path) -> Path:
    """Lay the rendered files out as the image sees them (conf.d, the nginx prefix); return the main conf."""
    for rendered in files:
        if rendered.mount.startswith(f"{edge.PREFIX}/"):
            target = prefix / rendered.mount.removeprefix(f"{edge.PREFIX}/")
        else:
            assert rendered.mount == edge.CONFIG_PATH
            target = prefix / "conf.d" / PurePosixPath(rendered.mount).name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(rendered.content)
    (prefix / "logs").mkdir(exist_ok=True)
    (prefix / "temp").mkdir(exist_ok=True)
    main = prefix / "nginx.conf"
    main.write_text(
        MAIN_CONF.format(
            load_modules="\n".join(f"load_module {module};" for module in LUA_MODULES),
            # Workers of a root master become `nobody`, who cannot read pytest's private temp dirs.
            user="user root root;" if os.geteuid() == 0 else "",
            prefix=prefix,
        )
    )
    return main


def post_as_sent(port: int, path: str, headers: dict, payload: dict) -> tuple[int, dict, dict]:
    """POST through the standard library, which sends header values httpx refuses (the seed's `Bearer `)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("POST", path, json.dumps(payload), {"Content-Type": "application/json", **headers})
        answer = connection.getresponse()
        return answer.status, {k.lower(): v for k, v in answer.getheaders()}, json.loads(answer.read())
    finally:
        connection.close()


def global_directives(deployment) -> str:
    """The `-g` argument of the edge's container command, as the plan gives it."""
    command = edge.command(deployment)
    return command[command.index("-g") + 1]


def nginx_command(prefix: Path, deployment, *extra: str) -> list[str]:
    # The command's pid file (/tmp in the container) moves inside the test's prefix, as every other path here.
    directives = global_directives(deployment).replace(openresty.PID, f"pid {prefix}/nginx.pid;")
    assert directives != global_directives(deployment)
    return [NGINX, "-p", f"{prefix}/", "-c", str(prefix / "nginx.conf"), "-g", directives, *extra]


def nginx_t(files, prefix: Path, deployment) -> subprocess.CompletedProcess:
    place(files, prefix)
    return subprocess.run(
        nginx_command(prefix, deployment, "-t"), capture_output=True, text=True, env={"PATH": os.environ["PATH"]}
    )


@dataclass
class RunningEdge:
    url: str
    port: int
    prefix: Path
    layout: edge.Layout

    def log(self, name: str) -> str:
        return (self.prefix / "logs" / name).read_text()

    def url_of(self, listen: str, scheme: str = "http") -> str:
        return f"{scheme}://{listen}"


def container_env(deployment) -> dict[str, str]:
    """The edge container's environment as the plan gives it (keys, the UI's password)."""
    return {variable.name: variable.value for variable in deployment.plans[EDGE.role].env}


def local_layout(prefix: Path) -> edge.Layout:
    loopback = [f"127.0.0.1:{port}" for port in free_ports(6)]
    return edge.Layout(
        *loopback, tls_certificate=str(prefix / "tls" / "cert.pem"), tls_key=str(prefix / "tls" / "key.pem")
    )


def write_tls(prefix: Path, certificate: str, key: str) -> None:
    (prefix / "tls").mkdir(parents=True, exist_ok=True)
    (prefix / "tls" / "cert.pem").write_text(certificate)
    (prefix / "tls" / "key.pem").write_text(key)


@contextmanager
def running_edge(
    deployment,
    upstream: Endpoint,
    prefix: Path,
    env: dict[str, str] | None = None,
    ui: Endpoint | None = None,
    tls: tuple[str, str] | None = None,
):
    """The edge's rendered files under a real nginx on free loopback ports; `env` is its container environment
    (default: the plan's), `tls` the (certificate, key) its secret uploads would hold."""
    layout = local_layout(prefix)
    files = edge.config_files(deployment, upstream, ui, layout=layout)
    if tls:
        write_tls(prefix, *tls)
    checked = nginx_t(files, prefix, deployment)
    assert checked.returncode == 0, checked.stderr
    variables = container_env(deployment) if env is None else env
    process = subprocess.Popen(
        nginx_command(prefix, deployment),
        env={"PATH": os.environ["PATH"], **variables},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    url = f"http://{layout.api}"
    try:
        deadline = time.monotonic() + 10
        while True:
            assert process.poll() is None, f"nginx exited: {(prefix / 'logs' / 'error.log').read_text()}"
            try:
                if httpx.get(url + edge.HEALTH_PATH, timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "nginx did not answer its health path"
            time.sleep(0.05)
        yield RunningEdge(url, int(layout.api.rsplit(":", 1)[1]), prefix, layout)
    finally:
        process.terminate()
        process.wait(timeout=10)


class DockerResolver:
    """STAND-IN for Docker's embedded resolver, at its address (127.0.0.11, port 53: root only) on this machine's
    loopback: answers A queries for the names in `answers` (changed by the test as it runs), NXDOMAIN otherwise.
    The rendered edge asks it as it asks Docker's, unchanged."""

    def __init__(self):
        self.answers: dict[str, list[str]] = {}
        resolver = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                query, sock = self.request
                end = query.index(b"\0", 12) + 5  # the question: the name's labels, its end, type and class
                labels, pos = [], 12
                while query[pos]:
                    labels.append(query[pos + 1 : pos + 1 + query[pos]].decode())
                    pos += 1 + query[pos]
                found = resolver.answers.get(".".join(labels), [])
                flags = 0x8180 if found else 0x8183
                header = query[:2] + struct.pack(">HHHHH", flags, 1, len(found), 0, 0)
                records = b"".join(
                    struct.pack(">HHHIH", 0xC00C, 1, 1, 0, 4) + socket.inet_aton(address) for address in found
                )
                sock.sendto(header + query[12:end] + records, self.client_address)

        self.server = socketserver.ThreadingUDPServer((DOCKER_DNS, 53), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def docker_resolver():
    if os.geteuid() != 0:
        pytest.skip("the stand-in for Docker's resolver listens on port 53: root only")
    resolver = DockerResolver()
    yield resolver
    resolver.close()


class StandIn(LocalServer):
    """Stand-in for the gateway routes the `tensorzero` package does not serve here: records every request."""

    HELD = "/held"  # a request to this path is answered only once `release` is set (when there is one)

    def __init__(self):
        self.requests: list[dict] = []
        self.release: threading.Event | None = None
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def answer(self):
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                stand_in.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": dict(self.headers),
                        "body": body,
                        "peer": self.client_address,  # the edge's side of the connection: pooled or fresh
                    }
                )
                if self.path == StandIn.HELD and stand_in.release is not None:
                    stand_in.release.wait(30)
                payload = json.dumps({"stand_in": True, "path": self.path}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = answer

            def log_message(self, *args):
                pass

        super().__init__(Handler)
        self.endpoint = Endpoint("127.0.0.1", self.port)


class StreamingProvider(LocalServer):
    """An OpenAI-compatible provider that streams its first chunk, then holds the rest until released."""

    def __init__(self):
        self.released = threading.Event()
        self.held: list[bool] = []  # per stream: True when the client released it before HOLD_S ran out
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.end_headers()  # HTTP/1.0: the stream ends when the connection closes
                self.event(body["model"], {"role": "assistant", "content": "first "})
                provider.held.append(provider.released.wait(HOLD_S))
                self.event(body["model"], {"content": "second"})
                self.event(body["model"], {}, "stop")
                usage = {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}
                self.send({"id": "s", "object": "chat.completion.chunk", "created": 1, "model": body["model"],
                           "choices": [], "usage": usage})  # fmt: skip
                self.wfile.write(b"data: [DONE]\n\n")

            def event(self, model, delta, finish=None):
                choice = {"index": 0, "delta": delta, "finish_reason": finish}
                self.send({"id": "s", "object": "chat.completion.chunk", "created": 1, "model": model,
                           "choices": [choice]})  # fmt: skip

            def send(self, data):
                self.wfile.write(b"data: " + json.dumps(data).encode() + b"\n\n")
                self.wfile.flush()

            def log_message(self, *args):
                pass

        super().__init__(Handler)
        self.url = f"http://127.0.0.1:{self.port}/v1"

    def close(self):
        self.released.set()
        super().close()


def edge_catalog(mock: OpenAIMock, streamer: StreamingProvider) -> str:
    return f"""
[providers.mock]
base_url = "{mock.url}"
api_key = "none"

[providers.streamer]
base_url = "{streamer.url}"
api_key = "none"

[providers.ollama]
base_url = "{mock.url.removesuffix("/v1")}"

[models.claude_sonnet]
provider = "mock"
model = "claude-sonnet-4-5"

[models.gpt_4o]
provider = "mock"
model = "gpt-4o"
temperature = 0.7
max_tokens = 1000

[models.streaming_chat]
provider = "streamer"
model = "streamer-model"

# Two keys on one upstream name: that name is ambiguous, each key still works.
[models.fast_a]
provider = "mock"
model = "shared-model"

[models.fast_b]
provider = "mock"
model = "shared-model"

[models.gemma_embed_local]
provider = "ollama"
model = "gemma:2b"
type = "embedding"
"""


# Callers of the rig's stack: three supplied in the keyed env, `revoked` listed but not supplied, `limited`
# with a rate limit. The keys are canaries: no log, file or output may hold them.
KEYS = {
    "pmoves": "edge-canary-key-6a0f",
    "hirag": "edge-canary-key-hirag-1c44",
    "agent_zero": "edge-canary-key-agent-93be",
    "limited": "edge-canary-key-limited-5d20",
}
API_KEY = KEYS["pmoves"]
REVOKED_KEY = "edge-canary-key-revoked-7e61"
LIMIT_PER_MINUTE = 3
UI_PASSWORD = "edge-canary-ui-pw-2f8a"
CALLERS = {
    "pmoves": "TENSORZERO_API_KEY",
    "hirag": "HIRAG_TENSORZERO_KEY",
    "agent_zero": "AGENT_ZERO_TENSORZERO_KEY",
    "revoked": "REVOKED_TENSORZERO_KEY",
    "limited": {"var": "LIMITED_TENSORZERO_KEY", "requests_per_minute": LIMIT_PER_MINUTE},
}
KEYED_ENV = (
    f"TENSORZERO_API_KEY={KEYS['pmoves']}\nHIRAG_TENSORZERO_KEY={KEYS['hirag']}\n"
    f"AGENT_ZERO_TENSORZERO_KEY={KEYS['agent_zero']}\nLIMITED_TENSORZERO_KEY={KEYS['limited']}\n"
    f"TENSORZERO_UI_PASSWORD={UI_PASSWORD}\n"
)


@dataclass
class Rig:
    mock: OpenAIMock
    streamer: StreamingProvider
    open: object  # deployment whose env supplies no key: the edge asks for none
    keyed: object  # deployment whose env supplies every caller's key but `revoked`'s
    gateway_routes: Endpoint  # TensorZero's real /openai/v1 routes


def build_rig(tmp_path_factory):
    """The rig's deployments and TensorZero's real routes (a generator: a module fixture yields from it)."""
    mock, streamer = OpenAIMock(), StreamingProvider()
    root = tmp_path_factory.mktemp("edge-rig")
    project = make_project(
        root / "project",
        # Its tests send many wrong keys from 127.0.0.1 on purpose: the throttle of failures is tested apart.
        minimal_config(ollama={"enabled": False}, edge={"keys": CALLERS, "failures_per_minute": 1000}),
        {
            "catalog.toml": edge_catalog(mock, streamer),
            "env/env.shared": MINIMAL_ENV,
            "env-keyed/env.shared": MINIMAL_ENV + KEYED_ENV,
        },
    )
    deployment = load("test", project_dir=project)
    with pytest.MonkeyPatch.context() as patch:
        served = openai_routes(gateway.config_file(deployment).content, root, patch, {})
    address = urlsplit(str(served.base_url))
    yield Rig(
        mock,
        streamer,
        deployment,
        load("test", project_dir=project, env_dir=str(project / "env-keyed")),
        Endpoint(address.hostname, address.port),
    )
    mock.close()
    streamer.close()


# The edge in front of TensorZero's real routes, open and keyed: fixtures for the edge's and the README's tests.
@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    yield from build_rig(tmp_path_factory)


@pytest.fixture(scope="module")
def open_edge(rig, tmp_path_factory):
    with running_edge(rig.open, rig.gateway_routes, tmp_path_factory.mktemp("open-edge")) as running:
        yield running


@pytest.fixture(scope="module")
def keyed_edge(rig, tmp_path_factory):
    with running_edge(rig.keyed, rig.gateway_routes, tmp_path_factory.mktemp("keyed-edge")) as running:
        yield running


@pytest.fixture(scope="module")
def ui_stand_in():
    """Stand-in for the TensorZero UI (no image here): records what reaches it."""
    upstream = StandIn()
    yield upstream
    upstream.close()


@pytest.fixture(scope="module")
def prod_edge(rig, deployments, ui_stand_in, self_signed, tmp_path_factory):
    """prod's own rendered edge (its keys, TLS, UI login, model names) in front of TensorZero's real routes of the
    rig's catalog, which serves prod's model keys (claude_sonnet, gemma_embed_local) from the rig's providers."""
    prefix = tmp_path_factory.mktemp("prod-edge")
    with running_edge(
        deployments["prod"], rig.gateway_routes, prefix, ui=ui_stand_in.endpoint, tls=self_signed
    ) as running:
        yield running
