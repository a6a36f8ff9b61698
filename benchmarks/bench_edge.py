"""What the compatibility edge costs, side by side with TensorZero alone and with a plain pooled nginx hop.

    python benchmarks/bench_edge.py [--rate R] [--seconds S] [--write-docs]

Three ways to the same TensorZero (its real OpenAI-compatible routes, package `tensorzero`, in front of a
static nginx answering as the provider): directly; through a plain nginx proxy hop with a keep-alive pool
(the cheapest proxy there is); and through the edge (the dev stack's rendered files under Debian's nginx with
the Lua module, started as tests/edge_rig.py starts it), which reads the body, rewrites the bare model name,
checks a caller's key, logs and counts.

- Latency, open loop (tests/openloop.py's rule, on raw keep-alive connections): requests start at a fixed
  rate whatever the answers do, and each latency runs from when the request was *due*, so a stalled answer
  shows in the tail instead of delaying the next request (no coordinated omission). Each path runs alone.
- Throughput, closed loop: `wrk` (Debian) with 16 connections, each sending as soon as its answer arrived.
- A streamed answer (benchmarks/edge_stream.py): time to first byte, between chunks, from the last content chunk
  to `data: [DONE]`, and from `[DONE]` to the response's end; the provider streams three chunks then [DONE].
- Instructions per request under callgrind (benchmarks/edge_instructions.py): the plain hop, the edge, and the edge
  with its parts switched off in turn, counted in user space; the same on a busy machine as on an idle one.
- Honest figures (benchmarks/honest.py): the paths run rotated within each round, each figure is the median
  over rounds with its range, the load average is printed before and after, busy rounds are left out or flagged.

--write-docs replaces the table between the markers in docs/edge.md.
"""

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import types
from contextlib import ExitStack, contextmanager
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))
sys.path.insert(0, str(PROJECT_DIR / "tests"))

import edge_instructions  # noqa: E402
import honest  # noqa: E402
from bench_plan import fake_env_dir  # noqa: E402
from conftest import free_port, free_ports  # noqa: E402
from edge_rig import running_edge  # noqa: E402
from edge_stream import provider_location, stream_figures  # noqa: E402
from openloop import percentile  # noqa: E402

from components.core.plans import Endpoint  # noqa: E402
from components.services import gateway  # noqa: E402
from components.stack.loader import load  # noqa: E402

DOCS = PROJECT_DIR / "docs" / "edge.md"
MARKERS = ("<!-- bench-edge:start -->", "<!-- bench-edge:end -->")
KEY = "bench-edge-key-5c1e"
MODEL = "bench_chat"
MESSAGES = [{"role": "user", "content": "Summarise the PMOVES architecture in one sentence. " * 20}]
DIRECT_BODY = json.dumps({"model": f"tensorzero::model_name::{MODEL}", "messages": MESSAGES}).encode()
EDGE_BODY = json.dumps({"messages": MESSAGES, "model": "bench-upstream"}).encode()  # the seed's bare name
STREAM_MODEL = "bench_stream"
DIRECT_STREAM = json.dumps(
    {"model": f"tensorzero::model_name::{STREAM_MODEL}", "messages": MESSAGES, "stream": True}
).encode()
EDGE_STREAM = json.dumps({"messages": MESSAGES, "model": "bench-stream-upstream", "stream": True}).encode()
STREAM_TARGET_ADDED_MS = 1.0
STREAMS = 30  # streams per path and round
ANSWER = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1,
        "model": "bench-upstream",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "ok"}}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
    }
)
TARGETS = {"throughput": 0.8, "p50_over_plain_ms": 0.05, "p99_added_ms": 0.5, "cpu_over_plain": 1.5}

NGINX_MAIN = """worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    keepalive_requests 1000000;
    {body}
}}
"""
PROVIDER = """server {{
        listen 127.0.0.1:{port};
        default_type application/json;
        location / {{ return 200 '{answer}'; }}
        {stream}
    }}"""
