"""The TensorZero gateway: `/status` (liveness) and `/health` (its ClickHouse connection)."""

from .probes import NotYet, endpoint, json_of, request, seen, wait_until_ok


def test_status(outputs, budget, http):
    wait_until_ok(budget, http, "gateway", endpoint(outputs, "gateway") + "/status")


def test_health_reports_clickhouse_ok(outputs, budget, http):
    url = endpoint(outputs, "gateway") + "/health"

    def attempt(timeout):
        response = request(http, "GET", url, timeout)
        body = json_of(response, expect_status=None)
        if response.status_code != 200 or not isinstance(body, dict) or body.get("clickhouse") != "ok":
            raise NotYet(seen(response))

    budget.wait(attempt, service="gateway", endpoint=f"GET {url}")
