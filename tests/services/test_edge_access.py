"""Who may use the edge, proven by a real nginx with the Lua module running the rendered files (edge_rig.py):
several named keys each work alone, a revoked key and every wrong form are refused on every route, the key
comparison looks at every byte, the key's name (never the key) labels the access log and the metrics, per-key
rate limits answer an OpenAI-style 429, the UI sits behind a login a browser can use, and TLS is checked with
real curl and openssl against a self-signed certificate.
"""

import hashlib
import json
import re
import socket
import subprocess
import time
from http.server import BaseHTTPRequestHandler
from itertools import count

import httpx
import pytest
from conftest import MINIMAL_CATALOG, MINIMAL_ENV, LocalServer, load_minimal, make_project, minimal_config
from edge_rig import (  # noqa: F401 (rig, ui_stand_in: fixtures)
    HELLO,
    KEYS,
    LIMIT_PER_MINUTE,
    REVOKED_KEY,
    UI_PASSWORD,
    StandIn,
    build_rig,
    post_as_sent,
    rig,
    running_edge,
    ui_stand_in,
)

from components.core.plans import Endpoint
from components.services import edge, edge_access
from components.services.edge import SERVICE as EDGE
from components.stack.loader import load

CHAT = {"model": "claude-sonnet-4-5", "messages": HELLO}
# The gateway's /metrics is keyless on the plain listeners only the stack's networks and loopback reach (the rig's):
# see test_monitoring_answers_inside_without_a_key_and_outside_with_one.
API_ROUTES = ["/v1/chat/completions", "/v1/embeddings", "/openai/v1/chat/completions", "/inference"]


@pytest.fixture(scope="module")
def keyed_edge(rig, ui_stand_in, tmp_path_factory):
    prefix = tmp_path_factory.mktemp("keyed-edge")
    with running_edge(rig.keyed, rig.gateway_routes, prefix, ui=ui_stand_in.endpoint) as running:
        yield running


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def post_chat(running, headers: dict) -> httpx.Response:
    return httpx.post(f"{running.url}/v1/chat/completions", json=CHAT, headers=headers, timeout=30)


# ---- keys ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("caller", ["pmoves", "hirag", "agent_zero"])
def test_each_callers_key_works_alone(rig, keyed_edge, caller):
    since = len(rig.mock.requests)
    answer = post_chat(keyed_edge, bearer(KEYS[caller]))
    assert answer.status_code == 200, answer.text
    assert [body["model"] for _, body in rig.mock.requests[since:]] == ["claude-sonnet-4-5"]
    assert logged_soon(keyed_edge, lambda entry: entry["caller"] == caller and entry["status"] == 200)


def logged_soon(running, wanted, lines: int = 0) -> bool:
    """nginx writes the access log a buffer at a time, at least every second (edge.ACCESS_LOG_BUFFER): wait a
    moment for the log to hold at least `lines` lines, the last one matching."""
    deadline = time.monotonic() + 3
    while True:
        written = running.log("access.log").splitlines()
        if len(written) >= lines and written and wanted(json.loads(written[-1])):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)


def forged_token(key: str, matching_bytes: int) -> str:
    """A token whose SHA-1 digest shares its first `matching_bytes` bytes with the key's, but not the rest."""
    target = hashlib.sha1(key.encode()).digest()
    for attempt in count():
        token = f"forged-{attempt}"
        digest = hashlib.sha1(token.encode()).digest()
        if digest[:matching_bytes] == target[:matching_bytes] and digest != target:
            return token
    raise AssertionError("unreachable")


