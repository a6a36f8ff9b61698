"""The native TensorZero tables one stack renders: the native models it serves, and each function cut down to
the variants those models can run.

One set of catalog files serves every stack. A stack lists the models it serves (`catalog.models`); a
function keeps the variants whose models are among them, and `validate` lists what was dropped. A variant
that names a model no catalog file defines is a mistake in any stack, and so is a function left with no
variant: both are problems naming the function. An experiment over variants (`experimentation`) forgets the
dropped ones. A native provider block whose `api_base` names one of the stack's Ollamas is addressed by the
endpoint rule and its model pulled there, as in the seed format (ollama_routing.py).
"""

import copy
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from components.catalog.routing import NotRoutable, check_openai_url, route
from components.core.errors import Problem, did_you_mean

MODEL_TABLES = ("models", "embedding_models")
# Where a variant names a model: its own `model`, and the model of the judge or fuser some variant types run.
NESTED_MODELS = ("evaluator", "fuser")
# Where a variant names other variants it runs (best_of_n, mixture_of_n): it falls with them.
CANDIDATES = "candidates"
# Where an experiment names variants.
EXPERIMENT_VARIANTS = ("candidate_variants", "fallback_variants")
SHORTHAND = "::"  # `openai::gpt-4o-mini`: a model TensorZero knows without a catalog entry


@dataclass
class NativeSubset:
    tables: dict[str, Any]
    notices: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    pulls: dict[str, list[str]] = field(default_factory=dict)  # Ollama hostname -> models to pull into it


def models_named(variant: Any) -> list[str]:
    if not isinstance(variant, dict):
        return []
    nested = [variant.get(key) for key in NESTED_MODELS if isinstance(variant.get(key), dict)]
    found = [variant.get("model"), *(inner.get("model") for inner in nested)]
    return [name for name in found if isinstance(name, str)]


def subset(
    native: dict[str, Any],
    sources: dict[str, str],
    selected: set[str],
    served: set[str],
    stack_ollamas: dict[str, str],
) -> NativeSubset:
    """`native`: every catalog file's native tables; `selected`: the native models this stack serves; `served`:
    every model it serves (seed format too). Names the catalog must define are checked when it loads
    (`unknown_names`)."""
    result = NativeSubset(copy.deepcopy(native))
    for table in MODEL_TABLES:
        if table in result.tables:
            kept = {name: body for name, body in result.tables[table].items() if name in selected}
            result.tables[table] = kept
            for name, body in kept.items():
                _route_providers(result, sources[f"{table}.{name}"], f"{table}.{name}", body, stack_ollamas)
            if not kept:
                del result.tables[table]
    for name, function in result.tables.get("functions", {}).items():
        _cut_function(result, sources[f"functions.{name}"], name, function, served)
    return result


def unknown_names(native: dict[str, Any], sources: dict[str, str], models: set[str]) -> list[Problem]:
    """Names the catalog itself must define, checked across every file whatever the stack: the models a variant
    runs (`models`: every model a catalog file defines), the function an evaluation reads, the tools a function
    offers, the variants an experiment or a variant runs. TensorZero's loader would stop at the first with no
    hint; these say each, with the closest name defined."""
    functions, tools = native.get("functions", {}), native.get("tools", {})
    found = []

    def check(table: str, row: str, key: str, named: Any, defined: dict, what: str) -> None:
        listed = list(named) if isinstance(named, (list, dict)) else [named] if isinstance(named, str) else []
        for name in listed:
            if isinstance(name, str) and name not in defined:
                why = f"'{name}' is not a {what}" + did_you_mean(name, defined)
                found.append(Problem(sources[f"{table}.{row}"], f"{table}.{row}.{key}", why))

    for name, evaluation in native.get("evaluations", {}).items():
        if isinstance(evaluation, dict):
            check(
                "evaluations",
                name,
                "function_name",
                evaluation.get("function_name"),
                functions,
                "function of the catalog",
            )
    for name, function in functions.items():
        if not isinstance(function, dict):
            continue
        check("functions", name, "tools", function.get("tools"), tools, "tool of the catalog")
        variants = function.get("variants") if isinstance(function.get("variants"), dict) else {}
        experiment = function.get("experimentation")
        for key in EXPERIMENT_VARIANTS if isinstance(experiment, dict) else ():
            check("functions", name, f"experimentation.{key}", experiment.get(key), variants, f"variant of {name}")
        for variant, body in variants.items():
            if isinstance(body, dict):
                key = f"variants.{variant}.{CANDIDATES}"
                check("functions", name, key, body.get(CANDIDATES), variants, f"variant of {name}")
            named = [model for model in models_named(body) if SHORTHAND not in model]
            check("functions", name, f"variants.{variant}.model", named, models, "model of the catalog")
    return found


def _route_providers(result: NativeSubset, file: str, key: str, model: dict, stack_ollamas: dict[str, str]) -> None:
    for provider, block in (model.get("providers") or {}).items():
        api_base = block.get("api_base") if isinstance(block, dict) else None
        if not isinstance(api_base, str):
            continue
        where = f"{key}.providers.{provider}.api_base"
        try:
            if urlsplit(api_base).hostname in stack_ollamas:
                served = route(api_base, stack_ollamas)
                block["api_base"] = served.api_base
                pulls = result.pulls.setdefault(served.alias, [])
                if isinstance(block.get("model_name"), str) and block["model_name"] not in pulls:
                    pulls.append(block["model_name"])
            else:
                check_openai_url(api_base)
        except NotRoutable as why:
            result.problems.append(Problem(file, where, str(why)))


def _cut_function(result: NativeSubset, file: str, name: str, function: Any, served: set) -> None:
    variants = function.get("variants") if isinstance(function, dict) else None
    if variants is None:
        return
    if not isinstance(variants, dict):
        result.problems.append(Problem(file, f"functions.{name}.variants", "must be a table"))
        return
    dropped: dict[str, str] = {}  # variant -> why
    for variant, body in variants.items():
        for model in models_named(body):
            if SHORTHAND not in model and model not in served:
                dropped.setdefault(variant, f"model {model}")
    while True:  # a variant running dropped candidates falls with them
        falling = {
            variant: f"runs {', '.join(sorted(set(body.get(CANDIDATES)) & set(dropped)))}"
            for variant, body in variants.items()
            if variant not in dropped and isinstance(body, dict) and isinstance(body.get(CANDIDATES), list)
            if set(body[CANDIDATES]) & set(dropped)
        }
        if not falling:
            break
        dropped.update(falling)
    if not dropped:
        return
    if len(dropped) == len(variants):
        listed = ", ".join(f"{variant} ({why})" for variant, why in dropped.items())
        result.problems.append(
            Problem(
                file,
                f"functions.{name}",
                f"no variant left in this stack: {listed}; serve one of those models (catalog.models) or give the "
                "function a variant this stack serves",
            )
        )
        return
    function["variants"] = {variant: body for variant, body in variants.items() if variant not in dropped}
    experiment = function.get("experimentation")
    if isinstance(experiment, dict):
        for key in EXPERIMENT_VARIANTS:
            named = experiment.get(key)
            if isinstance(named, list):
                experiment[key] = [variant for variant in named if variant not in dropped]
            elif isinstance(named, dict):
                experiment[key] = {variant: w for variant, w in named.items() if variant not in dropped}
    listed = ", ".join(f"{variant} ({why})" for variant, why in dropped.items())
    result.notices.append(f"functions.{name}: variants left out, their models not served by this stack: {listed}")
