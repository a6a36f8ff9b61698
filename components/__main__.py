"""`python -m components ...` and the `pmoves-tz` command: one line, not a traceback, where the requirements are
not installed."""

import sys
from typing import NoReturn

from components.operate.exits import leave, leave_on_interrupt

# Verbs that only read files and write files or output: they end at once (exits.leave), not through the
# interpreter's slow exit. The others talk to Docker or a cluster, and end as usual.
OFFLINE_VERBS = ("render", "plan", "validate", "env", "diff", "reach", "reference")


def run() -> NoReturn:
    leave_on_interrupt("python -m components")  # from the first import on: one line, never a library's traceback
    try:
        if sys.argv[1:2] == ["smoke"]:
            # The smoke suite needs only requirements-smoke.txt: it does not import the Pulumi program.
            from components.operate.smoke import main
        else:
            from components.operate.cli import main
    except ModuleNotFoundError as missing:
        sys.exit(
            f"python -m components: the Python package '{missing.name}' is not installed for {sys.executable}; "
            "run `make venv` first (it creates .venv with requirements.txt), then .venv/bin/pmoves-tz or "
            ".venv/bin/python -m components"
        )
    status = main()
    if sys.argv[1:2] and sys.argv[1] in OFFLINE_VERBS:
        leave(status)
    sys.exit(status)


if __name__ == "__main__":
    run()
