"""Time `validate` + `plan` of every stack, in-process and as CLI runs.

    python benchmarks/bench_plan.py [N]     (N repetitions, default 5; or `make bench BENCH_N=N`)

In-process, one repetition is what the two CLI commands do after start-up:
`validate` (load, rendered_files, TensorZero's own loader on tensorzero.toml, plan) then `plan` (load, plan). The CLI
column runs `python -m components validate <stack> --env-dir DIR` and then
`... plan <stack> --env-dir DIR` as subprocesses and measures wall time,
interpreter start and imports included.

Staging and prod refuse to load without credentials, so every stack gets a
temporary env dir: the stack's committed layers plus a `.env.local` of obviously
fake values. Operator-local layers (git-ignored) are never read.
"""

import argparse
import asyncio
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))

from components.model.settings import EnvFilesSpec  # noqa: E402
from components.operate import tensorzero_check  # noqa: E402
from components.operate.plan import plan  # noqa: E402
from components.stack.deployment import rendered_files  # noqa: E402
from components.stack.loader import read_stack_config, stacks  # noqa: E402
from components.targets.preflight import load  # noqa: E402

TARGET_S = 5.0


def fake_env_dir(stack: str, root: Path) -> str:
    """The stack's env layers from its committed *.example templates, plus a `.env.local` giving every variable
    they leave empty (the credentials) an obviously fake value."""
    raw, _ = read_stack_config(PROJECT_DIR, stack)
    templates = PROJECT_DIR / EnvFilesSpec.model_validate(raw["env_files"]).dir
    directory = root / stack
    directory.mkdir()
    empty = []
    for template in templates.glob("*.example"):
        shutil.copyfile(template, directory / template.stem)
        empty += [line[:-1] for line in template.read_text().splitlines() if line.endswith("=") and line[0] != "#"]
    (directory / ".env.local").write_text("".join(f"{name}=fake-bench-{name.lower()}-x7q2\n" for name in empty))
    return str(directory)


def in_process(stack: str, env_dir: str) -> float:
    start = time.perf_counter()
    deployment = load(stack, env_dir=env_dir)  # validate
    rendered_files(deployment)
    tensorzero_check.check(deployment)
    plan(deployment)
    plan(load(stack, env_dir=env_dir))  # plan
    return time.perf_counter() - start


def cli(stack: str, env_dir: str) -> float:
    start = time.perf_counter()
    for command in ("validate", "plan"):
        run = subprocess.run(
            [sys.executable, "-m", "components", command, stack, "--env-dir", env_dir],
            cwd=PROJECT_DIR,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        if run.returncode != 0:
            raise SystemExit(f"`python -m components {command} {stack}` exited {run.returncode}:\n{run.stderr}")
    return time.perf_counter() - start


def close_event_loop() -> None:
    """Close the loop Pulumi's runtime opened; left open, its finaliser may complain at exit."""
    try:
        asyncio.get_event_loop_policy().get_event_loop().close()
    except RuntimeError:
        pass


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", nargs="?", type=int, default=5, help="repetitions (default 5)")
    n = parser.parse_args().n
    if n < 1:
        parser.error("n must be at least 1")

    with tempfile.TemporaryDirectory(prefix="bench-env-") as root:
        env_dirs = {stack: fake_env_dir(stack, Path(root)) for stack in stacks()}
        results = {}
        for stack in stacks():
            inproc = [in_process(stack, env_dirs[stack]) for _ in range(n)]
            runs = [cli(stack, env_dirs[stack]) for _ in range(n)]
            results[stack] = (statistics.median(inproc), statistics.median(runs))
    close_event_loop()

    total_in = sum(r[0] for r in results.values())
    total_cli = sum(r[1] for r in results.values())
    print(f"validate + plan, median of {n} runs ({sys.executable}, Python {sys.version.split()[0]})\n")
    print("| stack | in-process median ms | CLI median ms (wall) |")
    print("|---|---:|---:|")
    for stack, (inproc, runs) in results.items():
        print(f"| {stack} | {ms(inproc)} | {ms(runs)} |")
    print(f"| **total** | **{ms(total_in)}** | **{ms(total_cli)}** |")
    verdict = "met" if total_cli < TARGET_S else "NOT met"
    print(f"\ntarget: under {TARGET_S:.0f} s in total for every stack (CLI, wall): {total_cli:.2f} s, {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
