"""ClickHouse answers `/ping`, and the credentials in the outputs work."""

from .probes import NotYet, endpoint, query, request, seen


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
