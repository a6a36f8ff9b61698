"""Time each CLI verb of every stack as a fresh process, with the share its imports take.

    python benchmarks/bench_plan.py [N] [--write-docs]     (N rounds, default 5; or `make bench BENCH_N=N`)

Each round runs `python -m components VERB STACK --env-dir DIR` (`render` with `--out`) for every verb
(validate, render, env, plan) of every stack, as subprocesses, wall time from start to exit: interpreter
start, imports and work. The configurations run rotated within each round; each figure is the median over
rounds with its range, and rounds taken on a busy machine are left out, or flagged when all were busy
(benchmarks/honest.py). The import share comes from one extra `python -X importtime` run per verb and stack
(the sum of every module's own import time; for `validate` the loader's child process is included, though it
runs beside the parent). Bytecode caches are written and used, as in an operator's venv (a warm-up run first).
`validate` runs twice: as an operator re-runs it (TensorZero's loader passed this exact config before, so it is
not loaded again) and with `--no-cache` (the loader's child runs, as on the first `validate` after a change).

Beside each stack's `plan`, benchmarks/pulumi_floor.py times Pulumi alone declaring that plan's resources: what
no change to this package can take away while `plan` and `validate` run Pulumi's SDK.

It ends with the command and its figures; --write-docs replaces them between the markers in docs/benchmarks.md.

Targets: every verb of a Docker stack under 0.5 s, of a cluster stack under 0.8 s, on an idle machine.

Staging and prod refuse to load without credentials, so every stack gets a
temporary env dir: the stack's committed layers plus a `.env.local` of obviously
fake values. Operator-local layers (git-ignored) are never read.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))

import honest  # noqa: E402

from components.model.settings import EnvFilesSpec  # noqa: E402
from components.stack.loader import read_stack_config, stacks  # noqa: E402

VERBS = ("validate", "validate --no-cache", "render", "env", "plan")
FLOOR = "pulumi_floor"  # benchmarks/pulumi_floor.py: the same resources, Pulumi alone
DOCS = PROJECT_DIR / "docs" / "benchmarks.md"
MARKERS = ("<!-- bench-plan:start -->", "<!-- bench-plan:end -->")
TARGET_S = {"docker": 0.5, "cluster": 0.8}


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


def command(verb: str, stack: str, env_dir: str, out: str) -> list[str]:
    extra = ["--out", out] if verb == "render" else []
    name, *flags = verb.split()
    return [sys.executable, "-m", "components", name, stack, "--env-dir", env_dir, *flags, *extra]


def environment() -> dict[str, str]:
    """As an operator runs it: bytecode caches written and read."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def run(argv: list[str], *flags: str) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [argv[0], *flags, *argv[1:]], cwd=PROJECT_DIR, env=environment(), capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"`{' '.join(argv[1:])}` exited {done.returncode}:\n{done.stderr}")
    return done


def wall(argv: list[str]) -> float:
    start = time.perf_counter()
    run(argv)
    return time.perf_counter() - start


def import_seconds(argv: list[str]) -> float:
    """The sum of every module's own import time, from `python -X importtime`."""
    total_us = 0
    for line in run(argv, "-X", "importtime").stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            own = line.split(":", 1)[1].split("|")[0].strip()
            total_us += int(own) if own.isdigit() else 0
    return total_us / 1e6


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", nargs="?", type=int, default=5, help="rounds (default 5)")
    parser.add_argument("--write-docs", action="store_true", help="write the figures into docs/benchmarks.md")
    args = parser.parse_args()
    n = args.n
    if n < 1:
        parser.error("n must be at least 1")

    cluster = {stack for stack in stacks() if read_stack_config(PROJECT_DIR, stack)[0].get("kubernetes")}
    with tempfile.TemporaryDirectory(prefix="bench-env-") as root:
        env_dirs = {stack: fake_env_dir(stack, Path(root)) for stack in stacks()}
        argvs = {
            f"{verb} {stack}": command(verb, stack, env_dirs[stack], str(Path(root) / "out" / stack))
            for stack in stacks()
            for verb in VERBS
        }
        for stack in stacks():
            plan_json = Path(root) / f"{stack}.plan.json"
            plan_json.write_text(run(command("plan --json", stack, env_dirs[stack], "")).stdout)
            argvs[f"{FLOOR} {stack}"] = [sys.executable, str(Path(__file__).with_name(f"{FLOOR}.py")), str(plan_json)]
        for argv in argvs.values():
            run(argv)  # warm-up: bytecode caches written, files in the page cache
        rounds = honest.run_rounds(list(argvs), n, lambda config: wall(argvs[config]))
        imports = {config: import_seconds(argv) for config, argv in argvs.items()}

    text = report(argvs, rounds, imports, cluster, n)
    print(text)
    if args.write_docs:
        honest.write_between_markers(DOCS, MARKERS, text)
        print(f"\nwritten into {DOCS.relative_to(PROJECT_DIR)}")
    return 0


def report(argvs: dict, rounds: honest.Rounds, imports: dict, cluster: set, n: int) -> str:
    lines = [
        f"Each verb as a fresh process (Python {sys.version.split()[0]}, {os.cpu_count()} cores), {n} rounds",
        "",
        "```text",
        honest.load_line(rounds),
        "```",
        "",
        "| stack | verb | median ms (range) | imports ms (-X importtime) | target ms | met |",
        "|---|---|---:|---:|---:|---|",
    ]
    missed = []
    for config in argvs:
        verb, stack = config.rsplit(" ", 1)
        if verb == FLOOR:
            continue
        median, low, high = rounds.figure(config)
        target = TARGET_S["cluster" if stack in cluster else "docker"]
        met = ("yes" if median < target else "no") if rounds.quiet else "not judged (busy)"
        if median >= target:
            missed.append(config)
        share = f"{ms(imports[config])} ({imports[config] / median:.0%})"
        lines.append(f"| {stack} | {verb} | {ms(median)} ({ms(low)}-{ms(high)}) | {share} | {ms(target)} | {met} |")
    lines += [
        "",
        f"Pulumi's own share of `plan` ({FLOOR}.py: the plan's resources declared as generic resources under",
        "mocks, with Pulumi's imports and none of this package's code; a floor, not a model):",
        "",
        "| stack | plan ms | Pulumi's floor ms | left for this package's imports, load and program ms |",
        "|---|---:|---:|---:|",
    ]
    for stack in stacks():
        plan, floor = rounds.figure(f"plan {stack}")[0], rounds.figure(f"{FLOOR} {stack}")[0]
        lines.append(f"| {stack} | {ms(plan)} | {ms(floor)} | {ms(plan - floor)} |")
    lines += ["", f"Command: `{honest.command_line()}`"]
    if not rounds.quiet:
        lines.append("Targets not judged: " + rounds.verdict_note())
    else:
        lines.append(f"Targets: {'all met' if not missed else 'NOT met for ' + ', '.join(missed)}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
