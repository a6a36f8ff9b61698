"""One chat and one embedding request through the gateway's OpenAI-compatible routes, then the
ModelInference rows in ClickHouse have grown: the gateway's observability works end to end.

Rows are counted over ClickHouse's HTTP interface when it is published, else inside its container
(`docker exec ... clickhouse-client`, with the container's own credentials) when its Docker host answers.
"""

from dataclasses import dataclass, field
from typing import Callable, Optional

import pytest

from .probes import NotYet, Refused, endpoint, json_of, request, shown

TABLE = "ModelInference"
COUNT = f"SELECT count() FROM {TABLE}"
INFERENCE_TIMEOUT_S = 30.0  # a local model may still be loading into memory
PROMPT = "Reply with one word: pong."


@dataclass
class Ledger:
    count: Optional[Callable[[float], int]] = None  # counts the rows, within a timeout
    where: str = ""
    cannot_count: str = ""  # why the rows cannot be counted from here (the check skips)
    before: Optional[int] = None
    why_no_before: str = ""  # why the first count failed (the check fails)
    answered: list[str] = field(default_factory=list)


def rows(answer: str) -> int:
    if not answer.isdigit():
        raise NotYet(f"`{COUNT}` answered {shown(answer)!r}")
    return int(answer)


@pytest.fixture(scope="module")
def ledger(budget, clickhouse_queries) -> Ledger:
    """How to count the rows, and how many there were before this module sent anything (one attempt)."""
    found = Ledger()
    if clickhouse_queries.ask is None:
        found.cannot_count = clickhouse_queries.why_not
        return found
    found.count = lambda timeout: rows(clickhouse_queries.ask(COUNT, timeout))
    found.where = f"{TABLE} at {clickhouse_queries.where}"
    try:
        found.before = found.count(min(5.0, max(budget.remaining, 0.2)))
    except (NotYet, Refused) as error:
        found.why_no_before = f"cannot count rows before the requests: {error}"
    return found


def post(outputs, budget, http, route: str, body: dict, check) -> None:
    url = endpoint(outputs, "gateway") + route

    def attempt(timeout):
        # Only the gateway's endpoint gets the edge's key: no other service ever sees it.
        answer = json_of(request(http, "POST", url, timeout, json=body, headers=outputs.gateway_headers()))
        if not check(answer):
            raise NotYet(f"unexpected answer: {shown(str(answer))}")

    budget.wait(
        attempt,
        service="gateway",
        endpoint=f"POST {url} (model {body['model']})",
        attempt_timeout=INFERENCE_TIMEOUT_S,
    )


def test_chat(outputs, budget, http, ledger):
    model = outputs.smoke.chat_model
    if not model:
        pytest.skip("gateway: no smoke chat model for this stack (smoke.chat_model is null)")
    body = {"model": model, "messages": [{"role": "user", "content": PROMPT}], "max_tokens": 16}
    post(
        outputs,
        budget,
        http,
        "/openai/v1/chat/completions",
        body,
        lambda answer: isinstance(answer, dict) and bool(answer.get("choices")),
    )
    ledger.answered.append(f"chat ({model})")


def embedded(answer) -> bool:
    return isinstance(answer, dict) and bool(answer.get("data")) and bool(answer["data"][0].get("embedding"))


def test_embedding(outputs, budget, http, ledger):
    model = outputs.smoke.embedding_model
    if not model:
        pytest.skip("gateway: no smoke embedding model for this stack (smoke.embedding_model is null)")
    post(
        outputs,
        budget,
        http,
        "/openai/v1/embeddings",
        {"model": model, "input": PROMPT},
        embedded,
    )
    ledger.answered.append(f"embedding ({model})")


def test_inferences_logged_to_clickhouse(budget, ledger):
    if not ledger.answered:
        pytest.skip("gateway: no inference went through the gateway in this run, so nothing new to find")
    if ledger.count is None:
        pytest.skip(f"gateway: {ledger.cannot_count}")
    if ledger.before is None:
        budget.fail("gateway", ledger.where, ledger.why_no_before)

    def attempt(timeout):
        now = ledger.count(timeout)
        if now <= ledger.before:
            done = " and ".join(ledger.answered)
            raise NotYet(f"still {now} rows after {done} answered: inferences are not being logged")

    budget.wait(attempt, service="gateway", endpoint=ledger.where)
