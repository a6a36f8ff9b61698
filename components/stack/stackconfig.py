"""A stack's config as the program receives it: offline from `stacks/Pulumi.<stack>.yaml`, or from `pulumi.Config`.

Both readers apply one rule to the keys: every key is `pmoves-tensorzero:<key>` (Pulumi's own `pulumi:` keys
aside). A key without the project's namespace, or under a misspelled one, is not read by this program, so it
is refused rather than silently ignored. `secure:` values cannot be decrypted offline: they come from
`PMOVES_SECRET_<NAME>` or an obvious placeholder.
"""

import difflib
import json
import os
from pathlib import Path
from typing import Any

import yaml

from components.core.envfiles import Variable, has_key_prefix, is_credential, placeholder
from components.core.errors import ConfigError, Problem, did_you_mean, read_text
from components.core.names import PROJECT, stack_file
from components.model.environment import GONE
from components.model.settings import Tier

SECRETS_KEY = "secrets"
OFFLINE_SECRET_PREFIX = "PMOVES_SECRET_"
# How a `secure:` value read offline marks its source: what tells it from a plain one (plain_secrets).
OFFLINE_MARK = " (offline"
MERGE_TAG = "tag:yaml.org,2002:merge"
BOM = "\ufeff"  # allowed as a file's first character only: libyaml skips it at any line's start, Go's YAML does not
PULUMI_NAMESPACE = "pulumi"  # Pulumi's own stack settings (`pulumi:disable-default-providers`, ...)


class _UniqueKeys:
    """YAML that refuses a key given twice instead of silently keeping the last. A merge (`<<: *anchor`) is read
    as YAML defines it, and Pulumi's reader reads it: the mapping's own keys override what it merges."""

    def construct_mapping(self, node, deep=False):
        keys = [self.construct_object(key, deep=deep) for key, _ in node.value if key.tag != MERGE_TAG]
        repeated = sorted({str(key) for key in keys if keys.count(key) > 1})
        if repeated:
            raise yaml.constructor.ConstructorError(
                None, None, f"key given twice: {', '.join(repeated)}", node.start_mark
            )
        return super().construct_mapping(node, deep=deep)


