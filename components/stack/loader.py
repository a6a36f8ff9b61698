"""Load one stack: its config, catalog and env layers, checked as a whole before any resource exists.

The same loader serves `pulumi up` (values from `pulumi.Config`, secrets decrypted by the CLI) and the
offline CLI (values read from `stacks/Pulumi.<stack>.yaml`, stackconfig.py). Every check that can run runs:
a spec error does not hide a catalog error or a missing credential; all are raised together.
"""

from pathlib import Path
from typing import Callable, Optional, TypeVar

from pydantic import BaseModel, ValidationError

from components.catalog.format import Catalog, load_catalog, native_models
from components.catalog.translation import Translation, local_models, translate
from components.catalog.values import CatalogValues
from components.core.envfiles import Variable, duplicate_notice, read_layers
from components.core.errors import ConfigError, Problem, did_you_mean, problems_from_validation
from components.core.names import PROJECT_DIR, stack_file
from components.core.plans import Endpoint
from components.model.environment import Unreachable
from components.model.resolved import why_unsupplied
from components.model.settings import CatalogSpec, EnvFilesSpec
from components.services import ollama
from components.stack import registry as registry_module
from components.stack.deployment import Deployment
from components.stack.guards import confirmation_problems
from components.stack.registry import Registry
from components.stack.rules import host_problems, placement_problems, provider_problems, unbindable_notices
from components.stack.seed import name_claims, seed_variable_notices
from components.stack.stackconfig import (  # noqa: F401 (the loader's public names, as callers import them)
    OFFLINE_SECRET_PREFIX,
    SECRETS_KEY,
    known_stack,
    plain_catalog_credentials,
    plain_secrets,
    read_pulumi_config,
    read_stack_config,
)
from components.stack.stackconfig import stacks as _stacks
from components.stack.versions import upgrade_problems

GATEWAY = "gateway"
T = TypeVar("T")


def stacks(project_dir: Path = PROJECT_DIR) -> tuple[str, ...]:
    """Every stack of the project, one per `stacks/Pulumi.<stack>.yaml`: dev, staging, prod first, then the rest."""
    return _stacks(project_dir)


def _collect(problems: list[Problem], step: Callable[[], T]) -> Optional[T]:
    """The step's result, or None with its problems added to `problems`."""
    try:
        return step()
    except ConfigError as error:
        problems.extend(error.problems)
        return None


def _section(spec, raw: dict, key: str, model: type[BaseModel]):
    """One section of the spec: from the valid spec, or validated on its own when another section is invalid
    (its own problems are already reported), so the files it names are still read and checked."""
    if spec is not None:
        return getattr(spec, key)
    try:
        return model.model_validate(raw.get(key))
    except ValidationError:
        return None


def _outside_project(project_dir: Path, file: str, key: str, path: str) -> list[Problem]:
    """A relative path must stay in the project once symlinks are resolved."""
    if (project_dir / path).resolve().is_relative_to(project_dir.resolve()):
        return []
    return [Problem(file, key, f"{path!r} leads out of the project (through a symlink)")]


def _env_escapes(project_dir: Path, file: str, env_spec: EnvFilesSpec) -> list[Problem]:
    """The project's env directory, and each layer in it (a symlink to /etc/passwd is no env layer), stay inside."""
    if escapes := _outside_project(project_dir, file, "env_files.dir", env_spec.dir):
        return escapes
    return [
        problem
        for index, layer in enumerate(env_spec.layers)
        for problem in _outside_project(
            project_dir, file, f"env_files.layers.{index}", f"{env_spec.dir.rstrip('/')}/{layer}"
        )
    ]


