"""An open-loop load generator: requests start at fixed times whatever the answers do.

Request i is due at start + i / rate; the scheduler never waits for an answer, so a slow answer delays nothing
after it, and each latency is measured from when the request was *due*, not from when it was sent: a
scheduler that fell behind (the client's own stall) shows up in the tail instead of hiding it (the correction
for coordinated omission that wrk2 makes). Used by the live swap test and the benchmarks.
"""

import asyncio
import statistics
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class Outcome:
    due: float  # seconds after the run's start
    latency: float  # seconds from due to the whole answer read
    status: Optional[int]  # None when the request failed without an answer
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status == 200


async def _one(send: Callable[[], Awaitable[int]], loop, start: float, due: float) -> Outcome:
    try:
        status = await send()
    except Exception as error:  # a failed request is a result, not a crash of the run
        return Outcome(due - start, loop.time() - due, None, f"{type(error).__name__}: {error}")
    return Outcome(due - start, loop.time() - due, status)


async def open_loop(
    send: Callable[[], Awaitable[int]],
    rate: float,
    duration: float,
    until: Callable[[], bool] = lambda: False,
) -> list[Outcome]:
    """Start `send()` at `rate` per second for `duration` seconds (or until `until()`); every outcome, in due
    order."""
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.05
    tasks = []
    for index in range(int(rate * duration)):
        if until():
            break
        due = start + index / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(_one(send, loop, start, due)))
    return list(await asyncio.gather(*tasks))


def percentile(values: list[float], share: float) -> float:
    """The `share` quantile (0.5, 0.99) of `values`, interpolated."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=1000, method="inclusive")[round(share * 1000) - 1]