class _FastLoader(_UniqueKeys, getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """libyaml's parser, where PyYAML has it: every command reads every stack file (stack/seed.py)."""


class _WordedLoader(_UniqueKeys, yaml.SafeLoader):
    """PyYAML's own parser, whose errors quote the line and point at the column: used to word a refusal."""


def _parse(text: str) -> Any:
    try:
        return yaml.load(text, Loader=_FastLoader)
    except yaml.YAMLError:
        return yaml.load(text, Loader=_WordedLoader)


def stacks(project_dir: Path) -> tuple[str, ...]:
    """Every stack of the project, one per `stacks/Pulumi.<stack>.yaml`: dev, staging, prod first, then the rest."""
    found = {
        path.name.removeprefix("Pulumi.").removesuffix(".yaml")
        for path in (project_dir / "stacks").glob("Pulumi.*.yaml")
    }
    promotion = [tier.value for tier in Tier if tier.value in found]
    return tuple(promotion + sorted(found - set(promotion)))


def known_stack(stack: str, project_dir: Path) -> None:
    """Raises naming the stacks there are when `stack` has no stack file."""
    path = project_dir / stack_file(stack)
    if path.is_dir():
        raise ConfigError([Problem(stack_file(stack), "", "is a directory, not a stack file")])
    if not path.is_file():
        there = ", ".join(stacks(project_dir)) or "none"
        guess = did_you_mean(stack, stacks(project_dir))
        raise ConfigError([Problem(stack_file(stack), "", f"no such stack{guess} (stacks here: {there})")])


def project_keys(config: dict, file: str) -> tuple[dict[str, Any], Any, list[Problem]]:
    """(the project's keys without namespace, the raw `secrets` value, problems with the keys)."""
    prefix = f"{PROJECT}:"
    problems, raw = [], {}
    for key, value in config.items():
        if not isinstance(key, str):
            problems.append(Problem(file, "config", f"key {key!r} is not a string"))
        elif key.startswith(prefix):
            raw[key.removeprefix(prefix)] = value
        elif key.partition(":")[0] != PULUMI_NAMESPACE:
            problems.append(Problem(file, key, _foreign_key(key)))
    return raw, raw.pop(SECRETS_KEY, None), problems


def _foreign_key(key: str) -> str:
    namespace, colon, name = key.partition(":")
    if not colon and key in GONE:
        return f"not read (a key of this project is written {PROJECT}:{key}), and {GONE[key]}"
    if not colon:
        return f"not read: a key of this project is written {PROJECT}:{key}"
    if difflib.get_close_matches(namespace, [PROJECT], n=1, cutoff=0.6):
        return f"not read: '{namespace}' is not this project's namespace; did you mean {PROJECT}:{name}?"
    return f"not read: this program reads {PROJECT}:<key> keys only (namespace '{namespace}' is not its own)"


def read_stack_config(project_dir: Path, stack: str) -> tuple[dict[str, Any], dict[str, Variable]]:
    """Offline: the stack file's project keys, and its `secrets` as variables."""
    name = stack_file(stack)
    known_stack(stack, project_dir)
    text = read_text(project_dir / name, name, "stack file")
    if (mark := text.find(BOM, 1)) != -1:
        line = text.count("\n", 0, mark) + 1
        why = "a byte-order mark (U+FEFF) inside the file; remove it (editors hide it, and YAML readers disagree on it)"
        raise ConfigError([Problem(name, "", f"line {line}: {why}")])
    try:
        document = _parse(text) or {}
    except yaml.YAMLError as error:
        raise ConfigError([Problem(name, "", f"not valid YAML: {error}")]) from None
    except RecursionError:  # PyYAML builds nested lists and mappings recursively
        why = "nested too deeply to read (lists or mappings within each other)"
        raise ConfigError([Problem(name, "", why)]) from None
    config = document.get("config") if isinstance(document, dict) else None
    if not isinstance(config, dict):
        raise ConfigError([Problem(name, "config", "missing or not a mapping")])
    raw, secrets, problems = project_keys(config, name)
    secrets = secrets or {}
    problems += [
        Problem(name, key, "only secrets.* may be encrypted") for key, value in raw.items() if _is_secure(value)
    ]
    if not isinstance(secrets, dict) or not all(isinstance(key, str) for key in secrets):
        problems.append(Problem(name, SECRETS_KEY, "must be a mapping of variable name to value"))
    if problems:
        raise ConfigError(problems)
    return raw, {key: _offline_secret(name, key, value) for key, value in secrets.items()}


def plain_secrets(file: str, spec: Any, secrets: dict[str, Variable]) -> list[Problem]:
    """Beyond dev, a credential written in clear in the committed stack file: refused, with how to encrypt it."""
    if spec.tier.value == "dev":
        return []
    return [
        Problem(
            file,
            f"{SECRETS_KEY}.{name}",
            f"a plain value in the stack file, refused in {spec.tier.value}: " + _safe_place(name),
        )
        for name, variable in secrets.items()
        if OFFLINE_MARK not in variable.source
    ]


def _safe_place(name: str) -> str:
    return (
        f"encrypt it (pulumi config set --secret --path '{SECRETS_KEY}.{name}' ... --stack <stack>) or move it to a "
        "git-ignored env layer"
    )


def plain_catalog_credentials(file: str, spec: Any, provider_variables: list[str]) -> list[Problem]:
    """Beyond dev, a credential in `catalog.variables`: in clear in the committed stack file (and never given to a
    container: they fill `${NAME}` in the catalog only). Known by its name, by being a provider's key variable of
    the catalog (`env::NAME`), or by its value's prefix (sk-, ghp_, ...); the value is never shown."""
    if spec.tier.value == "dev":
        return []
    found = []
    for name, value in spec.catalog.variables.items():
        if name in provider_variables:
            why = "is a provider's key variable (env::" + name + ")"
        elif is_credential(name, value):
            why = "names a credential"
        elif has_key_prefix(value):
            why = "holds what looks like a provider's key"
        else:
            continue
        message = f"{why}: catalog.variables are in clear, refused in {spec.tier.value}; " + _safe_place(name)
        found.append(Problem(file, f"catalog.variables.{name}", message))
    return found


def _is_secure(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"secure"}


def _offline_secret(file: str, name: str, value: Any) -> Variable:
    source = f"{file}: {SECRETS_KEY}.{name}"
    if _is_secure(value):
        override = os.environ.get(OFFLINE_SECRET_PREFIX + name)
        if override is not None:
            return Variable(name, override, f"{source}{OFFLINE_MARK}: ${OFFLINE_SECRET_PREFIX}{name})", True)
        return Variable(name, placeholder(name), f"{source}{OFFLINE_MARK} placeholder)", True)
    return Variable(name, str(value), source, True)


def read_pulumi_config(stack: str) -> tuple[dict[str, Any], dict[str, Variable]]:
    """Under the Pulumi CLI: the same keys from Pulumi's config, secrets already decrypted."""
    from pulumi.runtime import config as pulumi_config

    name = stack_file(stack)
    given = {**pulumi_config.get_config_env(), **pulumi_config.CONFIG.get()}
    strings, secrets, problems = project_keys(given, name)
    if problems:
        raise ConfigError(problems)
    # The CLI hands structured values over as JSON and scalars as plain strings.
    raw = {key: _json_or_text(value) for key, value in strings.items()}
    secrets = _json_or_text(secrets) if secrets is not None else {}
    if not isinstance(secrets, dict):
        raise ConfigError([Problem(name, SECRETS_KEY, "must be a mapping of variable name to value")])
    source = f"{name}: {SECRETS_KEY}"
    return raw, {key: Variable(key, str(value), f"{source}.{key}", True) for key, value in secrets.items()}


def _json_or_text(value: Any) -> Any:
    if isinstance(value, str) and value.lstrip().startswith(("{", "[")):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value
