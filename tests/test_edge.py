"""The compatibility edge: its rendered nginx config and Lua, run by a real nginx with the Lua module.

Debian's nginx 1.22 with libnginx-mod-http-lua and lua-cjson (the module OpenResty ships) runs the
exact files the package mounts into OpenResty, inside a main nginx.conf shaped like the OpenResty
image's own (conf.d included in its http block) and with the `-g` directives of the edge's container
command. Behind it run TensorZero's real OpenAI-compatible routes (package `tensorzero`) in front of
local mock providers. Where the `tensorzero` package serves no route here (/health, /status,
/metrics, /inference, /feedback), a recording HTTP server is the gateway's stand-in, named so below.
"""

import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import httpx
import pulumi
import pytest
from conftest import CANARIES, MINIMAL_ENV, STACKS, LocalServer, OpenAIMock, make_project, minimal_config, openai_routes

from components import edge, gateway
from components.edge import SERVICE as EDGE
from components.loader import load
from components.monitoring import EDGE_DURATION, EDGE_REQUESTS
from components.plan import use_mocks
from components.service import Endpoint
from components.stack import build

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
LUA_MODULES = ("/usr/lib/nginx/modules/ndk_http_module.so", "/usr/lib/nginx/modules/ngx_http_lua_module.so")
GLOBAL_DIRECTIVES = edge.COMMAND[edge.COMMAND.index("-g") + 1]
API_KEY = "edge-canary-key-6a0f"
HOLD_S = 10.0  # how long the streaming provider holds its second chunk for the client to see the first

