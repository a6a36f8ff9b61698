"""Load one stack: its config, catalog and env layers, checked as a whole before any resource exists.

The same loader serves `pulumi up` (values from `pulumi.Config`, secrets
decrypted by the CLI) and the offline CLI (values read from
`stacks/Pulumi.<stack>.yaml`; `secure:` values cannot be decrypted there, so
they come from `PMOVES_SECRET_<NAME>` or an obvious placeholder).
"""

import os
from pathlib import Path
from typing import Any, Callable, Optional

import yaml
from pydantic import ValidationError

from . import registry as registry_module
from .catalog import Catalog, Translation, load_catalog, translate
from .deployment import Deployment, stack_file
from .envfiles import Variable, read_layers
from .errors import ConfigError, Problem, problems_from_validation, read_text
from .names import PROJECT
from .ollama import ALIAS as OLLAMA_ALIAS
from .ollama import PORT as OLLAMA_PORT
from .registry import Registry
from .service import Endpoint
from .spec import Tier, Unreachable, placement_problems

PROJECT_DIR = Path(__file__).resolve().parent.parent
SECRETS_KEY = "secrets"
OFFLINE_SECRET_PREFIX = "PMOVES_SECRET_"
PLACEHOLDER = "offline-placeholder-{name}"
OLLAMA, GATEWAY = "ollama", "gateway"


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML that refuses a key given twice instead of silently keeping the last."""

    def construct_mapping(self, node, deep=False):
        keys = [self.construct_object(key, deep=deep) for key, _ in node.value]
        repeated = sorted({str(key) for key in keys if keys.count(key) > 1})
        if repeated:
            raise yaml.constructor.ConstructorError(
                None, None, f"key given twice: {', '.join(repeated)}", node.start_mark
            )
        return super().construct_mapping(node, deep=deep)


def stacks(project_dir: Path = PROJECT_DIR) -> tuple[str, ...]:
    """Every stack of the project, one per `stacks/Pulumi.<stack>.yaml`: dev, staging, prod first, then the rest."""
    found = {
        path.name.removeprefix("Pulumi.").removesuffix(".yaml")
        for path in (project_dir / "stacks").glob("Pulumi.*.yaml")
    }
    promotion = [tier.value for tier in Tier if tier.value in found]
    return tuple(promotion + sorted(found - set(promotion)))


def read_stack_config(project_dir: Path, stack: str) -> tuple[dict[str, Any], dict[str, Variable]]:
    """Offline: the stack file's project keys, and its `secrets` as variables."""
    name = stack_file(stack)
    try:
        document = yaml.load(read_text(project_dir / name, name, "stack file"), Loader=_UniqueKeyLoader) or {}
    except yaml.YAMLError as error:
        raise ConfigError([Problem(name, "", f"not valid YAML: {error}")]) from None
    config = document.get("config") if isinstance(document, dict) else None
    if not isinstance(config, dict):
        raise ConfigError([Problem(name, "config", "missing or not a mapping")])
    prefix = f"{PROJECT}:"
    problems = [Problem(name, "config", f"key {key!r} is not a string") for key in config if not isinstance(key, str)]
    raw = {
        key.removeprefix(prefix): value
        for key, value in config.items()
        if isinstance(key, str) and key.startswith(prefix)
    }
    secrets = raw.pop(SECRETS_KEY, None) or {}
    problems += [
        Problem(name, key, "only secrets.* may be encrypted") for key, value in raw.items() if _is_secure(value)
    ]
    if not isinstance(secrets, dict) or not all(isinstance(key, str) for key in secrets):
        problems.append(Problem(name, SECRETS_KEY, "must be a mapping of variable name to value"))
    if problems:
        raise ConfigError(problems)
    return raw, {key: _offline_secret(name, key, value) for key, value in secrets.items()}


def _is_secure(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"secure"}


def _offline_secret(file: str, name: str, value: Any) -> Variable:
    source = f"{file}: {SECRETS_KEY}.{name}"
    if _is_secure(value):
        override = os.environ.get(OFFLINE_SECRET_PREFIX + name)
        if override is not None:
            return Variable(name, override, f"{source} (offline: ${OFFLINE_SECRET_PREFIX}{name})", True)
        return Variable(name, PLACEHOLDER.format(name=name), f"{source} (offline placeholder)", True)
    return Variable(name, str(value), source, True)


