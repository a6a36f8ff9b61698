"""ClickHouse answers `/ping`, the credentials in the outputs work, and the seed's `requests` view answers."""

import re

import pytest

from .probes import NotYet, endpoint, query, request, seen, shown

VIEW = "requests"
SEED_COUNT = f"SELECT COUNT(*) FROM {VIEW}"  # the seed's own query, as PMOVES users run it
# ClickHouse's UNKNOWN_TABLE, as 18.16 ("Code: 60,") and modern servers ("Code: 60.") write it, over HTTP and
# from clickhouse-client alike.
UNKNOWN_TABLE = re.compile(r"\bCode: 60\b")


def test_ping(outputs, budget, http):
    url = endpoint(outputs, "clickhouse") + "/ping"

    def attempt(timeout):
        response = request(http, "GET", url, timeout)
        if response.status_code != 200 or response.text.strip() != "Ok.":
            raise NotYet(seen(response))

    budget.wait(attempt, service="clickhouse", endpoint=f"GET {url}")


def test_credentials_work(outputs, budget, http, clickhouse):
    endpoint(outputs, "clickhouse")  # the URL's host is only reachable from here when published

    def attempt(timeout):
        answer = query(http, clickhouse, "SELECT 1", timeout)
        if answer != "1":
            raise NotYet(f"`SELECT 1` answered {answer!r}")

    budget.wait(attempt, service="clickhouse", endpoint=f"{clickhouse.url} database {clickhouse.database}")


def test_requests_view_answers(outputs, budget, clickhouse_queries):
    """The schema one-shot created the view: `pulumi up` succeeds whatever its exit code, so this is where a
    failed run shows."""
    if outputs.clickhouse_views is None:
        pytest.skip("clickhouse: no clickhouse_views in the outputs: the stack was last deployed before they were")
    if VIEW not in outputs.clickhouse_views:
        pytest.skip(f"clickhouse: no `{VIEW}` view here (clickhouse.requests_view or gateway.observability is off)")
    if clickhouse_queries.ask is None:
        pytest.skip(f"clickhouse: {clickhouse_queries.why_not}")

    where = f"the `{VIEW}` view at {clickhouse_queries.where}"
    schema = outputs.schema_container()
    cause = (
        f"the clickhouse-schema one-shot container did not apply the view; see `docker logs {schema}`; "
        "re-run it with `pulumi up --replace <URN of clickhouse-schema-apply>`"
    )

    def attempt(timeout):
        try:
            answer = clickhouse_queries.ask(SEED_COUNT, timeout)
        except NotYet as not_yet:
            error = str(not_yet)
        else:
            error = "" if answer.isdigit() else f"`{SEED_COUNT}` answered {shown(answer)!r}"
        if UNKNOWN_TABLE.search(error):
            budget.fail("clickhouse", where, error, cause)  # waiting will not create it
        if error:
            raise NotYet(error)

    budget.wait(attempt, service="clickhouse", endpoint=where)
