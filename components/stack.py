"""The whole stack of one environment: hosts, services and their wiring."""

from dataclasses import dataclass

import pulumi

from . import alloy, blackbox, clickhouse, edge, gateway, grafana, loki, ollama, prometheus, schema, ui
from .container import ServiceComponent, served_variables
from .host import DockerHost, Placement
from .loader import Deployment
from .names import (
    ALLOY,
    BLACKBOX,
    CHAT_MODEL_PREFIX,
    CLICKHOUSE,
    EDGE,
    EMBEDDING_MODEL_PREFIX,
    GATEWAY,
    GRAFANA,
    LOKI,
    OLLAMA,
    PROMETHEUS,
    UI,
    Service,
)
from .render import RenderedFile

SCHEMA = "clickhouse-schema"  # the one-shot that applies the schema SQL: files of its own, no service


def mounted_files(deployment: Deployment) -> dict[str, list[RenderedFile]]:
    """Every file the stack mounts, by the component that mounts it; `render` and `build` both read this."""
    spec = deployment.spec
    files = {
        CLICKHOUSE.role: clickhouse.config_files(deployment),
        SCHEMA: schema.schema_files(deployment),
        GATEWAY.role: [gateway.config_file(deployment)],
    }
    if spec.deployed(EDGE):
        files[EDGE.role] = edge.config_files(deployment, spec.endpoint(GATEWAY, seen_from=spec.edge.host))
    if spec.deployed(PROMETHEUS):
        files[PROMETHEUS.role] = prometheus.config_files(deployment)
        files[BLACKBOX.role] = blackbox.config_files(deployment)
    if spec.deployed(LOKI):
        files[LOKI.role] = loki.config_files(deployment)
        files[ALLOY.role] = alloy.config_files(deployment, spec.endpoint(LOKI, seen_from=spec.alloy.host))
    if spec.deployed(GRAFANA):
        files[GRAFANA.role] = grafana.config_files(deployment)
    return files


def rendered_files(deployment: Deployment) -> list[RenderedFile]:
    """Every file the stack mounts into a container."""
    return [file for group in mounted_files(deployment).values() for file in group]


@dataclass(frozen=True)
class BuiltStack:
    hosts: dict[str, DockerHost]
    services: dict[Service, ServiceComponent]
    outputs: dict[str, pulumi.Input]


def build(deployment: Deployment) -> BuiltStack:
    """Declare every resource of the environment."""
    spec = deployment.spec
    deployed = spec.deployed_services
    files = mounted_files(deployment)
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
        files=files[CLICKHOUSE.role],
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
        spec.service_spec(GATEWAY),
        placement(GATEWAY),
        env=gateway.environment(deployment, store.endpoint_from(spec.gateway.host)),
        config=files[GATEWAY.role][0],
        # ClickHouse must be healthy first: the gateway runs its migrations at start.
        depends_on=[services[s].container for s in (CLICKHOUSE, OLLAMA) if s in services],
    )
    if spec.deployed(EDGE):
        services[EDGE] = edge.Edge(
            "edge",
            spec.service_spec(EDGE),
            placement(EDGE),
            env=edge.environment(deployment),
            files=files[EDGE.role],
            depends_on=[services[GATEWAY].container],
        )
    if files[SCHEMA]:  # empty when gateway.observability is off: no ModelInference to wait for
        schema.ClickHouseSchema(
            SCHEMA,
            spec.clickhouse,
            store.placement,
            image=store.container.image,
            env=schema.environment(deployment),
            files=files[SCHEMA],
            # The gateway runs its ClickHouse migrations at start; healthy means they ran.
            depends_on=[services[GATEWAY].container],
        )
    if spec.deployed(UI):
        services[UI] = ui.Ui(
            "ui",
            spec.ui,
            placement(UI),
            env=ui.environment(deployment, services[GATEWAY].endpoint_from(spec.ui.host)),
            depends_on=[services[GATEWAY].container],
        )

    if spec.deployed(LOKI):
        services[LOKI] = loki.Loki(
            "loki",
            spec.loki,
            placement(LOKI),
            env=served_variables(spec.loki, deployment.variables),
            files=files[LOKI.role],
            protect_data=spec.protected,
        )
        services[ALLOY] = alloy.Alloy(
            "alloy",
            spec.alloy,
            placement(ALLOY),
            env=served_variables(spec.alloy, deployment.variables),
            files=files[ALLOY.role],
            depends_on=[services[LOKI].container],
        )
    if spec.deployed(PROMETHEUS):
        services[BLACKBOX] = blackbox.Blackbox(
            "blackbox",
            spec.blackbox,
            placement(BLACKBOX),
            env=blackbox.environment(deployment),
            files=files[BLACKBOX.role],
        )
        services[PROMETHEUS] = prometheus.Prometheus(
            "prometheus",
            spec.prometheus,
            placement(PROMETHEUS),
            env=prometheus.environment(deployment),
            files=files[PROMETHEUS.role],
            protect_data=spec.protected,
            # Targets may come up later; the probe job needs its exporter from the first scrape.
            depends_on=[services[s].container for s in (GATEWAY, BLACKBOX)],
        )
    if spec.deployed(GRAFANA):
        services[GRAFANA] = grafana.Grafana(
            "grafana",
            spec.grafana,
            placement(GRAFANA),
            env=grafana.environment(deployment),
            files=files[GRAFANA.role],
            protect_data=spec.protected,
            depends_on=[services[s].container for s in (PROMETHEUS, CLICKHOUSE, LOKI) if s in services],
        )
    return BuiltStack(hosts, services, outputs=outputs(deployment, services))


def outputs(deployment: Deployment, services: dict[Service, ServiceComponent]) -> dict[str, pulumi.Input]:
    """What operators and the smoke suite read with `pulumi stack output --json` (secrets stay secret)."""
    spec = deployment.spec
    translation = deployment.translation
    store = services[CLICKHOUSE].placement
    smoke = spec.smoke
    endpoints = {s.role: c.placement.published.url for s, c in services.items() if c.placement.published}
    if EDGE.role in endpoints:
        # Callers' gateway URL is the edge's: it passes every gateway path through.
        endpoints.setdefault(GATEWAY.role, endpoints[EDGE.role])
    result = {
        "endpoints": endpoints,
        "internal_urls": {s.role: c.placement.internal.url for s, c in services.items()},
        "containers": {s.role: c.container.name for s, c in services.items()},
        "docker_hosts": {s.role: spec.hosts[c.placement.host_name].url for s, c in services.items()},
        "models": {
            "chat": [m.name for m in translation.models],
            "embedding": [m.name for m in translation.embedding_models],
        },
        "ollama_models": list(translation.ollama_pulls) if spec.deployed(OLLAMA) else [],
        "smoke": {
            "chat_model": smoke.chat_model and CHAT_MODEL_PREFIX + smoke.chat_model,
            "embedding_model": smoke.embedding_model and EMBEDDING_MODEL_PREFIX + smoke.embedding_model,
        },
        "clickhouse_views": schema.views(deployment),
        "clickhouse_url": pulumi.Output.secret(
            clickhouse.connection_url(
                spec.clickhouse,
                deployment.variable(spec.clickhouse.password_var),
                store.published or store.internal,
            ).value
        ),
    }
    if GRAFANA in services:
        result["grafana_admin"] = pulumi.Output.secret(
            {"user": spec.grafana.admin_user, "password": deployment.variable(spec.grafana.admin_password_var).value}
        )
    return result
