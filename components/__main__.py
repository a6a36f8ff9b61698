"""`python -m components ...`: one line, not a traceback, where the requirements are not installed."""

import sys

try:
    if sys.argv[1:2] == ["smoke"]:
        # The smoke suite needs only requirements-smoke.txt: it does not import the Pulumi program.
        from components.operate.smoke import main
    else:
        from components.operate.cli import main
except ModuleNotFoundError as missing:
    sys.exit(
        f"python -m components: the Python package '{missing.name}' is not installed for {sys.executable}; "
        "run `make` first (it creates .venv with requirements.txt), then .venv/bin/pmoves-tz or "
        ".venv/bin/python -m components"
    )

sys.exit(main())
