"""One stack's part of the catalog in TensorZero's schema: the models it serves, and what they need.

The seed-format models a stack serves become `[models.X]` / `[embedding_models.X]` with a provider block per
routing entry (the fallbacks appended: TensorZero's own fallback) and, for sampling defaults, a generated
`[functions.X]`. Native tables are cut down to the stack (native_tables.py). On the way: which of the
stack's Ollamas serves each Ollama model (pulled there), the `${NAME}` values filled in (catalog_values.py),
and every variable the rendered config reads with `env::`.
"""

from dataclasses import dataclass, field
from typing import Any, Optional
from urllib.parse import urlsplit

from components.catalog.files import ConfigFile, referenced_files
from components.catalog.format import ENV_PREFIX, SEED_URL_FIXES, Catalog, ModelEntry, is_ollama, provider_settings
from components.catalog.native_tables import MODEL_TABLES, subset
from components.catalog.routing import NotRoutable, check_openai_url, route
from components.catalog.values import CatalogValues
from components.core.errors import ConfigError, Problem
from components.core.names import OLLAMA_ALIAS
from components.core.types import is_ollama_model


@dataclass(frozen=True)
class ProviderBlock:
    name: str
    fields: dict[str, str]


@dataclass(frozen=True)
class RoutedModel:
    name: str
    providers: tuple[ProviderBlock, ...]

    @property
    def routing(self) -> list[str]:
        return [block.name for block in self.providers]


@dataclass(frozen=True)
class SamplingFunction:
    name: str
    model: str
    params: dict[str, Any]


@dataclass(frozen=True)
class KeyUse:
    """A variable the rendered config reads with `env::`."""

    variable: str
    table_key: str  # "models.claude_sonnet": the catalog entry that needs it
    provider: str


@dataclass(frozen=True)
class Translation:
    models: tuple[RoutedModel, ...]
    embedding_models: tuple[RoutedModel, ...]
    functions: tuple[SamplingFunction, ...]
    native: dict[str, Any]  # the native tables as this stack renders them
    key_uses: tuple[KeyUse, ...]
    ollama_pulls: dict[str, tuple[str, ...]]  # hostname of one of the stack's Ollamas -> models to pull into it
    notices: tuple[str, ...] = field(default=())
    files: tuple[ConfigFile, ...] = ()  # what the native tables name by path, uploaded beside tensorzero.toml

    @property
    def variables(self) -> list[str]:
        return sorted({use.variable for use in self.key_uses})


def _seed_url(provider: str, base_url: Optional[str], notices: list[str]) -> Optional[str]:
    if base_url in SEED_URL_FIXES:
        notices.append(
            f"providers.{provider}.base_url: {base_url} is the seed's path; using {SEED_URL_FIXES[base_url]}"
        )
        return SEED_URL_FIXES[base_url]
    return base_url


def local_models(catalog: Catalog, stack_ollamas: dict[str, str]) -> set[str]:
    """Models every provider of which (fallbacks included) is one of the stack's Ollamas, named by hostname."""

    def local(provider: str) -> bool:
        base_url = provider_settings(catalog, provider)[2]
        if is_ollama(catalog, provider) and base_url is None:
            return OLLAMA_ALIAS in stack_ollamas
        return bool(base_url) and urlsplit(base_url).hostname in stack_ollamas

    found = {
        name
        for name, entry in catalog.models.items()
        if all(local(link.provider) for link in [entry] + [catalog.models[f] for f in entry.fallbacks])
    }
    for table in MODEL_TABLES:
        for name, body in catalog.native.get(table, {}).items():
            blocks = list((body.get("providers") or {}).values()) if isinstance(body, dict) else []
            urls = [block.get("api_base") if isinstance(block, dict) else None for block in blocks]
            if blocks and all(isinstance(url, str) and urlsplit(url).hostname in stack_ollamas for url in urls):
                found.add(name)
    return found


