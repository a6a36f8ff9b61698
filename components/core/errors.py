"""Configuration problems, reported as `file: key: what is wrong`, never as a traceback."""

from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError


@dataclass(frozen=True)
class Problem:
    file: str
    key: str
    message: str
    # A credential no env layer or stack secret supplies yet: `env` lists it and carries on, `validate` refuses.
    missing: bool = field(default=False, compare=False)

    def __str__(self) -> str:
        """One line, whatever the message holds (a YAML error spans several)."""
        where = ": ".join(part for part in (self.file, self.key) if part)
        message = " ".join(self.message.split())
        return f"{where}: {message}" if where else message


class ConfigError(Exception):
    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))


def read_text(path: Path, shown: str, what: str) -> str:
    """A config file's text, or a ConfigError saying why it cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        message = f"{what} not found"
    except UnicodeDecodeError as error:
        message = f"not UTF-8 text (byte {error.start})"
    except OSError as error:
        message = f"cannot read: {error.strerror}"
    raise ConfigError([Problem(shown, "", message)])


def problems_from_validation(error: ValidationError, file: str, prefix: str) -> list[Problem]:
    problems = []
    for item in error.errors(include_url=False, include_input=False):
        parts = [prefix] if prefix else []
        key = ".".join(parts + [str(part) if part != "" else "''" for part in item["loc"]])
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        problems.append(Problem(file, key, message))
    return problems
