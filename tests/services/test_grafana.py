"""Grafana: provisioned datasources and dashboards, credentials by reference only, its container and volume.

Grafana itself cannot run here; what it reads is checked against the rules Grafana applies
(provisioning's `${VAR}` substitution, datasource uids, the dashboards' JSON model), and the
queries inside the dashboards are run by promtool and chdb in tests/services/test_grafana_dashboards.py.
"""

import dataclasses
import json
import string
from urllib.parse import urlsplit

import pytest
import yaml
from conftest import CANARIES, container_of, containers, planned_env
from promtool import declared

from components.core.envfiles import is_credential
from components.core.errors import ConfigError
from components.core.names import SERVICE_LABEL
from components.services import grafana, grafana_panels
from components.services import grafana_dashboards as dashboards
from components.services import grafana_queries as dashboard_queries
from components.services.clickhouse import SERVICE as CLICKHOUSE
from components.services.edge import SERVICE as EDGE
from components.services.grafana import SERVICE as GRAFANA
from components.services.loki import SERVICE as LOKI
from components.services.prometheus import SERVICE as PROMETHEUS
from components.stack.registry import Environment


def by_kind(files, kind: str) -> list:
    return [f for f in files if f.kind == kind]


def provisioned(deployment) -> dict[str, dict]:
    [source] = by_kind(deployment.plans[GRAFANA.role].files, "grafana-datasources")
    return {d["uid"]: d for d in yaml.safe_load(source.content)["datasources"]}


def dashboard_models(deployment, **options) -> dict[str, dict]:
    files = grafana.dashboard_files(deployment, **options)
    return {f.path: json.loads(f.content) for f in files}


def test_datasources_have_fixed_uids_and_loki_only_with_logs(deployments, stack):
    deployment = deployments[stack]
    sources = provisioned(deployment)
    expected = {"prometheus": "prometheus", "clickhouse": "grafana-clickhouse-datasource"}
    if deployment.spec.deployed(LOKI):
        expected["loki"] = "loki"
    assert {uid: s["type"] for uid, s in sources.items()} == expected
    assert [uid for uid, s in sources.items() if s["isDefault"]] == ["prometheus"]
    assert all(s["editable"] is False for s in sources.values())


def test_datasource_addresses_are_the_service_aliases_on_the_same_host(deployments, stack):
    spec = deployments[stack].spec
    sources = provisioned(deployments[stack])
    assert all(spec.placement(s).host == spec.grafana.host for s in (PROMETHEUS, CLICKHOUSE))
    assert sources["prometheus"]["url"] == f"http://{PROMETHEUS.alias}:{PROMETHEUS.port}"
    clickhouse = sources["clickhouse"]["jsonData"]
    assert (clickhouse["host"], clickhouse["port"], clickhouse["protocol"]) == (CLICKHOUSE.alias, 8123, "http")
    if "loki" in sources:
        assert sources["loki"]["url"] == f"http://{LOKI.alias}:{LOKI.port}"
    # $__rate_interval is four scrape intervals only when Grafana knows the interval.
    assert sources["prometheus"]["jsonData"]["timeInterval"] == spec.prometheus.scrape_interval


def test_grafana_on_another_host_reaches_the_backends_at_their_published_addresses(deployments):
    base = deployments["dev"]
    raw = base.spec.model_dump(mode="json")
    raw["hosts"] = {
        "main": {"address": "tz-main.internal", "bind_address": "10.0.0.4"},
        "dashboards": {"address": "tz-dash.internal"},
    }
    raw["grafana"]["host"] = "dashboards"
    raw["loki"].update(enabled=True, port=13100)
    deployment = dataclasses.replace(base, spec=Environment.model_validate(raw))
    spec = deployment.spec
    backends = {role: spec.endpoint(role, seen_from="dashboards") for role in ("prometheus", "clickhouse", "loki")}
    sources = {source.uid: source for source in grafana.datasources(deployment, backends)}
    assert sources["prometheus"].url == f"http://tz-main.internal:{raw['prometheus']['port']}"
    assert sources["loki"].url == "http://tz-main.internal:13100"
    clickhouse = dict(sources["clickhouse"].json_data)
    assert (clickhouse["host"], clickhouse["port"]) == ("tz-main.internal", raw["clickhouse"]["port"])
    # ...and the stack as a whole is refused: those backends would answer anyone who reaches 10.0.0.4.
    with pytest.raises(ConfigError) as refused:
        _ = deployment.plans
    keys = {problem.key for problem in refused.value.problems}
    assert {"prometheus.bind_address", "clickhouse.bind_address", "loki.bind_address"} <= keys


