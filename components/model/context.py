"""What one service's `plan(ctx)` may read: its own section and placement, and the rest through these methods.

The planner (stack/planner.py) implements it; a service module sees only this, so it never imports the
planner that calls it.
"""

from typing import Optional, Protocol

from components.core.envfiles import Variable
from components.core.plans import Endpoint, Monitoring, Placement, ServicePlan
from components.model.environment import EnvironmentBase, ServiceDefinition, ServiceRef
from components.model.resolved import ResolvedStack
from components.model.settings import ServiceSpec


class Context(Protocol):
    service: ServiceDefinition
    deployment: ResolvedStack
    spec: EnvironmentBase
    role: str

    @property
    def section(self) -> ServiceSpec: ...

    @property
    def placement(self) -> Placement: ...

    def deployed(self, service: ServiceRef) -> bool: ...

    def reach(self, service: ServiceRef, port: Optional[int] = None, switch: Optional[str] = None) -> Endpoint:
        """Where this service's containers reach `service` (on an internal `port` of it, if given)."""

    def problem(self, key: str, message: str, file: Optional[str] = None, missing: bool = False) -> None:
        """A problem this plan found, reported with every other one (`file` defaults to the stack file)."""

    def origin(self, key: str) -> str:
        """Where spec key `key` ("clickhouse.user") got its value: the stack file, or the spec's default."""

    def from_spec(self, name: str, key: str) -> Variable:
        """Variable `name` holding the value of spec key `key`, with its origin."""

    def notice(self, message: str) -> None:
        """Something `validate` tells the operator that is not a problem (a default that may surprise)."""

    def credential(self, key: str) -> Variable:
        """The secret held by the variable that spec key `key` ("clickhouse.password_var",
        "backup.offsite.access_key_var") names."""

    def access_key(self, key: str, name: str) -> Variable:
        """The caller's key held by variable `name` (named at spec key `key`), checked as a key."""

    def monitored(self) -> list[tuple[ServiceDefinition, Monitoring]]:
        """How each deployed service is watched, in registry order (from the spec: needs no plan)."""

    def others(self) -> list[ServicePlan]:
        """The plans of every other deployed service, in registry order."""
