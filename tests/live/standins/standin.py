"""What the live tests' stand-ins share: a threaded HTTP server that routes by method and path.

Stand-ins replace only what cannot run here (no image registry: no Grafana, Ollama, TensorZero UI or
gateway image). Each answers the real service's routes that the stack and the smoke suite use, in the
real service's shapes, and nothing more.
"""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable
from urllib.parse import parse_qs, urlsplit

# (method, path) -> handler(request) -> (status, body, content type)
Route = Callable[["Request"], tuple[int, object, str]]
JSON = "application/json"
TEXT = "text/plain; version=0.0.4"


class Request(BaseHTTPRequestHandler):
    routes: dict[tuple[str, str], Route] = {}
    prefixes: dict[tuple[str, str], Route] = {}  # longest prefix wins

    @property
    def route_path(self) -> str:
        return urlsplit(self.path).path

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.path).query)

    def body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("content-length") or 0))

    def json(self):
        return json.loads(self.body() or b"null")

    def _dispatch(self, method: str) -> None:
        path = self.route_path
        handler = self.routes.get((method, path))
        if handler is None:
            matches = [(p, h) for (m, p), h in self.prefixes.items() if m == method and path.startswith(p)]
            handler = max(matches, key=lambda match: len(match[0]))[1] if matches else None
        if handler is None:
            self.send(404, {"error": f"{method} {path}: no such route in this stand-in"})
            return
        try:
            self.send(*handler(self))
        except Exception as error:  # a stand-in bug must show up as a 500, not a hung connection
            self.send(500, {"error": f"stand-in error: {type(error).__name__}: {error}"})

    def send(self, status: int, body: object, content_type: str = JSON) -> None:
        payload = (
            body if isinstance(body, bytes) else (json.dumps(body) if content_type == JSON else str(body)).encode()
        )
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def do_GET(self):
        self._dispatch("GET")

    def do_HEAD(self):
        # As the real servers do: a GET route answers HEAD too (the healthchecks' `wget --spider` asks HEAD).
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def log_request(self, code="-", size="-"):
        # Only what went wrong: healthchecks every second would drown the logs a failing test shows.
        if not str(code).startswith("2"):
            sys.stderr.write(f"{self.command} {self.path} -> {code}\n")

    def log_error(self, format, *args):
        sys.stderr.write(f"{self.command} {self.path}: {format % args}\n")


def serve(port: int, routes: dict[tuple[str, str], Route], prefixes: dict[tuple[str, str], Route] = None) -> None:
    handler = type("Routes", (Request,), {"routes": routes, "prefixes": prefixes or {}})
    server = ThreadingHTTPServer(("0.0.0.0", port), handler)
    server.daemon_threads = True
    print(f"stand-in listening on :{port}", file=sys.stderr, flush=True)
    server.serve_forever()
