"""The whole stack of one environment: hosts, services and their wiring."""

from dataclasses import dataclass

import pulumi

from . import clickhouse, gateway, ollama, ui
from .host import DockerHost, Placement
from .loader import Deployment
from .names import CLICKHOUSE, GATEWAY, OLLAMA, UI, Service
from .render import RenderedFile


def rendered_files(deployment: Deployment) -> list[RenderedFile]:
    """Every file the stack mounts into a container."""
    return [*clickhouse.config_files(deployment), gateway.config_file(deployment)]


@dataclass(frozen=True)
class BuiltStack:
    hosts: dict[str, DockerHost]
    services: dict[Service, pulumi.ComponentResource]
    outputs: dict[str, pulumi.Input]


def build(deployment: Deployment) -> BuiltStack:
    """Declare every resource of the environment."""
    spec = deployment.spec
    deployed = [s for s in (CLICKHOUSE, GATEWAY, UI, OLLAMA) if spec.deployed(s)]
    hosts = {
        name: DockerHost(f"host-{name}", spec.hosts[name], network_name=f"{spec.name_prefix}-tensorzero")
        for name in sorted({spec.service_spec(s).host for s in deployed})
    }

    def placement(service: Service) -> Placement:
        host_name = spec.service_spec(service).host
        return Placement(
            host_name=host_name,
            host=hosts[host_name],
            name_prefix=spec.name_prefix,
            bind_address=spec.bind_address,
            internal=spec.endpoint(service, seen_from=host_name),
            published=spec.published_endpoint(service),
        )

    store = clickhouse.ClickHouse(
        "clickhouse",
        spec.clickhouse,
        placement(CLICKHOUSE),
        env=clickhouse.environment(deployment),
        files=clickhouse.config_files(deployment),
        protect_data=spec.protected,
    )
    services = {CLICKHOUSE: store}
    if spec.deployed(OLLAMA):
        services[OLLAMA] = ollama.Ollama(
            "ollama",
            spec.ollama,
            placement(OLLAMA),
            env=ollama.environment(deployment),
            pulls=list(deployment.translation.ollama_pulls),
            protect_data=spec.protected,
        )
    services[GATEWAY] = gateway.Gateway(
        "gateway",
        spec.gateway,
        placement(GATEWAY),
        env=gateway.environment(deployment, store.endpoint_from(spec.gateway.host)),
        config=gateway.config_file(deployment),
        # ClickHouse must be healthy first: the gateway runs its migrations at start.
        depends_on=[services[s].container for s in (CLICKHOUSE, OLLAMA) if s in services],
    )
    if spec.deployed(UI):
        services[UI] = ui.Ui(
            "ui",
            spec.ui,
            placement(UI),
            env=ui.environment(deployment, services[GATEWAY].endpoint_from(spec.ui.host)),
            depends_on=[services[GATEWAY].container],
        )

    return BuiltStack(
        hosts,
        services,
        outputs={
            "endpoints": {
                s.role: c.placement.published.url for s, c in services.items() if c.placement.published is not None
            },
            "internal_urls": {s.role: c.placement.internal.url for s, c in services.items()},
            "containers": {s.role: c.container.name for s, c in services.items()},
            "models": {
                "chat": [m.name for m in deployment.translation.models],
                "embedding": [m.name for m in deployment.translation.embedding_models],
            },
            "clickhouse_url": pulumi.Output.secret(
                clickhouse.connection_url(
                    spec.clickhouse,
                    deployment.variable(spec.clickhouse.password_var),
                    store.placement.published or store.placement.internal,
                ).value
            ),
        },
    )
