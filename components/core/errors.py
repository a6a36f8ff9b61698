"""Configuration problems, reported as `file: key: what is wrong`, never as a traceback."""

import difflib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from pydantic import BaseModel, ValidationError


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


def did_you_mean(given: str, known) -> str:
    """` (did you mean X?)` for the closest of `known` to a misspelt name, or ''."""
    close = difflib.get_close_matches(given, [str(name) for name in known], n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


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


def _model_at(model: Optional[type[BaseModel]], loc: tuple) -> Optional[type[BaseModel]]:
    """The model that validates the value at `loc` (a validation error's location) of `model`'s input."""
    for part in loc:
        if model is None:
            return None
        if isinstance(part, int) or part not in model.model_fields:
            continue  # a mapping's key or a list's index: `model` is already its entries' model
        model = _model_in(model.model_fields[part].annotation)
    return model


def _keys_at(model: Optional[type[BaseModel]], loc: tuple) -> list[str]:
    """The keys the model accepts where `loc` (a validation error's location, the unknown key last) points."""
    found = _model_at(model, loc[:-1])
    return [name for name, field in found.model_fields.items() if not field.exclude] if found else []


def _shape(model: Optional[type[BaseModel]]) -> str:
    """` with the keys a (required), b` of a section's model, or ''."""
    if model is None:
        return ""
    keys = [name + (" (required)" if field.is_required() else "") for name, field in model.model_fields.items()]
    return f" with the keys {', '.join(keys)}"


def _model_in(annotation: Any) -> Optional[type[BaseModel]]:
    """The pydantic model an annotation holds (directly, optional, in a list or as a mapping's value)."""
    if annotation is None:
        return None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    found = [_model_in(arg) for arg in typing.get_args(annotation)]
    return next((m for m in reversed(found) if m is not None), None)


# The branches of a union chosen by the input's shape (a name, or a mapping of settings): pydantic puts the branch's
# tag in an error's location, which is no key of the file.
NAME_BRANCH, MAPPING_BRANCH = "(a name)", "(a mapping)"


def problems_from_validation(
    error: ValidationError, file: str, prefix: str, model: Optional[type[BaseModel]] = None
) -> list[Problem]:
    problems = []
    for item in error.errors(include_url=False, include_input=False):
        parts = [prefix] if prefix else []
        item["loc"] = tuple(part for part in item["loc"] if part not in (NAME_BRANCH, MAPPING_BRANCH))
        key = ".".join(parts + [str(part) if part != "" else "''" for part in item["loc"]])
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "model_type":  # pydantic names its own class here: say what the file should hold
            message = "should be a mapping" + _shape(_model_at(model, item["loc"]))
        if item["type"] == "extra_forbidden":
            message = "unknown key" + did_you_mean(str(item["loc"][-1]), _keys_at(model, item["loc"]))
        problems.append(Problem(file, key, message))
    return problems
