"""The services of the stack, in start order: the one list every command, target and test reads.

Adding a service is a module (its spec model, `plan(ctx)` and `SERVICE`), its templates, and one line here.
"""

from dataclasses import dataclass
from functools import cached_property

from components.model.environment import EnvironmentBase, ServiceDefinition, environment_model
from components.services import (
    alloy,
    backup,
    blackbox,
    clickhouse,
    clickhouse_schema,
    docker_proxy,
    edge,
    gateway,
    grafana,
    loki,
    ollama,
    ollama_guard,
    prometheus,
    ui,
)


@dataclass(frozen=True)
class Registry:
    services: tuple[ServiceDefinition, ...]

    @cached_property
    def environment(self) -> type[EnvironmentBase]:
        """The stack's pydantic model: one section per service that has one."""
        return environment_model(self.services)

    def with_service(self, service: ServiceDefinition, after: str) -> "Registry":
        """This registry with `service` inserted after role `after` (for tests and extensions)."""
        roles = [s.role for s in self.services]
        at = roles.index(after) + 1
        return Registry(self.services[:at] + (service,) + self.services[at:])


REGISTRY = Registry(
    (
        clickhouse.SERVICE,
        backup.SERVICE,  # before the gateway: its pre-upgrade one-shot runs before the migrations
        ollama.SERVICE,
        ollama_guard.SERVICE,
        gateway.SERVICE,
        ui.SERVICE,
        edge.SERVICE,  # after the UI: it may serve it behind a login
        clickhouse_schema.SERVICE,
        loki.SERVICE,
        docker_proxy.SERVICE,
        alloy.SERVICE,
        blackbox.SERVICE,
        prometheus.SERVICE,
        grafana.SERVICE,
    )
)
Environment = REGISTRY.environment
