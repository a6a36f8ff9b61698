"""Prometheus (when the stack runs it) is ready, scrapes every target, and every probe succeeds."""

import pytest

from .probes import NotYet, json_of, request, wait_until_ok


@pytest.fixture(scope="module")
def prometheus(outputs) -> str:
    if "prometheus" not in outputs.endpoints:
        why = "not published" if "prometheus" in outputs.containers else "monitoring is off"
        pytest.skip(f"prometheus: {why} (no endpoints.prometheus in the outputs)")
    return outputs.endpoints["prometheus"].rstrip("/")


def test_ready(prometheus, budget, http):
    wait_until_ok(budget, http, "prometheus", prometheus + "/-/ready")


def describe(target: dict) -> str:
    labels = target.get("labels", {})
    service = labels.get("service", labels.get("job", "?"))
    where = target.get("scrapeUrl", labels.get("instance", "?"))
    error = f": {target['lastError']}" if target.get("lastError") else ""
    return f"{service} target {where} (job {labels.get('job', '?')}) is {target.get('health', '?')}{error}"


def test_every_target_up(prometheus, budget, http):
    url = prometheus + "/api/v1/targets?state=active"

    def attempt(timeout):
        targets = json_of(request(http, "GET", url, timeout)).get("data", {}).get("activeTargets", [])
        if not targets:
            raise NotYet("no active target: is the configuration loaded?")
        not_up = [describe(t) for t in targets if t.get("health") != "up"]
        if not_up:
            raise NotYet("; ".join(not_up))

    budget.wait(attempt, service="prometheus", endpoint=f"GET {url}")


def test_every_probe_succeeds(prometheus, budget, http):
    """A blackbox probe's target is `up` while the exporter answers; `probe_success` says if the service did."""
    url = prometheus + "/api/v1/query"

    def attempt(timeout):
        body = json_of(request(http, "GET", url, timeout, params={"query": "probe_success == 0"}))
        failing = body.get("data", {}).get("result", [])
        if failing:
            raise NotYet(
                "; ".join(
                    f"{r['metric'].get('service', '?')} probe of {r['metric'].get('instance', '?')} fails"
                    for r in failing
                )
            )

    budget.wait(attempt, service="prometheus", endpoint=f"GET {url}?query=probe_success == 0")