# The OpenResty image's nginx.conf (worker_processes 1, conf.d inside http), with Debian's Lua module
# loaded and every path inside the test's prefix; the edge's files are included unchanged.
MAIN_CONF = """{load_modules}
{user}
worker_processes 1;
pid {prefix}/nginx.pid;
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

# The seed document's examples (tensorzero-in-pmoves.md, "From Command Line", "Embedding Generation"), verbatim.
SEED_CHAT_CURL = [
    "-X",
    "POST",
    "http://localhost:3030/v1/chat/completions",
    "-H",
    "Content-Type: application/json",
    "-d",
    """{
    "model": "claude-sonnet-4-5",
    "messages": [{"role": "user", "content": "Hello from TensorZero!"}]
  }""",
]
SEED_EMBEDDING_CURL = [
    "-X",
    "POST",
    "http://localhost:3030/v1/embeddings",
    "-H",
    "Content-Type: application/json",
    "-d",
    """{
    "model": "gemma_embed_local",
    "input": "Text to embed"
  }""",
]
HELLO = [{"role": "user", "content": "Hello"}]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


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


def nginx_command(prefix: Path, *extra: str) -> list[str]:
    return [NGINX, "-p", f"{prefix}/", "-c", str(prefix / "nginx.conf"), "-g", GLOBAL_DIRECTIVES, *extra]


def nginx_t(files, prefix: Path) -> subprocess.CompletedProcess:
    place(files, prefix)
    return subprocess.run(nginx_command(prefix, "-t"), capture_output=True, text=True, env={"PATH": os.environ["PATH"]})


@dataclass
class RunningEdge:
    url: str
    port: int
    prefix: Path

    def log(self, name: str) -> str:
        return (self.prefix / "logs" / name).read_text()


@contextmanager
def running_edge(deployment, upstream: Endpoint, prefix: Path, key: str | None = None):
    """The edge's rendered files under a real nginx on a free loopback port; `key` is its container env."""
    port = free_port()
    files = edge.config_files(deployment, upstream, listen=f"127.0.0.1:{port}")
    checked = nginx_t(files, prefix)
    assert checked.returncode == 0, checked.stderr
    env = {"PATH": os.environ["PATH"], **({edge.API_KEY_ENV: key} if key is not None else {})}
    process = subprocess.Popen(nginx_command(prefix), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
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
        yield RunningEdge(url, port, prefix)
    finally:
        process.terminate()
        process.wait(timeout=10)


class StandIn(LocalServer):
    """Stand-in for the gateway routes the `tensorzero` package does not serve here: records every request."""

    def __init__(self):
        self.requests: list[dict] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def answer(self):
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                stand_in.requests.append(
                    {"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body}
                )
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


@dataclass
class Rig:
    mock: OpenAIMock
    streamer: StreamingProvider
    open: object  # deployment without a key
    keyed: object  # deployment whose env layer supplies TENSORZERO_API_KEY
    gateway_routes: Endpoint  # TensorZero's real /openai/v1 routes


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    mock, streamer = OpenAIMock(), StreamingProvider()
    root = tmp_path_factory.mktemp("edge-rig")
    project = make_project(
        root / "project",
        minimal_config(ollama={"enabled": False}),
        {
            "catalog.toml": edge_catalog(mock, streamer),
            "env/env.shared": MINIMAL_ENV,
            "env-keyed/env.shared": MINIMAL_ENV + f"{edge.API_KEY_ENV}={API_KEY}\n",
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


@pytest.fixture(scope="module")
def open_edge(rig, tmp_path_factory):
    with running_edge(rig.open, rig.gateway_routes, tmp_path_factory.mktemp("open-edge")) as running:
        yield running


@pytest.fixture(scope="module")
def keyed_edge(rig, tmp_path_factory):
    with running_edge(rig.keyed, rig.gateway_routes, tmp_path_factory.mktemp("keyed-edge"), API_KEY) as running:
        yield running


@pytest.fixture
def stand_in():
    upstream = StandIn()
    yield upstream
    upstream.close()


def curl(args: list[str], base: str) -> tuple[int, dict]:
    """Run a seed curl example against `base` instead of localhost:3030; (status, JSON body)."""
    args = [arg.replace("http://localhost:3030", base) for arg in args]
    done = subprocess.run(["curl", "-s", "-w", "\n%{http_code}", *args], capture_output=True, text=True, check=True)
    body, status = done.stdout.rsplit("\n", 1)
    return int(status), json.loads(body)


def post_as_sent(port: int, path: str, headers: dict, payload: dict) -> tuple[int, dict, dict]:
    """POST through the standard library, which sends header values httpx refuses (the seed's `Bearer `)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("POST", path, json.dumps(payload), {"Content-Type": "application/json", **headers})
        answer = connection.getresponse()
        return answer.status, {k.lower(): v for k, v in answer.getheaders()}, json.loads(answer.read())
    finally:
        connection.close()


def models_sent(mock: OpenAIMock, since: int) -> list[str]:
    return [body["model"] for _, body in mock.requests[since:]]


# ---- every stack's rendered files, read by nginx -------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_config_passes_nginx_t_and_serves_its_catalog(stack, deployments, tmp_path, stand_in):
    deployment = deployments[stack]
    # Exactly what the container gets: port 3000, the gateway's internal alias, Docker's resolver.
    deployed = edge.config_files(deployment, Endpoint(edge.GATEWAY_BEHIND_EDGE_ALIAS, 3000))
    checked = nginx_t(deployed, tmp_path / "deployed")
    assert checked.returncode == 0, checked.stderr
    assert f"listen {EDGE.port};" in deployed[0].content

    # Running it loads the Lua module and settings; each served model answers to its upstream name.
    with running_edge(deployment, stand_in.endpoint, tmp_path / "running") as running:
        decided = edge.settings(deployment)
        for kind, route in (("chat", "/v1/chat/completions"), ("embedding", "/v1/embeddings")):
            for name, key in decided["models"][kind].items():
                answer = httpx.post(running.url + route, json={"model": name, "input": "x"})
                assert answer.status_code == 200, answer.text
                assert json.loads(stand_in.requests[-1]["body"])["model"] == decided["targets"][kind][key]
        scraped = httpx.get(running.url + edge.OWN_METRICS_PATH).text
    assert promtool_check(scraped) == ""


def test_staging_maps_the_seed_names(deployments):
    names = edge.settings(deployments["staging"])["models"]
    assert names["chat"]["claude-sonnet-4-5"] == names["chat"]["claude_sonnet"] == "claude_sonnet"
    assert names["embedding"]["gemma_embed_local"] == "gemma_embed_local"


def promtool_check(text: str) -> str:
    """promtool's lint of Prometheus text; empty when clean."""
    done = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
    return "" if done.returncode == 0 else done.stdout + done.stderr


# ---- through TensorZero's real routes --------------------------------------------------------------


def test_seed_curl_examples_succeed_verbatim(rig, open_edge):
    since = len(rig.mock.requests)
    status, chat = curl(SEED_CHAT_CURL, open_edge.url)
    assert status == 200, chat
    assert chat["choices"][0]["message"]["content"] == "answer from claude-sonnet-4-5"
    status, embedding = curl(SEED_EMBEDDING_CURL, open_edge.url)
    assert status == 200, embedding
    assert embedding["data"][0]["embedding"] == [0.25, -0.5, 0.75]
    assert models_sent(rig.mock, since) == ["claude-sonnet-4-5", "gemma:2b"]


@pytest.mark.parametrize("name", ["claude-sonnet-4-5", "claude_sonnet", "tensorzero::model_name::claude_sonnet"])
def test_config_key_upstream_name_and_full_name_reach_the_same_model(rig, open_edge, name):
    since = len(rig.mock.requests)
    answer = httpx.post(f"{open_edge.url}/v1/chat/completions", json={"model": name, "messages": HELLO})
    assert answer.status_code == 200, answer.text
    assert models_sent(rig.mock, since) == ["claude-sonnet-4-5"]


def test_bare_name_gets_the_catalog_sampling_defaults(rig, open_edge):
    since = len(rig.mock.requests)
    answer = httpx.post(f"{open_edge.url}/v1/chat/completions", json={"model": "gpt-4o", "messages": HELLO})
    assert answer.status_code == 200, answer.text
    [(_, sent)] = rig.mock.requests[since:]
    assert sent["temperature"] == pytest.approx(0.7) and sent["max_completion_tokens"] == 1000


@pytest.mark.parametrize(
    "route, name",
    [("/v1/chat/completions", "no-such-model"), ("/v1/embeddings", "no-such-model"), ("/v1/embeddings", "gpt-4o")],
)
def test_unknown_model_is_a_clean_404(rig, open_edge, route, name):
    since = len(rig.mock.requests)
    answer = httpx.post(open_edge.url + route, json={"model": name, "messages": HELLO, "input": "x"})
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/json"
    error = answer.json()["error"]
    assert error["code"] == "model_not_found" and name in error["message"]
    assert rig.mock.requests[since:] == []


def test_ambiguous_upstream_name_is_a_404_naming_the_keys(rig, open_edge):
    answer = httpx.post(f"{open_edge.url}/v1/chat/completions", json={"model": "shared-model", "messages": HELLO})
    assert answer.status_code == 404
    assert "fast_a, fast_b" in answer.json()["error"]["message"]
    assert httpx.post(f"{open_edge.url}/v1/chat/completions", json={"model": "fast_b", "messages": HELLO}).is_success


def test_streamed_chunks_reach_the_client_before_the_provider_finishes(rig, open_edge):
    """Each chunk renamed for the caller (see below) and passed on as it arrives."""
    rig.streamer.released.clear()
    request = {"model": "streamer-model", "messages": HELLO, "stream": True}
    seen, named = [], set()
    with httpx.stream("POST", f"{open_edge.url}/v1/chat/completions", json=request, timeout=30) as response:
        assert response.status_code == 200
        assert "gzip" not in response.headers.get("content-encoding", "")
        for line in response.iter_lines():
            if line.startswith("data: {"):
                chunk = json.loads(line.removeprefix("data: "))
                named.add(chunk["model"])
                seen.extend(choice["delta"].get("content") or "" for choice in chunk["choices"])
                if "first " in seen:
                    rig.streamer.released.set()
    assert rig.streamer.held == [True], "the first chunk reached the client only after the provider finished"
    assert "".join(seen) == "first second"
    assert named == {"streamer-model"}  # every chunk, not TensorZero's `tensorzero::model_name::streaming_chat`


def gateway_answer(rig, path: str, body: dict) -> dict:
    """The same request straight to TensorZero's real routes, under the full name."""
    answer = httpx.post(f"http://{rig.gateway_routes.host}:{rig.gateway_routes.port}/openai/v1{path}", json=body)
    assert answer.status_code == 200, answer.text
    return answer.json()


@pytest.mark.parametrize(
    ("route", "name", "full_name"),
    [
        ("/v1/chat/completions", "claude-sonnet-4-5", "tensorzero::model_name::claude_sonnet"),
        ("/v1/chat/completions", "claude_sonnet", "tensorzero::model_name::claude_sonnet"),
        ("/v1/chat/completions", "gpt-4o", "tensorzero::function_name::gpt_4o"),
        ("/v1/embeddings", "gemma_embed_local", "tensorzero::embedding_model_name::gemma_embed_local"),
        ("/openai/v1/embeddings", "gemma_embed_local", "tensorzero::embedding_model_name::gemma_embed_local"),
    ],
)
def test_an_answer_to_a_bare_name_carries_that_name_and_nothing_else_changes(rig, open_edge, route, name, full_name):
    body = {"model": name, "messages": HELLO, "input": "x"}
    answer = httpx.post(open_edge.url + route, json=body, headers={"Accept-Encoding": "gzip"})
    assert answer.status_code == 200, answer.text
    through_edge = answer.json()
    assert through_edge["model"] == name
    direct = gateway_answer(rig, route.removeprefix("/openai").removeprefix("/v1"), {**body, "model": full_name})
    assert direct["model"].startswith(full_name)  # TensorZero's own name (a function adds its variant)
    changing = {"model", "id", "episode_id", "created"}  # per request, or the one value the edge renames
    assert {k: v for k, v in through_edge.items() if k not in changing} == {
        k: v for k, v in direct.items() if k not in changing
    }


def test_an_answer_to_a_full_name_is_left_as_tensorzero_gave_it(open_edge):
    name = "tensorzero::model_name::claude_sonnet"
    answer = httpx.post(f"{open_edge.url}/v1/chat/completions", json={"model": name, "messages": HELLO})
    assert answer.status_code == 200 and answer.json()["model"] == name


def test_auth_off_accepts_the_seed_python_call_with_an_empty_key(open_edge):
    # The seed's example sends `Authorization: Bearer {api_key}` with TENSORZERO_API_KEY unset.
    status, _, body = post_as_sent(
        open_edge.port,
        "/v1/chat/completions",
        {"Authorization": "Bearer "},
        {"model": "claude-sonnet-4-5", "messages": HELLO},
    )
    assert status == 200, body


@pytest.mark.parametrize(
    "authorization", [None, "Bearer ", "Bearer wrong-key", f"Basic {API_KEY}", f"Bearer {API_KEY}x", API_KEY]
)
@pytest.mark.parametrize("route", ["/v1/chat/completions", "/openai/v1/chat/completions", "/inference"])
def test_auth_on_refuses_requests_without_the_key(rig, keyed_edge, authorization, route):
    since = len(rig.mock.requests)
    headers = {"Authorization": authorization} if authorization is not None else {}
    status, answered, body = post_as_sent(
        keyed_edge.port, route, headers, {"model": "tensorzero::model_name::claude_sonnet", "messages": HELLO}
    )
    assert status == 401
    assert answered["www-authenticate"] == "Bearer"
    assert body["error"]["code"] == "invalid_api_key"
    assert rig.mock.requests[since:] == []


@pytest.mark.parametrize("scheme", ["Bearer", "bearer"])
def test_auth_on_serves_the_seed_call_with_the_key(keyed_edge, scheme):
    status, _ = curl([*SEED_CHAT_CURL, "-H", f"Authorization: {scheme} {API_KEY}"], keyed_edge.url)
    assert status == 200
    status, _ = curl([*SEED_EMBEDDING_CURL, "-H", f"Authorization: {scheme} {API_KEY}"], keyed_edge.url)
    assert status == 200


def test_keyed_edge_never_logs_the_key(keyed_edge):
    for authorization in (f"Bearer {API_KEY}", f"Bearer {API_KEY}-guess"):
        httpx.post(
            f"{keyed_edge.url}/v1/chat/completions",
            headers={"Authorization": authorization},
            json={"model": "claude_sonnet", "messages": HELLO},
        )
    logs = keyed_edge.log("access.log") + keyed_edge.log("error.log")
    assert "/v1/chat/completions" in keyed_edge.log("access.log")
    assert API_KEY not in logs


def test_a_required_key_that_is_not_set_stops_the_edge_from_starting(rig, tmp_path):
    files = edge.config_files(rig.keyed, rig.gateway_routes, listen=f"127.0.0.1:{free_port()}")
    assert nginx_t(files, tmp_path).returncode == 0  # -t does not run Lua; starting does
    started = subprocess.run(nginx_command(tmp_path), env={"PATH": os.environ["PATH"]}, timeout=10)
    assert started.returncode != 0
    assert f"{edge.API_KEY_ENV} is not set" in (tmp_path / "logs" / "error.log").read_text()


# ---- metrics -----------------------------------------------------------------------------------------

_SAMPLE = re.compile(r"^(?P<name>[A-Za-z_:][A-Za-z0-9_:]*)(?:\{(?P<labels>.*)\})? (?P<value>\S+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def samples(text: str) -> dict[tuple, float]:
    found = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            match = _SAMPLE.match(line)
            assert match, line
            labels = tuple(sorted(_LABEL.findall(match["labels"] or "")))
            found[(match["name"], labels)] = float(match["value"])
    return found


def test_histogram_and_counter_move_by_exactly_the_requests_sent(open_edge):
    before_text = httpx.get(open_edge.url + edge.OWN_METRICS_PATH).text
    sent = [
        ("/v1/chat/completions", {"model": "claude-sonnet-4-5", "messages": HELLO}, "claude_sonnet"),
        ("/v1/chat/completions", {"model": "claude_sonnet", "messages": HELLO}, "claude_sonnet"),
        ("/v1/chat/completions", {"model": "gpt-4o", "messages": HELLO}, "gpt_4o"),
        ("/v1/chat/completions", {"model": "no-such-model", "messages": HELLO}, "unknown"),
        ("/v1/embeddings", {"model": "gemma_embed_local", "input": "x"}, "gemma_embed_local"),
        ("/v1/embeddings", {"model": "gemma_embed_local", "input": "y"}, "gemma_embed_local"),
        (
            "/openai/v1/chat/completions",
            {"model": "tensorzero::model_name::claude_sonnet", "messages": HELLO},
            "claude_sonnet",
        ),
    ]
    counted, timed = Counter(), Counter()
    for route, body, model in sent:
        status = httpx.post(open_edge.url + route, json=body).status_code
        counted[(route, str(status))] += 1
        timed[(model, route, f"{status // 100}xx")] += 1
    after_text = httpx.get(open_edge.url + edge.OWN_METRICS_PATH).text
    assert promtool_check(after_text) == ""
    before, after = samples(before_text), samples(after_text)
    moved = {key: after[key] - before.get(key, 0) for key in after if after[key] != before.get(key, 0)}

    requests = {
        (dict(labels)["route"], dict(labels)["status"]): delta
        for (name, labels), delta in moved.items()
        if name == EDGE_REQUESTS
    }
    assert requests == counted
    counts = {
        (dict(labels)["model"], dict(labels)["route"], dict(labels)["status_class"]): delta
        for (name, labels), delta in moved.items()
        if name == f"{EDGE_DURATION}_count"
    }
    assert counts == timed
    for (name, labels), value in after.items():
        if name == f"{EDGE_DURATION}_bucket":
            series = tuple(label for label in labels if label[0] != "le")
            assert value <= after[(f"{EDGE_DURATION}_count", series)]
            if dict(labels)["le"] == "+Inf":
                assert value == after[(f"{EDGE_DURATION}_count", series)]


# ---- the stand-in gateway: passthrough, open paths, errors ---------------------------------------------


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("GET", "/health", b""),
        ("GET", "/status", b""),
        ("GET", "/metrics", b""),
        ("POST", "/inference", b'{"function_name": "x", "input": {"messages": []}}'),
        ("POST", "/feedback", b'{"metric_name": "summary_accepted", "value": true}'),
        ("POST", "/openai/v1/chat/completions?trace=1", b'{"model": "tensorzero::function_name::f", "messages": []}'),
        ("POST", "/openai/v1/embeddings", b'{"model": "gemma_embed_local", "input": "x"}'),
        ("GET", "/openai/v1/models", b""),
        ("DELETE", "/datasets/a%20b/datapoints/1?x=y", b""),
    ],
)
def test_every_other_path_passes_through_unchanged(rig, stand_in, tmp_path, method, path, body):
    with running_edge(rig.open, stand_in.endpoint, tmp_path) as running:
        answer = httpx.request(method, running.url + path, content=body)
    assert answer.status_code == 200 and answer.json() == {"stand_in": True, "path": path}
    [forwarded] = stand_in.requests
    assert (forwarded["method"], forwarded["path"], forwarded["body"]) == (method, path, body)


def test_only_the_model_value_of_the_body_changes(rig, stand_in, tmp_path):
    body = (
        '{"messages": [{"role": "user", "content": "say \\"model\\": \\u00e9t\\u00e9 {[\\\\"}],\n'
        ' "tools": [], "metadata": {"model": "nested"}, "n": 1.0000000000000002, "model": "claude-sonnet-4-5",'
        ' "stream": false}'
    ).encode()
    with running_edge(rig.open, stand_in.endpoint, tmp_path) as running:
        answer = httpx.post(f"{running.url}/v1/chat/completions?x=1", content=body)
    assert answer.status_code == 200
    [forwarded] = stand_in.requests
    assert forwarded["path"] == "/openai/v1/chat/completions?x=1"
    assert forwarded["body"] == body.replace(b'"claude-sonnet-4-5"', b'"tensorzero::model_name::claude_sonnet"')


def test_a_body_beyond_the_memory_buffer_is_rewritten_too(rig, stand_in, tmp_path):
    # Over client_body_buffer_size, nginx spools the body to a temp file; the edge reads it back.
    size = 2 * 1024 * 1024
    body = json.dumps({"messages": [{"role": "user", "content": "x" * size}], "model": "claude_sonnet"}).encode()
    with running_edge(rig.open, stand_in.endpoint, tmp_path) as running:
        answer = httpx.post(f"{running.url}/v1/chat/completions", content=body)
    assert answer.status_code == 200
    [forwarded] = stand_in.requests
    assert forwarded["body"] == body.replace(b'"claude_sonnet"', b'"tensorzero::model_name::claude_sonnet"')


def test_open_paths_need_no_key_and_the_key_goes_no_further(rig, stand_in, tmp_path):
    with running_edge(rig.keyed, stand_in.endpoint, tmp_path, API_KEY) as running:
        for path in ("/health", "/status", "/metrics"):
            assert httpx.get(running.url + path).status_code == 200
        for path in (edge.HEALTH_PATH, edge.OWN_METRICS_PATH):
            assert httpx.get(running.url + path).status_code == 200
        keyed = {"Authorization": f"Bearer {API_KEY}"}
        assert httpx.post(f"{running.url}/inference", headers=keyed, content=b"{}").status_code == 200
    assert [r["path"] for r in stand_in.requests] == ["/health", "/status", "/metrics", "/inference"]
    assert "Authorization" not in stand_in.requests[-1]["headers"]


def test_gateway_down_and_oversized_body_answer_in_json(rig, tmp_path):
    with running_edge(rig.open, Endpoint("127.0.0.1", free_port()), tmp_path) as running:
        down = httpx.post(f"{running.url}/v1/chat/completions", json={"model": "claude_sonnet", "messages": HELLO})
        large = httpx.post(f"{running.url}/inference", content=b"x" * (33 * 1024 * 1024))
        scraped = samples(httpx.get(running.url + edge.OWN_METRICS_PATH).text)
    assert down.status_code == 502 and down.json()["error"]["type"] == "server_error"
    assert large.status_code == 413 and "32m" in large.json()["error"]["message"]
    assert scraped[(EDGE_REQUESTS, (("route", "/v1/chat/completions"), ("status", "502")))] == 1
    assert scraped[(EDGE_REQUESTS, (("route", "/inference"), ("status", "413")))] == 1


def test_healthcheck_command_passes_only_while_the_edge_answers(rig, stand_in, tmp_path):
    def healthcheck(port: int) -> int:
        command = [part.replace(f"/{EDGE.port} ", f"/{port} ") for part in edge.HEALTHCHECK]
        return subprocess.run(command, capture_output=True, timeout=10).returncode

    with running_edge(rig.open, stand_in.endpoint, tmp_path) as running:
        assert healthcheck(running.port) == 0
    assert healthcheck(running.port) != 0


# ---- secrets ---------------------------------------------------------------------------------------------


def test_the_key_is_a_secret_variable_and_in_no_rendered_file(rig):
    assert rig.open.plans[EDGE.role].env == ()
    [key] = rig.keyed.plans[EDGE.role].env
    assert (key.name, key.value, key.secret) == (edge.API_KEY_ENV, API_KEY, True)
    assert edge.settings(rig.keyed)["auth"]["required"] and not edge.settings(rig.open)["auth"]["required"]
    for rendered in edge.config_files(rig.keyed, rig.gateway_routes):
        assert API_KEY not in rendered.content


def test_stack_files_hold_no_canary(deployments, stack):
    for rendered in edge.config_files(deployments[stack], Endpoint(edge.GATEWAY_BEHIND_EDGE_ALIAS, 3000)):
        for canary in CANARIES.values():
            assert canary not in rendered.content


# ---- the component, under Pulumi's mocks -----------------------------------------------------------------


def test_edge_component_runs_the_image_with_its_files_key_and_healthcheck(rig):
    # The edge as deployed: with no port of its own it publishes the gateway's.
    published = rig.keyed.spec.placement(EDGE).published
    assert published == rig.keyed.spec.gateway.port is not None
    files = edge.config_files(rig.keyed, Endpoint(edge.GATEWAY_BEHIND_EDGE_ALIAS, 3000))
    use_mocks("test")

    async def assert_container(container):
        assert await container.envs.is_secret()
        assert await container.envs.future() == [f"{edge.API_KEY_ENV}={API_KEY}"]
        assert await container.command.future() == list(edge.COMMAND)
        health = await container.healthcheck.future()
        assert health["tests"] == ["CMD", *edge.HEALTHCHECK]
        uploads = await container.uploads.future()
        assert [(u["file"], u["content"]) for u in uploads] == [(f.mount, f.content) for f in files]
        [network] = await container.networks_advanced.future()
        assert network["aliases"] == [EDGE.alias]
        [port] = await container.ports.future()
        assert (port["internal"], port["external"]) == (EDGE.port, published)

    @pulumi.runtime.test
    def check():
        return pulumi.Output.from_input(assert_container(build(rig.keyed).services[EDGE.role].container))

    check()
