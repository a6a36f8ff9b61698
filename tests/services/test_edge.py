"""The compatibility edge: its rendered nginx config and Lua, run by a real nginx with the Lua module.

What the edge does with requests (model names, routes, streaming, metrics, passthrough), behind Debian's
nginx running the exact rendered files (tests/edge_rig.py), in front of TensorZero's real OpenAI-compatible
routes (package `tensorzero`) and local mock providers. Who may call it (keys, the UI's login, TLS):
tests/services/test_edge_access.py.
"""

import http.client
import json
import os
import re
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable

import httpx
import pulumi
import pytest
from conftest import CANARIES, STACKS, OpenAIMock, free_port
from edge_rig import (  # noqa: F401 (rig, open_edge, keyed_edge: fixtures)
    API_KEY,
    HELLO,
    KEYS,
    StandIn,
    build_rig,
    container_env,
    docker_resolver,
    keyed_edge,
    local_layout,
    nginx_command,
    nginx_t,
    open_edge,
    post_as_sent,
    rig,
    running_edge,
    write_tls,
)

from components.core.monitoring import EDGE_DURATION, EDGE_REQUESTS
from components.core.plans import Endpoint
from components.operate.plan import use_mocks
from components.services import edge, edge_access
from components.services.edge import SERVICE as EDGE
from components.services.ui import SERVICE as UI
from components.targets.build import build

KEYED = {"Authorization": f"Bearer {API_KEY}"}

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


def raw_get(port: int, path: str) -> tuple[int, dict, bytes]:
    """GET a path exactly as written (no client normalises it)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.putrequest("GET", path, skip_accept_encoding=True)
        connection.endheaders()
        answer = connection.getresponse()
        return answer.status, dict(answer.getheaders()), answer.read()
    finally:
        connection.close()


def models_sent(mock: OpenAIMock, since: int) -> list[str]:
    return [body["model"] for _, body in mock.requests[since:]]


# ---- every stack's rendered files, read by nginx -------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_config_passes_nginx_t_and_serves_its_catalog(
    stack, deployments, tmp_path, stand_in, self_signed, docker_resolver
):
    deployment = deployments[stack]
    # Where the edge joins PMOVES's networks its metrics answer only at its own-network alias's addresses: here,
    # loopback's. Elsewhere the resolver knows no name, and the metrics must answer without it.
    alias = edge.own_network_alias(deployment.spec)
    docker_resolver.answers = {alias: ["127.0.0.1"]} if alias else {}
    # Exactly what the container gets (its ports, the gateway's internal alias, Docker's resolver), with the
    # TLS files of its uploads laid out under the test's directory.
    layout = edge.Layout(tls_certificate=str(tmp_path / "tls" / "cert.pem"), tls_key=str(tmp_path / "tls" / "key.pem"))
    write_tls(tmp_path, *self_signed)
    ui = Endpoint(UI.alias, UI.port)
    deployed = edge.config_files(deployment, Endpoint(edge.GATEWAY_BEHIND_EDGE_ALIAS, 3000), ui, layout=layout)
    checked = nginx_t(deployed, tmp_path / "deployed", deployment)
    assert checked.returncode == 0, checked.stderr
    assert f"listen {EDGE.port};" in deployed[0].content

    # Running it loads the Lua module and settings; each served model answers to its upstream name.
    with running_edge(deployment, stand_in.endpoint, tmp_path / "running", tls=self_signed) as running:
        decided = edge.settings(deployment, stand_in.endpoint)
        key = container_env(deployment).get(edge_access.KEY_ENV_PREFIX + "pmoves")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        for kind, route in (("chat", "/v1/chat/completions"), ("embedding", "/v1/embeddings")):
            for name, key in decided["models"][kind].items():
                answer = httpx.post(running.url + route, json={"model": name, "input": "x"}, headers=headers)
                assert answer.status_code == 200, answer.text
                assert json.loads(stand_in.requests[-1]["body"])["model"] == decided["targets"][kind][key]
        scraped = httpx.get(f"http://{running.layout.metrics}{edge.OWN_METRICS_PATH}").text
    assert promtool_check(scraped) == ""


def test_staging_maps_the_seed_names(deployments):
    names = edge.settings(deployments["staging"], Endpoint(edge.GATEWAY_BEHIND_EDGE_ALIAS, 3000))["models"]
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


def test_a_required_key_that_is_not_set_stops_the_edge_from_starting(rig, tmp_path):
    files = edge.config_files(rig.keyed, rig.gateway_routes, layout=local_layout(tmp_path))
    assert nginx_t(files, tmp_path, rig.keyed).returncode == 0  # -t does not run Lua; starting does
    started = subprocess.run(nginx_command(tmp_path, rig.keyed), env={"PATH": os.environ["PATH"]}, timeout=10)
    assert started.returncode != 0
    assert f"{edge_access.KEY_ENV_PREFIX}agent_zero is not set" in (tmp_path / "logs" / "error.log").read_text()


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


def workers(master: int) -> set[str]:
    return set(subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True).stdout.split())


def reload(running) -> Callable[[], None]:
    """`nginx -s reload` (HUP); returns how to wait until the worker that served so far has exited."""
    master = int((running.prefix / "nginx.pid").read_text())
    old = workers(master)
    os.kill(master, signal.SIGHUP)

    def exited() -> None:
        deadline = time.monotonic() + 15
        while old & workers(master):
            assert time.monotonic() < deadline, "the old worker did not exit after the reload"
            time.sleep(0.05)

    return exited


def requests_counted(running) -> dict[str, float]:
    scraped = samples(httpx.get(f"http://{running.layout.metrics}{edge.OWN_METRICS_PATH}").text)
    return {dict(labels)["route"]: value for (name, labels), value in scraped.items() if name == EDGE_REQUESTS}


def test_a_reload_loses_no_count_a_worker_had_not_flushed(rig, monkeypatch, tmp_path):
    """Each worker adds its counts to the shared metrics now and then (edge.METRICS_FLUSH_S); here never on its
    own, so only the old worker's last flush, as it exits on a reload, can bring the requests into the scrape."""
    monkeypatch.setattr(edge, "METRICS_FLUSH_S", 3600)
    with running_edge(rig.open, rig.gateway_routes, tmp_path) as running:
        sent = 5
        for _ in range(sent):
            answer = httpx.post(
                f"{running.url}/v1/chat/completions", json={"model": "claude_sonnet", "messages": HELLO}
            )
            assert answer.status_code == 200, answer.text
        reload(running)()
        assert requests_counted(running) == {"/v1/chat/completions": sent}


