"""Every object of a stack on a cluster, by component: each service's own (kubernetes.py) plus what the cluster
adds: the namespace, disruption budgets, the gateway's autoscaler, network policies, the ingress, and, for a
cluster with the Prometheus Operator, ServiceMonitors, a PrometheusRule and dashboards for Grafana's sidecar.
"""

import yaml

from components.core.errors import ConfigError, Problem
from components.core.monitoring import PROBE_JOB, SERVICE_LABEL
from components.core.plans import ServicePlan
from components.core.types import is_kubernetes_name, is_label_value
from components.services import edge_access, grafana, prometheus
from components.stack.deployment import Deployment
from components.targets.kubernetes.objects import (
    HTTP_PORT,
    SecretText,
    exposed_ports,
    ingress_object,
    ingress_routes,
    job_objects,
    labels_of,
    metadata,
    network_policy,
    port_name,
    selector_of,
    service_objects,
    shot_hardening,
)
from components.targets.kubernetes.security import RESTRICTED, pod_security

NAMESPACE = "namespace"
INGRESS = "ingress"
MONITORING = "monitoring"  # the operator's objects
DASHBOARD_LABEL = "grafana_dashboard"  # what Grafana's dashboard sidecar (kube-prometheus-stack) watches


def manifests(deployment: Deployment) -> dict[str, list[dict]]:
    """Component name -> its objects: a component per service (its role), then the cluster-wide ones."""
    spec = deployment.spec.kubernetes
    plans = deployment.plans
    problems = (
        [
            Problem(deployment.stack_file, key, message)
            for plan in plans.values()
            for key, message in docker_only(deployment, plan)
        ]
        + unauthenticated_routes(deployment)
        + unknown_volume_sizes(deployment)
        + unusable_names(deployment)
    )
    if problems:
        raise ConfigError(problems)
    exposed = exposed_ports(deployment)
    found: dict[str, list[dict]] = {}
    if spec.create_namespace:
        jobs = [shot_hardening(deployment, p, shot) for p in plans.values() for shot in p.one_shots]
        standard = pod_security([p.hardening for p in plans.values() if p.runs_container] + jobs)
        # Enforced as far as every workload meets it; warned and audited at "restricted" always.
        security = {f"pod-security.kubernetes.io/{mode}": standard for mode in ("enforce",)}
        security |= {f"pod-security.kubernetes.io/{mode}": RESTRICTED for mode in ("warn", "audit")}
        namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": spec.namespace, "labels": security}}
        found[NAMESPACE] = [namespace]
    for plan in plans.values():
        objects = []
        if plan.runs_container:
            served = exposed.get(plan.placement.alias, set())
            objects += service_objects(deployment, plan, served)
            objects.append(network_policy(deployment, plan, served))
            objects += scaling_objects(deployment, plan)
        for shot in plan.one_shots:
            objects += job_objects(deployment, plan, shot, shot.image or plans[shot.image_of].image)
        found[plan.role] = objects
    if ingress := ingress_object(deployment):
        found[INGRESS] = [ingress]
    if spec.prometheus_operator:
        found[MONITORING] = operator_objects(deployment)
    return found


def docker_only(deployment: Deployment, plan: ServicePlan) -> list[tuple[str, str]]:
    """(key, problem) of what a service's plan needs that only a Docker host has."""
    key = deployment.spec.key(plan.role)
    found = [
        (path.key, f"{plan.role} mounts the host path {path.source}, which no pod on a cluster gets: {path.on_cluster}")
        for path in plan.host_paths
    ]
    if plan.secret_files:
        found.append(("edge.tls.enabled", edge_access.TLS_ON_CLUSTER))
    if plan.networks:
        found.append((f"{key}.networks", "Docker networks are not a cluster's: every Service of the namespace "
                      "answers at its hostname; remove them on the Kubernetes target"))  # fmt: skip
    found += [
        (f"{key}.adopt_volumes.{volume.name}", f"an existing Docker volume ({volume.docker_name}) cannot be mounted "
         "on a cluster; remove it (the target creates a PersistentVolumeClaim)")
        for volume in plan.volumes
        if volume.adopted
    ]  # fmt: skip
    return found


def unusable_names(deployment: Deployment) -> list[Problem]:
    """Names the API server would refuse (a Service's is the hostname callers use; every label carries the
    stack's name_prefix), and an ingress host for a UI the stack does not run."""
    spec = deployment.spec
    found = [
        Problem(
            deployment.stack_file,
            f"{spec.key(plan.role)}.alias",
            f"'{plan.placement.alias}' cannot name a Kubernetes Service: lower-case letters, digits and inner '-', "
            "at most 63",
        )
        for plan in deployment.plans.values()
        if plan.runs_container and not is_kubernetes_name(plan.placement.alias)
    ]
    if not is_label_value(spec.name_prefix):
        message = (
            f"'{spec.name_prefix}' cannot be a Kubernetes label value, which every object carries: at most 63 "
            "letters, digits, '-', '_' and '.', starting and ending with a letter or digit"
        )
        found.append(Problem(deployment.stack_file, "name_prefix", message))
    ingress = spec.kubernetes.ingress
    if ingress and ingress.ui_host and not spec.deployed("ui"):
        found.append(Problem(deployment.stack_file, "kubernetes.ingress.ui_host", "the stack runs no UI (ui.enabled)"))
    return found


def unknown_volume_sizes(deployment: Deployment) -> list[Problem]:
    """A size for a volume the stack does not have is a typo that would silently leave the default."""
    volumes = sorted(f"{plan.role}-{volume.name}" for plan in deployment.plans.values() for volume in plan.volumes)
    return [
        Problem(
            deployment.stack_file,
            f"kubernetes.volume_size_gb.{name}",
            f"no such volume (the stack's: {', '.join(volumes)})",
        )
        for name in deployment.spec.kubernetes.volume_size_gb
        if name not in volumes
    ]


