"""The model catalog: every catalog file of the project, read and checked (translation.py renders a stack's part).

Authors write what the seed documents:

    [providers.anthropic]
    api_key = "env::ANTHROPIC_API_KEY"

    [models.claude_sonnet]
    provider = "anthropic"
    model = "claude-sonnet-4-5"
    type = "chat"

and translation.py turns it into `[models.X] routing = [...]` with typed provider
blocks, `[embedding_models.X]`, and a generated `[functions.X]` that carries the
seed's model-level `temperature`/`max_tokens` (the real schema has no
model-level sampling parameters). Native TensorZero tables (functions, metrics,
tools, and `[models.X]` written with `routing`) pass through, cut down to what
each stack serves (native.py). The checks here hold for every stack; what
depends on the stack (which Ollama a hostname names, `${NAME}` values, which
variants remain) is checked as a stack's part is rendered.
"""

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, Optional

import tomli
from pydantic import Field, ValidationError, field_validator

from components.catalog.native_tables import MODEL_TABLES, unknown_names
from components.catalog.routing import NotRoutable, check_ollama_url, check_openai_url
from components.core.errors import ConfigError, Problem, did_you_mean, problems_from_validation, read_text
from components.core.render import toml_value
from components.core.types import HttpURL, Identifier, StrictModel, UpstreamModelName, is_identifier, is_ollama_model

# Callers, the edge's name maps and metric labels, and SQL literals all carry a catalog key as it is.
KEY_RULE = "a catalog key is an identifier: letters, digits and _, not starting with a digit"
NATIVE_TABLES = ("functions", "metrics", "tools", "evaluations", "embedding_models")
AUTHORING_TABLES = ("providers", "models")


@dataclass(frozen=True)
class BuiltinProvider:
    type: str  # TensorZero provider type
    api_key: str  # "env::VAR" or "none"
    base_url: Optional[str] = None


BUILTIN_PROVIDERS = {
    "openai": BuiltinProvider("openai", "env::OPENAI_API_KEY"),
    "anthropic": BuiltinProvider("anthropic", "env::ANTHROPIC_API_KEY"),
    "venice": BuiltinProvider("openai", "env::VENICE_API_KEY", "https://api.venice.ai/api/v1"),
    "ollama": BuiltinProvider("openai", "none"),
    "openrouter": BuiltinProvider("openrouter", "env::OPENROUTER_API_KEY"),
    "together": BuiltinProvider("together", "env::TOGETHER_API_KEY"),
}
# Provider types whose blocks accept `api_base`, and that serve embeddings.
OPENAI_COMPATIBLE = "openai"
U32_MAX = 2**32 - 1  # TensorZero reads max_tokens as a u32
# An authoring-only type: an Ollama, rendered as OpenAI-compatible at its `/v1` (ollama_routing.py).
OLLAMA = "ollama"
ENV_PREFIX = "env::"  # how the catalog names the variable holding a provider's key, as TensorZero does
API_KEY_FORM = re.compile(r"env::[A-Za-z_][A-Za-z0-9_]*|none")
# URLs the seed documents that the real services do not serve.
SEED_URL_FIXES = {"https://api.venice.ai/v1": "https://api.venice.ai/api/v1"}


class ProviderEntry(StrictModel):
    type: Optional[Literal["openai", "anthropic", "openrouter", "together", "ollama"]] = Field(
        None,
        description="TensorZero provider type; built-in names know theirs, others are OpenAI-compatible. "
        '"ollama": an Ollama, the stack\'s own when `base_url` names one of its hostnames.',
    )
    api_key: Optional[str] = Field(
        None,
        json_schema_extra={"pattern": API_KEY_FORM.pattern},
        description='"env::VAR" naming the variable that holds the key, or "none".',
    )
    base_url: Optional[HttpURL] = Field(None, description="API base URL (http or https, no credentials in it).")

    @field_validator("api_key")
    @classmethod
    def _a_reference(cls, value: Optional[str]) -> Optional[str]:
        if value is None or API_KEY_FORM.fullmatch(value):
            return value
        if value.startswith(ENV_PREFIX):
            name = value.removeprefix(ENV_PREFIX)
            raise ValueError(f"{name!r} is not a variable's name (letters, digits and _, not starting with a digit)")
        # Never echoed: it is most likely the key itself.
        raise ValueError(
            "holds a value, not a reference: put the key in an env layer (NAME=...) or a stack secret and write "
            'api_key = "env::NAME" (TensorZero\'s api_key_location), or "none" for a provider that takes no key'
        )