def test_a_request_still_running_at_a_reload_is_counted(rig, stand_in, monkeypatch, tmp_path):
    """The old worker's last timer flush comes as the reload begins; a request it is still serving ends after it
    (a long LLM call, a stream), and is counted as it ends."""
    monkeypatch.setattr(edge, "METRICS_FLUSH_S", 3600)
    monkeypatch.setattr(stand_in, "release", threading.Event())
    status = []
    with running_edge(rig.open, stand_in.endpoint, tmp_path) as running:
        running_request = threading.Thread(
            target=lambda: status.append(httpx.get(running.url + StandIn.HELD, timeout=30).status_code)
        )
        running_request.start()
        deadline = time.monotonic() + 10
        while StandIn.HELD not in [r["path"] for r in stand_in.requests]:
            assert time.monotonic() < deadline, "the request did not reach the gateway's stand-in"
            time.sleep(0.02)
        exited = reload(running)
        time.sleep(1)  # the old worker has begun to exit: its timer ran once more, before the request ended
        stand_in.release.set()
        running_request.join(timeout=30)
        exited()
        assert status == [200]
        assert requests_counted(running) == {"other": 1}


def test_histogram_and_counter_move_by_exactly_the_requests_sent(open_edge):
    scrape = f"http://{open_edge.layout.metrics}{edge.OWN_METRICS_PATH}"
    before_text = httpx.get(scrape).text
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
    after_text = httpx.get(scrape).text
    assert promtool_check(after_text) == ""
    before, after = samples(before_text), samples(after_text)
    moved = {key: after[key] - before.get(key, 0) for key in after if after[key] != before.get(key, 0)}

    requests = {
        (dict(labels)["route"], dict(labels)["status"]): delta
        for (name, labels), delta in moved.items()
        if name == EDGE_REQUESTS
    }
    assert requests == counted
    assert {dict(labels)["caller"] for (name, labels) in moved if name == EDGE_REQUESTS} == {"none"}
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