def translate(
    catalog: Catalog, selected: list[str], stack_ollamas: dict[str, str], values: CatalogValues
) -> Translation:
    """The `selected` models (seed format or native) of `catalog` for one stack. `stack_ollamas`: hostname ->
    URL the gateway reaches each of the stack's Ollamas at."""
    notices: list[str] = []
    problems: list[Problem] = []
    pulls: dict[str, list[str]] = {}
    key_uses: list[KeyUse] = []

    def block(model_name: str, entry: ModelEntry, taken: set[str]) -> ProviderBlock:
        provider_type, api_key, base_url = provider_settings(catalog, entry.provider)
        where = catalog.sources.get(f"providers.{entry.provider}", catalog.sources[f"models.{model_name}"])
        url_key = f"providers.{entry.provider}.base_url"
        model = values.fill(entry.model, catalog.sources[f"models.{model_name}"], f"models.{model_name}.model")
        fields = {"type": provider_type, "model_name": model}
        api_base = _seed_url(entry.provider, base_url, notices)
        api_base = api_base and values.fill(api_base, where, url_key)
        try:
            # A provider of any type whose URL names one of the stack's Ollamas is that Ollama (PMOVES writes
            # every provider `type = "openai"`): pulled there, reached by the endpoint rule (through its guard).
            if is_ollama(catalog, entry.provider) or urlsplit(api_base or "").hostname in stack_ollamas:
                if "${" in entry.model and not is_ollama_model(model):
                    key = f"models.{model_name}.model"
                    problems.append(
                        Problem(catalog.sources[f"models.{model_name}"], key, f"{model!r} is not an Ollama model name")
                    )
                served = route(api_base, stack_ollamas)
                api_base = served.api_base
                if served.alias and model not in pulls.setdefault(served.alias, []):
                    pulls[served.alias].append(model)
            elif api_base and "${" in (base_url or ""):  # checked with its values in (catalog.py checks the rest)
                check_openai_url(api_base)
        except NotRoutable as why:
            problems.append(Problem(where, url_key, str(why)))
        if api_base:
            fields["api_base"] = api_base
        fields["api_key_location"] = api_key
        if api_key.startswith(ENV_PREFIX):
            key_uses.append(KeyUse(api_key.removeprefix(ENV_PREFIX), f"models.{model_name}", entry.provider))
        # Two routing entries on one provider (a fallback to a sibling model) need distinct names.
        name, count = entry.provider, 1
        while name in taken:
            count += 1
            name = f"{entry.provider}_{count}"
        taken.add(name)
        return ProviderBlock(name, fields)

    chat, embedding, functions = [], [], []
    for name in (name for name in selected if name in catalog.models):
        entry = catalog.models[name]
        taken: set[str] = set()
        chain = [entry] + [catalog.models[fallback] for fallback in entry.fallbacks]
        routed = RoutedModel(name, tuple(block(name, link, taken) for link in chain))
        (chat if entry.type == "chat" else embedding).append(routed)
        params = {
            k: v for k, v in (("temperature", entry.temperature), ("max_tokens", entry.max_tokens)) if v is not None
        }
        if params:
            functions.append(SamplingFunction(name, name, params))

    native = subset(
        catalog.native,
        catalog.sources,
        selected={name for name in selected if name not in catalog.models},
        served=set(selected),
        stack_ollamas=stack_ollamas,
    )
    tables = {
        table: {
            key: values.fill_all(body, catalog.sources[f"{table}.{key}"], f"{table}.{key}")
            for key, body in rows.items()
        }
        for table, rows in native.tables.items()
    }
    for alias, models in native.pulls.items():
        pulls.setdefault(alias, []).extend(m for m in models if m not in pulls[alias])
    problems += native.problems + values.problems
    if problems:
        raise ConfigError(problems)
    for value, path in _strings(tables, ()):
        if value.startswith(ENV_PREFIX):
            inside = path[3] if path[2:3] == ("providers",) else ".".join(path[2:])
            key_uses.append(KeyUse(value.removeprefix(ENV_PREFIX), ".".join(path[:2]), inside))
    return Translation(
        models=tuple(chat),
        embedding_models=tuple(embedding),
        functions=tuple(functions),
        native=tables,
        key_uses=tuple(key_uses),
        ollama_pulls={alias: tuple(models) for alias, models in pulls.items()},
        notices=tuple(notices + native.notices),
        files=referenced_files(tables, catalog.sources, catalog.project_dir),
    )


def _strings(value: Any, path: tuple[str, ...]):
    if isinstance(value, str):
        yield value, path
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, path + (key,))
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item, path)