class ModelEntry(StrictModel):
    provider: Identifier = Field(description="Key under [providers] or a built-in provider name.")
    model: UpstreamModelName = Field(description="The provider's own model name.")
    type: Literal["chat", "embedding"] = Field("chat", description="chat or embedding.")
    temperature: Optional[float] = Field(None, ge=0, le=2, description="Default sampling temperature.")
    max_tokens: Optional[int] = Field(None, ge=1, le=U32_MAX, description="Default output token limit.")
    fallbacks: list[Identifier] = Field(
        default_factory=list, description="Catalog models tried in order when this one fails."
    )


@dataclass(frozen=True)
class Catalog:
    providers: dict[str, ProviderEntry]
    models: dict[str, ModelEntry]
    native: dict[str, Any]  # TensorZero tables passed through unchanged
    sources: dict[str, str]  # "models.X" / "providers.X" -> file that last set it
    project_dir: Path = Path(".")  # what `sources` are relative to (files named by path live beside them)


def _merge(base: dict, update: dict) -> dict:
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_catalog(project_dir: Path, files: list[str]) -> Catalog:
    merged: dict[str, Any] = {}
    sources: dict[str, str] = {}
    problems: list[Problem] = []
    for name in files:
        try:
            document = tomli.loads(read_text(project_dir / name, name, "catalog file"))
        except ConfigError as error:
            problems.extend(error.problems)
            continue
        except tomli.TOMLDecodeError as error:
            problems.append(Problem(name, "", f"not valid TOML: {error}"))
            continue
        for table, entries in document.items():
            if table == "gateway":
                problems.append(
                    Problem(name, table, "the [gateway] table is generated from the stack spec; set it there")
                )
            elif table not in AUTHORING_TABLES + NATIVE_TABLES:
                problems.append(
                    Problem(
                        name, table, f"unknown table; expected one of {', '.join(AUTHORING_TABLES + NATIVE_TABLES)}"
                    )
                )
            elif not isinstance(entries, dict):
                problems.append(Problem(name, table, "must be a table"))
            else:
                for key, entry in entries.items():
                    sources[f"{table}.{key}"] = name
                    if not is_identifier(key):
                        problems.append(Problem(name, table, f"{key!r}: {KEY_RULE}"))
                    problems.extend(_unwritable(name, (table, key), entry))
                merged[table] = _merge(merged.get(table, {}), entries)
    if problems:
        raise ConfigError(problems)
    return replace(_parse(merged, sources), project_dir=project_dir)


def _unwritable(file: str, path: tuple[str, ...], value: Any) -> list[Problem]:
    """Entries must be tables, and every value must have a TOML form the renderer can write back."""
    if len(path) == 2 and not isinstance(value, dict):
        return [Problem(file, ".".join(path), "must be a table")]
    if isinstance(value, dict):
        return [problem for key, item in value.items() for problem in _unwritable(file, path + (key,), item)]
    try:
        toml_value(value)
    except (ValueError, TypeError) as error:
        return [Problem(file, ".".join(path), f"unsupported value: {error}")]
    return []


def _parse(merged: dict, sources: dict[str, str]) -> Catalog:
    problems: list[Problem] = []
    native = {table: merged[table] for table in NATIVE_TABLES if table in merged}

    def parse_entries(table: str, model_type):
        parsed = {}
        for key, raw in merged.get(table, {}).items():
            if table == "models" and "routing" in raw:
                if raw.keys() & ModelEntry.model_fields.keys():
                    problems.append(
                        Problem(
                            sources[f"models.{key}"],
                            f"models.{key}",
                            "defined twice: in the seed format and natively (with routing)",
                        )
                    )
                else:
                    native.setdefault("models", {})[key] = raw  # native TensorZero model: pass through
                continue
            try:
                parsed[key] = model_type.model_validate(raw)
            except ValidationError as error:
                problems.extend(
                    problems_from_validation(error, sources[f"{table}.{key}"], f"{table}.{key}", model_type)
                )
        return parsed

    providers = parse_entries("providers", ProviderEntry)
    models = parse_entries("models", ModelEntry)
    if problems:
        raise ConfigError(problems)
    catalog = Catalog(providers, models, native, sources)
    _check_references(catalog)
    return catalog


def is_ollama(catalog: Catalog, name: str) -> bool:
    entry = catalog.providers.get(name, ProviderEntry())
    return entry.type == OLLAMA or (entry.type is None and name == OLLAMA)


