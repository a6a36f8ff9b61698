"""The whole stack of one environment on Docker: a host component per Docker host, then the registry's plans."""

from dataclasses import dataclass

import pulumi

from .deployment import Deployment
from .docker_target import DockerHost, ServiceComponent
from .names import CHAT_MODEL_PREFIX, EMBEDDING_MODEL_PREFIX
from .render import RenderedFile
from .service import Secret


def rendered_files(deployment: Deployment) -> list[RenderedFile]:
    """Every file the stack mounts into a container, one-shots included."""
    return [file for plan in deployment.plans.values() for file in plan.all_files()]


@dataclass(frozen=True)
class BuiltStack:
    hosts: dict[str, DockerHost]
    services: dict[str, pulumi.ComponentResource]
    outputs: dict[str, pulumi.Input]


def build(deployment: Deployment) -> BuiltStack:
    """Declare every resource of the environment on its target, in the registry's start order."""
    spec = deployment.spec
    if spec.kubernetes is not None:
        from . import kubernetes_target  # pulumi-kubernetes is imported only for cluster stacks

        return BuiltStack({}, kubernetes_target.build(deployment), outputs=outputs(deployment))
    plans = deployment.plans
    hosts = {
        name: DockerHost(f"host-{name}", spec.hosts[name], network_name=f"{spec.name_prefix}-tensorzero")
        for name in sorted({plan.placement.host for plan in plans.values()})
    }
    services: dict[str, ServiceComponent] = {}
    for plan in plans.values():
        services[plan.role] = ServiceComponent(
            plan,
            host=hosts[plan.placement.host],
            name_prefix=spec.name_prefix,
            bind_address=spec.bind_address,
            protect_data=spec.protected,
            started=services,
        )
    return BuiltStack(hosts, services, outputs=outputs(deployment))


def outputs(deployment: Deployment) -> dict[str, pulumi.Input]:
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
        result["containers"] = {p.role: f"{spec.name_prefix}-{p.docker_name}" for p in running}
        result["docker_hosts"] = {p.role: spec.hosts[p.placement.host].url for p in running}
    else:
        result["kubernetes"] = {"context": spec.kubernetes.context, "namespace": spec.kubernetes.namespace}
    for plan in deployment.plans.values():
        for key, value in plan.outputs.items():
            result[key] = pulumi.Output.secret(value.value) if isinstance(value, Secret) else value
    return result


def published_urls(deployment: Deployment) -> dict[str, str]:
    """Where operators and callers reach each published service: its host's address and port on Docker, the
    ingress hosts on a cluster. The front's URL is also the URL of what it fronts: it passes every path on."""
    spec = deployment.spec
    running = [plan for plan in deployment.plans.values() if plan.runs_container]
    if spec.kubernetes is not None:
        from .kubernetes import ingress_routes

        ingress = spec.kubernetes.ingress
        scheme = "https" if ingress and ingress.tls_secret else "http"
        by_alias = {plan.placement.alias: plan.role for plan in running}
        urls = {by_alias[service]: f"{scheme}://{host}" for host, (service, _) in ingress_routes(deployment).items()}
    else:
        urls = {p.role: spec.published_endpoint(p.role).url for p in running if p.placement.published}
    for plan in running:
        front = spec.definition(plan.role).front
        if front and plan.role in urls:
            urls.setdefault(front.role, urls[plan.role])
    return urls
