"""One stack, resolved and planned: what the targets and the operator's commands read."""

from dataclasses import dataclass
from functools import cached_property

from components.core.errors import Problem
from components.core.plans import ServicePlan
from components.core.render import RenderedFile
from components.model.resolved import ResolvedStack
from components.stack.planner import plan_services


@dataclass(frozen=True)
class Deployment(ResolvedStack):
    """A resolved stack with every service's plan, computed once by the planner."""

    @property
    def notices(self) -> list[str]:
        """What `validate` tells the operator: loading's, the catalog translation's, then each plan's."""
        return [
            *self.load_notices,
            *self.translation.notices,
            *(notice for plan in self.plans.values() for notice in plan.notices),
        ]

    @cached_property
    def _planned(self) -> tuple[dict[str, ServicePlan], tuple[Problem, ...]]:
        return plan_services(self)

    @property
    def plans(self) -> dict[str, ServicePlan]:
        """Every deployed service's plan, in registry (start) order; raises ConfigError naming every problem."""
        return self._planned[0]

    @property
    def missing(self) -> tuple[Problem, ...]:
        """With `allow_missing`: each credential nobody supplies yet, as the problem `validate` reports."""
        return self._planned[1]


def rendered_files(deployment: Deployment) -> list[RenderedFile]:
    """Every file the stack mounts into a container, one-shots included (the same on every target)."""
    return [file for plan in deployment.plans.values() for file in plan.all_files()]
