"""The Kubernetes target: every object validated against Kubernetes' own OpenAPI schemas (kubernetes-validate,
v1.37) and, for the Prometheus Operator's, against models generated from its CRDs; rules over every cluster stack
under Pulumi's mocks; and the YAML written for GitOps equal to what Pulumi declares.

No cluster, kubectl server or Helm runs here: a deploy is proven on an operator's cluster by the smoke suite.
"""

import dataclasses
import json
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from cloudcoil.models.prometheus_operator import v1 as operator
from conftest import CANARIES, CLUSTER_STACKS, MINIMAL_CATALOG, MINIMAL_ENV, make_project, minimal_config
from promtool import run

from components.core.errors import ConfigError
from components.core.types import image_tag
from components.operate.diff import diff
from components.operate.plan import plan
from components.stack.deployment import rendered_files
from components.targets.kubernetes.cluster import manifests, yaml_files
from components.targets.kubernetes.objects import FILES_HASH, SecretText, exposed_ports, serving_ports
from components.targets.preflight import load

KUBERNETES_VERSION = "1.37.0"
CLUSTER = {"context": "test-k3s", "namespace": "pmoves-test"}
# Throwaway cluster stacks beside the committed ones: a minimal one (no ingress, no operator, a namespace
# that exists) and one without the edge (nothing published: the ingress publishes only what authenticates).
VARIANTS = {
    "minimal": minimal_config(kubernetes={**CLUSTER, "create_namespace": False}),
    "no-edge": minimal_config(kubernetes=CLUSTER, edge={"enabled": False}),
    # ClickHouse outside the cluster (ClickHouse Cloud, an operator-run replicated cluster): none is run here.
    "external-clickhouse": minimal_config(
        kubernetes=CLUSTER,
        clickhouse={"external": {"host": "ch.pmoves.internal", "cluster_name": "tensorzero_cluster"}},
        backup={"enabled": False},
    ),
}
OPERATOR_KINDS = {"ServiceMonitor": operator.ServiceMonitor, "PrometheusRule": operator.PrometheusRule}
RUNS = ("Deployment", "StatefulSet", "Job")


@pytest.fixture(scope="module")
def variants(tmp_path_factory):
    files = {"catalog.toml": MINIMAL_CATALOG, "env/env.shared": MINIMAL_ENV}
    return {
        name: load("test", project_dir=make_project(tmp_path_factory.mktemp(name), config, files))
        for name, config in VARIANTS.items()
    }


@pytest.fixture(params=[*CLUSTER_STACKS, *VARIANTS])
def cluster(request, deployments):
    """The deployment of each committed cluster stack and each variant."""
    if request.param in CLUSTER_STACKS:
        return deployments[request.param]
    return request.getfixturevalue("variants")[request.param]


def objects(deployment) -> list[dict]:
    return [obj for group in manifests(deployment).values() for obj in group]


def plain(value):
    """An object with every Secret value as its placeholder: JSON- and YAML-safe."""
    return json.loads(json.dumps(value, default=lambda v: f"secret:{v.name}" if isinstance(v, SecretText) else v))


def of_kind(deployment, *kinds: str) -> list[dict]:
    return [obj for obj in objects(deployment) if obj["kind"] in kinds]


def containers(obj: dict) -> list[dict]:
    return obj["spec"]["template"]["spec"]["containers"]


def test_the_committed_cluster_stack_exists():
    assert CLUSTER_STACKS, "stacks/ should hold an example stack for the Kubernetes target"


def test_every_object_validates_against_the_kubernetes_schemas(cluster):
    validated = 0
    for obj in objects(cluster):
        if obj["kind"] in OPERATOR_KINDS:
            continue
        kubernetes_validate.validate(plain(obj), KUBERNETES_VERSION, strict=True)
        validated += 1
    assert validated >= 3 * len(cluster.plans)


