"""Live: Debian's real Prometheus (2.42) runs the stack's rendered prometheus.yml and alert rules, on a network
where the stack's aliases exist, and reports its targets up through /api/v1/targets: itself, the gateway
(stand-in /metrics), the blackbox exporter and Grafana (stand-in), and the blackbox probes of the services
that export no metrics, with the `service` label every alert and dashboard selects on."""

import httpx
import yaml

from components.gateway import SERVICE as GATEWAY
from components.monitoring import GATEWAY_JOB, PROBE_JOB, SERVICE_LABEL
from components.ollama import SERVICE as OLLAMA
from components.prometheus import SERVICE as PROMETHEUS
from components.ui import SERVICE as UI

from .engine import NotReady, wait_for
from .livestack import EDGE_INSTANCE


def by_job(targets: list[dict]) -> dict[str, list[dict]]:
    jobs: dict[str, list[dict]] = {}
    for target in targets:
        jobs.setdefault(target["labels"]["job"], []).append(target)
    return jobs


def test_rendered_jobs_are_scraped_and_up(live_stack):
    [config] = [f for f in live_stack.deployment.plans[PROMETHEUS.role].files if f.kind == "prometheus-config"]
    jobs = by_job(live_stack.targets())
    # Exactly the rendered jobs: the container runs the stack's file, not a default configuration.
    assert set(jobs) == {job["job_name"] for job in yaml.safe_load(config.content)["scrape_configs"]}
    down = [
        (t["scrapeUrl"], t["health"], t["lastError"])
        for targets in jobs.values()
        for t in targets
        if t["health"] != "up"
    ]
    assert down == []
    [itself] = jobs[PROMETHEUS.role]
    assert itself["scrapeUrl"] == f"http://{PROMETHEUS.alias}:{PROMETHEUS.port}/metrics"
    [gateway] = jobs[GATEWAY_JOB]
    assert gateway["labels"][SERVICE_LABEL] == GATEWAY.role
    assert gateway["scrapeUrl"] == f"http://{GATEWAY.alias}:{GATEWAY.port}/metrics"


def test_probes_name_the_probed_service_and_succeed(live_stack):
    probes = by_job(live_stack.targets())[PROBE_JOB]
    instances = {t["labels"][SERVICE_LABEL]: t["labels"]["instance"] for t in probes}
    assert instances[UI.role] == f"http://{UI.alias}:{UI.port}/health"
    assert instances[OLLAMA.role] == f"http://{OLLAMA.alias}:{OLLAMA.port}/api/version"
    # The second host's Ollama, on its own network: at that host's address and its published port.
    edge = live_stack.edge
    assert instances[f"{OLLAMA.role}-{EDGE_INSTANCE}"] == f"http://{edge.address}:{edge.ollama_port}/api/version"
    answer = httpx.get(live_stack.urls[PROMETHEUS.role] + "/api/v1/query", params={"query": "probe_success"}).json()
    success = {r["metric"][SERVICE_LABEL]: r["value"][1] for r in answer["data"]["result"]}
    assert success == {role: "1" for role in instances}


def test_rendered_alert_rules_are_loaded(live_stack):
    def evaluated():
        answer = httpx.get(live_stack.urls[PROMETHEUS.role] + "/api/v1/rules").json()
        rules = [rule for group in answer["data"]["groups"] for rule in group["rules"]]
        if not rules or any(rule["health"] == "unknown" for rule in rules):
            raise NotReady("rules not evaluated yet")
        return rules

    rules = wait_for("alert rules evaluated", evaluated, 30, live_stack.fleet.logs)
    [rendered] = [f for f in live_stack.deployment.plans[PROMETHEUS.role].files if f.kind == "prometheus-rules"]
    declared = {rule["alert"] for group in yaml.safe_load(rendered.content)["groups"] for rule in group["rules"]}
    assert {rule["name"] for rule in rules} == declared
    assert all(rule["health"] == "ok" for rule in rules), [(r["name"], r.get("lastError")) for r in rules]
    assert [rule["name"] for rule in rules if rule["state"] == "firing"] == []