PLAIN_HOP = """upstream tensorzero {{
        server 127.0.0.1:{upstream};
        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://tensorzero;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}"""


def plain_hop_conf(prefix: Path, upstream: int, port: int) -> str:
    return NGINX_MAIN.format(prefix=prefix, body=PLAIN_HOP.format(upstream=upstream, port=port))


@contextmanager
def nginx(root: Path, body: str):
    root.mkdir()
    (root / "nginx.conf").write_text(NGINX_MAIN.format(prefix=root, body=body))
    process = subprocess.Popen(["nginx", "-p", f"{root}/", "-c", str(root / "nginx.conf"), "-g", "daemon off;"])
    try:
        time.sleep(0.3)
        yield
    finally:
        process.terminate()
        process.wait(timeout=10)


def catalog(provider_port: int) -> str:
    return f"""
[providers.bench]
base_url = "http://127.0.0.1:{provider_port}/v1"
api_key = "none"

[models.{MODEL}]
provider = "bench"
model = "bench-upstream"

[providers.bench_stream]
base_url = "http://127.0.0.1:{provider_port}/stream/v1"
api_key = "none"

[models.{STREAM_MODEL}]
provider = "bench_stream"
model = "bench-stream-upstream"

[models.local_chat]
provider = "bench"
model = "qwen2.5:0.5b"

[models.gemma_embed_local]
provider = "bench"
model = "gemma:2b"
type = "embedding"
"""


def deployments(root: Path, provider_port: int):
    """The dev stack's spec over a catalog whose provider is the static nginx; with and without a key."""
    import yaml

    project = root / "project"
    (project / "stacks").mkdir(parents=True)
    document = yaml.safe_load((PROJECT_DIR / "stacks" / "Pulumi.dev.yaml").read_text())
    document["config"]["pmoves-tensorzero:catalog"] = {"files": ["catalog.toml"], "models": None}
    (project / "stacks" / "Pulumi.dev.yaml").write_text(yaml.safe_dump(document))
    (project / "catalog.toml").write_text(catalog(provider_port))
    env_dir = Path(fake_env_dir("dev", root))
    with (env_dir / ".env.local").open("a") as layer:
        layer.write(f"TENSORZERO_API_KEY={KEY}\n")
    return load("dev", project_dir=project, env_dir=str(env_dir))


def tensorzero_routes(deployment, root: Path) -> Endpoint:
    """TensorZero's real OpenAI-compatible routes for the deployment's config (observability off: no ClickHouse)."""
    import tensorzero

    config = root / "tensorzero.toml"
    text = gateway.config_file(deployment).content
    config.write_text(text.replace("observability.enabled = true", "observability.enabled = false"))
    served = types.SimpleNamespace(base_url=None)
    tensorzero.patch_openai_client(served, config_file=str(config), async_setup=False)
    match = re.match(r"http://([^:/]+):(\d+)/", str(served.base_url))
    return Endpoint(match.group(1), int(match.group(2))), served


# ---- open-loop latency over raw keep-alive connections ---------------------------------------------------