def test_datasource_addresses_resolve_to_containers_of_the_same_plan(plans, deployments, stack):
    """In the whole program under mocks: each address Grafana is given is a container it shares a network with."""
    desired = plans[stack]
    board = container_of(desired, GRAFANA.role)["inputs"]
    [upload] = [u for u in board["uploads"] if u["file"].startswith(f"{grafana.PROVISIONING_DIR}/datasources/")]
    [network] = [n["name"] for n in board["networksAdvanced"]]
    ports = {s.role: s.port for s in deployments[stack].spec.all_services if s.port}
    reachable = {
        (alias, ports[label["value"]])
        for c in containers(desired).values()
        for label in c["inputs"]["labels"]
        if label["label"] == SERVICE_LABEL
        for n in c["inputs"]["networksAdvanced"]
        if n["name"] == network
        for alias in n["aliases"]
    }
    for source in yaml.safe_load(upload["content"])["datasources"]:
        if "url" in source:
            url = urlsplit(source["url"])
            assert (url.hostname, url.port) in reachable, source
        else:
            assert (source["jsonData"]["host"], source["jsonData"]["port"]) in reachable, source


def test_clickhouse_datasource_logs_in_as_the_readonly_user_with_its_password_from_the_environment(deployments, stack):
    deployment = deployments[stack]
    clickhouse_spec = deployment.spec.clickhouse
    source = provisioned(deployment)["clickhouse"]
    assert source["jsonData"]["username"] == clickhouse_spec.readonly_user != clickhouse_spec.user
    assert source["jsonData"]["defaultDatabase"] == clickhouse_spec.database
    reference = source["secureJsonData"]["password"]
    assert reference == "${" + clickhouse_spec.readonly_password_var + "}"
    # Grafana substitutes `${VAR}` from its own environment when it provisions the file.
    env = {v.name: v for v in planned_env(deployment, GRAFANA.role)}
    variable = env[clickhouse_spec.readonly_password_var]
    assert variable.secret
    resolved = string.Template(reference).substitute({name: v.value for name, v in env.items()})
    assert resolved == CANARIES["TENSORZERO_CLICKHOUSE_READONLY_PASSWORD"]


def test_environment_sets_the_admin_and_installs_the_pinned_clickhouse_plugin(deployments, stack):
    deployment = deployments[stack]
    spec = deployment.spec.grafana
    env = {v.name: v for v in planned_env(deployment, GRAFANA.role)}
    assert env["GF_SECURITY_ADMIN_USER"].value == spec.admin_user
    assert env["GF_SECURITY_ADMIN_PASSWORD"].value == CANARIES["GRAFANA_ADMIN_PASSWORD"]
    assert env["GF_PLUGINS_PREINSTALL_SYNC"].value == f"grafana-clickhouse-datasource@{spec.clickhouse_plugin_version}"
    assert env["GF_USERS_ALLOW_SIGN_UP"].value == "false"
    credentials = {name for name, v in env.items() if is_credential(name, v.value)}
    assert credentials == {"GF_SECURITY_ADMIN_PASSWORD", deployment.spec.clickhouse.readonly_password_var}
    assert all(env[name].secret for name in credentials)


@pytest.mark.parametrize("edge_metrics", [False, True])
def test_no_credential_is_written_into_any_grafana_file(deployments, stack, edge_metrics):
    for file in grafana.dashboard_files(deployments[stack], edge_metrics=edge_metrics):
        assert not [name for name, value in CANARIES.items() if value in file.content], file.path


def test_files_are_mounted_where_grafana_provisions_from(deployments, stack):
    files = deployments[stack].plans[GRAFANA.role].files
    assert all(f.container == GRAFANA.role for f in files)
    [source] = by_kind(files, "grafana-datasources")
    [provider] = by_kind(files, "grafana-dashboard-provider")
    assert source.mount.startswith(f"{grafana.PROVISIONING_DIR}/datasources/")
    assert provider.mount.startswith(f"{grafana.PROVISIONING_DIR}/dashboards/")
    [options] = [p["options"] for p in yaml.safe_load(provider.content)["providers"]]
    assert options["path"] == grafana.DASHBOARDS_DIR
    boards = by_kind(files, "grafana-dashboard")
    assert boards and all(f.mount == f"{grafana.DASHBOARDS_DIR}/{f.path.rsplit('/', 1)[1]}" for f in boards)
    # Outside the data volume, so a volume kept from an older deploy cannot hide new dashboards.
    assert not grafana.DASHBOARDS_DIR.startswith(grafana.DATA_PATH + "/")
    assert len({f.mount for f in files}) == len(files)


def test_logs_dashboard_only_where_loki_runs(deployments, stack):
    names = {path.rsplit("/", 1)[1] for path in dashboard_models(deployments[stack])}
    expected = {"tensorzero.json"} | ({"tensorzero-logs.json"} if deployments[stack].spec.deployed(LOKI) else set())
    assert names == expected