def read_pulumi_config(stack: str) -> tuple[dict[str, Any], dict[str, Variable]]:
    """Under the Pulumi CLI: the same keys from `pulumi.Config`, secrets already decrypted."""
    import pulumi

    config = pulumi.Config(PROJECT)
    # The CLI hands structured values over as JSON and scalars as plain strings.
    raw = {
        key: config.get_object(key) if value.lstrip().startswith(("{", "[")) else value
        for key in registry_module.REGISTRY.environment.model_fields
        if (value := config.get(key)) is not None
    }
    secrets = config.get_object(SECRETS_KEY) or {}
    source = f"{stack_file(stack)}: {SECRETS_KEY}"
    return raw, {key: Variable(key, str(value), f"{source}.{key}", True) for key, value in secrets.items()}


def load(
    stack: str,
    project_dir: Path = PROJECT_DIR,
    env_dir: Optional[str] = None,
    read_config: Optional[Callable[[], tuple[dict, dict]]] = None,
    registry: Optional[Registry] = None,
) -> Deployment:
    """Load and check a stack, down to every service's plan; raises ConfigError naming file, key and problem."""
    registry = registry or registry_module.REGISTRY
    file = stack_file(stack)
    raw, secrets = read_config() if read_config else read_stack_config(project_dir, stack)
    if env_dir is not None:
        raw = {**raw, "env_files": {**(raw.get("env_files") or {}), "dir": env_dir}}
    try:
        spec = registry.environment.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(problems_from_validation(error, file, "")) from None
    if problems := placement_problems(spec):
        raise ConfigError([Problem(file, key, message) for key, message in problems])

    catalog = load_catalog(project_dir, spec.catalog.files)
    selected = spec.catalog.models if spec.catalog.models is not None else sorted(catalog.models)
    unknown = [name for name in selected if name not in catalog.models]
    repeated = sorted({name for name in selected if selected.count(name) > 1})
    problems = [Problem(file, "catalog.models", f"not in the catalog: {', '.join(unknown)}")] if unknown else []
    if repeated:
        problems.append(Problem(file, "catalog.models", f"listed twice: {', '.join(repeated)}"))
    if problems:
        raise ConfigError(problems)
    translation = translate(catalog, selected, _own_ollama_url(spec))
    _check_native_references(catalog, translation)
    _check_smoke_models(file, spec, translation)

    variables = {**read_layers(project_dir, spec.env_files.dir, spec.env_files.layers), **secrets}
    deployment = Deployment(stack, project_dir, spec, catalog, translation, variables)
    _ = deployment.plans  # every service's plan, kept for build: raises naming every problem found on the way
    if spec.kubernetes is not None:
        from .kubernetes_cluster import manifests

        manifests(deployment)  # what the cluster target cannot run is refused here, before any resource
    return deployment


def _own_ollama_url(spec) -> Optional[str]:
    """Where the gateway reaches the stack's own Ollama; its plan reports it if that is impossible."""
    if not spec.deployed(OLLAMA):
        return None
    try:
        return spec.endpoint(OLLAMA, seen_from=spec.placement(GATEWAY).host).url
    except Unreachable:
        return Endpoint(OLLAMA_ALIAS, OLLAMA_PORT).url


def _check_smoke_models(file: str, spec, translation: Translation) -> None:
    served = {
        "smoke.chat_model": (spec.smoke.chat_model, [m.name for m in translation.models]),
        "smoke.embedding_model": (spec.smoke.embedding_model, [m.name for m in translation.embedding_models]),
    }
    problems = [
        Problem(file, key, f"'{name}' is not served here (served: {', '.join(names) or 'none'})")
        for key, (name, names) in served.items()
        if name is not None and name not in names
    ]
    if problems:
        raise ConfigError(problems)


def _check_native_references(catalog: Catalog, translation: Translation) -> None:
    """Native function variants may only name models this environment serves."""
    served = {m.name for m in translation.models + translation.embedding_models} | set(catalog.native.get("models", {}))
    problems = []
    for function, table in catalog.native.get("functions", {}).items():
        variants = table.get("variants") or {}
        if not isinstance(variants, dict):
            problems.append(
                Problem(catalog.sources[f"functions.{function}"], f"functions.{function}.variants", "must be a table")
            )
            continue
        for variant, settings in variants.items():
            model = settings.get("model") if isinstance(settings, dict) else None
            # `provider::model` shorthands need no catalog entry.
            if isinstance(model, str) and "::" not in model and model not in served:
                problems.append(
                    Problem(
                        catalog.sources[f"functions.{function}"],
                        f"functions.{function}.variants.{variant}.model",
                        f"'{model}' is not served by this environment (see catalog.models)",
                    )
                )
    if problems:
        raise ConfigError(problems)
