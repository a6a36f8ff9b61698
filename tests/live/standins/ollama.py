"""Stand-in for Ollama (no image here): its model API and OpenAI-compatible routes, on port 11434.

Models appear through `POST /api/pull` and go with `DELETE /api/delete`, as in Ollama; answers are
canned but shaped like Ollama's, and a model that is not pulled is refused the way Ollama refuses it.
"""

import json
import threading
import time

from standin import JSON, serve

VERSION = "0.12.6-stand-in"
models: set[str] = set()
lock = threading.Lock()


def tagged(name: str) -> str:
    return name if ":" in name else f"{name}:latest"


def tags(request):
    with lock:
        listed = [{"name": m, "model": m, "size": 1, "digest": "stand-in", "details": {}} for m in sorted(models)]
    return 200, {"models": listed}, JSON


def pull(request):
    name = tagged(request.json()["model"])
    with lock:
        models.add(name)
    return 200, {"status": "success"}, JSON


def delete(request):
    name = tagged(request.json()["model"])
    with lock:
        if name not in models:
            return 404, {"error": f"model '{name}' not found"}, JSON
        models.discard(name)
    return 200, {}, JSON


def refusal(name: str):
    """Ollama's answer to a model that is not pulled; None when it is."""
    with lock:
        if tagged(name) in models:
            return None
    return 404, {"error": {"message": f'model "{name}" not found, try pulling it first', "type": "api_error"}}, JSON


STREAM_CHUNKS = 8
STREAM_GAP_S = 1.0  # a stream lasts about 8 s: long enough to stay open while the gateway is replaced


def streamed(model: str):
    """Server-sent events in OpenAI's chunk shape, one word every STREAM_GAP_S."""

    def event(delta, finish=None, usage=None):
        choices = [] if usage else [{"index": 0, "delta": delta, "finish_reason": finish}]
        chunk = {"id": "chatcmpl-stand-in", "object": "chat.completion.chunk", "created": 1, "model": model,
                 "choices": choices}  # fmt: skip
        if usage:
            chunk["usage"] = usage
        return b"data: " + json.dumps(chunk).encode() + b"\n\n"

    yield event({"role": "assistant", "content": ""})
    for index in range(STREAM_CHUNKS):
        time.sleep(STREAM_GAP_S)
        yield event({"content": f"word{index} "})
    yield event({}, "stop")
    yield event({}, usage={"prompt_tokens": 9, "completion_tokens": STREAM_CHUNKS, "total_tokens": 9 + STREAM_CHUNKS})
    yield b"data: [DONE]\n\n"


def chat(request):
    body = request.json()
    model = body["model"]
    if body.get("stream"):
        return refusal(model) or (200, streamed(model), "text/event-stream")
    answer = {
        "id": "chatcmpl-stand-in",
        "object": "chat.completion",
        "created": 1,
        "model": model,
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "pong"}}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10},
    }
    return refusal(model) or (200, answer, JSON)


def embeddings(request):
    model = request.json()["model"]
    answer = {
        "object": "list",
        "data": [{"object": "embedding", "index": 0, "embedding": [0.125, -0.25, 0.5]}],
        "model": model,
        "usage": {"prompt_tokens": 6, "total_tokens": 6},
    }
    return refusal(model) or (200, answer, JSON)


serve(
    11434,
    {
        ("GET", "/"): lambda request: (200, "Ollama is running", "text/plain"),
        ("GET", "/api/version"): lambda request: (200, {"version": VERSION}, JSON),
        ("GET", "/api/tags"): tags,
        ("POST", "/api/pull"): pull,
        ("DELETE", "/api/delete"): delete,
        ("POST", "/v1/chat/completions"): chat,
        ("POST", "/v1/embeddings"): embeddings,
    },
)
