"""The Kubernetes target, as data: every object of a stack on a cluster, built from the same service plans as
the Docker target. Pure (no Pulumi): `kubernetes_target.py` declares these objects with pulumi-kubernetes, and
`render` writes them as YAML for GitOps, so both are the same objects by construction.

How a plan maps (components/core/plans.py):
- a service with data volumes is a StatefulSet whose PersistentVolumeClaims are retained when it is deleted
  or scaled; any other is a Deployment (replicated ones, the gateway and the edge, at `replicas` with a
  PodDisruptionBudget; the gateway also autoscaled) whose rolling update never drops below the desired count;
- each is reached through a Service named with the seed's hostname (the placement's alias) on its port;
- rendered files are one ConfigMap mounted file by file; credentials are one Secret, read with secretKeyRef,
  never a ConfigMap or a plain value;
- one-shots are Jobs named after a hash of what they run, so a change runs them again;
- the healthcheck command is the readiness, liveness and startup probe;
- who reaches whom (`ServicePlan.reaches`) becomes a NetworkPolicy per service: only those pods get in.
"""

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any, Optional

from components.core.names import PROJECT, SERVICE_LABEL, STACK_LABEL
from components.core.plans import Hardening, OneShot, ServicePlan, VolumeMount
from components.core.render import RenderedFile
from components.model.settings import KubernetesSpec
from components.services import gateway
from components.stack.deployment import Deployment
from components.targets.kubernetes.security import ROOT_IMAGE, confinement

NAME_LABEL = "app.kubernetes.io/name"
INSTANCE_LABEL = "app.kubernetes.io/instance"
COMPONENT_LABEL = "app.kubernetes.io/component"
FILES_HASH = "pmoves.ai/files-hash"
HTTP_PORT = "http"
DEFAULT_VOLUME_GB = 10
JOB_BACKOFF_LIMIT = 3
JOB_MEMORY_MB = 256  # a client: clickhouse-client applying SQL, `ollama pull` asking the server
PROBE = {"periodSeconds": 10, "timeoutSeconds": 5}
PROBES = {
    "startupProbe": {**PROBE, "failureThreshold": 30},  # up to 5 minutes to start: migrations, model loads
    "readinessProbe": {**PROBE, "failureThreshold": 3},
    "livenessProbe": {**PROBE, "failureThreshold": 6},
}
GPU_RESOURCE = "nvidia.com/gpu"
# A ceiling, not a reservation: one runaway pod cannot starve its node's other pods.
CPU_LIMIT = "2"
NODE_TOPOLOGY = "kubernetes.io/hostname"


@dataclass(frozen=True)
class SecretText:
    """A value of a Secret: a Pulumi secret when declared, a placeholder when written as YAML."""

    name: str  # the variable it holds
    value: str


def digest(text: str, length: int = 10) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def key_of(file: RenderedFile) -> str:
    """A ConfigMap key for a file: its rendered path made a valid key (letters, digits, `-`, `_`, `.`)."""
    return re.sub(r"[^-._a-zA-Z0-9]", "_", file.path)


def metadata(spec: KubernetesSpec, name: str, labels: dict[str, str], **extra: Any) -> dict:
    return {"name": name, "namespace": spec.namespace, "labels": labels, **extra}


def labels_of(deployment: Deployment, role: str, component: Optional[str] = None) -> dict[str, str]:
    found = {
        NAME_LABEL: role,
        INSTANCE_LABEL: deployment.spec.name_prefix,
        "app.kubernetes.io/part-of": PROJECT,
        STACK_LABEL: deployment.spec.name_prefix,
        SERVICE_LABEL: role,
    }
    return found | ({COMPONENT_LABEL: component} if component else {})


def selector_of(deployment: Deployment, role: str) -> dict[str, str]:
    return {NAME_LABEL: role, INSTANCE_LABEL: deployment.spec.name_prefix}


def port_name(plan: ServicePlan, port: int) -> str:
    return HTTP_PORT if port == plan.placement.port else f"port-{port}"