def provider_settings(catalog: Catalog, name: str) -> tuple[str, str, Optional[str]]:
    """(type, api_key, base_url) of a provider as rendered, built-in defaults filled in."""
    entry = catalog.providers.get(name, ProviderEntry())
    builtin = BUILTIN_PROVIDERS.get(OLLAMA if is_ollama(catalog, name) else name)
    return (
        builtin.type if entry.type in (None, OLLAMA) and builtin else (entry.type or OPENAI_COMPATIBLE),
        entry.api_key or (builtin.api_key if builtin else ""),
        entry.base_url or (builtin.base_url if builtin else None),
    )


def native_models(catalog: Catalog) -> set[str]:
    return {name for table in MODEL_TABLES for name in catalog.native.get(table, {})}


def _check_references(catalog: Catalog) -> None:
    problems = unknown_names(catalog.native, catalog.sources, set(catalog.models) | native_models(catalog))
    for name, entry in catalog.providers.items():
        where = catalog.sources[f"providers.{name}"]
        if entry.base_url and "${" not in entry.base_url:
            # The hostname of an Ollama is resolved per stack (translation.py), which checks a URL holding
            # per-stack values once they are in; any other URL is checked here.
            check = check_ollama_url if is_ollama(catalog, name) else check_openai_url
            try:
                check(entry.base_url)
            except NotRoutable as why:
                problems.append(Problem(where, f"providers.{name}.base_url", str(why)))
        if name not in BUILTIN_PROVIDERS and not is_ollama(catalog, name):
            if entry.base_url is None:
                problems.append(
                    Problem(where, f"providers.{name}.base_url", "required for a provider that is not built in")
                )
            if entry.api_key is None:
                problems.append(Problem(where, f"providers.{name}.api_key", 'required: "env::VAR" or "none"'))
        provider_type = provider_settings(catalog, name)[0]
        if entry.base_url and provider_type != OPENAI_COMPATIBLE:
            problems.append(Problem(where, f"providers.{name}.base_url", f"type '{provider_type}' takes no base_url"))
    for name, model in catalog.models.items():
        where = catalog.sources[f"models.{name}"]
        if model.provider not in catalog.providers and model.provider not in BUILTIN_PROVIDERS:
            problems.append(
                Problem(
                    where,
                    f"models.{name}.provider",
                    f"'{model.provider}' is neither declared under [providers] nor built in "
                    f"({', '.join(sorted(BUILTIN_PROVIDERS))})"
                    + did_you_mean(model.provider, [*catalog.providers, *BUILTIN_PROVIDERS]),
                )
            )
            continue
        # With a `${NAME}` in it, translation.py checks it once filled in.
        if is_ollama(catalog, model.provider) and "${" not in model.model and not is_ollama_model(model.model):
            problems.append(
                Problem(where, f"models.{name}.model", f"{model.model!r} is not an Ollama model name (name[:tag])")
            )
        if model.type == "embedding":
            if model.temperature is not None or model.max_tokens is not None:
                problems.append(
                    Problem(where, f"models.{name}", "temperature and max_tokens apply to chat models only")
                )
            if provider_settings(catalog, model.provider)[0] != OPENAI_COMPATIBLE:
                problems.append(
                    Problem(
                        where,
                        f"models.{name}.provider",
                        f"'{model.provider}' serves no embeddings here; use an OpenAI-compatible provider",
                    )
                )
        for fallback in model.fallbacks:
            target = catalog.models.get(fallback)
            if target is None:
                problems.append(
                    Problem(
                        where,
                        f"models.{name}.fallbacks",
                        f"'{fallback}' is not a model of the catalog" + did_you_mean(fallback, catalog.models),
                    )
                )
            elif fallback == name:
                problems.append(Problem(where, f"models.{name}.fallbacks", "a model cannot fall back to itself"))
            elif target.type != model.type:
                problems.append(
                    Problem(
                        where, f"models.{name}.fallbacks", f"'{fallback}' is of type {target.type}, not {model.type}"
                    )
                )
        if model.type == "chat" and (model.temperature is not None or model.max_tokens is not None):
            if name in catalog.native.get("functions", {}):
                problems.append(
                    Problem(
                        where,
                        f"models.{name}",
                        f"its sampling defaults become [functions.{name}], which the catalog already defines",
                    )
                )
    for name in catalog.models:
        if name in catalog.native.get("embedding_models", {}):
            problems.append(
                Problem(
                    catalog.sources[f"models.{name}"],
                    f"models.{name}",
                    "defined twice: in the seed format and natively",
                )
            )
    if problems:
        raise ConfigError(problems)
