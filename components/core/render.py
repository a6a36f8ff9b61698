"""One Jinja environment for every template; each rendered file is parsed back before it leaves."""

import hashlib
import json
import math
import re
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import tomli
import yaml

from components.core.names import CACHE_DIR, PROJECT_DIR

TEMPLATES = PROJECT_DIR / "templates"
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def toml_key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else json.dumps(key)


def toml_value(value: Any) -> str:
    """A TOML literal; JSON's string escapes are all valid TOML basic-string escapes."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value} has no TOML form here")
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"{type(value).__name__} has no TOML form")


@dataclass(frozen=True)
class TomlTable:
    header: str
    items: tuple[tuple[str, Any], ...]


def toml_tables(document: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[TomlTable]:
    """Flatten nested tables into `[a.b.c]` sections so a template can lay them out."""
    tables = []
    scalars = tuple((toml_key(k), v) for k, v in document.items() if not isinstance(v, dict))
    if prefix and (scalars or not any(isinstance(v, dict) for v in document.values())):
        tables.append(TomlTable(".".join(toml_key(part) for part in prefix), scalars))
    for key, value in document.items():
        if isinstance(value, dict):
            tables.extend(toml_tables(value, prefix + (key,)))
    return tables


_OPTIONS = dict(keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True, autoescape=False)


class _Compiled(jinja2.FileSystemBytecodeCache):
    """Each template's compiled code, kept between commands (compiling is most of a first render's time). Jinja
    uses it only for the same source (a checksum) under the same Jinja and Python; the directory is named after
    the options the code was compiled with."""

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        try:
            super().load_bytecode(bucket)
        except OSError:
            pass  # no cache where it should be: compiled afresh

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        try:
            Path(self.directory).mkdir(parents=True, exist_ok=True)
            super().dump_bytecode(bucket)
        except OSError:
            pass  # a read-only checkout: compiled again next time


_environment = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    undefined=jinja2.StrictUndefined,
    bytecode_cache=_Compiled(
        str(
            PROJECT_DIR
            / CACHE_DIR
            / f"jinja-{hashlib.sha256(repr(sorted(_OPTIONS.items())).encode()).hexdigest()[:16]}"
        )
    ),
    **_OPTIONS,
)
_environment.filters["toml"] = toml_value
_environment.filters["toml_key"] = toml_key


def _yaml(text: str) -> object:
    # libyaml's parser when PyYAML has it: the rendered YAML is parsed back on every render.
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def _read_by_its_program(text: str) -> None:
    """No Python parser reads these; tests prove them with the real program (chdb, nginx -t, Alloy's syntax)."""


_PARSERS = {
    ".toml": tomli.loads,
    ".xml": ElementTree.fromstring,
    ".yml": _yaml,
    ".yaml": _yaml,
    ".json": json.loads,
    ".sql": _read_by_its_program,
    ".conf": _read_by_its_program,
    ".lua": _read_by_its_program,
    ".alloy": _read_by_its_program,
}


def render(template: str, **context: Any) -> str:
    """Render `templates/<template>` and prove the result parses as its file type."""
    text = _environment.get_template(template).render(**context)
    suffix = Path(template.removesuffix(".j2")).suffix
    _PARSERS[suffix](text)
    return text


@dataclass(frozen=True)
class RenderedFile:
    """A file the stack mounts into a container, and what reads it."""

    path: str  # relative to the render output directory
    kind: str  # what reads it; see README "Rendered files"
    container: str  # service role
    mount: str  # path inside the container
    content: str

    def manifest_entry(self) -> dict[str, str]:
        return {"path": self.path, "kind": self.kind, "container": self.container, "mount": self.mount}
