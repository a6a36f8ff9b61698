"""The whole stack of one environment on Docker: a host component per Docker host, then the registry's plans."""

from dataclasses import dataclass

import pulumi

from components.core.names import CHAT_MODEL_PREFIX, EMBEDDING_MODEL_PREFIX
from components.core.plans import Endpoint, Secret
from components.stack.deployment import Deployment
from components.targets.docker import DockerHost, ServiceComponent


@dataclass(frozen=True)
class BuiltStack:
    hosts: dict[str, DockerHost]
    services: dict[str, pulumi.ComponentResource]
    outputs: dict[str, pulumi.Input]


def build(deployment: Deployment) -> BuiltStack:
    """Declare every resource of the environment on its target, in the registry's start order."""
    spec = deployment.spec
    if spec.kubernetes is not None:
        from components.targets.kubernetes import (
            resources as kubernetes_target,  # pulumi-kubernetes is imported only for cluster stacks
        )

        built = kubernetes_target.build(deployment)
        return BuiltStack({}, built, outputs=outputs(deployment, built))
    plans = deployment.plans
    hosts = {
        name: DockerHost(f"host-{name}", spec.hosts[name], network_name=spec.network_name)
        for name in sorted({plan.placement.host for plan in plans.values()})
    }
    services: dict[str, ServiceComponent] = {}
    for plan in plans.values():
        services[plan.role] = ServiceComponent(
            plan,
            host=hosts[plan.placement.host],
            name_prefix=spec.name_prefix,
            protect_data=spec.protected,
            volume_prefix=spec.data_volume_prefix,
            started=services,
        )
    return BuiltStack(hosts, services, outputs=outputs(deployment, services))


def outputs(deployment: Deployment, services: dict[str, pulumi.ComponentResource]) -> dict[str, pulumi.Input]:
    """What operators and the smoke suite read with `pulumi stack output --json` (secrets stay secret)."""
    spec = deployment.spec
    translation = deployment.translation
    running = [plan for plan in deployment.plans.values() if plan.runs_container]
    result = {
        "endpoints": published_urls(deployment),
        "internal_urls": {p.role: spec.endpoint(p.role, seen_from=p.placement.host).url for p in running},
        "models": {
            "chat": [m.name for m in translation.models],
            "embedding": [m.name for m in translation.embedding_models],
        },
        "smoke": {
            "chat_model": spec.smoke.chat_model and CHAT_MODEL_PREFIX + spec.smoke.chat_model,
            "embedding_model": spec.smoke.embedding_model and EMBEDDING_MODEL_PREFIX + spec.smoke.embedding_model,
        },
    }
    if spec.kubernetes is None:
        # A rolling container's name changes with each replacement: the name Docker really has.
        result["containers"] = {p.role: services[p.role].container.name for p in running}
        result["docker_hosts"] = {p.role: spec.hosts[p.placement.host].url for p in running}
    else:
        result["kubernetes"] = {"context": spec.kubernetes.context, "namespace": spec.kubernetes.namespace}
    for plan in deployment.plans.values():
        for key, value in plan.outputs.items():
            if isinstance(value, dict) and isinstance(result.get(key), dict):
                value = {**result[key], **value}  # one entry per instance of a kind (`ollama_models`)
            result[key] = pulumi.Output.secret(value.value) if isinstance(value, Secret) else value
    return result


def published_urls(deployment: Deployment) -> dict[str, str]:
    """Where operators and callers reach each published service: its host's address and port on Docker (a
    front's URL is also the URL of what it fronts for callers), the ingress hosts on a cluster."""
    spec = deployment.spec
    if spec.kubernetes is not None:
        from components.targets.kubernetes.objects import ingress_routes

        ingress = spec.kubernetes.ingress
        scheme = "https" if ingress and ingress.tls_secret else "http"
        urls = {}
        for host, route in ingress_routes(deployment).items():
            urls.update({role: f"{scheme}://{host}" for role in route.roles})
        return urls
    running = [plan for plan in deployment.plans.values() if plan.runs_container]
    urls = {plan.role: spec.published_endpoint(plan.role).url for plan in running if plan.placement.published}
    for plan in running:
        address = spec.hosts[plan.placement.host].address
        definition = spec.definition(plan.role)
        taken = {port.internal: port.external for port in plan.placement.ports}
        for front in spec.fronts_served(plan.role):
            internal, scheme = definition.published_as(spec, front.port or plan.placement.port)
            if internal in taken and front.for_callers:
                # Callers' URL of what it fronts is the front's: it serves that service's paths.
                urls.setdefault(front.role, Endpoint(address, taken[internal], scheme).url)
    return urls
