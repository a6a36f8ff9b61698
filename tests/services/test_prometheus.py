"""Prometheus: its config and alert rules, proven by promtool and by a real Prometheus server."""

import json
import re
import subprocess
import time
import urllib.parse
import urllib.request
from dataclasses import replace

import pytest
import yaml
from conftest import MINIMAL_CATALOG, MINIMAL_ENV, free_port, make_project, minimal_config
from promtool import declared, render_cases, run, tool, write_mounted

from components.core.monitoring import EDGE_JOB, PROBE_JOB
from components.core.types import duration_seconds
from components.services import clickhouse, edge, prometheus
from components.services.alloy import SERVICE as ALLOY
from components.services.backup import SERVICE as BACKUP
from components.services.blackbox import SERVICE as BLACKBOX
from components.services.clickhouse import SERVICE as CLICKHOUSE
from components.services.edge import SERVICE as EDGE
from components.services.gateway import SERVICE as GATEWAY
from components.services.grafana import SERVICE as GRAFANA
from components.services.loki import SERVICE as LOKI
from components.services.ollama import SERVICE as OLLAMA
from components.services.prometheus import SERVICE as PROMETHEUS
from components.services.prometheus import backup_max_age
from components.services.ui import SERVICE as UI
from components.stack.loader import load

# Where the blackbox exporter asks each service whether it answers (FACTS.md).
PROBED_PATHS = {GATEWAY: "/status", CLICKHOUSE: "/ping", UI: "/health", OLLAMA: "/api/version", BACKUP: "/health"}


def rendered(deployment, root):
    """The stack's Prometheus files written as the container sees them; (config path, rules path)."""
    files = list(deployment.plans[PROMETHEUS.role].files)
    assert {f.kind for f in files} == {"prometheus-config", "prometheus-rules"}
    written = write_mounted(root, files)
    [rules] = [path for mount, path in written.items() if mount.startswith(prometheus.RULES_DIR + "/")]
    return written[prometheus.CONFIG_PATH], rules


def targets(config_path):
    """(job, target, service label) of every static target, and the probe job's exporter address."""
    config = yaml.safe_load(config_path.read_text())
    found, exporters = [], []
    for job in config["scrape_configs"]:
        for group in job["static_configs"]:
            found += [(job["job_name"], target, group["labels"]["service"]) for target in group["targets"]]
        exporters += [
            r["replacement"] for r in job.get("relabel_configs", []) if r.get("target_label") == "__address__"
        ]
    return found, exporters


def cases(deployment, config_path, rules_path):
    """The promtool unit tests for this deployment, built from its rendered files."""
    found, _ = targets(config_path)
    scraped = [{"job": j, "instance": t, "service": s} for j, t, s in found if j != PROBE_JOB]
    probes = [{"job": j, "instance": t, "service": s} for j, t, s in found if j == PROBE_JOB]
    thresholds = deployment.spec.prometheus.alerts
    return render_cases(
        rules_path, scraped, probes, thresholds, deployment.spec.clickhouse.metrics, backup_max_age(deployment.spec)
    )


def deployment_with(deployment, spec):
    return replace(deployment, spec=spec)


def alert_names(rules_path):
    return [rule["alert"] for group in yaml.safe_load(rules_path.read_text())["groups"] for rule in group["rules"]]


def test_promtool_accepts_the_config_and_the_rules_it_names(deployments, stack, tmp_path):
    config, rules = rendered(deployments[stack], tmp_path)
    checked = run("promtool", "check", "config", str(config))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 1 rule files found" in checked.stdout  # check config loaded the rules file too
    checked = run("promtool", "check", "rules", str(rules))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(alert_names(rules))} rules found" in checked.stdout


def test_promtool_refuses_a_config_whose_rules_are_missing(deployments, tmp_path):
    config, rules = rendered(deployments["dev"], tmp_path)
    rules.unlink()
    checked = run("promtool", "check", "config", str(config))
    assert checked.returncode != 0 and "does not point to an existing file" in checked.stdout + checked.stderr


