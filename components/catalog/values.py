"""Per-stack values inside catalog strings: `${NAME}`, filled in as a stack's catalog is rendered.

One catalog serves every stack, but some strings differ per stack: the account id inside Cloudflare's URL
(`https://api.cloudflare.com/client/v4/accounts/${CLOUDFLARE_ACCOUNT_ID}/ai/run/openai`), a host name.
`${NAME}` takes NAME from the env layers or a stack secret, else from the stack file's
`catalog.variables`; a NAME nothing supplies is a problem naming the catalog file and key, as for every
other variable. The rendered file holds the value, never the placeholder, so a credential is refused
here: credentials reach TensorZero only by name (`api_key = "env::VAR"`). `$${` writes a literal `${`.
Only what a stack renders is filled in: a value used only by models another stack serves is not needed.
"""

import re
from collections.abc import Callable
from typing import Any, Optional

from components.core.envfiles import Variable, is_credential
from components.core.errors import Problem

PLACEHOLDER = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class CatalogValues:
    """Fills in `${NAME}`; collects a problem for each NAME it cannot fill in."""

    def __init__(
        self,
        variables: dict[str, Variable],
        defaults: dict[str, str],
        unsupplied: Callable[[str], Optional[str]],
        defaults_source: str,
    ):
        self._variables = variables
        self._defaults = defaults
        self._unsupplied = unsupplied
        self._defaults_source = defaults_source
        self.problems: list[Problem] = []
        self.used: dict[str, str] = {}  # NAME -> where its value came from

    def fill(self, text: str, file: str, key: str) -> str:
        def value(match: re.Match) -> str:
            name = match.group(1)
            if name is None:
                return "${"
            found = self._variables.get(name)
            if found is None and name in self._defaults:
                found = Variable(name, self._defaults[name], f"{self._defaults_source}.{name}", False)
            if found is None or found.value == "":
                why = self._unsupplied(name) or "but it is empty"
                self._problem(file, key, f"${{{name}}} is needed, {why}, and catalog.variables does not set it")
                return match.group(0)
            if found.secret or is_credential(name, found.value):
                self._problem(
                    file,
                    key,
                    f"${{{name}}} would write a credential into tensorzero.toml; name it where TensorZero reads it "
                    f'(api_key = "env::{name}") instead',
                )
                return match.group(0)
            self.used[name] = found.source
            return found.value

        return PLACEHOLDER.sub(value, text)

    def fill_all(self, value: Any, file: str, key: str) -> Any:
        """Every string inside `value` (tables, arrays), filled in."""
        if isinstance(value, str):
            return self.fill(value, file, key)
        if isinstance(value, dict):
            return {k: self.fill_all(item, file, f"{key}.{k}") for k, item in value.items()}
        if isinstance(value, list):
            return [self.fill_all(item, file, key) for item in value]
        return value

    def _problem(self, file: str, key: str, message: str) -> None:
        problem = Problem(file, key, message)
        if problem not in self.problems:
            self.problems.append(problem)
