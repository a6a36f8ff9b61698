"""Latency the compatibility edge adds: edge versus direct, same upstream, at a fixed request rate.

    python benchmarks/bench_edge.py [--rate R] [--requests N] [--streams S] [--write-docs]

The edge is the dev stack's rendered configuration run by Debian's nginx with the Lua module,
started exactly as tests/test_edge.py starts it. Two upstreams, each reached directly and through the edge:

- latency: a second nginx (no Lua) answering the gateway's OpenAI routes with a fixed JSON body; as
  fast as a local HTTP server gets, so the difference is the edge's own work (auth, reading the body,
  finding and rewriting the model, logging, metrics, one more hop and a fresh upstream connection).
  Direct requests name `tensorzero::model_name::local_chat` on `/openai/v1/...`; edge requests are the
  seed's (`/v1/...`, the bare upstream name `qwen2.5:0.5b`). Requests are sent open-loop at a fixed rate,
  edge and direct interleaved, each over its own keep-alive connection.
- time to first streamed byte: a local server-sent-events upstream that waits FIRST_CHUNK_S before its
  first chunk; the time from sending the request to the first body byte, edge versus direct.

The client is Python's standard library; its own cost is the same on both paths and cancels in the
differences. --write-docs replaces the table between the markers in docs/edge.md.
"""

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))
sys.path.insert(0, str(PROJECT_DIR / "tests"))

from bench_plan import fake_env_dir  # noqa: E402
from test_edge import API_KEY, free_port, running_edge  # noqa: E402

from components.edge import API_KEY_ENV as EDGE_API_KEY_ENV  # noqa: E402
from components.loader import load  # noqa: E402
from components.names import CHAT_MODEL_PREFIX, EMBEDDING_MODEL_PREFIX  # noqa: E402
from components.service import Endpoint  # noqa: E402

DOCS = PROJECT_DIR / "docs" / "edge.md"
MARKERS = ("<!-- bench-edge:start -->", "<!-- bench-edge:end -->")
TARGET_MEDIAN_MS = 1.0
FIRST_CHUNK_S = 0.05
STREAM_CHUNKS = 5
ANSWER = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1,
        "model": "bench",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "ok"}}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
    }
)
MESSAGES = [{"role": "user", "content": "Summarise the PMOVES architecture in one sentence. " * 20}]

STATIC_UPSTREAM = """worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    keepalive_requests 1000000;
    server {{
        listen 127.0.0.1:{port};
        default_type application/json;
        location / {{ return 200 '{answer}'; }}
    }}
}}
"""


@contextmanager
def static_upstream(root: Path):
    """A plain nginx answering every path with a fixed chat completion."""
    root.mkdir()
    port = free_port()
    (root / "nginx.conf").write_text(STATIC_UPSTREAM.format(prefix=root, port=port, answer=ANSWER))
    process = subprocess.Popen(["nginx", "-p", f"{root}/", "-c", str(root / "nginx.conf"), "-g", "daemon off;"])
    try:
        wait_for_port(port)
        yield Endpoint("127.0.0.1", port)
    finally:
        process.terminate()
        process.wait(timeout=10)


