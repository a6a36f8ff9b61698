"""The Kubernetes target: the objects of kubernetes_cluster.py declared with pulumi-kubernetes, one component per
service as on Docker. The same objects are written as YAML by `render`; only Secret values differ (Pulumi
secrets here, placeholders there)."""

from typing import Any, Optional

import pulumi
import pulumi_kubernetes as k8s

from components.core.names import TYPE_PREFIX
from components.stack.deployment import Deployment
from components.targets.kubernetes.cluster import INGRESS, MONITORING, NAMESPACE, manifests
from components.targets.kubernetes.objects import SecretText

# pulumi-kubernetes' class for each (apiVersion, kind) the target declares; anything else is a custom resource.
KINDS = {
    ("v1", "Namespace"): k8s.core.v1.Namespace,
    ("v1", "Service"): k8s.core.v1.Service,
    ("v1", "ConfigMap"): k8s.core.v1.ConfigMap,
    ("v1", "Secret"): k8s.core.v1.Secret,
    ("apps/v1", "Deployment"): k8s.apps.v1.Deployment,
    ("apps/v1", "StatefulSet"): k8s.apps.v1.StatefulSet,
    ("batch/v1", "Job"): k8s.batch.v1.Job,
    ("networking.k8s.io/v1", "NetworkPolicy"): k8s.networking.v1.NetworkPolicy,
    ("networking.k8s.io/v1", "Ingress"): k8s.networking.v1.Ingress,
    ("policy/v1", "PodDisruptionBudget"): k8s.policy.v1.PodDisruptionBudget,
    ("autoscaling/v2", "HorizontalPodAutoscaler"): k8s.autoscaling.v2.HorizontalPodAutoscaler,
}
# The arguments each class takes, camelCase in the object, snake_case here.
ARGUMENTS = {"stringData": "string_data"}
WORKLOADS = ("Deployment", "StatefulSet")
RUNS = (*WORKLOADS, "Job")
CLUSTER_COMPONENTS = {NAMESPACE: "Namespace", INGRESS: "Ingress", MONITORING: "OperatorMonitoring"}


def secrets_wrapped(value: Any) -> Any:
    """Every SecretText becomes a Pulumi secret: encrypted in state, masked in every output."""
    if isinstance(value, SecretText):
        return pulumi.Output.secret(value.value)
    if isinstance(value, dict):
        return {key: secrets_wrapped(item) for key, item in value.items()}
    if isinstance(value, list):
        return [secrets_wrapped(item) for item in value]
    return value


def declare(obj: dict, name: str, opts: pulumi.ResourceOptions) -> pulumi.CustomResource:
    cls = KINDS.get((obj["apiVersion"], obj["kind"]))
    body = {ARGUMENTS.get(key, key): secrets_wrapped(value) for key, value in obj.items()}
    if cls is None:
        return k8s.apiextensions.CustomResource(
            name, api_version=body.pop("apiVersion"), kind=body.pop("kind"), opts=opts, **body
        )
    body.pop("apiVersion"), body.pop("kind")
    return cls(name, opts=opts, **body)


class ClusterComponent(pulumi.ComponentResource):
    """The objects of one service (or of the cluster-wide groups), in the order they are given."""

    def __init__(
        self,
        component: str,
        name: str,
        objects: list[dict],
        *,
        provider: k8s.Provider,
        first: list[pulumi.Resource],
        after: list[pulumi.Resource],
        protect_data: bool = False,
        opts: Optional[pulumi.ResourceOptions] = None,
    ):
        super().__init__(f"{TYPE_PREFIX}:{component}", name, None, opts)
        self.workloads: list[pulumi.CustomResource] = []
        config: list[pulumi.CustomResource] = []  # the ConfigMaps and Secrets its pods read
        for obj in objects:
            kind = obj["kind"]
            # Pods start once what they read exists and what they wait for is ready; a Job after the workloads too.
            waits = first + (after + config + (self.workloads if kind == "Job" else []) if kind in RUNS else [])
            # Deleting a Namespace deletes every claim in it: Pulumi never does (a changed `namespace` leaves the old
            # one and its data), and outside dev it is protected like a Docker volume.
            keep = kind == "Namespace"
            resource = declare(
                obj,
                f"{name}-{kind.lower()}-{obj['metadata']['name']}",
                pulumi.ResourceOptions(
                    parent=self,
                    provider=provider,
                    depends_on=waits,
                    retain_on_delete=keep,
                    protect=keep and protect_data,
                ),
            )
            if kind in ("ConfigMap", "Secret"):
                config.append(resource)
            if kind in WORKLOADS:
                self.workloads.append(resource)
        self.register_outputs({"workloads": [w.urn for w in self.workloads]})


class Cluster(pulumi.ComponentResource):
    """The cluster: one provider for the kubeconfig context and the stack's namespace."""

    def __init__(self, name: str, context: str, namespace: str, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__(f"{TYPE_PREFIX}:KubernetesCluster", name, None, opts)
        self.provider = k8s.Provider(
            f"{name}-provider", context=context, namespace=namespace, opts=pulumi.ResourceOptions(parent=self)
        )
        self.register_outputs({"namespace": namespace})


def build(deployment: Deployment) -> dict[str, ClusterComponent]:
    """Declare every object of the stack on its cluster, services in registry order after the namespace."""
    spec = deployment.spec.kubernetes
    groups = manifests(deployment)
    provider = Cluster("cluster", spec.context, spec.namespace).provider
    built: dict[str, ClusterComponent] = {}
    first: list[pulumi.Resource] = []
    if NAMESPACE in groups:
        built[NAMESPACE] = ClusterComponent(
            CLUSTER_COMPONENTS[NAMESPACE],
            NAMESPACE,
            groups.pop(NAMESPACE),
            provider=provider,
            first=[],
            after=[],
            protect_data=deployment.spec.protected,
        )
        first = [built[NAMESPACE]]
    for role, plan in deployment.plans.items():
        waited = {*plan.waits_for, *(role for shot in plan.one_shots for role in shot.after)}
        waits = [workload for other in waited if other in built for workload in built[other].workloads]
        definition = deployment.spec.definition(role)
        built[role] = ClusterComponent(
            definition.component, role, groups.pop(role), provider=provider, first=first, after=waits
        )
    for group, objects in groups.items():
        built[group] = ClusterComponent(
            CLUSTER_COMPONENTS[group], group, objects, provider=provider, first=first, after=[]
        )
    return built
