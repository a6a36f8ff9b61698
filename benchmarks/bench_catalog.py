"""Time PMOVES's production catalog through the package: load and check, render, plan under mocks.

    python benchmarks/bench_catalog.py [N]     (N rounds, default 5; stacks rotated, load average printed: honest.py)

The catalog is tests/fixtures/pmoves_catalog/ (20 chat models over two Ollama hosts, 9 embedding models,
12 functions of up to 11 variants, files named by path), served whole by a two-host stack with both Ollamas
(`full`), and by a one-host stack serving the local models only, its functions cut down (`local`). In-process:
what `validate` does after start-up (load with every check, render every file, plan under Pulumi's mocks).
"""

import shutil
import sys
import tempfile
import time
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))
sys.path.insert(0, str(PROJECT_DIR / "tests"))

import honest  # noqa: E402
from conftest import MINIMAL_ENV, make_project, minimal_config  # noqa: E402
from test_pmoves_catalog import FILES, FIXTURE, HOSTED_KEYS, LOCAL  # noqa: E402

from components.operate.plan import plan  # noqa: E402
from components.stack.deployment import rendered_files  # noqa: E402
from components.targets.preflight import load  # noqa: E402

STACKS = {
    # As tests/catalog/test_pmoves_catalog.py's `full`: PMOVES as it runs, the Jetson's Ollama behind its guard.
    "full": minimal_config(
        hosts={
            "main": {},
            "gpu": {"url": "ssh://pmoves@jetson-ollama", "address": "jetson-ollama", "bind_address": "100.101.0.2"},
        },
        ollama_guard={"enabled": True, "host": "gpu", "ollama": "jetson", "allow": ["100.101.0.1/32"]},
        catalog={"files": FILES, "variables": {"CLOUDFLARE_ACCOUNT_ID": "bench-account"}},
        ollama={"instances": {"jetson": {"host": "gpu", "port": 11434, "gpu": True}}},
    ),
    # Its own name_prefix: two stacks of one project on one Docker engine never share one.
    "local": minimal_config(name_prefix="bench-local", catalog={"files": FILES, "models": LOCAL}),
}


def project(root: Path) -> Path:
    shutil.copytree(FIXTURE, root / "catalog")
    env = MINIMAL_ENV + "".join(f"{k}={v}\n" for k, v in HOSTED_KEYS.items())
    for stack, config in STACKS.items():
        make_project(root, config, {"env/env.shared": env}, stack=stack)
    return root


PHASES = ("load", "render", "plan")


def once(stack: str, root: Path) -> tuple[float, float, float]:
    started = time.perf_counter()
    deployment = load(stack, project_dir=root)
    loaded = time.perf_counter()
    rendered_files(deployment)
    rendered = time.perf_counter()
    plan(deployment)
    return loaded - started, rendered - loaded, time.perf_counter() - rendered


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    with tempfile.TemporaryDirectory() as scratch:
        root = project(Path(scratch))
        measured = honest.run_rounds(
            list(STACKS), rounds, lambda stack: dict(zip(PHASES, once(stack, root), strict=True))
        )
    print(honest.load_line(measured) + "\n")
    print("| stack | load and check, ms | render, ms | plan under mocks, ms |")
    print("|---|---:|---:|---:|")
    for stack in STACKS:
        figures = [measured.figure(stack, phase) for phase in PHASES]
        print(
            f"| {stack} | "
            + " | ".join("{:.0f} ({:.0f}-{:.0f})".format(*(x * 1000 for x in f)) for f in figures)
            + " |"
        )
    print(f"\nmedian (range) over rounds; command: {honest.command_line()}")


if __name__ == "__main__":
    main()
