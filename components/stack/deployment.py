"""One stack, resolved: its spec, catalog and variables; its service plans are computed from these."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    from components.catalog.format import Catalog
    from components.catalog.translation import Translation
    from components.core.envfiles import Variable
    from components.core.errors import Problem
    from components.core.plans import ServicePlan
    from components.model.environment import EnvironmentBase


def stack_file(stack: str) -> str:
    return f"stacks/Pulumi.{stack}.yaml"


def why_unsupplied(name: str, variables: dict[str, Variable], project_dir: Path, env_dir: str) -> Optional[str]:
    """Why variable `name` has no usable value in `variables` (env layers, stack secrets), or None."""
    found = variables.get(name)
    if found is not None:
        return f"but it is empty in {found.source}" if found.value == "" else None
    templates = sorted(
        path.name for path in (project_dir / env_dir).glob("*.example") if not path.with_suffix("").exists()
    )
    hint = f" (start from {', '.join(templates)}: `make` copies each to its name without .example)" if templates else ""
    return f"but no env layer in {env_dir}/ and no stack secret supplies it{hint}"


@dataclass(frozen=True)
class Deployment:
    """Everything one stack deploys, resolved and checked."""

    stack: str
    project_dir: Path
    spec: EnvironmentBase
    catalog: Catalog
    translation: Translation
    variables: dict[str, Variable]
    # What loading found worth saying beside "valid" (an env directory outside the project).
    load_notices: tuple[str, ...] = ()
    allow_missing: bool = False  # credentials nobody supplies yet are listed in `missing`, not refused

    @property
    def stack_file(self) -> str:
        return stack_file(self.stack)

    def variable(self, name: str) -> Variable:
        return self.variables[name]

    def unsupplied(self, name: str) -> Optional[str]:
        """Why `name` has no usable value, or None when it has one."""
        return why_unsupplied(name, self.variables, self.project_dir, self.spec.env_files.dir)

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
        from components.stack.planner import plan_services

        return plan_services(self)

    @property
    def plans(self) -> dict[str, ServicePlan]:
        """Every deployed service's plan, in registry (start) order; raises ConfigError naming every problem."""
        return self._planned[0]

    @property
    def missing(self) -> tuple[Problem, ...]:
        """With `allow_missing`: each credential nobody supplies yet, as the problem `validate` reports."""
        return self._planned[1]