def unauthenticated_routes(deployment: Deployment) -> list[Problem]:
    """The ingress publishes only what asks callers who they are, as a published port must on Docker."""
    found = []
    for host, route in ingress_routes(deployment).items():
        if deployment.plans[route.server].authentication is None:
            fix = deployment.spec.definition(route.server).exposure_fix or "put the edge in front of it"
            message = f"{route.server} would be published at {host} without authentication; {fix}"
            found.append(Problem(deployment.stack_file, "kubernetes.ingress", message))
    return found


def scaling_objects(deployment: Deployment, plan: ServicePlan) -> list[dict]:
    """A replicated service keeps one pod through voluntary disruptions; an autoscaled one follows its CPU."""
    spec = deployment.spec.kubernetes
    role = plan.role
    definition = deployment.spec.definition(role)
    if not definition.replicated:
        return []
    labels = labels_of(deployment, plan.role)
    found = [
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": metadata(spec, plan.docker_name, labels),
            "spec": {
                "minAvailable": spec.replicas - 1,
                "selector": {"matchLabels": selector_of(deployment, plan.role)},
            },
        }
    ]
    if definition.autoscaled:
        target = {"type": "Utilization", "averageUtilization": spec.cpu_target_percent}
        found.append(
            {
                "apiVersion": "autoscaling/v2",
                "kind": "HorizontalPodAutoscaler",
                "metadata": metadata(spec, plan.docker_name, labels),
                "spec": {
                    "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": plan.docker_name},
                    "minReplicas": spec.replicas,
                    "maxReplicas": spec.max_replicas,
                    "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": target}}],
                },
            }
        )
    return found


def operator_objects(deployment: Deployment) -> list[dict]:
    """The stack's scrape jobs as ServiceMonitors (job and service labels as the own Prometheus sets them),
    its alert rules as a PrometheusRule, its dashboards as ConfigMaps."""
    spec = deployment.spec.kubernetes
    labels = labels_of(deployment, MONITORING)
    found, jobs = [], set()
    for plan in deployment.plans.values():
        for scrape in plan.monitoring.scrapes if plan.runs_container else ():
            jobs.add(scrape.job)
            port = port_name(plan, scrape.port or plan.placement.port)
            relabel = [target_label("job", scrape.job), target_label(SERVICE_LABEL, plan.role)]
            endpoint = {"port": port, "path": scrape.path, "relabelings": relabel}
            found.append(service_monitor(deployment, f"{plan.docker_name}-{scrape.job}", plan.role, [endpoint]))
        if plan.prober:
            jobs.add(plan.prober.job)
            endpoints = [
                {
                    "port": HTTP_PORT,
                    "path": plan.prober.path,
                    "params": {"module": [plan.prober.module], "target": [target.address]},
                    "relabelings": [
                        target_label("job", PROBE_JOB),
                        target_label(SERVICE_LABEL, target.service),
                        target_label("instance", target.address),
                    ],
                }
                for target in plan.prober.targets
            ]
            found.append(service_monitor(deployment, f"{plan.docker_name}-probes", plan.role, endpoints))
    groups = yaml.safe_load(prometheus.alert_rules(deployment, jobs))["groups"]
    rule = {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule"}
    found.append(rule | {"metadata": metadata(spec, "tensorzero", labels), "spec": {"groups": groups}})
    for file in grafana.dashboard_files(deployment):
        name = f"tensorzero-dashboard-{file.path.rsplit('/', 1)[-1].removesuffix('.json')}"
        meta = metadata(spec, name, labels | {DASHBOARD_LABEL: "1"})
        found.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": meta,
                "data": {file.path.rsplit("/", 1)[-1]: file.content},
            }
        )
    return found


def target_label(label: str, value: str) -> dict:
    return {"action": "replace", "targetLabel": label, "replacement": value}


def service_monitor(deployment: Deployment, name: str, role: str, endpoints: list[dict]) -> dict:
    spec = deployment.spec.kubernetes
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": metadata(spec, name, labels_of(deployment, MONITORING)),
        "spec": {
            "selector": {"matchLabels": selector_of(deployment, role)},
            "namespaceSelector": {"matchNames": [spec.namespace]},
            "endpoints": endpoints,
        },
    }


def written(value):
    """An object as YAML carries it: a Secret's value is a placeholder naming its variable, never the value."""
    if isinstance(value, SecretText):
        return f"set-from-{value.name}"
    if isinstance(value, dict):
        return {key: written(item) for key, item in value.items()}
    if isinstance(value, list):
        return [written(item) for item in value]
    return value


def yaml_files(deployment: Deployment) -> dict[str, str]:
    """`kubernetes/<component>.yaml` per component and a kustomization of them, for Argo CD or Flux; the Secrets
    apart, in `secrets.example.yaml` (not in the kustomization): fill them in or replace them with the
    cluster's own secret management (Sealed Secrets, External Secrets) before applying."""
    files, secrets = {}, []
    for group, objects in manifests(deployment).items():
        kept = [obj for obj in objects if obj["kind"] != "Secret"]
        secrets += [written(obj) for obj in objects if obj["kind"] == "Secret"]
        if kept:
            files[f"{group}.yaml"] = yaml.safe_dump_all([written(obj) for obj in kept], sort_keys=False)
    kustomization = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "resources": list(files)}
    files["kustomization.yaml"] = yaml.safe_dump(kustomization, sort_keys=False)
    if secrets:
        files["secrets.example.yaml"] = yaml.safe_dump_all(secrets, sort_keys=False)
    return {f"kubernetes/{name}": text for name, text in files.items()}