def env_entries(variables, secret_name: str) -> list[dict]:
    return [
        {"name": v.name, "valueFrom": {"secretKeyRef": {"name": secret_name, "key": v.name}}}
        if v.secret
        else {"name": v.name, "value": v.value}
        for v in variables
    ]


def secret_object(spec: KubernetesSpec, name: str, labels: dict, variables) -> Optional[dict]:
    secrets = {v.name: SecretText(v.name, v.value) for v in variables if v.secret}
    if not secrets:
        return None
    meta = metadata(spec, name, labels)
    return {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "type": "Opaque", "stringData": secrets}


def files_config(spec: KubernetesSpec, name: str, labels: dict, files) -> Optional[dict]:
    if not files:
        return None
    data = {key_of(f): f.content for f in files}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata(spec, name, labels), "data": data}


def claim_of(deployment: Deployment, mount: VolumeMount) -> str:
    """The PersistentVolumeClaim a StatefulSet's volumeClaimTemplate made for its one pod: `<volume>-<set>-0`."""
    return f"{mount.volume}-{deployment.plans[mount.owner].docker_name}-0"


def pod_template(
    deployment: Deployment, container: dict, labels: dict, files, config_name: str, data_volumes=(), gpu=False,
    shared: tuple[VolumeMount, ...] = (), hardening: Hardening = ROOT_IMAGE,
) -> dict:  # fmt: skip
    """A pod running `container`, its files mounted one by one from the ConfigMap, hashes that roll it.

    A volume `shared` from another service's StatefulSet is its claim, mounted on the node that service's pod
    runs on (a ReadWriteOnce claim is mounted by pods of one node): the backup container beside ClickHouse."""
    volumes, mounts = [], []
    if files:
        volumes.append({"name": "files", "configMap": {"name": config_name}})
        mounts += [{"name": "files", "mountPath": f.mount, "subPath": key_of(f), "readOnly": True} for f in files]
    mounts += [{"name": v.name, "mountPath": hardening.cluster_path(v.mount)} for v in data_volumes]
    for index, path in enumerate(hardening.scratch):
        volumes.append({"name": f"scratch-{index}", "emptyDir": {}})
        mounts.append({"name": f"scratch-{index}", "mountPath": path})
    if hardening.home and hardening.pod_user is not None:
        container["env"] = [*container.get("env", []), {"name": "HOME", "value": hardening.home}]
    for mount in shared:
        name = f"{mount.owner}-{mount.volume}"
        volumes.append({"name": name, "persistentVolumeClaim": {"claimName": claim_of(deployment, mount)}})
        mounts.append({"name": name, "mountPath": mount.mount})
    if mounts:
        container["volumeMounts"] = mounts
    # A changed file rolls the pods, as a changed upload replaces a container on Docker. A rotated credential
    # updates its Secret only: nothing derived from a secret is written here (README: rotating credentials).
    annotations = {FILES_HASH: digest("".join(f.mount + f.content for f in files))}
    pod_context, container["securityContext"] = confinement(hardening)
    pod = {"automountServiceAccountToken": False, "securityContext": pod_context, "containers": [container]}
    if volumes:
        pod["volumes"] = volumes
    if gpu:
        pod["nodeSelector"] = dict(deployment.spec.kubernetes.gpu_node_selector)
        pod["tolerations"] = [{"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}]
    if shared:
        beside = [
            {"labelSelector": {"matchLabels": selector_of(deployment, owner)}, "topologyKey": NODE_TOPOLOGY}
            for owner in sorted({mount.owner for mount in shared})
        ]
        pod["affinity"] = {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": beside}}
    return {"metadata": {"labels": labels, "annotations": annotations}, "spec": pod}


def resources(limit_mb: int, gpu: bool = False) -> dict:
    found = {
        "requests": {"cpu": "100m", "memory": f"{max(64, limit_mb // 4)}Mi"},
        "limits": {"cpu": CPU_LIMIT, "memory": f"{limit_mb}Mi"},
    }
    if gpu:
        found["limits"][GPU_RESOURCE] = 1
    return found


def serving_ports(plan: ServicePlan, exposed: set[int]) -> list[int]:
    """Every port of the service's pods: those others reach, and those the ingress sends callers to."""
    return sorted({*plan.ports(), *exposed})


def service_objects(deployment: Deployment, plan: ServicePlan, exposed: set[int]) -> list[dict]:
    """Workload, Service, ConfigMap and Secret of one service's long-running container."""
    spec = deployment.spec.kubernetes
    name, labels = plan.docker_name, labels_of(deployment, plan.role)
    ports = [{"name": port_name(plan, port), "containerPort": port} for port in serving_ports(plan, exposed)]
    container = {
        "name": plan.role,
        "image": plan.image,
        **({"args": list(plan.command)} if plan.command else {}),
        "env": env_entries(plan.env, f"{name}-env"),
        "ports": ports,
        "resources": resources(plan.memory_mb or spec.default_memory_mb, plan.gpu),
        **{probe: {"exec": {"command": list(plan.healthcheck)}, **settings} for probe, settings in PROBES.items()},
    }
    template = pod_template(
        deployment, container, labels, plan.files, f"{name}-files", plan.volumes, plan.gpu, plan.mounts, plan.hardening
    )
    if plan.stop_grace_s:
        # As `docker stop` waits on Docker: in-flight requests drain before the pod is killed.
        template["spec"]["terminationGracePeriodSeconds"] = plan.stop_grace_s
    selector = {"matchLabels": selector_of(deployment, plan.role)}
    definition = deployment.spec.definition(plan.role)
    if plan.volumes:
        claims = [
            {
                "metadata": {"name": volume.name, "labels": labels},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": f"{volume_gb(spec, plan, volume.name)}Gi"}},
                    **({"storageClassName": spec.storage_class} if spec.storage_class else {}),
                },
            }
            for volume in plan.volumes
        ]
        workload = {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": metadata(spec, name, labels),
            "spec": {
                "replicas": 1,
                "serviceName": plan.placement.alias,
                "selector": selector,
                "template": template,
                "volumeClaimTemplates": claims,
                # Data outlives the stack: claims stay when the StatefulSet is deleted or scaled down.
                "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"},
            },
        }
    else:
        workload = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": metadata(spec, name, labels),
            "spec": {
                "replicas": spec.replicas if definition.replicated else 1,
                "selector": selector,
                # A new pod is ready before an old one goes: never below the desired count.
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
                "template": template,
            },
        }
    service_ports = [{"name": p["name"], "port": p["containerPort"], "targetPort": p["name"]} for p in ports]
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(spec, plan.placement.alias, labels),
        "spec": {"selector": selector_of(deployment, plan.role), "ports": service_ports},
    }
    config = [
        files_config(spec, f"{name}-files", labels, plan.files),
        secret_object(spec, f"{name}-env", labels, plan.env),
    ]
    return [o for o in config if o] + [service, workload]


