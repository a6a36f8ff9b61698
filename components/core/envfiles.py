"""Env-file layering as PMOVES's compose files do it: later layers win, every value keeps its source."""

import hashlib
import io
import math
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
_VALUE_PARTS = re.compile(r"[\s/:;=,@&?]+")  # what separates a URL's, a sentence's, a DSN's parts
_URL_WITH_USERINFO = re.compile(r"://[^/@\s]+@")
# Values that look like credentials whatever their variable is called (an `extra_env` entry named FOO): the prefixes
# providers give their keys and tokens, PEM blocks, JWTs, and long strings as spread as generated ones are.
_CREDENTIAL_VALUE = re.compile(
    r"^(sk-|sk_|rk_|pk_live_|ghp_|gho_|ghs_|github_pat_|glpat-|xox[abpr]-|AKIA|ASIA|AIza|hf_|eyJ|-----BEGIN)"
)
GENERATED_MIN_LENGTH = 20
GENERATED_MIN_BITS_PER_CHARACTER = 3.5  # 20+ hex digits at random: ~3.7-4; words and durations stay well below
MASK = "[secret]"
PLACEHOLDER_PREFIX = "offline-placeholder-"
MISSING = "[missing]"


def entropy_bits(value: str) -> float:
    """Shannon entropy of the value's characters' spread, times its length: 0 for one character repeated."""
    counts = [value.count(character) for character in set(value)]
    return max(0.0, -sum(n * math.log2(n / len(value)) for n in counts))  # never "-0"


def has_key_prefix(value: str) -> bool:
    """Begins as providers' keys and tokens do (sk-, sk-proj-, sk-ant-, ghp_, xox?-, AKIA, ...), or a PEM or JWT."""
    return bool(_CREDENTIAL_VALUE.match(value))


def looks_generated(value: str) -> bool:
    """A credential by its value alone: a known key prefix, or a part of it long, unbroken and as spread as a
    generated one (a token at the end of a webhook URL, after `Pwd=` in a connection string, after `Basic `)."""
    return has_key_prefix(value) or any(_generated(part) for part in _VALUE_PARTS.split(value))


def _generated(part: str) -> bool:
    if len(part) < GENERATED_MIN_LENGTH:
        return False
    mixed = any(c.isdigit() for c in part) and any(c.isalpha() for c in part)  # words alone are names
    return mixed and entropy_bits(part) / len(part) >= GENERATED_MIN_BITS_PER_CHARACTER


def is_credential(name: str, value: str) -> bool:
    return bool(_CREDENTIAL_NAME.search(name) or _URL_WITH_USERINFO.search(value))


@dataclass(frozen=True)
class Variable:
    name: str
    value: str
    source: str
    secret: bool
    missing: bool = False  # no layer or stack secret supplies it yet (`env` before the layers are filled in)
    earlier_lines: tuple[int, ...] = ()  # earlier lines of its own layer that set it too: this later one wins

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
        lines: dict[str, tuple[int, ...]] = {}  # this layer's lines setting each variable
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
                earlier = lines.get(binding.key, ())
                lines[binding.key] = earlier + (line,)
                secret = is_credential(binding.key, binding.value)
                variables[binding.key] = Variable(
                    binding.key, binding.value, f"{relative}:{line}", secret, False, earlier
                )
    if problems:
        raise ConfigError(problems)
    return variables


def duplicate_notice(variable: Variable) -> str:
    """What to tell the operator of a variable one layer sets on several lines (PMOVES's own env files may): the
    lines and which one wins, never a value. Empty if it is set once."""
    if not variable.earlier_lines:
        return ""
    file, line = variable.source.rsplit(":", 1)
    numbers = ", ".join(map(str, variable.earlier_lines))
    empty = ", empty" if variable.value == "" else ""
    return f"{file}: {variable.name} is set on lines {numbers} and {line}; the last (line {line}{empty}) wins"


def placeholder(name: str) -> str:
    """The obvious stand-in for a credential nobody supplies offline (`diff`, `plan` without secrets): it names
    the variable, and is as long and varied as a strong key (a digest of the name), so a plan beyond dev passes
    the strength rules the real value meets. Never deployed: Pulumi decrypts the real one."""
    return f"{PLACEHOLDER_PREFIX}{name}-{hashlib.sha256(name.encode()).hexdigest()[:32]}"


def is_placeholder(value: str) -> bool:
    """Exactly the stand-in `placeholder` makes for some variable: a value that only begins like one (typed by
    hand) is a real value, and checked as one."""
    name = value.removeprefix(PLACEHOLDER_PREFIX).rpartition("-")[0]
    return value.startswith(PLACEHOLDER_PREFIX) and value == placeholder(name)
