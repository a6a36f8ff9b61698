"""Ollama's guard and the read-only Docker proxy, each run by a real nginx on its rendered file (Debian's nginx,
as the edge's tests run it):

- Ollama's guard lets only the addresses of its allow-list through to Ollama (Ollama has no login);
- the read-only Docker proxy lets Alloy's GETs through to the Docker socket and nothing else.
"""

import json
import os
import socket
import socketserver
import subprocess
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import httpx
import pytest
from conftest import MINIMAL_CATALOG, MINIMAL_ENV, free_port, make_project, minimal_config
from edge_rig import NGINX, StandIn, place

from components.core.errors import ConfigError
from components.services import docker_proxy, ollama_guard
from components.stack.loader import load


@contextmanager
def nginx_serving(files, prefix: Path, port: int):
    place(files, prefix)
    command = [NGINX, "-p", f"{prefix}/", "-c", str(prefix / "nginx.conf"), "-g", "daemon off;"]
    checked = subprocess.run([*command, "-t"], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while True:
            assert process.poll() is None, (prefix / "logs" / "error.log").read_text()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "nginx did not listen"
                time.sleep(0.05)
        yield
    finally:
        process.terminate()
        process.wait(timeout=10)


def from_address(source: str, url: str) -> httpx.Response:
    """A GET sent from `source` (any 127.0.0.0/8 address is this machine's)."""
    with httpx.Client(transport=httpx.HTTPTransport(local_address=source)) as client:
        return client.get(url)


# ---- Ollama's guard ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def guarded(tmp_path_factory):
    config = minimal_config(
        hosts={"main": {}, "gpu": {"address": "10.0.0.9", "bind_address": "10.0.0.9"}},
        ollama={"host": "gpu"},
        ollama_guard={"enabled": True, "host": "gpu", "allow": ["127.0.0.3/32", "10.0.0.0/29"]},
    )
    project = make_project(
        tmp_path_factory.mktemp("guard"), config, {"catalog.toml": MINIMAL_CATALOG, "env/env.shared": MINIMAL_ENV}
    )
    return load("test", project_dir=project)


def test_the_gateway_on_another_host_reaches_ollama_through_its_guard(guarded):
    spec = guarded.spec
    [published] = spec.placement(ollama_guard.SERVICE).ports
    assert (published.ip, published.external) == ("10.0.0.9", spec.ollama.port)
    assert spec.placement("ollama").ports == ()
    assert "http://10.0.0.9:11434/v1" in [
        b.fields.get("api_base") for m in guarded.translation.embedding_models for b in m.providers
    ]
    assert guarded.plans[ollama_guard.SERVICE.role].authentication == "allow-list 127.0.0.3/32, 10.0.0.0/29"


@pytest.mark.parametrize(
    ("instances", "named", "message"),
    [
        ({"jetson": {"host": "gpu"}}, "nano", "'nano' is not an entry of ollama.instances (it has: jetson)"),
        ({}, "jetson", "'jetson' is not an entry of ollama.instances (it has: none)"),
    ],
)
def test_a_guard_naming_an_ollama_the_stack_lacks_is_refused(tmp_path, instances, named, message):
    config = minimal_config(
        hosts={"main": {}, "gpu": {"address": "10.0.0.9", "bind_address": "10.0.0.9"}},
        ollama={"instances": instances},
        ollama_guard={"enabled": True, "host": "gpu", "ollama": named, "allow": ["10.0.0.1/32"]},
    )
    project = make_project(tmp_path, config, {"catalog.toml": MINIMAL_CATALOG, "env/env.shared": MINIMAL_ENV})
    with pytest.raises(ConfigError) as failure:
        load("test", project_dir=project)
    assert ("ollama_guard.ollama", message) in [(p.key, p.message) for p in failure.value.problems], failure.value


def test_only_allowed_addresses_get_through_to_ollama(guarded, tmp_path):
    ollama = StandIn()  # stand-in for Ollama: records what reaches it
    port = free_port()
    files = ollama_guard.config_files(guarded, listen=f"127.0.0.1:{port}", ollama_address=f"127.0.0.1:{ollama.port}")
    try:
        with nginx_serving(files, tmp_path, port):
            allowed = from_address("127.0.0.3", f"http://127.0.0.1:{port}/api/tags")
            refused = from_address("127.0.0.2", f"http://127.0.0.1:{port}/api/tags")
            health = from_address("127.0.0.1", f"http://127.0.0.1:{port}{ollama_guard.HEALTH_PATH}")
    finally:
        ollama.close()
    assert allowed.status_code == 200 and allowed.json()["path"] == "/api/tags"
    assert refused.status_code == 403 and "ollama_guard.allow" in refused.json()["error"]
    assert health.status_code == 200
    assert [r["path"] for r in ollama.requests] == ["/api/tags"]


# ---- the read-only Docker proxy ---------------------------------------------------------------------------


class FakeDockerSocket(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """Stand-in for the Docker socket (no engine is handed to a unit test): records every request."""

    daemon_threads = True

    def __init__(self, path: str):
        self.requests: list[tuple[str, str]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def answer(self):
                server.requests.append((self.command, self.path))
                payload = json.dumps({"fake": True}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_DELETE = do_HEAD = answer

            def address_string(self):
                return "unix"

            def log_message(self, *args):
                pass

        super().__init__(path, Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()


@pytest.mark.parametrize(
    ("method", "path", "passes"),
    [
        ("GET", "/_ping", True),
        ("GET", "/v1.43/version", True),
        ("GET", "/v1.43/containers/json?all=1&filters=%7B%22label%22%3A%5B%22x%22%5D%7D", True),
        ("GET", "/containers/3f2a9c/json", True),
        ("GET", "/v1.43/containers/3f2a9c/logs?follow=1&stdout=1&stderr=1", True),
        ("GET", "/networks", True),
        ("POST", "/v1.43/containers/create", False),
        ("POST", "/containers/json", False),
        ("DELETE", "/containers/3f2a9c", False),
        ("POST", "/containers/3f2a9c/exec", False),
        ("GET", "/containers/3f2a9c/archive?path=/etc", False),
        ("GET", "/images/json", False),
    ],
)
def test_the_docker_proxy_lets_only_alloys_reads_through(deployments, tmp_path, method, path, passes):
    short = Path("/tmp") / f"pmoves-docker-{os.getpid()}-{free_port()}.sock"  # unix socket paths are short
    docker = FakeDockerSocket(str(short))
    port = free_port()
    files = docker_proxy.config_files(deployments["staging"], listen=f"127.0.0.1:{port}", socket=str(short))
    try:
        with nginx_serving(files, tmp_path, port):
            answer = httpx.request(method, f"http://127.0.0.1:{port}{path}")
    finally:
        docker.shutdown()
        short.unlink(missing_ok=True)
    if passes:
        assert answer.status_code == 200 and answer.json() == {"fake": True}
        assert docker.requests == [(method, path)]
    else:
        assert answer.status_code == 403
        assert docker.requests == []