def volume_gb(spec: KubernetesSpec, plan: ServicePlan, volume: str) -> int:
    return spec.volume_size_gb.get(f"{plan.role}-{volume}", DEFAULT_VOLUME_GB)


def shot_hardening(deployment: Deployment, plan: ServicePlan, shot: OneShot) -> Hardening:
    """A one-shot runs as the service whose image it runs: a client in that image, under that image's user."""
    owner = deployment.plans.get(shot.image_of)
    return owner.hardening if owner is not None else plan.hardening


def job_objects(deployment: Deployment, plan: ServicePlan, shot: OneShot, image: str) -> list[dict]:
    """A one-shot as a Job; its name carries a hash of what it runs, so a change runs it again."""
    spec = deployment.spec.kubernetes
    labels = labels_of(deployment, plan.role, shot.name)
    container = {
        "name": shot.name,
        "image": image,
        "command": [shot.entrypoint],
        "args": list(shot.command),
        "env": env_entries(shot.env, f"{shot.docker_name}-env"),
        "resources": resources(JOB_MEMORY_MB),
    }
    config = f"{shot.docker_name}-files"
    hardening = shot_hardening(deployment, plan, shot)
    template = pod_template(deployment, container, labels, shot.files, config, shared=shot.mounts, hardening=hardening)
    template["spec"]["restartPolicy"] = "Never"
    runs = json.dumps([image, container, [f.content for f in shot.files]], sort_keys=True, default=str)
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata(spec, f"{shot.docker_name[:52]}-{digest(runs, 10)}", labels),
        "spec": {"backoffLimit": JOB_BACKOFF_LIMIT, "template": template},
    }
    found = [
        files_config(spec, config, labels, shot.files),
        secret_object(spec, f"{shot.docker_name}-env", labels, shot.env),
    ]
    return [o for o in found if o] + [job]


