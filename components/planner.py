"""From a resolved deployment to every service's plan: the registry walked once, every problem collected.

A service's `plan(ctx)` asks its context for what lies outside it: another service's address
(`ctx.reach`, which records the dependency and checks it can be reached where the spec placed both),
a credential named by a spec key (`ctx.credential`, checked for presence and, outside dev, for the seed's
defaults), how every service is watched (`ctx.monitored`) and the plans of the others (`ctx.others`).
"""

from dataclasses import replace
from typing import Optional

from .deployment import Deployment
from .envfiles import Variable
from .errors import ConfigError, Problem
from .service import Endpoint, Monitoring, Placement, ServiceDefinition, ServicePlan
from .spec import SEED_DEFAULT_CREDENTIALS, ServiceRef, Tier, Unreachable, role_of


class Context:
    """What one service's plan may read: its own section and placement, and the rest through these methods."""

    def __init__(self, planner: "Planner", service: ServiceDefinition):
        self._planner = planner
        self.service = service
        self.deployment: Deployment = planner.deployment
        self.spec = planner.deployment.spec
        self.role = service.role
        self.reached: list[tuple[str, Optional[int]]] = []  # (role, internal port or None: its service port)

    @property
    def section(self):
        return self.spec.section(self.role)

    @property
    def placement(self) -> Placement:
        return self.spec.placement(self.role)

    def deployed(self, service: ServiceRef) -> bool:
        return self.spec.deployed(service)

    def reach(self, service: ServiceRef, port: Optional[int] = None, switch: Optional[str] = None) -> Endpoint:
        """Where this service's containers reach `service` (on an internal `port` of it, if given)."""
        role = role_of(service)
        if (role, port) not in self.reached:
            self.reached.append((role, port))
        here = self.placement.host
        try:
            return self.spec.endpoint(role, seen_from=here, port=port)
        except Unreachable as error:
            there = self.spec.placement(role)
            if switch:
                self._planner.problem(
                    switch,
                    f"port {port} of {role} is internal to host '{there.host}' and {self.role} runs on host "
                    f"'{here}'; place them together or set {switch} false",
                )
            else:
                self._planner.problem(error.key, f"{self.role} runs on host '{here}' and {error.message}")
            return Endpoint(there.alias or role, port or there.port or 0)

    def problem(self, key: str, message: str, file: Optional[str] = None) -> None:
        """A problem this plan found, reported with every other one (`file` defaults to the stack file)."""
        self._planner.problem(key, message, file)

    def credential(self, key: str) -> Variable:
        """The secret held by the variable that spec key `key` ("clickhouse.password_var") names."""
        role, field = key.split(".", 1)
        return self._planner.credential(key, getattr(self.spec.section(role), field))

    def monitored(self) -> list[tuple[ServiceDefinition, Monitoring]]:
        """How each deployed service is watched, in registry order (from the spec: needs no plan)."""
        return [(s, s.monitoring(self.spec)) for s in self.spec.deployed_services]

    def others(self) -> list[ServicePlan]:
        """The plans of every other deployed service, in registry order."""
        return [self._planner.plan_of(s) for s in self.spec.deployed_services if s.role != self.role]


class Planner:
    def __init__(self, deployment: Deployment):
        self.deployment = deployment
        self.plans: dict[str, ServicePlan] = {}
        self.problems: list[Problem] = []
        self.reached: dict[str, list[tuple[str, Optional[int]]]] = {}
        self._planning: list[str] = []

    def problem(self, key: str, message: str, file: Optional[str] = None) -> None:
        found = Problem(file or self.deployment.stack_file, key, message)
        if found not in self.problems:
            self.problems.append(found)

    def credential(self, key: str, name: str) -> Variable:
        deployment = self.deployment
        if why := deployment.unsupplied(name):
            self.problem(key, f"{name} is needed, {why}")
            return Variable(name, "", "not supplied", True)
        found = deployment.variable(name)
        tier = deployment.spec.tier
        if tier != Tier.dev and found.value in SEED_DEFAULT_CREDENTIALS:
            self.problem(name, f"the default password '{found.value}' is refused in {tier.value}", file=found.source)
        return Variable(name, found.value, found.source, True)

    def listed_variables(self, service: ServiceDefinition) -> tuple[Variable, ...]:
        """The layered variables a service asks for by name in `extra_env`."""
        found = []
        for name in self.deployment.spec.section(service).extra_env:
            if why := self.deployment.unsupplied(name):
                self.problem(f"{service.role}.extra_env", f"{name} is listed, {why}")
            else:
                found.append(self.deployment.variable(name))
        return tuple(found)

    def plan_of(self, service: ServiceDefinition) -> ServicePlan:
        if service.role in self.plans:
            return self.plans[service.role]
        if service.role in self._planning:
            raise RuntimeError(f"the plans of {' -> '.join(self._planning + [service.role])} need each other")
        self._planning.append(service.role)
        context = Context(self, service)
        self.plans[service.role] = self._complete(service, context, service.plan(context))
        self.reached[service.role] = context.reached
        self._planning.pop()
        return self.plans[service.role]

    def _complete(self, service: ServiceDefinition, context: Context, plan: ServicePlan) -> ServicePlan:
        """What every service has the same way, from its definition and section."""
        spec = self.deployment.spec
        section = spec.section(service) if service.spec else None
        return replace(
            plan,
            role=service.role,
            component=service.component,
            placement=context.placement,
            image=section.image if section and service.container else None,
            docker_name=service.container,
            memory_mb=section.memory_mb if section else None,
            monitoring=service.monitoring(spec),
            env=plan.env + (self.listed_variables(service) if section else ()),
            waits_for=tuple(role for role in plan.waits_for if spec.deployed(role)),
            reaches=tuple(dict.fromkeys(role for role, _ in context.reached)),
        )


def plan_services(deployment: Deployment) -> dict[str, ServicePlan]:
    """Every deployed service's plan, in registry (start) order; raises ConfigError naming every problem."""
    planner = Planner(deployment)
    deployed = deployment.spec.deployed_services
    for service in deployed:
        planner.plan_of(service)
    if planner.problems:
        raise ConfigError(planner.problems)
    callers: dict[str, set[tuple[str, int]]] = {service.role: set() for service in deployed}
    for consumer, reached in planner.reached.items():
        for role, port in reached:
            if role in callers:
                callers[role].add((consumer, port or planner.plans[role].placement.port))
    return {s.role: replace(planner.plans[s.role], callers=tuple(sorted(callers[s.role]))) for s in deployed}
