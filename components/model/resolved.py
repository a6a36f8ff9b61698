"""One stack, resolved: its spec, catalog, translation and variables, as data; nothing here plans.

The planner (stack/planner.py) computes every service's plan from this, and stack/deployment.py keeps the
two together for the targets and the operator's commands.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from components.catalog.format import Catalog
from components.catalog.translation import Translation
from components.core.envfiles import Variable
from components.core.names import stack_file
from components.model.environment import EnvironmentBase


def why_unsupplied(name: str, variables: dict[str, Variable], project_dir: Path, env_dir: str) -> Optional[str]:
    """Why variable `name` has no usable value in `variables` (env layers, stack secrets), or None."""
    found = variables.get(name)
    if found is not None:
        if found.value != "":
            return None
        later = f", which wins over line {', '.join(map(str, found.earlier_lines))}" if found.earlier_lines else ""
        return f"but it is empty in {found.source}{later}"
    templates = sorted(
        path.name for path in (project_dir / env_dir).glob("*.example") if not path.with_suffix("").exists()
    )
    hint = f" (start from {', '.join(templates)}: `make` copies each to its name without .example)" if templates else ""
    return f"but no env layer in {env_dir}/ and no stack secret supplies it{hint}"


@dataclass(frozen=True)
class ResolvedStack:
    """Everything one stack deploys, resolved and checked, before any plan."""

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

    def emptied_note(self, names: set[str]) -> str:
        """Of `names`, each variable a later, empty line of its env layer emptied (PMOVES's env files repeat
        variables): the line that wins, never a value; "" when none."""
        emptied = [v for v in self.variables.values() if v.name in names and v.value == "" and v.earlier_lines]
        return "".join(
            f" ({v.name} is empty on {v.source}, which wins over line {', '.join(map(str, v.earlier_lines))} of that "
            "layer: remove the empty line)"
            for v in emptied
        )