def network_policy(deployment: Deployment, plan: ServicePlan, exposed: set[int]) -> dict:
    """Exactly the dependency rules of the plans: each port lets in the services given this one's address on
    it (and its own pods: its one-shots); the port the cluster's ingress serves also lets in the controller."""
    spec = deployment.spec.kubernetes
    rules = []
    for port in serving_ports(plan, exposed):
        roles = sorted({plan.role} | {role for role, reached in plan.callers if reached == port})
        peers = [{"podSelector": {"matchLabels": selector_of(deployment, role)}} for role in roles]
        if port in exposed:
            namespace = {"kubernetes.io/metadata.name": spec.ingress.controller_namespace}
            peers.append({"namespaceSelector": {"matchLabels": namespace}})
        rules.append({"from": peers, "ports": [{"protocol": "TCP", "port": port}]})
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(spec, f"{plan.docker_name}-ingress", labels_of(deployment, plan.role)),
        "spec": {
            "podSelector": {"matchLabels": selector_of(deployment, plan.role)},
            "policyTypes": ["Ingress"],
            "ingress": rules,
        },
    }


@dataclass(frozen=True)
class IngressRoute:
    roles: tuple[str, ...]  # the services whose URL it is (the edge's is also the gateway's)
    service: str  # the Service it sends callers to
    port: int
    server: str  # the role of the pods behind that Service: the one that must authenticate callers


def ingress_routes(deployment: Deployment) -> dict[str, IngressRoute]:
    """Host -> route of the cluster's ingress: the seed's gateway hostname (the edge, when deployed) and the UI
    (behind the edge's login, when the edge serves it)."""
    spec = deployment.spec
    ingress = spec.kubernetes.ingress
    if ingress is None:
        return {}
    api = spec.placement(gateway.SERVICE.role)
    fronting = spec.active_fronts(gateway.SERVICE.role)
    server = fronting[0][0].role if fronting else gateway.SERVICE.role
    roles = tuple(dict.fromkeys((server, gateway.SERVICE.role)))
    routes = {ingress.host: IngressRoute(roles, gateway.ALIAS, api.port, server)}
    if ingress.ui_host and spec.deployed("ui"):
        fronts = spec.active_fronts("ui")
        if fronts:
            edge, front = fronts[0]
            routes[ingress.ui_host] = IngressRoute(("ui",), spec.placement(edge).alias, front.port, edge.role)
        else:
            ui = spec.placement("ui")
            routes[ingress.ui_host] = IngressRoute(("ui",), ui.alias, ui.port, "ui")
    return routes


def exposed_ports(deployment: Deployment) -> dict[str, set[int]]:
    """Service name -> the ports the ingress controller sends callers to."""
    found: dict[str, set[int]] = {}
    for route in ingress_routes(deployment).values():
        found.setdefault(route.service, set()).add(route.port)
    return found


def ingress_object(deployment: Deployment) -> Optional[dict]:
    spec = deployment.spec.kubernetes
    routes = {host: (route.service, route.port) for host, route in ingress_routes(deployment).items()}
    if not routes:
        return None
    rules = [
        {
            "host": host,
            "http": {
                "paths": [
                    {
                        "path": "/",
                        "pathType": "Prefix",
                        "backend": {"service": {"name": service, "port": {"number": port}}},
                    }
                ]
            },
        }
        for host, (service, port) in routes.items()
    ]
    body = {"ingressClassName": spec.ingress.class_name, "rules": rules}
    if spec.ingress.tls_secret:
        body["tls"] = [{"hosts": list(routes), "secretName": spec.ingress.tls_secret}]
    labels = labels_of(deployment, "ingress")
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": metadata(spec, "tensorzero", labels),
        "spec": body,
    }
