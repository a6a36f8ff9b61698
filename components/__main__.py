"""`python -m components ...`: one line, not a traceback, where the requirements are not installed."""

import sys

from components.operate.exits import leave_on_interrupt

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

sys.exit(main())
