"""The quick benchmarks still run (their figures are not checked: timings belong to docs/benchmarks.md).

A benchmark nobody runs breaks unseen: bench_catalog.py stopped at a rule the stacks gained (two stacks of one
project may not share a name_prefix on one engine) until it was next run for figures.
"""

import json
import subprocess
import sys

from components.stack.loader import PROJECT_DIR

BENCHMARKS = PROJECT_DIR / "benchmarks"


def run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *argv], cwd=PROJECT_DIR, capture_output=True, text=True, timeout=300)


def test_the_catalog_benchmark_times_both_stacks():
    done = run(str(BENCHMARKS / "bench_catalog.py"), "1")
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith(("| full |", "| local |"))]
    assert len(rows) == 2, done.stdout


def test_pulumi_s_floor_declares_every_resource_of_a_plan(tmp_path, canary_env_dirs):
    planned = run("-m", "components", "plan", "dev", "--env-dir", canary_env_dirs["dev"], "--json")
    assert planned.returncode == 0, planned.stderr
    plan = tmp_path / "dev.json"
    plan.write_text(planned.stdout)
    done = run(str(BENCHMARKS / "pulumi_floor.py"), str(plan))
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{len(json.loads(planned.stdout)['resources'])} resources declared\n"