def load(
    stack: str,
    project_dir: Path = PROJECT_DIR,
    env_dir: Optional[str] = None,
    read_config: Optional[Callable[[], tuple[dict, dict]]] = None,
    registry: Optional[Registry] = None,
    allow_missing: bool = False,
) -> Deployment:
    """Load and check a stack, down to every service's plan; raises ConfigError naming file, key and problem.

    `env_dir` replaces the spec's env directory (an operator's choice on the command line, not confined to
    the project). With `allow_missing`, credentials nobody supplied yet are listed (`Deployment.missing`)
    instead of refused, for `env` to show before the layers are filled in.
    """
    registry = registry or registry_module.REGISTRY
    file = stack_file(stack)
    raw, secrets = read_config() if read_config else read_stack_config(project_dir, stack)
    problems: list[Problem] = []
    spec = None
    try:
        spec = registry.environment.model_validate(raw)
    except ValidationError as error:
        problems += problems_from_validation(error, file, "", registry.environment)
    if spec is not None:
        found = placement_problems(spec) + confirmation_problems(spec) + upgrade_problems(spec, project_dir)
        found += name_claims(project_dir, stack, spec)
        problems += [Problem(file, key, message) for key, message in found]
        if read_config is None:  # the committed file itself; under the Pulumi CLI every secret is decrypted
            problems += plain_secrets(file, spec, secrets)
    placed = spec is not None and not host_problems(spec)
    catalog_spec = _section(spec, raw, "catalog", CatalogSpec)
    env_spec = _section(spec, raw, "env_files", EnvFilesSpec)
    notices = []
    if env_dir is not None and env_spec is not None:
        env_spec = env_spec.model_copy(update={"dir": env_dir})
        spec = spec and spec.model_copy(update={"env_files": env_spec})
    elif env_spec is not None and Path(env_spec.dir).is_absolute():
        notices.append(f"env_files.dir: the env layers are read from {env_spec.dir}, outside the project")
    elif env_spec is not None and (escapes := _env_escapes(project_dir, file, env_spec)):
        problems += escapes
        env_spec = None  # not read: its problem is reported

    catalog = variables = translation = None
    if catalog_spec is not None:
        escapes = [
            problem
            for index, path in enumerate(catalog_spec.files)
            for problem in _outside_project(project_dir, file, f"catalog.files.{index}", path)
        ]
        problems += escapes
        if not escapes:
            catalog = _collect(problems, lambda: load_catalog(project_dir, catalog_spec.files))
    if env_spec is not None:
        layers = _collect(problems, lambda: read_layers(project_dir, env_spec.dir, env_spec.layers))
        variables = None if layers is None else {**layers, **secrets}
    selection = [] if catalog is None or catalog_spec is None else _selection_problems(file, catalog_spec, catalog)
    problems += selection
    if placed and catalog is not None and variables is not None and not selection:
        translation = _collect(problems, lambda: _translation(file, spec, catalog, variables, project_dir))
    if translation is None:
        raise ConfigError(problems)
    problems += plain_catalog_credentials(file, spec, translation.variables)
    problems += provider_problems(spec.tier, catalog, translation)
    notices += seed_variable_notices(spec, layers, {use.variable for use in translation.key_uses})
    notices += [notice for variable in layers.values() if (notice := duplicate_notice(variable))]
    notices += unbindable_notices(spec, file)

    deployment = Deployment(
        stack,
        project_dir,
        spec,
        catalog,
        translation,
        variables,
        load_notices=tuple(notices),
        allow_missing=allow_missing,
    )
    # Every service's plan, kept for build; its problems join those found so far.
    try:
        _collect(problems, lambda: deployment.plans)
    except Exception:
        if not problems:
            raise
        # A plan may not be computable from a spec that breaks a cross-service rule: that rule is reported.
    problems += _smoke_model_problems(file, spec, translation)
    if problems:
        raise ConfigError(problems)
    return deployment


def _selection(catalog_spec: CatalogSpec, catalog: Catalog) -> list[str]:
    """The catalog models the stack serves: those catalog.models lists, or every one."""
    every = sorted(catalog.models) + sorted(native_models(catalog))
    return list(catalog_spec.models) if catalog_spec.models is not None else every


def _selection_problems(file: str, catalog_spec: CatalogSpec, catalog: Catalog) -> list[Problem]:
    """catalog.models names only models of the catalog, each once; checked even when another section is invalid."""
    every = sorted(catalog.models) + sorted(native_models(catalog))
    selected = _selection(catalog_spec, catalog)
    unknown = [name + did_you_mean(name, every) for name in selected if name not in every]
    repeated = sorted({name for name in selected if selected.count(name) > 1})
    problems = [Problem(file, "catalog.models", f"not in the catalog: {', '.join(unknown)}")] if unknown else []
    if repeated:
        problems.append(Problem(file, "catalog.models", f"listed twice: {', '.join(repeated)}"))
    return problems


def _translation(file: str, spec, catalog: Catalog, variables: dict[str, Variable], project_dir: Path) -> Translation:
    selected = _selection(spec.catalog, catalog)
    if spec.catalog.local_only:
        local = local_models(catalog, stack_ollamas(spec))
        selected = [name for name in selected if name in local]
        if not selected:
            message = "no model of the catalog is served by this stack's Ollamas"
            raise ConfigError([Problem(file, "catalog.local_only", message)])
    values = CatalogValues(
        variables,
        spec.catalog.variables,
        lambda name: why_unsupplied(name, variables, project_dir, spec.env_files.dir),
        f"{file}: catalog.variables",
    )
    return translate(catalog, selected, stack_ollamas(spec), values)


def stack_ollamas(spec) -> dict[str, str]:
    """Hostname -> where the gateway reaches each of the stack's Ollamas; its plan reports it if that is
    impossible."""
    found = {}
    for server in ollama.servers(spec):
        try:
            found[server.alias] = spec.endpoint(server, seen_from=spec.placement(GATEWAY).host).url
        except Unreachable:
            found[server.alias] = Endpoint(server.alias, server.port).url
    return found


def _smoke_model_problems(file: str, spec, translation: Translation) -> list[Problem]:
    served = {
        "smoke.chat_model": (spec.smoke.chat_model, [m.name for m in translation.models]),
        "smoke.embedding_model": (spec.smoke.embedding_model, [m.name for m in translation.embedding_models]),
    }
    return [
        Problem(file, key, f"'{name}' is not served here (served: {', '.join(names) or 'none'})")
        for key, (name, names) in served.items()
        if name is not None and name not in names
    ]
