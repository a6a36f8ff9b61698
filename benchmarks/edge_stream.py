"""A streamed answer's timing, read off the wire: first byte, gaps between chunks, the last content chunk to
`data: [DONE]`, and `[DONE]` to the response's end (the chunked terminator) and the connection's close.

Used by bench_edge.py; each request goes on a fresh connection that the client closes after the answer's end,
as OpenAI's clients do at the end of a stream.
"""

import json
import socket
import statistics
import time

# What the static provider streams: three content chunks, then the end, as OpenAI's API sends them.
CHUNKS = [
    {"id": "chatcmpl-s", "object": "chat.completion.chunk", "created": 1, "model": "bench-stream-upstream",
     "choices": [{"index": 0, "delta": {"role": "assistant", "content": word}, "finish_reason": None}]}
    for word in ("one ", "two ", "three")
]  # fmt: skip
SSE = "".join(f"data: {json.dumps(chunk)}\n\n" for chunk in CHUNKS) + "data: [DONE]\n\n"
PROVIDER_LOCATION = """location /stream/ {{
            default_type text/event-stream;
            return 200 '{sse}';
        }}"""


def provider_location() -> str:
    """The nginx location answering every streamed request with SSE (nginx reads \\n in a quoted string)."""
    return PROVIDER_LOCATION.format(sse=SSE.replace("\n", "\\n").replace("'", "\\'"))


def one_stream(port: int, request: bytes) -> dict[str, float]:
    """Seconds from sending the request: first byte, each `data:` line, `[DONE]`, the chunked end."""
    with socket.create_connection(("127.0.0.1", port)) as connection:
        start = time.perf_counter()
        connection.sendall(request)
        seen = b""
        marks: dict[str, float] = {}
        content: list[float] = []
        while not seen.endswith(b"\r\n0\r\n\r\n"):
            data = connection.recv(65536)
            now = time.perf_counter() - start
            if not data:
                raise SystemExit(f"stream closed early on port {port}: {seen[-200:]!r}")
            marks.setdefault("first_byte", now)
            content += [now] * data.count(b'data: {"')
            if b"[DONE]" in data:
                marks["done"] = now
            seen += data
        marks["end"] = time.perf_counter() - start
        if not seen.startswith(b"HTTP/1.1 200"):
            raise SystemExit(f"stream on port {port} answered {seen[:200]!r}")
    gaps = [b - a for a, b in zip(content, content[1:], strict=False)]
    return {
        "first_byte": marks["first_byte"],
        "between_chunks": statistics.mean(gaps) if gaps else 0.0,
        "last_chunk_to_done": marks["done"] - content[-1],
        "done_to_end": marks["end"] - marks["done"],
        "total": marks["end"],
    }


def stream_figures(port: int, request: bytes, count: int) -> dict[str, float]:
    """Medians over `count` streams, one after the other (the first few warm the pools and are left out)."""
    runs = [one_stream(port, request) for _ in range(count + 3)][3:]
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}