def test_a_streamed_answer_goes_over_a_fresh_connection_and_others_over_the_pool(rig, stand_in, tmp_path):
    """On a pooled connection the gateway's stream ended 40 ms late (Nagle against delayed ACKs: services/edge.py,
    STREAM_UPSTREAM); the timing is in benchmarks/bench_edge.py, the mechanism here."""
    plain = json.dumps({"model": "claude_sonnet", "messages": HELLO}).encode()
    not_streamed = json.dumps({"model": "claude_sonnet", "messages": HELLO, "stream": False}).encode()
    quoted = json.dumps({"model": "claude_sonnet", "messages": [{"role": "user", "content": '"stream": true'}]})
    streamed = json.dumps({"model": "claude_sonnet", "messages": HELLO, "stream": True}).encode()
    with running_edge(rig.open, stand_in.endpoint, tmp_path) as running:
        for body in (
            plain,
            not_streamed,
            quoted.encode(),
            streamed,
            streamed,
            b'{"stream" :\n true, "model": "claude_sonnet"}',
        ):
            with httpx.Client() as client:  # a new client connection each time: only the edge's side can be pooled
                assert client.post(f"{running.url}/v1/chat/completions", content=body).status_code == 200
    peers = [request["peer"] for request in stand_in.requests]
    assert len(set(peers[:3])) == 1, "requests without a stream no longer share the edge's pooled connection"
    assert len(set(peers[3:])) == 3 and not set(peers[3:]) & set(peers[:3])
    assert all(b'"stream"' in request["body"] for request in stand_in.requests[3:])  # forwarded unchanged otherwise


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
    with running_edge(rig.keyed, stand_in.endpoint, tmp_path) as running:
        for path in ("/health", "/status", edge.HEALTH_PATH):
            assert httpx.get(running.url + path).status_code == 200
        # Inside (the rig's edge is on loopback), the gateway's metrics are open as PMOVES's Prometheus job
        # expects; the edge's own on this port still take a key (Prometheus reads them on the metrics port).
        assert httpx.get(running.url + "/metrics").status_code == 200
        assert httpx.get(running.url + edge.OWN_METRICS_PATH).status_code == 401
        assert httpx.get(running.url + edge.OWN_METRICS_PATH, headers=KEYED).status_code == 200
        # Prometheus scrapes the edge on its own port, which is never published.
        assert httpx.get(f"http://{running.layout.metrics}{edge.OWN_METRICS_PATH}").status_code == 200
        compressed = {**KEYED, "Accept-Encoding": "gzip"}
        assert httpx.post(f"{running.url}/inference", headers=compressed, content=b"{}").status_code == 200
    assert [r["path"] for r in stand_in.requests] == ["/health", "/status", "/metrics", "/inference"]
    # Dropped by nginx itself (proxy_set_header): the key, and the wish for a compressed answer the edge could not
    # rename the model in.
    assert not {"authorization", "accept-encoding"} & {name.lower() for name in stand_in.requests[-1]["headers"]}


@pytest.mark.parametrize(
    "path",
    ["/inference%2F..%2Fhealth", "/inference/../status", "/feedback/%2e%2e/health", "//health", "/%68ealth"],
)
def test_open_paths_forward_only_their_own_path(rig, stand_in, tmp_path, path):
    """A crafted path that nginx normalises to /health or /status reaches the gateway as exactly that path,
    never as the raw URI it was sent as (which the gateway could route elsewhere without a key)."""
    with running_edge(rig.keyed, stand_in.endpoint, tmp_path) as running:
        status, _, _ = raw_get(running.port, path)
    forwarded = [r["path"] for r in stand_in.requests]
    assert status == 401 or forwarded in (["/health"], ["/status"]), (status, forwarded)


