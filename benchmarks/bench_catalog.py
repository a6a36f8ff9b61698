"""Time PMOVES's production catalog through the package: load and check, render, plan under mocks.

    python benchmarks/bench_catalog.py [N]     (N repetitions, default 5)

The catalog is tests/fixtures/pmoves_catalog/ (20 chat models over two Ollama hosts, 9 embedding models,
12 functions of up to 11 variants, files named by path), served whole by a two-host stack with both Ollamas
(`full`), and by a one-host stack serving the local models only, its functions cut down (`local`). In-process:
what `validate` does after start-up (load with every check, render every file, plan under Pulumi's mocks).
"""

import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))
sys.path.insert(0, str(PROJECT_DIR / "tests"))

from conftest import MINIMAL_ENV, make_project, minimal_config  # noqa: E402
from test_pmoves_catalog import FILES, FIXTURE, HOSTED_KEYS, LOCAL  # noqa: E402

from components.operate.plan import plan  # noqa: E402
from components.stack.deployment import rendered_files  # noqa: E402
from components.targets.preflight import load  # noqa: E402

STACKS = {
    "full": minimal_config(
        bind_address="0.0.0.0",
        hosts={"main": {}, "gpu": {"url": "ssh://pmoves@jetson-ollama", "address": "jetson-ollama"}},
        catalog={"files": FILES, "variables": {"CLOUDFLARE_ACCOUNT_ID": "bench-account"}},
        ollama={"instances": {"jetson": {"host": "gpu", "port": 11434}}},
    ),
    "local": minimal_config(catalog={"files": FILES, "models": LOCAL}),
}


def project(root: Path) -> Path:
    shutil.copytree(FIXTURE, root / "catalog")
    env = MINIMAL_ENV + "".join(f"{k}={v}\n" for k, v in HOSTED_KEYS.items())
    for stack, config in STACKS.items():
        make_project(root, config, {"env/env.shared": env}, stack=stack)
    return root


def once(stack: str, root: Path) -> tuple[float, float, float]:
    started = time.perf_counter()
    deployment = load(stack, project_dir=root)
    loaded = time.perf_counter()
    rendered_files(deployment)
    rendered = time.perf_counter()
    plan(deployment)
    return loaded - started, rendered - loaded, time.perf_counter() - rendered


def main() -> None:
    repetitions = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    with tempfile.TemporaryDirectory() as scratch:
        root = project(Path(scratch))
        print("| stack | load and check, ms | render, ms | plan under mocks, ms |")
        print("|---|---:|---:|---:|")
        for stack in STACKS:
            runs = [once(stack, root) for _ in range(repetitions)]
            medians = [statistics.median(run[i] for run in runs) * 1000 for i in range(3)]
            print(f"| {stack} | " + " | ".join(f"{m:.0f}" for m in medians) + " |")


if __name__ == "__main__":
    main()
