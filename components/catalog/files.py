"""Files the native tables name by path (a function's `system.minijinja`, a tool's JSON schema), uploaded beside
tensorzero.toml where TensorZero looks for them.

TensorZero reads such a path relative to the directory of its config file; the catalog names it relative to
the catalog file that names it, as PMOVES's config does. So `functions/orchestrator/system.minijinja` in
`catalog/functions.toml` is `catalog/functions/orchestrator/system.minijinja` in the project and
`/app/config/functions/orchestrator/system.minijinja` in the gateway. Only the files of the tables a stack
keeps are uploaded; a path that leaves the catalog's directory, a missing file, a JSON schema that is not
JSON, or one path naming two different files is a problem naming the catalog file and key.
"""

import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from components.core.errors import ConfigError, Problem, read_text

# Keys whose string value is a file path, wherever they appear in a function, variant, tool or evaluation.
PATH_KEYS = frozenset(
    {
        "system_template",
        "user_template",
        "assistant_template",
        "system_schema",
        "user_schema",
        "assistant_schema",
        "output_schema",
        "parameters",  # a tool's JSON schema
        "system_instructions",  # dicl and judge variants
    }
)
# Tables each of whose entries names its file under `path` (`[functions.f.schemas.<name>] path = ...`).
PATH_TABLES = frozenset({"schemas", "templates"})
# Tables whose every string value is a path (`input_wrappers = { user = "..." }`).
PATH_MAPS = frozenset({"input_wrappers"})


@dataclass(frozen=True)
class ConfigFile:
    path: str  # relative to tensorzero.toml, as the table names it
    content: str
    source: str  # the project file
    key: str  # the catalog key naming it

    @property
    def kind(self) -> str:
        return "tensorzero-schema" if self.path.endswith(".json") else "tensorzero-template"


def named_paths(value: Any, key: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], str]]:
    """(key, path) of every file path inside a native table."""
    found = []
    if isinstance(value, dict):
        for name, item in value.items():
            here = key + (name,)
            parent = key[-2] if len(key) >= 2 else None
            if isinstance(item, str) and (
                name in PATH_KEYS or (name == "path" and parent in PATH_TABLES) or (key and key[-1] in PATH_MAPS)
            ):
                found.append((here, item))
            else:
                found += named_paths(item, here)
    return found


def referenced_files(tables: dict[str, Any], sources: dict[str, str], project_dir: Path) -> tuple[ConfigFile, ...]:
    """Every file the kept native `tables` name; raises ConfigError naming each that cannot be uploaded."""
    files: dict[str, ConfigFile] = {}
    problems = []
    for table, rows in tables.items():
        for row, body in rows.items():
            source = sources[f"{table}.{row}"]
            for key, path in named_paths(body, (table, row)):
                where = ".".join(key)
                relative = PurePosixPath(path)
                if relative.is_absolute() or ".." in relative.parts or not relative.parts:
                    problems.append(
                        Problem(source, where, f"'{path}' must be a path inside the catalog file's directory")
                    )
                    continue
                shown = str(PurePosixPath(source).parent / relative)
                try:
                    content = read_text(project_dir / shown, shown, "file")
                except ConfigError as error:
                    problems += [Problem(source, where, f"{shown}: {p.message}") for p in error.problems]
                    continue
                found = ConfigFile(str(relative), content, shown, where)
                if found.kind == "tensorzero-schema":
                    try:
                        json.loads(content)
                    except json.JSONDecodeError as error:
                        problems.append(Problem(source, where, f"{shown} is not JSON: {error}"))
                        continue
                other = files.setdefault(found.path, found)
                if other.content != content:
                    problems.append(
                        Problem(source, where, f"'{path}' is {shown} here but {other.source} for {other.key}")
                    )
    if problems:
        raise ConfigError(problems)
    return tuple(files.values())
