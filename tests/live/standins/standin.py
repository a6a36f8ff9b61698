"""What the live tests' stand-ins share: a threaded HTTP server that routes by method and path.

Stand-ins replace only what cannot run here (no image registry: no Grafana, Ollama, TensorZero UI or
gateway image). Each answers the real service's routes that the stack and the smoke suite use, in the
real service's shapes, and nothing more.
"""

import json
import os
import signal
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable
from urllib.parse import parse_qs, urlsplit

# (method, path) -> handler(request) -> (status, body, content type)
Route = Callable[["Request"], tuple[int, object, str]]
JSON = "application/json"
TEXT = "text/plain; version=0.0.4"


class Drain:
    """SIGTERM as the real gateway takes it: stop accepting, close idle keep-alive connections, let every
    in-flight request (streams too) finish with `Connection: close`, then exit."""

    def __init__(self):
        self.lock = threading.Lock()
        self.busy = 0
        self.idle: set = set()  # sockets of kept-alive connections waiting for their next request
        self.draining = threading.Event()
        self.done = threading.Condition(self.lock)
        self.before_exit: list[Callable[[], None]] = []  # e.g. writing what is still buffered

    def start(self, server) -> None:
        def drain():
            server.shutdown()  # serve_forever returns: no new connection is accepted
            server.server_close()
            with self.lock:
                self.draining.set()
                for connection in list(self.idle):
                    try:
                        connection.shutdown(2)
                    except OSError:
                        pass
                while self.busy:
                    self.done.wait()
            for finish in self.before_exit:
                finish()
            sys.stderr.write("stand-in: drained, exiting\n")
            sys.stderr.flush()
            os._exit(0)

        signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=drain, daemon=True).start())


DRAIN = Drain()


class Request(BaseHTTPRequestHandler):
    routes: dict[tuple[str, str], Route] = {}
    prefixes: dict[tuple[str, str], Route] = {}  # longest prefix wins
    protocol_version = "HTTP/1.1"  # keep-alive, as the real services speak it

    def handle_one_request(self):
        with DRAIN.lock:
            DRAIN.idle.add(self.connection)
            if DRAIN.draining.is_set():
                self.close_connection = True
                DRAIN.idle.discard(self.connection)
                return
        self.raw_requestline = self.rfile.readline(65537)
        with DRAIN.lock:
            DRAIN.idle.discard(self.connection)
            if not self.raw_requestline:
                self.close_connection = True
                return
            DRAIN.busy += 1
        try:
            if not self.parse_request():
                return
            method = getattr(self, "do_" + self.command, None)
            if method is None:
                self.send_error(501)
                return
            method()
            self.wfile.flush()
        finally:
            with DRAIN.lock:
                DRAIN.busy -= 1
                if DRAIN.draining.is_set():
                    self.close_connection = True
                DRAIN.done.notify_all()

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
        if isinstance(body, Iterator):
            self.stream(status, body, content_type)
            return
        payload = (
            body if isinstance(body, bytes) else (json.dumps(body) if content_type == JSON else str(body)).encode()
        )
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(payload)))
        if DRAIN.draining.is_set():
            self.send_header("connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def stream(self, status: int, chunks: Iterator[bytes], content_type: str) -> None:
        """A streamed answer (server-sent events), each chunk sent as it comes."""
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("transfer-encoding", "chunked")
        if DRAIN.draining.is_set():
            self.send_header("connection", "close")
        self.end_headers()
        for chunk in chunks:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")

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
    # A real server's accept queue, not socketserver's 5: a burst must not drop connection attempts.
    ThreadingHTTPServer.request_queue_size = 128
    server = ThreadingHTTPServer(("0.0.0.0", port), handler)
    server.daemon_threads = True
    DRAIN.start(server)
    print(f"stand-in listening on :{port}", file=sys.stderr, flush=True)
    server.serve_forever()
    # Returned: SIGTERM stopped accepting. The requests still in flight run in daemon threads, which die with
    # the main thread, so it waits here until the drain has seen them all finish (and exits the process).
    threading.Event().wait()