def test_a_wrong_object_is_refused_by_the_validator(deployments):
    """The control: the validator refuses what the cluster would refuse."""
    [workload] = [
        o for o in of_kind(deployments[CLUSTER_STACKS[0]], "Deployment") if o["metadata"]["name"] == "tensorzero-ui"
    ]
    broken = plain(workload)
    broken["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)
    broken = plain(workload)
    broken["spec"]["template"]["spec"]["containers"][0]["livenessProbes"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_operator_objects_match_its_crds_and_their_rules_pass_promtool(deployments, tmp_path):
    deployment = deployments[CLUSTER_STACKS[0]]
    found = of_kind(deployment, *OPERATOR_KINDS)
    assert {o["kind"] for o in found} == set(OPERATOR_KINDS)
    for obj in found:
        model = OPERATOR_KINDS[obj["kind"]].model_validate(obj)
        # The models keep only what the CRD defines: a key it does not know would be dropped here.
        assert model.model_dump(by_alias=True, exclude_unset=True, mode="json") == obj
    [rule] = [o for o in found if o["kind"] == "PrometheusRule"]
    (tmp_path / "rules.yml").write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    checked = run("promtool", "check", "rules", str(tmp_path / "rules.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_operator_scrapes_the_jobs_the_own_prometheus_scrapes_and_alerts_alike(deployments):
    deployment = deployments[CLUSTER_STACKS[0]]
    [config] = [f for f in deployment.plans["prometheus"].files if f.kind == "prometheus-config"]
    [rules] = [f for f in deployment.plans["prometheus"].files if f.kind == "prometheus-rules"]
    own_jobs = {job["job_name"] for job in yaml.safe_load(config.content)["scrape_configs"]}
    monitored = {
        r["replacement"]
        for o in of_kind(deployment, "ServiceMonitor")
        for endpoint in o["spec"]["endpoints"]
        for r in endpoint["relabelings"]
        if r["targetLabel"] == "job"
    }
    assert monitored == own_jobs
    [rule] = of_kind(deployment, "PrometheusRule")
    assert rule["spec"]["groups"] == yaml.safe_load(rules.content)["groups"]
    dashboards = [
        o for o in of_kind(deployment, "ConfigMap") if o["metadata"]["labels"].get("grafana_dashboard") == "1"
    ]
    assert dashboards and all(json.loads(content)["uid"] for o in dashboards for content in o["data"].values())


def test_every_workload_has_probes_requests_limits_and_a_pinned_image(cluster):
    for obj in of_kind(cluster, *RUNS):
        for container in containers(obj):
            assert image_tag(container["image"]) not in ("", "latest"), container["image"]
            assert container["resources"]["limits"]["memory"] and container["resources"]["requests"]["memory"]
            if obj["kind"] != "Job":
                for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
                    assert container[probe]["exec"]["command"], (obj["metadata"]["name"], probe)


def test_probes_run_the_healthcheck_each_image_can_run(cluster):
    by_name = {p.docker_name: p for p in cluster.plans.values() if p.runs_container}
    for obj in of_kind(cluster, "Deployment", "StatefulSet"):
        planned = by_name[obj["metadata"]["name"]]
        [container] = containers(obj)
        assert container["livenessProbe"]["exec"]["command"] == list(planned.healthcheck)
        assert container["livenessProbe"]["exec"]["command"][0] in planned.image_tools


def test_no_credential_in_a_configmap_or_a_plain_env_value(cluster):
    secrets = {
        v.name for p in cluster.plans.values() for v in (*p.env, *(v for s in p.one_shots for v in s.env)) if v.secret
    }
    assert secrets
    for obj in objects(cluster):
        text = json.dumps(plain(obj))
        assert not [name for name, canary in CANARIES.items() if canary in text], obj["metadata"]["name"]
        if obj["kind"] in RUNS:
            for container in containers(obj):
                for entry in container.get("env", []):
                    assert ("value" in entry) is (entry["name"] not in secrets), entry
                    if "valueFrom" in entry:
                        assert set(entry["valueFrom"]) == {"secretKeyRef"}
    stored = {key for o in of_kind(cluster, "Secret") for key in o["stringData"]}
    assert stored == secrets
    assert all(isinstance(v, SecretText) for o in of_kind(cluster, "Secret") for v in o["stringData"].values())


def test_data_lives_on_claims_that_outlive_the_stack(cluster):
    for planned in cluster.plans.values():
        workloads = [
            o for o in of_kind(cluster, "Deployment", "StatefulSet") if o["metadata"]["name"] == planned.docker_name
        ]
        if not planned.runs_container:
            continue
        [workload] = workloads
        if not planned.volumes:
            assert workload["kind"] == "Deployment"
            continue
        assert workload["kind"] == "StatefulSet"
        spec = workload["spec"]
        assert spec["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
        assert [c["metadata"]["name"] for c in spec["volumeClaimTemplates"]] == [v.name for v in planned.volumes]
        mounts = {m["name"]: m["mountPath"] for m in containers(workload)[0]["volumeMounts"]}
        assert all(mounts[v.name] == planned.hardening.cluster_path(v.mount) for v in planned.volumes)


def test_the_namespace_holding_the_claims_is_never_deleted_by_pulumi(deployments):
    """Deleting a Namespace deletes every claim in it: a changed `namespace` must leave the old one and its data."""
    deployment = deployments[CLUSTER_STACKS[0]]
    renamed = deployment.spec.kubernetes.model_copy(update={"namespace": "pmoves-elsewhere"})
    before = plan(deployment)
    after = plan(dataclasses.replace(deployment, spec=deployment.spec.model_copy(update={"kubernetes": renamed})))
    [namespace] = [r for r in before["resources"] if r["type"] == "kubernetes:core/v1:Namespace"]
    assert namespace["retain_on_delete"] and namespace["protect"] == deployment.spec.protected
    # The plan drops the old Namespace resource: retained on delete, Pulumi forgets it and it stays on the cluster.
    [gone] = [c for c in diff(before, after) if c.urn == namespace["urn"]]
    assert gone.action == "delete"


def test_the_gateway_and_the_edge_run_replicated_behind_a_budget_and_never_below_it(cluster):
    spec = cluster.spec.kubernetes
    budgets = {o["metadata"]["name"]: o for o in of_kind(cluster, "PodDisruptionBudget")}
    deployments = {o["metadata"]["name"]: o for o in of_kind(cluster, "Deployment")}
    fronts = [p for p in cluster.plans.values() if p.role in ("gateway", "edge")]
    assert fronts
    for planned in fronts:
        workload = deployments[planned.docker_name]["spec"]
        assert workload["replicas"] == spec.replicas >= 2
        assert workload["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}
        budget = budgets[planned.docker_name]["spec"]
        assert budget["selector"] == workload["selector"] and budget["minAvailable"] >= 1
    for obj in deployments.values():
        assert obj["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    [autoscaler] = of_kind(cluster, "HorizontalPodAutoscaler")
    assert autoscaler["spec"]["scaleTargetRef"]["name"] == cluster.plans["gateway"].docker_name
    assert autoscaler["spec"]["minReplicas"] == spec.replicas < autoscaler["spec"]["maxReplicas"]


def test_services_carry_the_seed_hostnames(cluster):
    names = {o["metadata"]["name"] for o in of_kind(cluster, "Service")}
    expected = {"tensorzero-gateway", "pmoves-ollama", "tensorzero-ui"}
    assert expected <= names
    assert ("tensorzero-clickhouse" in names) is cluster.spec.deployed("clickhouse")  # else: an external one
    assert ("tensorzero-gateway-core" in names) is cluster.spec.deployed("edge")


def test_network_policies_allow_exactly_the_dependency_rules_of_the_docker_target(cluster):
    docker_twin = dataclasses.replace(cluster, spec=cluster.spec.model_copy(update={"kubernetes": None}))
    policies = {o["metadata"]["name"]: o for o in of_kind(cluster, "NetworkPolicy")}
    for planned in (p for p in cluster.plans.values() if p.runs_container):
        rules = policies[f"{planned.docker_name}-ingress"]["spec"]["ingress"]
        allowed = {
            (peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"], port["port"])
            for rule in rules
            for peer in rule["from"]
            if "podSelector" in peer
            for port in rule["ports"]
        }
        docker_callers = set(docker_twin.plans[planned.role].callers)
        served = serving_ports(planned, exposed_ports(cluster).get(planned.placement.alias, set()))
        assert docker_callers and allowed == docker_callers | {(planned.role, p) for p in served}


def test_rendered_files_are_the_same_bytes_as_on_docker(cluster):
    """tensorzero.toml, Prometheus' files and the dashboards, byte for byte, for the same spec on Docker."""
    docker_twin = dataclasses.replace(cluster, spec=cluster.spec.model_copy(update={"kubernetes": None}))
    kinds = ("tensorzero-config", "prometheus-config", "prometheus-rules", "grafana-dashboard", "clickhouse-schema-sql")
    on_cluster = {f.path: f.content for f in rendered_files(cluster) if f.kind in kinds}
    assert "gateway/tensorzero.toml" in on_cluster
    assert on_cluster == {f.path: f.content for f in rendered_files(docker_twin) if f.kind in kinds}


def test_files_mount_one_by_one_and_roll_the_pods_when_they_change(cluster):
    for planned in (p for p in cluster.plans.values() if p.runs_container and p.files):
        [workload] = [
            o for o in of_kind(cluster, "Deployment", "StatefulSet") if o["metadata"]["name"] == planned.docker_name
        ]
        [config] = [o for o in of_kind(cluster, "ConfigMap") if o["metadata"]["name"] == f"{planned.docker_name}-files"]
        mounts = [m for m in containers(workload)[0]["volumeMounts"] if m["name"] == "files"]
        assert {(m["mountPath"], config["data"][m["subPath"]]) for m in mounts} == {
            (f.mount, f.content) for f in planned.files
        }
        assert FILES_HASH in workload["spec"]["template"]["metadata"]["annotations"]


def test_ollama_runs_on_gpu_nodes_where_the_spec_asks(deployments):
    deployment = deployments[CLUSTER_STACKS[0]]
    assert deployment.spec.ollama.gpu
    [ollama] = [o for o in of_kind(deployment, "StatefulSet") if o["metadata"]["name"] == "ollama"]
    pod = ollama["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == deployment.spec.kubernetes.gpu_node_selector
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]


def test_the_ingress_serves_the_edge_and_the_ui_with_tls_from_a_secret(deployments):
    deployment = deployments[CLUSTER_STACKS[0]]
    ingress = deployment.spec.kubernetes.ingress
    [obj] = of_kind(deployment, "Ingress")
    backends = {rule["host"]: rule["http"]["paths"][0]["backend"]["service"] for rule in obj["spec"]["rules"]}
    assert backends[ingress.host] == {"name": "tensorzero-gateway", "port": {"number": 3000}}
    # The UI behind the edge's login, as on Docker: its host is the edge's UI port.
    assert backends[ingress.ui_host] == {"name": "tensorzero-gateway", "port": {"number": 4000}}
    assert obj["spec"]["tls"] == [{"hosts": [ingress.host, ingress.ui_host], "secretName": ingress.tls_secret}]
    # Only the ingress controller's namespace gets in from outside, and only to what the ingress serves.
    outside = [
        o["metadata"]["name"]
        for o in of_kind(deployment, "NetworkPolicy")
        for rule in o["spec"]["ingress"]
        for peer in rule["from"]
        if "namespaceSelector" in peer
    ]
    assert outside == ["tensorzero-edge-ingress", "tensorzero-edge-ingress"]  # its API and UI ports


def test_one_shots_are_jobs_that_run_again_when_what_they_run_changes(deployments):
    deployment = deployments[CLUSTER_STACKS[0]]
    jobs = {o["metadata"]["name"] for o in of_kind(deployment, "Job")}
    assert {name.rsplit("-", 1)[0] for name in jobs} == {
        "ollama-pull-gemma-2b",
        "tensorzero-clickhouse-schema",
        "tensorzero-backup-pre-upgrade",
    }
    spec = deployment.spec.model_copy(
        update={"clickhouse": deployment.spec.clickhouse.model_copy(update={"retention_days": 30})}
    )
    changed = {o["metadata"]["name"] for o in of_kind(dataclasses.replace(deployment, spec=spec), "Job")}
    assert len(jobs - changed) == len(changed - jobs) == 1  # the schema Job, renamed: a new Job runs


def test_written_manifests_equal_what_pulumi_declares(cluster, tmp_path):
    written = [
        obj for path, text in yaml_files(cluster).items() if path.endswith(".yaml") for obj in yaml.safe_load_all(text)
    ]
    declared = [r for r in plan(cluster)["resources"] if r["type"].startswith("kubernetes:")]

    def key(obj: dict) -> tuple:
        return obj["kind"], obj["metadata"]["name"]

    def without_values(obj: dict) -> dict:
        """Secret values are Pulumi secrets there and placeholders here: compare the rest."""
        return {k: v for k, v in obj.items() if k != "stringData"} | {"keys": sorted(obj.get("stringData", {}))}

    pulumi_side = {key(r["inputs"]): r["inputs"] for r in declared}
    yaml_side = {key(o): o for o in written if o["kind"] != "Kustomization"}
    assert sorted(pulumi_side) == sorted(yaml_side)
    for name, obj in yaml_side.items():
        if obj["kind"] == "Secret":
            assert pulumi_side[name]["stringData"] == "[secret]"
            assert sorted(obj["stringData"]) == sorted(
                o for o in next(m for m in objects(cluster) if key(m) == name)["stringData"]
            )
            obj, pulumi_side[name] = without_values(obj), without_values(pulumi_side[name])
            pulumi_side[name]["keys"] = obj["keys"]
        assert pulumi_side[name] == obj, name
    assert not [n for n, canary in CANARIES.items() for text in yaml_files(cluster).values() if canary in text]


def test_a_service_that_mounts_a_host_path_is_refused_on_a_cluster(tmp_path):
    config = minimal_config(kubernetes=CLUSTER, loki={"enabled": True})
    project = make_project(tmp_path, config, {"catalog.toml": MINIMAL_CATALOG, "env/env.shared": MINIMAL_ENV})
    with pytest.raises(ConfigError) as failure:
        load("test", project_dir=project)
    expected = "stacks/Pulumi.test.yaml: loki.enabled: docker_proxy mounts the host path /var/run/docker.sock"
    assert expected in str(failure.value)


@pytest.mark.parametrize(
    ("sections", "key", "message"),
    [
        ({"kubernetes": {**CLUSTER, "ingress": {"host": "tz.test"}}, "edge": {"enabled": False}},
         "kubernetes.ingress", "gateway would be published at tz.test without authentication"),
        ({"kubernetes": {**CLUSTER, "ingress": {"host": "tz.test"}}, "edge": {"keys": {}}},
         "kubernetes.ingress", "edge would be published at tz.test without authentication"),
        ({"kubernetes": CLUSTER, "hosts": {"main": {"networks": ["pmoves_api"]}}, "ui": {"networks": ["pmoves_api"]}},
         "ui.networks", "Docker networks are not a cluster's"),
        ({"kubernetes": CLUSTER, "clickhouse": {"adopt_volumes": {"data": {"name": "tensorzero-clickhouse-data"}}}},
         "clickhouse.adopt_volumes.data", "an existing Docker volume (tensorzero-clickhouse-data) cannot be mounted"),
        # What the API server or nginx would refuse only at deploy.
        ({"kubernetes": {**CLUSTER, "dns_resolver": "fd00::10"}}, "kubernetes.dns_resolver", "not an IPv4 address"),
        ({"kubernetes": {**CLUSTER, "ingress": {"host": "a.example.com", "ui_host": "a.example.com"}}},
         "kubernetes.ingress", "ui_host a.example.com is also host"),
        ({"kubernetes": {**CLUSTER, "ingress": {"host": "A.Example.COM"}}},
         "kubernetes.ingress.host", "is not a valid lower-case DNS name"),
        ({"kubernetes": CLUSTER, "ollama": {"instances": {"jetson": {"alias": "Jetson.Ollama"}}}},
         "ollama.instances.jetson.alias", "'Jetson.Ollama' cannot name a Kubernetes Service"),
        ({"kubernetes": CLUSTER, "name_prefix": "pmoves-cluster-"},
         "name_prefix", "cannot be a Kubernetes label value"),
        ({"kubernetes": {**CLUSTER, "gpu_node_selector": {"bad key!": "x"}}},
         "kubernetes.gpu_node_selector.bad key!.[key]", "is not a valid Kubernetes label key"),
        ({"kubernetes": {**CLUSTER, "namespace": "kube-system"}}, "kubernetes", "kube-system is the cluster's own"),
        ({"kubernetes": {**CLUSTER, "ingress": {"host": "a.example.com", "ui_host": "b.example.com"}},
          "ui": {"enabled": False}}, "kubernetes.ingress.ui_host", "the stack runs no UI"),
        ({"kubernetes": CLUSTER, "edge": {"tls": {"enabled": True, "certificate_file": "/etc/x.crt",
                                                  "key_file": "/etc/x.key"}}},
         "edge.tls.certificate_file", "kubernetes.ingress.tls_secret"),
        ({"kubernetes": CLUSTER, "ollama": {"instances": {"guard": {}}},
          "ollama_guard": {"enabled": True, "allow": ["10.0.0.0/8"]}},
         "ollama_guard", "its container ollama-guard is also that of ollama.instances.guard"),
    ],
    ids=["ingress-to-the-raw-gateway", "ingress-to-a-keyless-edge", "docker-network", "adopted-volume",
         "ipv6-resolver", "one-host-twice", "upper-case-host", "service-name", "label-value", "label-key",
         "system-namespace", "ui-host-without-ui", "tls-files", "container-name-twice"],
)  # fmt: skip
def test_what_only_docker_has_or_an_unauthenticated_ingress_is_refused(tmp_path, sections, key, message):
    project = make_project(
        tmp_path, minimal_config(**sections), {"catalog.toml": MINIMAL_CATALOG, "env/env.shared": MINIMAL_ENV}
    )
    with pytest.raises(ConfigError) as failure:
        load("test", project_dir=project)
    assert any(p.key == key and message in p.message for p in failure.value.problems), failure.value


def test_the_backup_pod_runs_beside_clickhouse_on_its_backups_claim(deployments):
    deployment = deployments[CLUSTER_STACKS[0]]
    sets = {o["metadata"]["name"]: o for o in of_kind(deployment, "StatefulSet")}
    clickhouse = sets[deployment.plans["clickhouse"].docker_name]
    assert "backups" in [c["metadata"]["name"] for c in clickhouse["spec"]["volumeClaimTemplates"]]
    [backup] = [o for o in of_kind(deployment, "Deployment") if o["metadata"]["name"] == "tensorzero-backup"]
    pod = backup["spec"]["template"]["spec"]
    # The claim the StatefulSet's template makes for its one pod, mounted where the backup container reads it.
    [claim] = [v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"] if "persistentVolumeClaim" in v]
    assert claim == f"backups-{clickhouse['metadata']['name']}-0"
    # A ReadWriteOnce claim is mounted by pods of one node: the backup pod must run on ClickHouse's.
    [beside] = pod["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert beside["topologyKey"] == "kubernetes.io/hostname"
    assert beside["labelSelector"]["matchLabels"] == clickhouse["spec"]["selector"]["matchLabels"]


def test_diff_replaces_only_for_immutable_fields(variants):
    deployment = variants["minimal"]
    before = plan(deployment)
    kubernetes = deployment.spec.kubernetes.model_copy(update={"replicas": 3})
    after = plan(dataclasses.replace(deployment, spec=deployment.spec.model_copy(update={"kubernetes": kubernetes})))
    changes = {(c.name, c.action) for c in diff(before, after)}
    assert ("gateway-deployment-tensorzero-gateway", "update") in changes
    assert ("gateway-poddisruptionbudget-tensorzero-gateway", "update") in changes
    assert not [c for c in changes if c[1] != "update"]
    sizes = deployment.spec.kubernetes.model_copy(update={"volume_size_gb": {"clickhouse-data": 50}})
    grown = plan(dataclasses.replace(deployment, spec=deployment.spec.model_copy(update={"kubernetes": sizes})))
    assert {(c.name, c.action) for c in diff(before, grown)} == {
        ("clickhouse-statefulset-tensorzero-clickhouse", "replace")
    }


def test_render_writes_the_objects_for_gitops_without_a_secret(deployments, tmp_path):
    from components.operate.cli import main

    stack = CLUSTER_STACKS[0]
    env_dir = deployments[stack].spec.env_files.dir
    assert main(["render", stack, "--out", str(tmp_path), "--env-dir", env_dir]) == 0
    written = tmp_path / "kubernetes"
    kustomization = yaml.safe_load((written / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(
        p.name for p in written.glob("*.yaml") if p.name not in ("kustomization.yaml", "secrets.example.yaml")
    )
    for path in written.glob("*.yaml"):
        text = path.read_text()
        assert not [n for n, canary in CANARIES.items() if canary in text], path
        for obj in yaml.safe_load_all(text):
            if obj["kind"] not in ("Kustomization", *OPERATOR_KINDS):
                kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    assert "Secret" not in {
        o["kind"]
        for p in written.glob("*.yaml")
        if p.name != "secrets.example.yaml"
        for o in yaml.safe_load_all(p.read_text())
    }
    assert Path(written / "secrets.example.yaml").read_text().count("kind: Secret") == len(
        of_kind(deployments[stack], "Secret")
    )


def test_the_smoke_suite_inside_the_namespace_reaches_every_service_at_its_internal_url(deployments):
    from components.operate.smoke import reached_from_inside

    outputs = plan(deployments[CLUSTER_STACKS[0]])["outputs"]
    assert "clickhouse" not in outputs["endpoints"]  # only the ingress publishes
    inside = reached_from_inside(outputs)["endpoints"]
    assert inside["clickhouse"] == outputs["internal_urls"]["clickhouse"] == "http://tensorzero-clickhouse:8123"
    assert inside["gateway"] == outputs["internal_urls"]["gateway"]
