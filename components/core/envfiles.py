"""Env-file layering as PMOVES's compose files do it: later layers win, every value keeps its source."""

import io
import re
from dataclasses import dataclass, replace
from pathlib import Path

from dotenv.parser import parse_stream

from components.core.errors import ConfigError, Problem, read_text

# Names that hold credentials: HF_TOKEN, SENTRY_DSN, HF_AUTH, BASIC_AUTH_HEADER, ... (GF_AUTH_ANONYMOUS_ENABLED
# is a switch, not a credential: AUTH counts only at the end of a name).
_CREDENTIAL_NAME = re.compile(
    r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|PASSPHRASE|CREDENTIAL|DSN|COOKIE|PRIVATE|AUTH(_HEADER)?$|AUTHORIZATION)",
    re.IGNORECASE,
)
# A URL that carries anything before an `@` (user:password@, or a token alone as in a Sentry DSN).
_URL_WITH_USERINFO = re.compile(r"://[^/@\s]+@")
MASK = "[secret]"
MISSING = "[missing]"


def is_credential(name: str, value: str) -> bool:
    return bool(_CREDENTIAL_NAME.search(name) or _URL_WITH_USERINFO.search(value))


@dataclass(frozen=True)
class Variable:
    name: str
    value: str
    source: str
    secret: bool
    missing: bool = False  # no layer or stack secret supplies it yet (`env` before the layers are filled in)

    def renamed(self, name: str) -> "Variable":
        """The same value under the name a container reads it by (CLICKHOUSE_PASSWORD from the stack's variable)."""
        return replace(self, name=name)

    @property
    def shown(self) -> str:
        if self.missing:
            return MISSING
        return MASK if self.secret else self.value


def read_layers(project_dir: Path, env_dir: str, layers: list[str]) -> dict[str, Variable]:
    """Variables from the layers in order (a later file wins), with file:line provenance."""
    variables: dict[str, Variable] = {}
    if not (project_dir / env_dir).is_dir():
        raise ConfigError([Problem(env_dir, "", "env directory not found")])
    problems = []
    for layer in layers:
        relative = f"{env_dir.rstrip('/')}/{layer}"
        path = project_dir / relative
        if path.is_dir():
            problems.append(Problem(relative, "", "is a directory, not an env layer (KEY=value lines)"))
            continue
        if not path.is_file():
            continue
        try:
            text = read_text(path, relative, "env layer")
        except ConfigError as error:
            problems.extend(error.problems)
            continue
        for binding in parse_stream(io.StringIO(text)):
            line = binding.original.line
            if binding.error:
                problems.append(Problem(relative, f"line {line}", "not a KEY=value line"))
            elif binding.key is not None and binding.value is not None:
                variables[binding.key] = Variable(
                    binding.key, binding.value, f"{relative}:{line}", is_credential(binding.key, binding.value)
                )
    if problems:
        raise ConfigError(problems)
    return variables