def test_gateway_down_and_oversized_body_answer_in_json(rig, tmp_path):
    with running_edge(rig.open, Endpoint("127.0.0.1", free_port()), tmp_path) as running:
        down = httpx.post(f"{running.url}/v1/chat/completions", json={"model": "claude_sonnet", "messages": HELLO})
        large = httpx.post(f"{running.url}/inference", content=b"x" * (33 * 1024 * 1024))
        scraped = samples(httpx.get(f"http://{running.layout.metrics}{edge.OWN_METRICS_PATH}").text)
    assert down.status_code == 502 and down.json()["error"]["type"] == "server_error"
    assert large.status_code == 413 and "32m" in large.json()["error"]["message"]
    none = ("caller", "none")
    assert scraped[(EDGE_REQUESTS, (none, ("route", "/v1/chat/completions"), ("status", "502")))] == 1
    assert scraped[(EDGE_REQUESTS, (none, ("route", "/inference"), ("status", "413")))] == 1


def test_healthcheck_command_passes_only_while_the_edge_answers(rig, stand_in, tmp_path):
    def healthcheck(port: int) -> int:
        command = [part.replace(f"/{EDGE.port} ", f"/{port} ") for part in edge.HEALTHCHECK]
        return subprocess.run(command, capture_output=True, timeout=10).returncode

    with running_edge(rig.open, stand_in.endpoint, tmp_path) as running:
        assert healthcheck(running.port) == 0
    assert healthcheck(running.port) != 0


# ---- secrets ---------------------------------------------------------------------------------------------


def test_each_key_is_a_secret_variable_and_in_no_rendered_file(rig):
    assert [v.name for v in rig.open.plans[EDGE.role].env] == [edge_access.UI_PASSWORD_ENV]
    keyed = {v.name: v for v in rig.keyed.plans[EDGE.role].env}
    supplied = {name: key for name, key in KEYS.items()}
    assert {name: keyed[edge_access.KEY_ENV_PREFIX + name].value for name in supplied} == supplied
    assert edge_access.KEY_ENV_PREFIX + "revoked" not in keyed  # listed, not supplied: refused
    assert all(variable.secret for variable in keyed.values())
    assert [c["name"] for c in edge.settings(rig.keyed, rig.gateway_routes)["access"]["callers"]] == sorted(KEYS)
    assert edge.settings(rig.open, rig.gateway_routes)["access"]["callers"] == []
    for rendered in edge.config_files(rig.keyed, rig.gateway_routes):
        assert not [key for key in KEYS.values() if key in rendered.content]


def test_stack_files_hold_no_canary(deployments, stack):
    for rendered in deployments[stack].plans[EDGE.role].files:
        for canary in CANARIES.values():
            assert canary not in rendered.content


# ---- the component, under Pulumi's mocks -----------------------------------------------------------------


def test_edge_component_runs_the_image_with_its_files_key_and_healthcheck(rig):
    # The edge as deployed: with no port of its own it publishes the gateway's.
    published = rig.keyed.spec.placement(EDGE).published
    assert published == rig.keyed.spec.gateway.port is not None
    files = rig.keyed.plans[EDGE.role].files
    use_mocks("test")

    async def assert_container(container):
        assert await container.envs.is_secret()
        assert await container.envs.future() == [f"{v.name}={v.value}" for v in rig.keyed.plans[EDGE.role].env]
        assert await container.command.future() == list(edge.command(rig.keyed))
        health = await container.healthcheck.future()
        assert health["tests"] == ["CMD", *edge.HEALTHCHECK]
        uploads = await container.uploads.future()
        assert [(u["file"], u["content"]) for u in uploads] == [(f.mount, f.content) for f in files]
        [network] = await container.networks_advanced.future()
        assert network["aliases"] == [EDGE.alias]
        ports = await container.ports.future()
        # ...and the UI's, served behind the login on the edge's UI port.
        assert [(p["internal"], p["external"]) for p in ports] == [
            (EDGE.port, published),
            (edge.UI_PORT, rig.keyed.spec.ui.port),
        ]

    @pulumi.runtime.test
    def check():
        return pulumi.Output.from_input(assert_container(build(rig.keyed).services[EDGE.role].container))

    check()
