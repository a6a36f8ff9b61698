"""The end-to-end deploy (test_deploy.py) is collected only under `make e2e`, which sets PMOVES_E2E=1: it deploys
real images and takes many minutes. `make test` collects it not at all (tests/test_e2e_gate.py checks the gate and
the pure parts here instead)."""

import os

if os.environ.get("PMOVES_E2E") != "1":
    collect_ignore_glob = ["test_*.py"]