@pytest.mark.parametrize("matching_bytes", [1, 2])
def test_a_token_whose_digest_shares_the_first_bytes_of_a_key_is_refused(keyed_edge, matching_bytes):
    """The comparison looks at every byte: one that stopped after the first (or second) would let this in."""
    token = forged_token(KEYS["pmoves"], matching_bytes)
    assert post_chat(keyed_edge, bearer(token)).status_code == 401


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer ",
        "Bearer wrong-key",
        f"Bearer {REVOKED_KEY}",  # listed in edge.keys, its variable unset: revoked
        f"Basic {KEYS['pmoves']}",
        f"Bearer {KEYS['pmoves']}x",
        f"Bearer {KEYS['pmoves'][:-1]}",
        KEYS["pmoves"],
    ],
)
@pytest.mark.parametrize("route", API_ROUTES + [edge.OWN_METRICS_PATH])
def test_every_api_route_refuses_a_missing_wrong_or_revoked_key_in_json(rig, keyed_edge, authorization, route):
    since = len(rig.mock.requests)
    headers = {"Authorization": authorization} if authorization is not None else {}
    status, answered, body = post_as_sent(keyed_edge.port, route, headers, CHAT)  # sends `Bearer ` as it is
    assert status == 401
    assert answered["www-authenticate"] == "Bearer"
    assert answered["content-type"] == "application/json"
    assert body["error"]["code"] == "invalid_api_key"
    assert rig.mock.requests[since:] == []


def test_a_revoked_caller_is_refused_while_the_others_still_work(rig, tmp_path, ui_stand_in):
    """Revoking one caller: its variable emptied in the env layer; the edge restarts with the others' keys."""
    env_dir = tmp_path / "env"
    env_dir.mkdir()
    layer = (rig.keyed.project_dir / "env-keyed" / "env.shared").read_text()
    (env_dir / "env.shared").write_text(layer.replace(f"HIRAG_TENSORZERO_KEY={KEYS['hirag']}", "HIRAG_TENSORZERO_KEY="))
    without_hirag = load("test", project_dir=rig.keyed.project_dir, env_dir=str(env_dir))
    with running_edge(without_hirag, rig.gateway_routes, tmp_path / "edge", ui=ui_stand_in.endpoint) as running:
        assert post_chat(running, bearer(KEYS["hirag"])).status_code == 401
        assert post_chat(running, bearer(KEYS["agent_zero"])).status_code == 200


def test_keys_appear_in_no_log_and_callers_label_the_metrics(keyed_edge):
    scrape = f"http://{keyed_edge.layout.metrics}{edge.OWN_METRICS_PATH}"
    before = httpx.get(scrape).text
    logged_before = len(keyed_edge.log("access.log").splitlines())
    sent = (KEYS["hirag"], KEYS["hirag"], KEYS["agent_zero"], "wrong-" + KEYS["pmoves"], REVOKED_KEY)
    for key in sent:
        post_chat(keyed_edge, bearer(key))
    after = httpx.get(scrape).text

    def counted(text: str, caller: str, status: str) -> float:
        labels = f'caller="{caller}",route="/v1/chat/completions",status="{status}"'
        pattern = rf"^tensorzero_http_requests_total\{{{re.escape(labels)}\}} (\S+)$"
        found = re.search(pattern, text, re.MULTILINE)
        return float(found.group(1)) if found else 0.0

    assert counted(after, "hirag", "200") - counted(before, "hirag", "200") == 2
    assert counted(after, "agent_zero", "200") - counted(before, "agent_zero", "200") == 1
    assert counted(after, "none", "401") - counted(before, "none", "401") == 2
    # Every line of these requests is written (the revoked key's 401 last) before the logs are searched.
    assert logged_soon(keyed_edge, lambda entry: entry["status"] == 401, lines=logged_before + len(sent))
    assert '"caller":"hirag"' in keyed_edge.log("access.log")
    logs = keyed_edge.log("access.log") + keyed_edge.log("error.log")
    leaked = [name for name, key in {**KEYS, "revoked": REVOKED_KEY, "ui": UI_PASSWORD}.items() if key in logs]
    assert leaked == []
    for name in KEYS:
        assert KEYS[name] not in after


def test_a_key_that_is_not_set_in_the_container_stops_the_edge(rig, tmp_path):
    """The plan supplies the key; a container that somehow lacks it refuses to start rather than serve open."""
    env = {v.name: v.value for v in rig.keyed.plans[EDGE.role].env if v.name != edge_access.KEY_ENV_PREFIX + "hirag"}
    with pytest.raises(AssertionError, match=f"{edge_access.KEY_ENV_PREFIX}hirag is not set"):
        with running_edge(rig.keyed, rig.gateway_routes, tmp_path, env=env):
            pass


# ---- rate limits ----------------------------------------------------------------------------------------------