def test_every_alert_fires_and_stays_quiet(deployments, stack, tmp_path):
    deployment = deployments[stack]
    config, rules = rendered(deployment, tmp_path)
    text = cases(deployment, config, rules)
    tested = {}
    for case in yaml.safe_load(text)["tests"]:
        for check in case["alert_rule_test"]:
            tested.setdefault(check["alertname"], set()).add(bool(check["exp_alerts"]))
    assert tested == {name: {True, False} for name in alert_names(rules)}  # each alert: fired and quiet
    (tmp_path / "alerts.test.yml").write_text(text)
    result = run("promtool", "test", "rules", str(tmp_path / "alerts.test.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_error_rate_alert_comes_with_the_edge(deployments, tmp_path):
    """Only the edge counts answers by status: without it the alert would watch a series that never exists."""
    deployment = deployments["dev"]
    assert deployment.spec.deployed(EDGE)
    _, rules = rendered(deployment, tmp_path / "edge")
    assert "GatewayErrorRateHigh" in alert_names(rules)
    spec = deployment.spec.model_copy(update={"edge": deployment.spec.edge.model_copy(update={"enabled": False})})
    bare = deployment_with(deployment, spec)
    config, rules = rendered(bare, tmp_path / "bare")
    assert "GatewayErrorRateHigh" not in alert_names(rules)
    assert EDGE_JOB not in {job for job, _, _ in targets(config)[0]}
    # Every alert of the edgeless rules still has its firing and quiet cases, and they pass.
    text = cases(bare, config, rules)
    assert "GatewayErrorRateHigh" not in text
    (tmp_path / "alerts.test.yml").write_text(text)
    result = run("promtool", "test", "rules", str(tmp_path / "alerts.test.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_alert_cases_catch_a_changed_threshold(deployments, tmp_path):
    """The unit tests are not vacuous: the same cases against other thresholds fail, alert by alert."""
    deployment = deployments["dev"]
    config, rules = rendered(deployment, tmp_path)
    text = cases(deployment, config, rules)
    (tmp_path / "alerts.test.yml").write_text(text)
    alerts = deployment.spec.prometheus.alerts
    moved = alerts.model_copy(
        update={
            "gateway_overhead_p99_seconds": alerts.gateway_overhead_p99_seconds * 3,
            "clickhouse_memory_ratio": (1 + alerts.clickhouse_memory_ratio) / 2 + 0.01,
            "clickhouse_disk_free_ratio": alerts.clickhouse_disk_free_ratio / 4,
            "gateway_error_ratio": (1 + alerts.gateway_error_ratio) / 2 + 0.01,
        }
    )
    spec = deployment.spec.model_copy(
        update={"prometheus": deployment.spec.prometheus.model_copy(update={"alerts": moved})}
    )
    rules.write_text(deployment_with(deployment, spec).plans[PROMETHEUS.role].files[1].content)
    result = run("promtool", "test", "rules", str(tmp_path / "alerts.test.yml"))
    assert result.returncode != 0
    for alert in ("GatewayOverheadHigh", "GatewayErrorRateHigh", "ClickHouseMemoryPressure", "ClickHouseDiskPressure"):
        assert f"alertname: {alert}" in result.stdout + result.stderr, result.stdout + result.stderr


def address(spec, service, port=None):
    """Where Prometheus's host reaches `service`, from names and the spec alone."""
    here = spec.prometheus.host
    if spec.placement(service).host == here:
        # Behind the edge the gateway answers at its internal alias; the edge takes the seed's.
        alias = edge.GATEWAY_BEHIND_EDGE_ALIAS if service == GATEWAY and spec.deployed(EDGE) else service.alias
        return f"{alias}:{port or service.port}"
    host = spec.hosts[spec.placement(service).host].address
    return f"{host}:{spec.placement(service).published}"


def test_every_target_is_a_deployed_service_where_the_spec_puts_it(deployments, stack, tmp_path):
    spec = deployments[stack].spec
    config, _ = rendered(deployments[stack], tmp_path)
    found, exporters = targets(config)
    expected = {
        ("prometheus", address(spec, PROMETHEUS), PROMETHEUS.role),
        ("tensorzero", address(spec, GATEWAY), GATEWAY.role),  # the seed's job name
        ("blackbox", address(spec, BLACKBOX), BLACKBOX.role),
    }
    if spec.deployed(EDGE):
        # The edge's own metrics port, never published: open on the stack's network only, where the edge joins
        # PMOVES's networks too at the name only the stack's network has (and only its addresses answer).
        own = edge.own_network_alias(spec)
        scraped = f"{own}:{edge.METRICS_PORT}" if own else address(spec, EDGE, edge.METRICS_PORT)
        expected.add(("tensorzero-edge", scraped, EDGE.role))
    if spec.clickhouse.metrics:
        expected.add(("clickhouse", f"{CLICKHOUSE.alias}:{clickhouse.METRICS_PORT}", CLICKHOUSE.role))
    for service in (GRAFANA, LOKI, ALLOY, BACKUP):
        if spec.deployed(service):
            expected.add((service.role, address(spec, service), service.role))
    probe_host = spec.blackbox.host
    for service, path in PROBED_PATHS.items():
        # Ollama's instances are probed like it (its further `ollama.instances`).
        for each in [s for s in spec.deployed_services if s.component == service.component]:
            endpoint = spec.endpoint(each, seen_from=probe_host)
            expected.add(("blackbox-http", f"http://{endpoint.host}:{endpoint.port}{path}", each.role))
    assert sorted(found) == sorted(expected)
    assert exporters == [address(spec, BLACKBOX)]


def test_prod_probes_jetson_ollama_on_the_gpu_host_through_its_published_port(deployments, tmp_path):
    spec = deployments["prod"].spec
    config, _ = rendered(deployments["prod"], tmp_path)
    found, _ = targets(config)
    probed = {service: target for _, target, service in found if service.startswith(OLLAMA.role)}
    jetson = spec.ollama.instances["jetson"]
    assert probed == {
        OLLAMA.role: f"http://{OLLAMA.alias}:{OLLAMA.port}/api/version",
        "ollama-jetson": f"http://{spec.hosts[jetson.host].address}:{jetson.port}/api/version",
    }


@pytest.fixture
def reduced(tmp_path):
    """A stack without UI, Ollama, Grafana, Loki or ClickHouse metrics, and other thresholds."""
    catalog = '[providers.ollama]\nbase_url = "http://jetson-ollama:11434"\n' + MINIMAL_CATALOG
    config = minimal_config(
        ui={"enabled": False},
        ollama={"enabled": False},
        grafana={"enabled": False},
        clickhouse={"metrics": False},
        prometheus={
            "scrape_interval": "5s",
            "alerts": {
                "for_duration": "2m",
                "gateway_overhead_p99_seconds": 0.2,
                "clickhouse_memory_ratio": 0.75,
                "clickhouse_disk_free_ratio": 0.2,
                "gateway_error_ratio": 0.2,
            },
        },
    )
    project = make_project(tmp_path / "project", config, {"catalog.toml": catalog, "env/env.shared": MINIMAL_ENV})
    return load("test", project_dir=project)


def test_a_disabled_service_is_neither_scraped_nor_probed(reduced, tmp_path):
    config, rules = rendered(reduced, tmp_path)
    found, _ = targets(config)
    watched = {service for _, _, service in found}
    assert watched == {PROMETHEUS.role, GATEWAY.role, EDGE.role, BLACKBOX.role, CLICKHOUSE.role, BACKUP.role}
    assert [t for j, t, s in found if s == CLICKHOUSE.role] == [f"http://{CLICKHOUSE.alias}:{CLICKHOUSE.port}/ping"]
    assert not [name for name in alert_names(rules) if name.startswith("ClickHouse")]
    checked = run("promtool", "check", "config", str(config))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_thresholds_in_the_rules_follow_the_spec(reduced, deployments, tmp_path):
    config, rules = rendered(reduced, tmp_path / "reduced")
    by_name = {r["alert"]: r for g in yaml.safe_load(rules.read_text())["groups"] for r in g["rules"]}
    assert by_name["GatewayOverheadHigh"]["expr"].endswith("> 0.2")
    assert by_name["GatewayOverheadHigh"]["for"] == "2m"
    assert by_name["GatewayErrorRateHigh"]["expr"].endswith("> 0.2")
    assert yaml.safe_load(config.read_text())["global"]["scrape_timeout"] == "5s"  # never above the interval
    _, default_rules = rendered(deployments["dev"], tmp_path / "dev")
    assert default_rules.read_text() != rules.read_text()
    # The reduced stack's own cases, with its thresholds, pass against its rules.
    (tmp_path / "alerts.test.yml").write_text(cases(reduced, config, rules))
    result = run("promtool", "test", "rules", str(tmp_path / "alerts.test.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_clickhouse_thresholds_follow_the_spec(deployments, tmp_path):
    deployment = deployments["staging"]
    moved = deployment.spec.prometheus.alerts.model_copy(
        update={"clickhouse_memory_ratio": 0.6, "clickhouse_disk_free_ratio": 0.25, "for_duration": "90s"}
    )
    spec = deployment.spec.model_copy(
        update={"prometheus": deployment.spec.prometheus.model_copy(update={"alerts": moved})}
    )
    changed = deployment_with(deployment, spec)
    config, rules = rendered(changed, tmp_path)
    by_name = {r["alert"]: r for g in yaml.safe_load(rules.read_text())["groups"] for r in g["rules"]}
    assert by_name["ClickHouseMemoryPressure"]["expr"].endswith("> 0.6")
    assert by_name["ClickHouseDiskPressure"]["expr"].endswith("< 0.25")
    assert by_name["ClickHouseDiskPressure"]["for"] == "90s"
    (tmp_path / "alerts.test.yml").write_text(cases(changed, config, rules))
    result = run("promtool", "test", "rules", str(tmp_path / "alerts.test.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def get(url: str, method: str = "GET") -> tuple[int, bytes]:
    with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=5) as response:
        return response.status, response.read()


def test_a_real_prometheus_runs_with_the_command_config_and_rules(deployments, stack, tmp_path):
    """Debian's Prometheus 2.42 started with the component's own flags (paths moved under tmp)."""
    config, rules = rendered(deployments[stack], tmp_path)
    moved = {prometheus.CONFIG_PATH: str(config), prometheus.DATA_PATH: str(tmp_path / "data")}
    args = [tool("prometheus")]
    for flag in prometheus.command(deployments[stack].spec.prometheus):
        name, _, value = flag.partition("=")
        args.append(f"{name}={moved.get(value, value)}" if value else name)
    port = free_port()
    server = subprocess.Popen(
        [*args, f"--web.listen-address=127.0.0.1:{port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                if get(base + "/-/ready")[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)
        assert get(base + "/-/healthy")[0] == 200  # the healthcheck's path
        assert get(base + "/-/reload", "POST")[0] == 200  # --web.enable-lifecycle
        loaded = json.loads(get(base + "/api/v1/rules")[1])["data"]["groups"]
        assert [r["name"] for g in loaded for r in g["rules"]] == alert_names(rules)
        assert sorted(t["scrapeUrl"] for t in active_targets(base)) == sorted(scrape_urls(config))
        status = json.loads(get(base + "/api/v1/status/flags")[1])["data"]
        # Prometheus prints durations its own way (7d as 1w): compare what they mean.
        assert span(status["storage.tsdb.retention.time"]) == span(deployments[stack].spec.prometheus.retention)
    finally:
        server.terminate()
        server.wait(timeout=30)


def span(duration: str) -> float:
    parts = re.findall(r"([0-9]+)(ms|s|m|h|d|w|y)", duration)
    assert "".join(n + u for n, u in parts) == duration, duration
    return sum(duration_seconds(n + u) for n, u in parts)


def active_targets(base: str) -> list[dict]:
    """Prometheus hands discovered targets to its scrape manager every few seconds: wait for them."""
    for _ in range(150):
        active = json.loads(get(base + "/api/v1/targets")[1])["data"]["activeTargets"]
        if active:
            return active
        time.sleep(0.1)
    return []


def scrape_urls(config_path):
    """What each target's scrape URL must be, from the rendered config by Prometheus's rules."""
    urls = []
    for job in yaml.safe_load(config_path.read_text())["scrape_configs"]:
        exporter = next((r["replacement"] for r in job.get("relabel_configs", []) if "replacement" in r), None)
        for group in job["static_configs"]:
            for target in group["targets"]:
                if exporter:
                    module = job["params"]["module"][0]
                    query = urllib.parse.urlencode({"module": module, "target": target})
                    urls.append(f"http://{exporter}{job['metrics_path']}?{query}")
                else:
                    urls.append(f"http://{target}{job['metrics_path']}")
    return urls


@pytest.mark.parametrize("protect", [False, True])
def test_the_component_declares_its_protected_volume_command_and_health(deployments, protect):
    deployment = deployments["staging"]
    deployment = deployment_with(deployment, deployment.spec.model_copy(update={"protect_data": protect}))
    spec = deployment.spec
    files = list(deployment.plans[PROMETHEUS.role].files)
    recorded = declared(deployment, PROMETHEUS.role)
    [volume] = [r for r in recorded if r["type"].endswith("volume:Volume")]
    assert volume["protect"] is protect
    assert volume["inputs"]["name"] == f"{spec.name_prefix}-tensorzero-prometheus-data"
    [container] = [r for r in recorded if r["type"].endswith("container:Container")]
    inputs = container["inputs"]
    assert inputs["volumes"] == [{"containerPath": prometheus.DATA_PATH, "volumeName": volume["inputs"]["name"]}]
    assert inputs["command"] == [
        f"--config.file={prometheus.CONFIG_PATH}",
        f"--storage.tsdb.path={prometheus.DATA_PATH}",
        f"--storage.tsdb.retention.time={spec.prometheus.retention}",
        "--web.enable-lifecycle",
    ]
    assert {u["file"]: u["content"] for u in inputs["uploads"]} == {f.mount: f.content for f in files}
    assert inputs["healthcheck"]["tests"] == [
        "CMD",
        "wget",
        "--spider",
        "-q",
        f"http://127.0.0.1:{PROMETHEUS.port}/-/healthy",
    ]
    assert inputs["image"] == spec.prometheus.image