def request_bytes(path: str, body: bytes, headers: dict) -> bytes:
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return (
        f"POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n{head}"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def read_answer(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """The status, and whether the server keeps the connection open."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    keep = re.search(rb"(?i)\r\nconnection:\s*close", head) is None
    length = re.search(rb"(?i)content-length:\s*(\d+)", head)
    if length:
        await reader.readexactly(int(length.group(1)))
    else:  # chunked
        while True:
            size = int((await reader.readline()).strip(), 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    return status, keep


async def open_loop_latencies(port: int, payload: bytes, rate: float, seconds: float) -> tuple[list[float], str]:
    """Latencies (from each request's due time) of rate x seconds requests; and what failed ("" if nothing)."""
    loop = asyncio.get_running_loop()
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    latencies: list[float] = []
    failed = 0
    kinds: dict[str, int] = {}

    async def one(due: float) -> None:
        nonlocal failed
        connection = idle.pop() if idle else await asyncio.open_connection("127.0.0.1", port)
        reader, writer = connection
        writer.write(payload)
        try:
            status, keep = await read_answer(reader)
        except (asyncio.IncompleteReadError, ConnectionError) as error:
            failed += 1
            kinds[type(error).__name__] = kinds.get(type(error).__name__, 0) + 1
            return
        latencies.append(loop.time() - due)
        if status != 200:
            failed += 1
            kinds[str(status)] = kinds.get(str(status), 0) + 1
        if keep:  # nginx closes a connection after keepalive_requests answers
            idle.append(connection)
        else:
            writer.close()

    start = loop.time() + 0.05
    tasks = []
    for index in range(int(rate * seconds)):
        due = start + index / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(due)))
    await asyncio.gather(*tasks)
    for _, writer in idle:
        writer.close()
    warmup = int(len(latencies) * 0.1)  # connections open and caches warm in the first tenth
    return latencies[warmup:], failed and f"{failed} ({kinds})"


def proxy_cpu_seconds(prefix: Path | None) -> float:
    """User + system CPU so far of the nginx started with this prefix: its master and their workers (0: none)."""
    if prefix is None:
        return 0.0
    stats = {}
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit():
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                stats[entry.name] = (
                    int(fields[1]),
                    int(fields[11]) + int(fields[12]),
                    (entry / "cmdline").read_bytes(),
                )
        except OSError:  # gone meanwhile
            continue
    masters = {pid for pid, (_, _, cmdline) in stats.items() if f"{prefix}/".encode() in cmdline}
    ticks = sum(cpu for pid, (ppid, cpu, _) in stats.items() if pid in masters or str(ppid) in masters)
    return ticks / os.sysconf("SC_CLK_TCK")


def closed_loop_throughput(port: int, path: str, body: bytes, headers: dict, seconds: int) -> tuple[float, int]:
    """Requests per second `wrk` gets with 16 connections that send as soon as their answer arrived, and how
    many requests it sent."""
    script = Path(tempfile.mkstemp(suffix=".lua")[1])
    header_lines = "".join(
        f'wrk.headers["{k}"] = "{v}"\n' for k, v in {"Content-Type": "application/json", **headers}.items()
    )
    script.write_text(f'wrk.method = "POST"\nwrk.body = {json.dumps(body.decode())}\n{header_lines}')
    try:
        done = subprocess.run(
            ["wrk", "-t1", "-c16", f"-d{seconds}s", "-s", str(script), f"http://127.0.0.1:{port}{path}"],
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        script.unlink()
    if "Non-2xx" in done.stdout:
        raise SystemExit(f"wrk saw errors on {path}:\n{done.stdout}")
    sent = int(re.search(r"(\d+) requests in", done.stdout).group(1))
    return float(re.search(r"Requests/sec:\s+([\d.]+)", done.stdout).group(1)), sent


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.3f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=1000, help="open-loop requests per second (default 1000)")
    parser.add_argument("--seconds", type=float, default=10, help="seconds of open-loop load per path (default 10)")
    parser.add_argument("--throughput-seconds", type=int, default=10, help="seconds of wrk per path (default 10)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds over the three paths (default 3)")
    parser.add_argument("--write-docs", action="store_true", help="write the table into docs/edge.md")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-edge-") as temp, ExitStack() as stack:
        root = Path(temp)
        provider_port, plain_port = free_ports(2)
        stack.enter_context(
            nginx(root / "provider", PROVIDER.format(port=provider_port, answer=ANSWER, stream=provider_location()))
        )
        deployment = deployments(root, provider_port)
        tensorzero, keep = tensorzero_routes(deployment, root)
        edge_instructions.check_switches(deployment, tensorzero)
        stack.enter_context(nginx(root / "plain", PLAIN_HOP.format(upstream=tensorzero.port, port=plain_port)))
        edge = stack.enter_context(running_edge(deployment, tensorzero, root / "edge"))
        key = {"Authorization": f"Bearer {KEY}"}
        paths = {
            "TensorZero alone": (tensorzero.port, "/openai/v1/chat/completions", DIRECT_BODY, {}, DIRECT_STREAM, None),
            "plain nginx hop (keep-alive pool)": (
                *(plain_port, "/openai/v1/chat/completions", DIRECT_BODY, {}, DIRECT_STREAM, root / "plain"),
            ),
            "edge (key, name rewrite, log, metrics)": (
                *(edge.port, "/v1/chat/completions", EDGE_BODY, key, EDGE_STREAM, root / "edge"),
            ),
            # The same edge with the rename switched off: the caller sends TensorZero's full name.
            "edge, full name (no rename)": (
                *(edge.port, "/v1/chat/completions", DIRECT_BODY, key, DIRECT_STREAM, root / "edge"),
            ),
        }

        def measure(label: str) -> dict[str, float]:
            port, path, body, headers, streamed, prefix = paths[label]
            latencies, failed = asyncio.run(
                open_loop_latencies(port, request_bytes(path, body, headers), args.rate, args.seconds)
            )
            if failed:  # an overloaded path: reported beside its figures, never hidden
                print(f"{label}: failed {failed}", file=sys.stderr)
            figures = {
                "p50": percentile(latencies, 0.5),
                "p99": percentile(latencies, 0.99),
                "lost": int(failed.split(" ")[0]) if failed else 0,
            }
            cpu_before = proxy_cpu_seconds(prefix)
            figures["rps"], sent = closed_loop_throughput(port, path, body, headers, args.throughput_seconds)
            figures["proxy_cpu_us"] = (proxy_cpu_seconds(prefix) - cpu_before) / sent * 1e6
            stream = stream_figures(port, request_bytes(path, streamed, headers), STREAMS)
            return figures | {f"stream_{name}": value for name, value in stream.items()}

        rounds = honest.run_rounds(list(paths), args.rounds, measure)
        measured = {label: {name: rounds.figure(label, name) for name in rounds.values[label][0]} for label in paths}
        instructions = (
            edge_instructions.measure(
                deployment,
                tensorzero,
                root,
                free_port,
                {"direct": DIRECT_BODY, "edge": EDGE_BODY},
                key,
                lambda prefix, port: plain_hop_conf(prefix, tensorzero.port, port),
            )
            if edge_instructions.available()
            else {}
        )
        del keep
    text = table(measured, rounds, args) + "\n\n" + instructions_table(instructions)
    print(text)
    if args.write_docs:
        honest.write_between_markers(DOCS, MARKERS, text)
        print(f"\nwritten into {DOCS.relative_to(PROJECT_DIR)}")
    return 0


def instructions_table(instructions: dict[str, float]) -> str:
    if not instructions:
        return "Instructions per request: not measured (no valgrind here)."
    plain = instructions["plain nginx hop (keep-alive pool)"]
    lines = [
        f"Instructions per request in the proxy's user space (callgrind; {edge_instructions.N2} minus "
        f"{edge_instructions.N1} requests one after another; independent of the machine's load), each part of the "
        "edge switched off in turn:",
        "",
        "| proxy | instructions/request | x plain hop |",
        "|---|---:|---:|",
    ]
    lines += [f"| {label} | {count:,.0f} | {count / plain:.2f} |" for label, count in instructions.items()]
    return "\n".join(lines)


def table(measured: dict, rounds: honest.Rounds, args) -> str:
    """Each figure the median over the counted rounds, its range in brackets; milliseconds unless named."""
    nginx_version = subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip()
    base, plain, edge, _ = measured.values()

    def spread(figure: tuple[float, float, float], scale: float = 1000, digits: int = 3) -> str:
        median, low, high = (x * scale for x in figure)
        return f"{median:.{digits}f} ({low:.{digits}f}-{high:.{digits}f})"

    lines = [
        f"Measured by `benchmarks/bench_edge.py` on a {os.cpu_count()}-core machine "
        f"({nginx_version.removeprefix('nginx version: ')} with the Lua module, Python {sys.version.split()[0]} "
        f"client): open loop at {args.rate:g} requests/s for {args.seconds:g} s per path (latency from each "
        f"request's due time, first tenth not counted); closed-loop throughput with `wrk -c16` for "
        f"{args.throughput_seconds} s per path; {STREAMS} streams per path one after another; median (range) of "
        f"{len(rounds.counted())} rounds, paths rotated within each; milliseconds.",
        "",
        honest.load_line(rounds),
        "",
        "| path | p50 | p99 | added p50 | failed (open loop) | closed-loop req/s | x TensorZero | proxy CPU/req, us |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, figures in measured.items():
        added = figures["p50"][0] - base["p50"][0]
        lines.append(
            f"| {label} | {spread(figures['p50'])} | {spread(figures['p99'])} | {added * 1000:.3f} | "
            f"{spread(figures['lost'], 1, 0)} | {spread(figures['rps'], 1, 0)} | "
            f"{figures['rps'][0] / base['rps'][0]:.2f} | {spread(figures['proxy_cpu_us'], 1, 1)} |"
        )
    lines += [
        "",
        "A streamed answer (three chunks, then `[DONE]`):",
        "",
        "| path | first byte | between chunks | last chunk to [DONE] | [DONE] to end | whole stream |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    stream_keys = ("first_byte", "between_chunks", "last_chunk_to_done", "done_to_end", "total")
    for label, figures in measured.items():
        lines.append(f"| {label} | " + " | ".join(spread(figures[f"stream_{k}"]) for k in stream_keys) + " |")

    def verdict(met: bool) -> str:
        return ("met" if met else "**not met**") if rounds.quiet else "not judged (busy machine)"

    over_plain = (edge["p50"][0] - plain["p50"][0]) * 1000
    throughput = edge["rps"][0] / base["rps"][0]
    added_p99 = (edge["p99"][0] - base["p99"][0]) * 1000
    cpu_ratio = edge["proxy_cpu_us"][0] / plain["proxy_cpu_us"][0] if plain["proxy_cpu_us"][0] else float("inf")
    stream_added = max((edge[f"stream_{k}"][0] - base[f"stream_{k}"][0]) * 1000 for k in stream_keys)
    lines += [
        "",
        f"Targets: throughput through the edge >= {TARGETS['throughput']}x TensorZero's: {throughput:.2f}x, "
        f"{verdict(throughput >= TARGETS['throughput'])}; at least the plain hop's: "
        f"{edge['rps'][0] / plain['rps'][0]:.2f}x, {verdict(edge['rps'][0] >= plain['rps'][0])}; the edge's p50 "
        f"within {TARGETS['p50_over_plain_ms']} ms of the plain hop's: {over_plain:+.3f} ms, "
        f"{verdict(over_plain <= TARGETS['p50_over_plain_ms'])}; added p99 <= {TARGETS['p99_added_ms']} ms: "
        f"{added_p99:.3f} ms, {verdict(added_p99 <= TARGETS['p99_added_ms'])}; a stream's timings at most "
        f"{STREAM_TARGET_ADDED_MS:g} ms over TensorZero's own: {stream_added:+.3f} ms at most, "
        f"{verdict(stream_added <= STREAM_TARGET_ADDED_MS)}; the edge's CPU per request at most "
        f"{TARGETS['cpu_over_plain']}x the plain hop's: {cpu_ratio:.2f}x, "
        f"{verdict(cpu_ratio <= TARGETS['cpu_over_plain'])}.",
        "",
        f"Command: `{honest.command_line()}`; {rounds.verdict_note()}.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