def test_a_callers_rate_limit_answers_an_openai_style_429_and_spares_the_others(keyed_edge):
    for _ in range(2):  # a minute's window may turn mid-test: then the count starts again, and so does this
        window = int(time.time() // edge_access.LIMIT_WINDOW_S)
        answers = [post_chat(keyed_edge, bearer(KEYS["limited"])) for _ in range(LIMIT_PER_MINUTE + 2)]
        other = post_chat(keyed_edge, bearer(KEYS["pmoves"]))
        if int(time.time() // edge_access.LIMIT_WINDOW_S) == window:
            break
    statuses = [answer.status_code for answer in answers]
    assert statuses[:LIMIT_PER_MINUTE] == [200] * LIMIT_PER_MINUTE
    assert statuses[LIMIT_PER_MINUTE:] == [429, 429]
    refused = answers[-1]
    assert refused.headers["content-type"] == "application/json"
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"
    assert refused.json()["error"]["type"] == "requests"
    assert "limited" in refused.json()["error"]["message"]
    assert 1 <= int(refused.headers["retry-after"]) <= edge_access.LIMIT_WINDOW_S
    assert other.status_code == 200


# ---- the UI's login -------------------------------------------------------------------------------------------


def ui_url(running) -> str:
    return f"http://{running.layout.ui}"


@pytest.mark.parametrize(
    "auth", [None, ("pmoves", "wrong"), ("admin", UI_PASSWORD), ("pmoves", ""), ("pmoves", UI_PASSWORD + "x")]
)
def test_the_ui_asks_a_browser_to_log_in(keyed_edge, ui_stand_in, auth):
    ui_stand_in.requests.clear()
    answer = httpx.get(ui_url(keyed_edge) + "/observability/inferences", auth=auth, headers={"Accept": "text/html"})
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == 'Basic realm="TensorZero UI", charset="UTF-8"'
    assert ui_stand_in.requests == []
    as_json = httpx.get(ui_url(keyed_edge) + "/api/x", auth=auth, headers={"Accept": "application/json"})
    assert as_json.status_code == 401 and as_json.json()["error"]["code"] == "login_required"


def test_the_ui_serves_the_logged_in_user_without_passing_the_password_on(keyed_edge, ui_stand_in):
    ui_stand_in.requests.clear()
    answer = httpx.get(ui_url(keyed_edge) + "/observability/inferences?page=2", auth=("pmoves", UI_PASSWORD))
    assert answer.status_code == 200 and answer.json()["stand_in"] is True
    [seen] = ui_stand_in.requests
    assert seen["path"] == "/observability/inferences?page=2"
    assert "Authorization" not in seen["headers"]
    # A caller's API key is not the UI's login.
    assert httpx.get(ui_url(keyed_edge) + "/", headers=bearer(KEYS["pmoves"])).status_code == 401


def test_only_the_uis_health_is_open_and_forwarded_as_exactly_that(keyed_edge, ui_stand_in):
    ui_stand_in.requests.clear()
    assert httpx.get(ui_url(keyed_edge) + "/health").status_code == 200
    assert httpx.get(ui_url(keyed_edge) + "/health/../api/datasets").status_code == 401
    assert [r["path"] for r in ui_stand_in.requests] == ["/health"]


def test_the_ui_is_not_published_where_the_edge_serves_it(rig):
    spec = rig.keyed.spec
    assert spec.placement("ui").ports == ()
    assert [(p.internal, p.external) for p in spec.placement(EDGE).ports] == [
        (EDGE.port, spec.gateway.port),
        (edge.UI_PORT, spec.ui.port),
    ]


# ---- TLS -------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_edge(rig, self_signed, tmp_path_factory, ui_stand_in):
    """The edge of a stack with TLS on, its certificate and key from variables (the plan's secret uploads)."""
    certificate, key = self_signed
    root = tmp_path_factory.mktemp("tls-project")
    quoted = {name: value.replace("\n", "\\n") for name, value in (("CERT", certificate), ("KEY", key))}
    env = MINIMAL_ENV + f'EDGE_TLS_CERT="{quoted["CERT"]}"\nEDGE_TLS_KEY="{quoted["KEY"]}"\n'
    env += f"TENSORZERO_API_KEY={KEYS['pmoves']}\nTENSORZERO_UI_PASSWORD={UI_PASSWORD}\n"
    config = minimal_config(
        ollama={"enabled": False},
        edge={"tls": {"enabled": True, "certificate_var": "EDGE_TLS_CERT", "key_var": "EDGE_TLS_KEY"}},
    )
    catalog = (rig.keyed.project_dir / "catalog.toml").read_text()  # the rig's mock providers
    project = make_project(root, config, {"catalog.toml": catalog, "env/env.shared": env})
    deployment = load("test", project_dir=project)
    uploaded = {f.mount: f.variable.value for f in deployment.plans[EDGE.role].secret_files}
    assert uploaded == {edge_access.TLS_CERTIFICATE: certificate, edge_access.TLS_KEY: key}
    prefix = tmp_path_factory.mktemp("tls-edge")
    with running_edge(deployment, rig.gateway_routes, prefix, ui=ui_stand_in.endpoint, tls=self_signed) as running:
        running.certificate = prefix / "tls" / "cert.pem"
        yield running


def curl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["curl", "-sS", "--max-time", "10", *args], capture_output=True, text=True)


def test_tls_serves_the_api_to_curl_trusting_the_certificate(tls_edge):
    done = curl(
        "--cacert",
        str(tls_edge.certificate),
        "-w",
        "\n%{http_code} %{ssl_verify_result}",
        "-H",
        f"Authorization: Bearer {KEYS['pmoves']}",
        "-H",
        "Content-Type: application/json",
        "-d",
        json.dumps({"model": "gemma_embed_local", "input": "Text to embed"}),
        f"https://{tls_edge.layout.api_tls}/v1/embeddings",
    )
    body, status = done.stdout.rsplit("\n", 1)
    assert status == "200 0", done.stderr + done.stdout
    assert json.loads(body)["data"][0]["embedding"] == [0.25, -0.5, 0.75]


def test_tls_refuses_old_protocols(tls_edge):
    host, port = tls_edge.layout.api_tls.rsplit(":", 1)
    for protocol in ("-tls1", "-tls1_1"):
        done = subprocess.run(
            ["openssl", "s_client", "-connect", f"{host}:{port}", protocol, "-CAfile", str(tls_edge.certificate)],
            input="",
            capture_output=True,
            text=True,
            timeout=10,
        )
        assert done.returncode != 0, f"{protocol} handshake succeeded"
    for version in ("--tlsv1.2", "--tlsv1.3"):
        limit = "1.2" if version == "--tlsv1.2" else "1.3"
        done = curl("--cacert", str(tls_edge.certificate), version, "--tls-max", limit, "-o", "/dev/null",
                    "-w", "%{http_code}", f"https://{tls_edge.layout.api_tls}{edge.HEALTH_PATH}")  # fmt: skip
        assert done.stdout == "200", done.stderr


def json_error(done: subprocess.CompletedProcess) -> tuple[str, dict]:
    """(status and content type, error object) of a curl run with `-w '\n%{http_code} %{content_type}'`."""
    body, status = done.stdout.rsplit("\n", 1)
    return status, json.loads(body)["error"]


def test_plain_http_on_the_tls_ports_never_redirects(tls_edge):
    """Beyond loopback only the HTTPS listeners are published: plain HTTP sent there gets a JSON 400 naming the
    https URL, never a 3xx a client would follow after sending its key in clear text."""
    for listen, path in ((tls_edge.layout.api_tls, "/v1/chat/completions?x=1"), (tls_edge.layout.ui_tls, "/")):
        for keyed in (False, True):
            key = ("-H", f"Authorization: Bearer {KEYS['pmoves']}") if keyed else ()
            done = curl(*key, "-d", "{}", "-w", "\n%{http_code} %{content_type}", f"http://{listen}{path}")
            status, error = json_error(done)
            assert status == "400 application/json", done.stdout + done.stderr
            assert error["code"] == "https_required" and f"https://{listen}{path}" in error["message"]
            assert ("rotate it" in error["message"]) == keyed, error


def tls_stack(tmp_path, bind: str, pair: tuple[str, str]):
    quoted = [value.replace("\n", "\\n") for value in pair]  # a PEM on one env line, as tls_edge writes it
    env = MINIMAL_ENV + f'C="{quoted[0]}"\nK="{quoted[1]}"\nTENSORZERO_API_KEY={KEYS["pmoves"]}\n'
    env += f"TENSORZERO_UI_PASSWORD={UI_PASSWORD}\n"
    tls = {"enabled": True, "certificate_var": "C", "key_var": "K"}
    return load_minimal(tmp_path, env=env, edge={"bind_address": bind, "tls": tls})


def test_two_faces_loopback_plain_and_the_address_https(tmp_path, self_signed):
    """On a named address the edge publishes only its HTTPS listeners; the same host ports on loopback reach the
    plain ones, so the seed's `http://localhost:3030` holds on the host itself."""
    deployment = tls_stack(tmp_path, "10.0.0.5", self_signed)
    spec = deployment.spec
    ports = {(p.ip, p.external): p.internal for p in spec.placement(EDGE).ports}
    assert ports == {
        ("10.0.0.5", spec.gateway.port): edge.TLS_PORTS[edge.PORT],
        ("127.0.0.1", spec.gateway.port): edge.PORT,
        ("10.0.0.5", spec.ui.port): edge.TLS_PORTS[edge.UI_PORT],
        ("127.0.0.1", spec.ui.port): edge.UI_PORT,
    }
    # 0.0.0.0 takes loopback too: one face only (HTTPS, plain HTTP answered with a JSON 400), and validate says so.
    everywhere = tls_stack(tmp_path / "all", "0.0.0.0", self_signed)
    assert {p.ip for p in everywhere.spec.placement(EDGE).ports} == {"0.0.0.0"}
    assert any("http://localhost" in notice for notice in everywhere.plans[EDGE.role].notices)


def test_plain_http_to_every_non_loopback_port_gets_no_3xx(tmp_path, tls_edge, self_signed):
    """Whatever the edge publishes beyond loopback, plain HTTP sent there is answered without a redirect."""
    listens = {
        edge.PORT: tls_edge.layout.api,
        edge.UI_PORT: tls_edge.layout.ui,
        edge.TLS_PORTS[edge.PORT]: tls_edge.layout.api_tls,
        edge.TLS_PORTS[edge.UI_PORT]: tls_edge.layout.ui_tls,
    }
    for bind in ("10.0.0.5", "0.0.0.0"):
        outside = [
            p for p in tls_stack(tmp_path / bind, bind, self_signed).spec.placement(EDGE).ports if p.ip != "127.0.0.1"
        ]
        assert outside
        for published in outside:
            for method in ("GET", "POST"):
                done = curl(
                    "-X",
                    method,
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{http_code}",
                    f"http://{listens[published.internal]}/v1/chat/completions",
                )
                assert not done.stdout.startswith("3"), (published, done.stdout)


def test_monitoring_answers_inside_without_a_key_and_outside_with_one(tls_edge):
    """The plain listeners (the stack's networks, the host's loopback, also on the gateway's published port
    number) answer /metrics keyless, as PMOVES's Prometheus job scrapes it; the HTTPS one asks for a key."""
    certificate = str(tls_edge.certificate)
    inside = [
        curl("-w", "\n%{http_code}", f"http://{listen}/metrics")
        for listen in (tls_edge.layout.api, tls_edge.layout.api_published)
    ]
    outside = curl(
        "--cacert", certificate, "-w", "\n%{http_code} %{content_type}", f"https://{tls_edge.layout.api_tls}/metrics"
    )
    keyed = curl("--cacert", certificate, "-H", f"Authorization: Bearer {KEYS['pmoves']}", "-w", "\n%{http_code}",
                 f"https://{tls_edge.layout.api_tls}/metrics")  # fmt: skip
    # The `tensorzero` package's routes serve no /metrics (a 404 from TensorZero): what matters is that the request
    # reached them, keyless inside and keyed outside, while a keyless one outside stops at the edge.
    gateway_answer = keyed.stdout.rsplit("\n", 1)[1]
    assert gateway_answer != "401" and "Route not found" in keyed.stdout, keyed.stdout
    assert [done.stdout.rsplit("\n", 1)[1] for done in inside] == [gateway_answer] * 2, inside
    assert all("Route not found" in done.stdout for done in inside)
    status, error = json_error(outside)
    assert status == "401 application/json" and error["code"] == "invalid_api_key"
    # Inference still needs the key inside.
    refused = curl(
        "-w", "\n%{http_code} %{content_type}", "-d", "{}", f"http://{tls_edge.layout.api_published}/v1/embeddings"
    )
    assert json_error(refused)[0] == "401 application/json"


def test_nginx_own_errors_answer_in_json(tls_edge):
    """What nginx itself answers (a malformed request, a line too long) is the OpenAI error shape, not HTML."""
    host, port = tls_edge.layout.api.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.sendall(b"NOT A REQUEST\r\n\r\n")
        answer = conn.recv(65536).decode()
    head, body = answer.split("\r\n\r\n", 1)
    assert head.startswith("HTTP/1.1 400") and "application/json" in head, answer
    assert json.loads(body)["error"]["code"] == "edge_400"
    long = curl("-w", "\n%{http_code} %{content_type}", f"http://{tls_edge.layout.api}/{'x' * 20000}")
    assert json_error(long)[0].split()[1] == "application/json", long.stdout


def test_tls_serves_the_ui_login_too(tls_edge, ui_stand_in):
    certificate = str(tls_edge.certificate)
    url = f"https://{tls_edge.layout.ui_tls}/"
    refused = curl("--cacert", certificate, "-o", "/dev/null", "-w", "%{http_code}", url)
    served = curl("--cacert", certificate, "-u", f"pmoves:{UI_PASSWORD}", "-o", "/dev/null", "-w", "%{http_code}", url)
    assert (refused.stdout, served.stdout) == ("401", "200"), refused.stderr + served.stderr


def test_an_untrusted_client_refuses_the_self_signed_certificate(tls_edge):
    done = curl("-o", "/dev/null", f"https://{tls_edge.layout.api_tls}{edge.HEALTH_PATH}")
    assert done.returncode != 0 and "certificate" in done.stderr


# ---- healthcheck ------------------------------------------------------------------------------------------------


class FixedStatus(LocalServer):
    """Answers every GET with one status line: what the healthcheck must tell apart."""

    def __init__(self, status: int):
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        super().__init__(Handler)


@pytest.mark.parametrize(("status", "healthy"), [(200, True), (204, False), (301, False), (404, False), (503, False)])
def test_the_healthcheck_passes_only_on_200(status, healthy):
    server = FixedStatus(status)
    try:
        command = [part.replace(f"/{EDGE.port} ", f"/{server.port} ") for part in edge.HEALTHCHECK]
        done = subprocess.run(command, capture_output=True, timeout=10)
    finally:
        server.close()
    assert (done.returncode == 0) is healthy


# ---- the rule: nothing unauthenticated beyond loopback ---------------------------------------------------------


def exposed_project(tmp_path, env: str = MINIMAL_ENV, **config):
    project = make_project(tmp_path, minimal_config(**config), {"catalog.toml": MINIMAL_CATALOG, "env/env.shared": env})
    return project


@pytest.mark.parametrize(
    ("config", "key", "message"),
    [
        (
            {"edge": {"bind_address": "0.0.0.0", "tls_terminated_by": "the host's Caddy"}},
            "edge.bind_address",
            "edge would be published on 0.0.0.0:3030, 0.0.0.0:4000 without authentication; supply a key",
        ),
        (
            {"prometheus": {"bind_address": "0.0.0.0"}},
            "prometheus.bind_address",
            "prometheus would be published on 0.0.0.0:9090 without authentication",
        ),
        (
            {"hosts": {"main": {"bind_address": "10.0.0.5"}}, "edge": {"bind_address": "127.0.0.1"}},
            "clickhouse.bind_address",
            "clickhouse would be published on 10.0.0.5:8123 without authentication",
        ),
        (
            {"ollama": {"bind_address": "192.168.1.9"}},
            "ollama.bind_address",
            "keep it on loopback and let ollama_guard",
        ),
        (
            {"edge": {"bind_address": "0.0.0.0", "keys": {"pmoves": "TENSORZERO_API_KEY"}}},
            "edge.tls",
            "TLS is off and the edge is published on 0.0.0.0: enable edge.tls",
        ),
    ],
)
def test_validate_refuses_what_would_be_published_beyond_loopback_unauthenticated(tmp_path, config, key, message):
    from components.core.errors import ConfigError

    env = MINIMAL_ENV + f"TENSORZERO_API_KEY={KEYS['pmoves']}\n" if key == "edge.tls" else MINIMAL_ENV
    with pytest.raises(ConfigError) as failure:
        load("test", project_dir=exposed_project(tmp_path, env, **config))
    found = [str(p) for p in failure.value.problems if p.key == key]
    assert found and message in found[0], str(failure.value)


def test_a_keyed_edge_with_tls_terminated_elsewhere_is_valid_and_says_so(tmp_path):
    env = MINIMAL_ENV + f"TENSORZERO_API_KEY={KEYS['pmoves']}\n"
    edge_spec = {"bind_address": "0.0.0.0", "tls_terminated_by": "the PMOVES Caddy on this host"}
    deployment = load("test", project_dir=exposed_project(tmp_path, env, edge=edge_spec))
    assert deployment.plans[EDGE.role].notices == (
        "edge: TLS is off on 0.0.0.0; the PMOVES Caddy on this host is expected to terminate it",
    )
    assert deployment.plans[EDGE.role].authentication.startswith("bearer keys of pmoves")


def test_ollama_across_hosts_is_reached_only_through_its_allow_list_guard(deployments):
    prod = deployments["prod"]
    spec = prod.spec
    guard = prod.plans["ollama_guard"]
    jetson = spec.ollama.instances["jetson"]
    assert spec.placement("ollama-jetson").ports == ()  # the GPU host's Ollama itself publishes nothing
    [published] = guard.placement.ports
    assert published.ip == spec.hosts["gpu"].bind_address and published.external == jetson.port
    assert guard.authentication == f"allow-list {', '.join(spec.ollama_guard.allow)}"
    assert spec.endpoint("ollama-jetson", seen_from="main") == Endpoint(spec.hosts["gpu"].address, jetson.port)
    # The main host's Ollama, beside the gateway, stays on loopback.
    assert [p.ip for p in spec.placement("ollama").ports] == ["127.0.0.1"]


def test_a_guard_bound_to_every_address_is_refused(tmp_path):
    from components.core.errors import ConfigError

    config = {
        "hosts": {"main": {}, "gpu": {"address": "10.0.0.9", "bind_address": "0.0.0.0"}},
        "ollama": {"host": "gpu"},
        "ollama_guard": {"enabled": True, "host": "gpu", "allow": ["10.0.0.5/32"]},
    }
    with pytest.raises(ConfigError) as failure:
        load("test", project_dir=exposed_project(tmp_path, **config))
    assert "ollama_guard.bind_address: 0.0.0.0 is every address; bind the guard to the host's private" in str(
        failure.value
    )


def test_monitoring_is_keyless_only_where_nothing_forwards_the_outside(deployments):
    """Prod (TLS on): both plain listeners are inside. A cluster's ingress, or a TLS terminator named in front of a
    loopback edge, forwards outside callers to the plain listener: there /metrics keeps asking for a key."""
    prod = deployments["prod"].spec
    published = edge.inside_published_port(prod)
    assert published == str(prod.gateway.port)
    assert edge.inside_ports(prod, edge.Layout(), published) == [str(edge.PORT), published]
    assert edge.inside_ports(deployments["cluster"].spec, edge.Layout(), None) == []
    fronted = prod.model_copy(
        update={"edge": prod.edge.model_copy(update={"tls": edge_access.EdgeTls(), "tls_terminated_by": "Caddy"})}
    )
    loopback = fronted.model_copy(update={"edge": fronted.edge.model_copy(update={"bind_address": "127.0.0.1"})})
    assert edge.inside_ports(loopback, edge.Layout(), published) == []
    direct = loopback.model_copy(update={"edge": loopback.edge.model_copy(update={"tls_terminated_by": None})})
    assert edge.inside_ports(direct, edge.Layout(), published) == [str(edge.PORT), published]
