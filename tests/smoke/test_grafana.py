"""Grafana answers, and every provisioned datasource passes Grafana's own health check."""

import pytest

from .probes import NotYet, endpoint, json_of, request, seen, shown


def test_health(outputs, budget, http):
    url = endpoint(outputs, "grafana") + "/api/health"

    def attempt(timeout):
        body = json_of(request(http, "GET", url, timeout))
        if not isinstance(body, dict) or body.get("database") != "ok":
            raise NotYet(f"database is not ok: {body!r}")

    budget.wait(attempt, service="grafana", endpoint=f"GET {url}")


def test_every_datasource_healthy(outputs, budget, http):
    base = endpoint(outputs, "grafana")
    if outputs.grafana_admin is None:
        pytest.skip("grafana: no grafana_admin in the outputs to list datasources with")
    auth = (outputs.grafana_admin.user, outputs.grafana_admin.password.get_secret_value())

    def attempt(timeout):
        listed = request(http, "GET", base + "/api/datasources", timeout, auth=auth)
        datasources = json_of(listed)
        if not datasources:
            raise NotYet("no datasource is provisioned")
        unhealthy = []
        for source in datasources:
            checked = request(http, "GET", f"{base}/api/datasources/uid/{source['uid']}/health", timeout, auth=auth)
            body = json_of(checked, expect_status=None)
            if checked.status_code != 200 or not isinstance(body, dict) or body.get("status") != "OK":
                message = body.get("message", "") if isinstance(body, dict) else ""
                unhealthy.append(
                    f"datasource {source.get('name')} ({source.get('type')}, uid {source['uid']}): "
                    f"{shown(message) if message else seen(checked)}"
                )
        if unhealthy:
            raise NotYet("; ".join(unhealthy))

    budget.wait(attempt, service="grafana", endpoint=f"GET {base}/api/datasources/uid/<uid>/health")