class StreamingUpstream:
    """Server-sent events: headers at once, the first chunk after FIRST_CHUNK_S, then STREAM_CHUNKS more."""

    def __init__(self):
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers["content-length"]))
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.end_headers()
                self.wfile.flush()
                time.sleep(FIRST_CHUNK_S)
                for index in range(STREAM_CHUNKS):
                    self.wfile.write(f'data: {{"index": {index}}}\n\n'.encode())
                    self.wfile.flush()
                self.wfile.write(b"data: [DONE]\n\n")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = Endpoint("127.0.0.1", self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


def wait_for_port(port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on port {port}")


@dataclass(frozen=True)
class Call:
    """One kind of request: as a client of the real gateway sends it, and as PMOVES sends it to the edge."""

    label: str
    direct_path: str
    direct_body: bytes
    edge_path: str
    edge_body: bytes


CHAT = Call(
    "chat completion",
    "/openai/v1/chat/completions",
    json.dumps({"model": CHAT_MODEL_PREFIX + "local_chat", "messages": MESSAGES}).encode(),
    "/v1/chat/completions",
    json.dumps({"messages": MESSAGES, "model": "qwen2.5:0.5b"}).encode(),
)
EMBEDDING = Call(
    "embedding",
    "/openai/v1/embeddings",
    json.dumps({"model": EMBEDDING_MODEL_PREFIX + "gemma_embed_local", "input": "Text to embed"}).encode(),
    "/v1/embeddings",
    json.dumps({"model": "gemma_embed_local", "input": "Text to embed"}).encode(),
)
STREAM = Call(
    "first streamed byte",
    "/openai/v1/chat/completions",
    json.dumps({"model": CHAT_MODEL_PREFIX + "local_chat", "messages": MESSAGES, "stream": True}).encode(),
    "/v1/chat/completions",
    json.dumps({"model": "qwen2.5:0.5b", "messages": MESSAGES, "stream": True}).encode(),
)


def timed(connection: http.client.HTTPConnection, path: str, body: bytes, headers: dict) -> float:
    start = time.perf_counter()
    connection.request("POST", path, body, headers)
    answer = connection.getresponse()
    answer.read()
    elapsed = time.perf_counter() - start
    if answer.status != 200:
        raise SystemExit(f"POST {path} answered {answer.status}")
    return elapsed


def first_byte(port: int, path: str, body: bytes, headers: dict) -> float:
    """Seconds from sending the request to the first byte of the streamed body."""
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    request = (
        f"POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n{head}"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body
    with socket.create_connection(("127.0.0.1", port)) as connection:
        start = time.perf_counter()
        connection.sendall(request)
        received = b""
        while b"data:" not in received:
            chunk = connection.recv(65536)
            if not chunk:
                raise SystemExit(f"POST {path}: the stream ended before its first chunk")
            received += chunk
        elapsed = time.perf_counter() - start
        while connection.recv(65536):
            pass
    return elapsed


def at_fixed_rate(rate: float, count: int, send) -> None:
    """Call send(i) at i / rate seconds (open loop: a slow answer does not delay the schedule's next slot)."""
    start = time.perf_counter()
    for index in range(count):
        delay = start + index / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        send(index)


@dataclass
class Row:
    label: str
    direct: list[float]
    edge: list[float]

    def cells(self) -> list[str]:
        def p99(values):
            return statistics.quantiles(values, n=100)[98]

        direct_median, edge_median = statistics.median(self.direct), statistics.median(self.edge)
        direct_p99, edge_p99 = p99(self.direct), p99(self.edge)
        return [
            self.label,
            ms(direct_median),
            ms(edge_median),
            ms(edge_median - direct_median),
            ms(direct_p99),
            ms(edge_p99),
            ms(edge_p99 - direct_p99),
        ]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.3f}"


def compare(label: str, edge_port: int, direct_port: int, call: Call, headers: dict, rate: float, n: int) -> Row:
    """Interleaved edge and direct requests over two keep-alive connections, the first 10% not counted."""
    warmup = max(n // 10, 20)
    plain = {"Content-Type": "application/json"}
    direct = http.client.HTTPConnection("127.0.0.1", direct_port, timeout=30)
    through = http.client.HTTPConnection("127.0.0.1", edge_port, timeout=30)
    row = Row(label, [], [])

    def send(index: int) -> None:
        pair = [
            (row.direct, lambda: timed(direct, call.direct_path, call.direct_body, plain)),
            (row.edge, lambda: timed(through, call.edge_path, call.edge_body, {**plain, **headers})),
        ]
        for results, request in pair if index % 2 else reversed(pair):
            elapsed = request()
            if index >= warmup:
                results.append(elapsed)

    at_fixed_rate(rate, n + warmup, send)
    direct.close()
    through.close()
    return row


def compare_first_byte(edge_port: int, direct_port: int, rate: float, n: int) -> Row:
    row = Row("time to first streamed byte", [], [])

    def send(index: int) -> None:
        pair = [
            (row.direct, lambda: first_byte(direct_port, STREAM.direct_path, STREAM.direct_body, {})),
            (row.edge, lambda: first_byte(edge_port, STREAM.edge_path, STREAM.edge_body, {})),
        ]
        for results, request in pair if index % 2 else reversed(pair):
            results.append(request())

    at_fixed_rate(rate, n, send)
    return row


def table(rows: list[Row], rate: float, n: int, streams: int) -> str:
    version = subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr
    nginx = version.strip().removeprefix("nginx version: ")
    lines = [
        f"Measured by `benchmarks/bench_edge.py` on a {os.cpu_count()}-core machine ({nginx} with the Lua module, "
        f"Python {sys.version.split()[0]} client): {n} requests per path at {rate:g} requests/s each, "
        f"{streams} streams at {rate / 10:g}/s; milliseconds.",
        "",
        "| request | direct median | edge median | **added median** | direct p99 | edge p99 | **added p99** |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    lines += ["| " + " | ".join(row.cells()) + " |" for row in rows]
    added = statistics.median(rows[0].edge) - statistics.median(rows[0].direct)
    verdict = "met" if added * 1000 < TARGET_MEDIAN_MS else "NOT met"
    lines += ["", f"Target: under {TARGET_MEDIAN_MS:g} ms added at the median ({verdict} for chat completions)."]
    return "\n".join(lines)


def write_docs(text: str) -> None:
    document = DOCS.read_text()
    start, end = (document.index(marker) for marker in MARKERS)
    DOCS.write_text(document[: start + len(MARKERS[0])] + "\n" + text + "\n" + document[end:])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200, help="requests per second per path (default 200)")
    parser.add_argument("--requests", type=int, default=3000, help="measured requests per path (default 3000)")
    parser.add_argument("--streams", type=int, default=300, help="measured streams per path (default 300)")
    parser.add_argument("--write-docs", action="store_true", help="write the table into docs/edge.md")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-edge-") as temp, ExitStack() as stack:
        root = Path(temp)
        env_dir = Path(fake_env_dir("dev", root))
        keyed_dir = root / "keyed"
        keyed_dir.mkdir()
        for layer in env_dir.iterdir():
            (keyed_dir / layer.name).write_text(layer.read_text())
        with (keyed_dir / ".env.local").open("a") as layer:
            layer.write(f"{EDGE_API_KEY_ENV}={API_KEY}\n")
        open_stack, keyed_stack = load("dev", env_dir=str(env_dir)), load("dev", env_dir=str(keyed_dir))

        upstream = stack.enter_context(static_upstream(root / "upstream"))
        streaming = StreamingUpstream()
        stack.callback(streaming.close)
        edge = stack.enter_context(running_edge(open_stack, upstream, root / "edge"))
        keyed = stack.enter_context(running_edge(keyed_stack, upstream, root / "keyed-edge", API_KEY))
        streamed = stack.enter_context(running_edge(open_stack, streaming.endpoint, root / "stream-edge"))

        key = {"Authorization": f"Bearer {API_KEY}"}
        rows = [
            compare("chat completion", edge.port, upstream.port, CHAT, {}, args.rate, args.requests),
            compare("chat completion, key required", keyed.port, upstream.port, CHAT, key, args.rate, args.requests),
            compare("embedding", edge.port, upstream.port, EMBEDDING, {}, args.rate, args.requests),
            compare_first_byte(streamed.port, streaming.endpoint.port, args.rate / 10, args.streams),
        ]
    text = table(rows, args.rate, args.requests, args.streams)
    print(text)
    if args.write_docs:
        write_docs(text)
        print(f"\nwritten into {DOCS.relative_to(PROJECT_DIR)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
