"""The gateway replaced behind the real edge the way `pulumi up` replaces it, under open-loop load.

pulumi-docker, for the gateway (a rolling container: docker_target.py), creates the new container under a
fresh name with the same alias and waits until it is healthy, then deletes the old one: `docker stop` with the
plan's grace period (SIGTERM: the gateway drains its in-flight requests), then removal. Meanwhile requests
arrive through the edge at a fixed rate, and one streamed answer is open across the whole swap.
"""

import asyncio
import secrets
import threading
import time
from dataclasses import dataclass, field

import httpx
from openloop import Outcome, open_loop, percentile

from components.services.gateway import SERVICE as GATEWAY

from .engine import docker
from .livestack import LiveStack, run_gateway

REST_S = 5.0  # load before the swap begins: the "at rest" figures
AFTER_S = 3.0  # load after the old gateway is gone
EMBEDDING = {"model": "gemma_embed_local", "input": "Text to embed"}  # the seed's call, bare name
STREAM = {"model": "qwen2.5:0.5b", "messages": [{"role": "user", "content": "stream"}], "stream": True}


@dataclass
class Swap:
    outcomes: list[Outcome] = field(default_factory=list)
    began: float = 0.0  # seconds after the load's start: the new container is created
    ended: float = 0.0  # the old one is removed
    stream_chunks: list[str] = field(default_factory=list)
    stream_done: bool = False
    stream_error: str = ""
    old: str = ""
    new: str = ""

    def phase(self, during: bool) -> list[Outcome]:
        return [o for o in self.outcomes if (self.began <= o.due <= self.ended) is during]

    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.ok]

    def figures(self, during: bool) -> tuple[int, float, float]:
        latencies = [o.latency for o in self.phase(during) if o.ok]
        return len(self.phase(during)), percentile(latencies, 0.5), percentile(latencies, 0.99)


def _stream(url: str, headers: dict, swap: Swap) -> None:
    try:
        with httpx.stream("POST", url, json=STREAM, headers=headers, timeout=60) as answer:
            if answer.status_code != 200:
                swap.stream_error = f"HTTP {answer.status_code}: {answer.read()[:300]!r}"
                return
            for line in answer.iter_lines():
                if line == "data: [DONE]":
                    swap.stream_done = True
                elif line.startswith("data: "):
                    swap.stream_chunks.append(line)
    except httpx.HTTPError as error:
        swap.stream_error = f"{type(error).__name__}: {error}"


def swap_under_load(live: LiveStack, rate: float) -> Swap:
    """Replace the gateway while requests arrive through the edge at `rate` per second."""
    deployment = live.deployment
    edge_url = live.urls[GATEWAY.role]
    headers = {"Authorization": f"Bearer {live.edge_key()['key']}"}
    old = live.fleet.containers[GATEWAY.role]
    swap = Swap(old=old.name)
    drain_s = deployment.spec.gateway.drain_s
    stop = threading.Event()

    started = time.monotonic()
    collected: list[Outcome] = []

    def load() -> None:
        collected.extend(asyncio.run(bounded(send_rate=rate, stop=stop, edge_url=edge_url, headers=headers)))

    worker = threading.Thread(target=load, daemon=True)
    worker.start()
    time.sleep(REST_S)
    # A streamed answer, opened while only the old gateway exists: it must complete across the swap.
    streamer = threading.Thread(target=_stream, args=(edge_url + "/v1/chat/completions", headers, swap), daemon=True)
    streamer.start()
    time.sleep(0.5)
    swap.began = time.monotonic() - started
    name = f"{GATEWAY.role}-{secrets.token_hex(4)}"
    new = run_gateway(live.fleet, deployment, name, config_comment="\n# a catalog change replaces the gateway\n")
    new.wait_healthy()
    swap.new = new.name
    docker("stop", "--time", str(drain_s), old.name, timeout=drain_s + 30)
    docker("rm", old.name)
    swap.ended = time.monotonic() - started
    del live.fleet.containers[name]
    live.fleet.containers[GATEWAY.role] = new
    streamer.join(timeout=60)
    time.sleep(AFTER_S)
    stop.set()
    worker.join(timeout=60)
    swap.outcomes = sorted(collected, key=lambda o: o.due)
    return swap


async def bounded(*, send_rate: float, stop: threading.Event, edge_url: str, headers: dict) -> list[Outcome]:
    """The open-loop load, run until `stop` is set (at most ten minutes)."""
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=50)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def send() -> int:
            answer = await client.post(edge_url + "/v1/embeddings", json=EMBEDDING, headers=headers)
            await answer.aread()
            return answer.status_code

        return await open_loop(send, send_rate, 600.0, until=stop.is_set)