def walk_datasources(node):
    if isinstance(node, dict):
        if isinstance(node.get("datasource"), dict):
            yield node["datasource"]
        for value in node.values():
            yield from walk_datasources(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk_datasources(value)


@pytest.mark.parametrize("edge_metrics", [False, True])
def test_every_datasource_a_dashboard_names_is_provisioned(deployments, stack, edge_metrics):
    deployment = deployments[stack]
    sources = provisioned(deployment)
    for path, model in dashboard_models(deployment, edge_metrics=edge_metrics).items():
        named = list(walk_datasources(model))
        assert named, path
        for ref in named:
            if ref["uid"] in dashboard_queries.BUILTIN_UIDS:
                continue
            assert ref["uid"] in sources, (path, ref)
            assert ref["type"] == sources[ref["uid"]]["type"], (path, ref)
        text = json.dumps(model)
        assert "__inputs" not in model and "${DS_" not in text and "__requires" not in model


def test_mixed_panels_name_a_provisioned_datasource_on_every_target(deployments, stack):
    sources = provisioned(deployments[stack])
    for path, model in dashboard_models(deployments[stack]).items():
        for panel, target in grafana_panels.targets(model):
            uid = target["datasource"]["uid"]
            assert uid in sources or uid == dashboard_queries.EXPRESSION_DS.uid, (path, panel["title"])
            if panel["datasource"]["uid"] != dashboard_queries.MIXED_DS.uid:
                assert uid == panel["datasource"]["uid"], (path, panel["title"])


def test_dashboards_render_byte_identical_with_sorted_keys_and_stable_ids(deployments, stack):
    first = grafana.dashboard_files(deployments[stack], edge_metrics=True)
    second = grafana.dashboard_files(deployments[stack], edge_metrics=True)
    assert [(f.path, f.content) for f in first] == [(f.path, f.content) for f in second]
    for file in by_kind(first, "grafana-dashboard"):
        model = json.loads(file.content)
        assert file.content == json.dumps(model, indent=2, sort_keys=True) + "\n"
        ids = [p["id"] for p in model["panels"]]
        assert ids == list(range(1, len(ids) + 1)), file.path
        assert model["uid"] in {dashboards.OVERVIEW_UID, dashboards.LOGS_UID}
        assert all(p.get("title") for p in model["panels"])
        described = [p for p in model["panels"] if p["type"] != "row" and p["type"] != "logs"]
        assert all(p.get("description") for p in described), file.path


@pytest.mark.parametrize("edge_enabled", [True, False])
def test_edge_panels_appear_exactly_when_the_edge_is_deployed_or_asked_for(deployments, stack, edge_enabled):
    deployment = deployments[stack]
    spec = deployment.spec.model_copy(
        update={"edge": deployment.spec.edge.model_copy(update={"enabled": edge_enabled})}
    )
    deployment = dataclasses.replace(deployment, spec=spec)
    assert spec.deployed(EDGE) is edge_enabled

    def expressions(**options) -> str:
        [model] = [m for p, m in dashboard_models(deployment, **options).items() if p.endswith("/tensorzero.json")]
        return json.dumps([t.get("expr", "") for _, t in grafana_panels.targets(model)])

    for metric in ("tensorzero_http_requests_total", "tensorzero_request_duration_seconds_bucket"):
        assert (metric in expressions()) is edge_enabled  # the default follows the stack
        assert metric not in expressions(edge_metrics=False)
        assert metric in expressions(edge_metrics=True)


@pytest.mark.parametrize("protect", [False, True])
def test_component_keeps_data_on_a_protected_volume_and_credentials_secret(deployments, stack, protect):
    deployment = deployments[stack]
    deployment = dataclasses.replace(deployment, spec=deployment.spec.model_copy(update={"protect_data": protect}))
    files = deployment.plans[GRAFANA.role].files
    recorded = declared(deployment, GRAFANA.role)
    [volume] = [r for r in recorded if r["type"].endswith("volume:Volume")]
    [container] = [r for r in recorded if r["type"].endswith("container:Container")]
    [component] = [r for r in recorded if r["type"] == "tensorzero:stack:Grafana"]
    assert volume["inputs"]["name"] == f"{deployment.spec.name_prefix}-tensorzero-grafana-data"
    assert volume["protect"] is protect and container["protect"] is False
    assert volume["parent"] == container["parent"] == component["urn"]
    inputs = container["inputs"]
    assert inputs["volumes"] == [{"containerPath": grafana.DATA_PATH, "volumeName": volume["inputs"]["name"]}]
    assert inputs["healthcheck"]["tests"] == ["CMD", *grafana.HEALTHCHECK]
    assert inputs["healthcheck"]["tests"][-1] == f"http://localhost:{GRAFANA.port}/api/health"
    assert sorted(u["file"] for u in inputs["uploads"]) == sorted(f.mount for f in files)
    # Pulumi marks the whole env list secret; the plan masks the credentials in it, and only those.
    masked = {e.split("=", 1)[0] for e in inputs["envs"] if e.endswith("=[secret]")}
    assert masked == {"GF_SECURITY_ADMIN_PASSWORD", deployment.spec.clickhouse.readonly_password_var}
    assert f"GF_SECURITY_ADMIN_USER={deployment.spec.grafana.admin_user}" in inputs["envs"]
    assert not [name for name, value in CANARIES.items() if value in json.dumps(recorded)]
