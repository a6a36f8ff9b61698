"""The model names the edge takes: every name that reaches each chat and embedding model of the rendered
tensorzero.toml, and which bare names are ambiguous. The edge's settings carry them to its Lua module."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

from components.core.names import CHAT_MODEL_PREFIX, EMBEDDING_MODEL_PREFIX, FUNCTION_PREFIX

if TYPE_CHECKING:
    from components.model.resolved import ResolvedStack


@dataclass(frozen=True)
class ServedModel:
    key: str  # catalog key: the name TensorZero knows
    upstream_name: Optional[str]  # the primary provider's own model name
    target: str  # the full name a bare name becomes
    accepted: tuple[str, ...]  # full names the gateway accepts for it as they are


def served_models(deployment: ResolvedStack) -> dict[str, list[ServedModel]]:
    """Chat and embedding models of the rendered tensorzero.toml, with every name that reaches them."""
    translation = deployment.translation
    native = translation.native
    sampled = {f.model for f in translation.functions if f.name == f.model}

    def chat(key: str, upstream: Optional[str]) -> ServedModel:
        # A model with catalog sampling defaults is called through its generated function, so a bare
        # name gets the temperature and max_tokens the catalog promises.
        names = (CHAT_MODEL_PREFIX + key, *((FUNCTION_PREFIX + key,) if key in sampled else ()))
        return ServedModel(key, upstream, names[-1], names)

    def embedding(key: str, upstream: Optional[str]) -> ServedModel:
        return ServedModel(key, upstream, EMBEDDING_MODEL_PREFIX + key, (EMBEDDING_MODEL_PREFIX + key, key))

    def primary(table: dict) -> Optional[str]:
        routing = table.get("routing") or []
        return (table.get("providers") or {}).get(routing[0], {}).get("model_name") if routing else None

    return {
        "chat": [chat(m.name, m.providers[0].fields.get("model_name")) for m in translation.models]
        + [chat(key, primary(table)) for key, table in native.get("models", {}).items()],
        "embedding": [embedding(m.name, m.providers[0].fields.get("model_name")) for m in translation.embedding_models]
        + [embedding(key, primary(table)) for key, table in native.get("embedding_models", {}).items()],
    }


def name_map(models: list[ServedModel]) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Bare name -> catalog key, and the upstream names shared by several keys (answered with a 404 naming them).

    A catalog key always names itself; an upstream name names its model unless it is another
    model's key or several models use it.
    """
    names = {m.key: m.key for m in models}
    owners: dict[str, list[str]] = defaultdict(list)
    for model in models:
        if model.upstream_name and model.upstream_name not in names:
            owners[model.upstream_name].append(model.key)
    ambiguous = {name: sorted(keys) for name, keys in owners.items() if len(keys) > 1}
    names.update({name: keys[0] for name, keys in owners.items() if len(keys) == 1})
    return dict(sorted(names.items())), dict(sorted(ambiguous.items()))
