"""The house: each folder of components/ is a layer, and every import points down.

An AST walk reads every import of the package, those inside functions and under TYPE_CHECKING included
(an import deferred to dodge a circle is still a circle), and holds the layering docs/architecture.md draws.
"""

import ast
from pathlib import Path

import pytest

from components.core.names import PROJECT_DIR

PACKAGE = PROJECT_DIR / "components"
# Bottom to top: a module imports only from its own layer or the ones before it.
LAYERS = ("core", "catalog", "model", "services", "stack", "targets", "operate")
APART = "backupctl"  # its own program, run inside the backup container: it imports nothing of the package
MAX_MODULE_LINES = 400
MAX_TOP_ENTRIES = 10


def module_name(path: Path) -> str:
    parts = path.relative_to(PROJECT_DIR).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imported(path: Path, known: dict[str, Path]) -> set[str]:
    """The package's modules `path` imports, wherever the import statement stands."""
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            names = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for name in names:
            # `from components.services import gateway` imports the module components.services.gateway.
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name.startswith("components") and name != here:
                found.add(name)
    return found


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imported(path, known) for name, path in known.items()}


def layer(module: str) -> str:
    """The folder of components/ a module stands in ("" for components/__init__ and __main__)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in (*LAYERS, APART) else ""


def test_every_module_stands_in_a_layer():
    loose = [name for name in modules() if not layer(name) and name not in ("components", "components.__main__")]
    assert not loose, f"modules outside the layers {LAYERS}: {loose}"


def test_imports_point_down():
    rank = {name: index for index, name in enumerate(LAYERS)}
    upward = [
        f"{module} ({layer(module)}) imports {target} ({layer(target)})"
        for module, targets in graph().items()
        if layer(module) in rank
        for target in sorted(targets)
        if layer(target) == APART or rank.get(layer(target), -1) > rank[layer(module)]
    ]
    assert not upward, "\n".join(upward)


def test_backupctl_imports_nothing_of_the_package():
    inward = {module: targets for module, targets in graph().items() if layer(module) == APART}
    assert all(layer(target) == APART for targets in inward.values() for target in targets), inward


def cycle(edges: dict[str, set[str]]):
    """One circle of `edges` as a list of modules, or None."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(edges):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_circle():
    assert cycle(graph()) is None, " -> ".join(cycle(graph()))


def test_the_circle_check_finds_a_circle():
    # A check that checked nothing fails: the same walk finds a circle planted in a copy of the graph.
    edges = graph()
    edges["components.core.errors"] = edges["components.core.errors"] | {"components.operate.cli"}
    assert cycle(edges) is not None


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_modules_read_in_one_sitting(path):
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_MODULE_LINES, f"{path.relative_to(PROJECT_DIR)}: {lines} lines (at most {MAX_MODULE_LINES})"


def test_the_top_of_components_names_the_layers():
    entries = sorted(p.name for p in PACKAGE.iterdir() if p.name != "__pycache__")
    assert len(entries) <= MAX_TOP_ENTRIES, entries
    assert {*LAYERS, APART} <= set(entries)
