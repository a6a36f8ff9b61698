"""Live: Debian's real Prometheus (2.42) runs the stack's rendered prometheus.yml and alert rules, on a network
where the stack's aliases exist, and reports its targets up through /api/v1/targets: itself, the gateway
(stand-in /metrics), the blackbox exporter and Grafana (stand-in), and the blackbox probes of the services
that export no metrics, with the `service` label every alert and dashboard selects on."""

import httpx
import yaml

from components.core.monitoring import EDGE_JOB, GATEWAY_JOB, PROBE_JOB, SERVICE_LABEL
from components.services.edge import GATEWAY_BEHIND_EDGE_ALIAS, OWN_METRICS_PATH
from components.services.edge import METRICS_PORT as EDGE_METRICS_PORT
from components.services.gateway import SERVICE as GATEWAY
from components.services.ollama import SERVICE as OLLAMA
from components.services.prometheus import SERVICE as PROMETHEUS
from components.services.ui import SERVICE as UI

from .engine import NotReady, wait_for
from .livestack import GPU_INSTANCE


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
    # Behind the edge (as here), the gateway answers at its internal alias; the edge's own job is up too.
    assert gateway["scrapeUrl"] == f"http://{GATEWAY_BEHIND_EDGE_ALIAS}:{GATEWAY.port}/metrics"
    [edge] = jobs[EDGE_JOB]
    assert edge["scrapeUrl"] == f"http://{GATEWAY.alias}:{EDGE_METRICS_PORT}{OWN_METRICS_PATH}"


def test_probes_name_the_probed_service_and_succeed(live_stack):
    probes = by_job(live_stack.targets())[PROBE_JOB]
    instances = {t["labels"][SERVICE_LABEL]: t["labels"]["instance"] for t in probes}
    assert instances[UI.role] == f"http://{UI.alias}:{UI.port}/health"
    assert instances[OLLAMA.role] == f"http://{OLLAMA.alias}:{OLLAMA.port}/api/version"
    # The second host's Ollama, on its own network: at that host's address and its published port.
    gpu = live_stack.gpu
    assert instances[f"{OLLAMA.role}-{GPU_INSTANCE}"] == f"http://{gpu.address}:{gpu.ollama_port}/api/version"
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
    # Debian's ClickHouse 18.16 has no BACKUP: the real backupctl's runs fail, and the backup alerts say so from
    # its own metrics. Nothing else fires on the healthy stack.
    expected = {"BackupTooOld", "BackupFailed"}

    def backup_alerts_firing():
        states = {rule["name"]: rule["state"] for rule in evaluated()}
        firing = {name for name, state in states.items() if state == "firing"}
        assert firing <= expected, firing  # never anything else
        if firing != expected:
            raise NotReady(f"firing {sorted(firing)}, backup rules {[states[n] for n in sorted(expected)]}")

    # The first failed run, its scrape and the rules' `for` take a few evaluation rounds.
    wait_for("the backup alerts firing", backup_alerts_firing, 90, live_stack.fleet.logs)
