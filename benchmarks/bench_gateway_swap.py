"""What a gateway replacement costs callers: latency through the edge at rest and during the swap.

    python benchmarks/bench_gateway_swap.py [--rate R] [--write-docs]

Runs the live stack of the tests (tests/live: local Docker engine, images built from Debian packages, the
stand-in OpenResty image running the edge's rendered files, the gateway stand-in in front of TensorZero's real
OpenAI-compatible routes) and replaces the gateway as `pulumi up` does (tests/live/swap.py) under open-loop
load (tests/openloop.py: latency measured from each request's due time). Needs root and dockerd, as the live
tests do. --write-docs replaces the table between the markers in docs/edge.md.
"""

import argparse
import secrets
import sys
import tempfile
from collections import Counter
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))
sys.path.insert(0, str(PROJECT_DIR / "tests"))

import honest  # noqa: E402
from live.conftest import BUILD_IMAGES  # noqa: E402
from live.engine import Fleet  # noqa: E402
from live.livestack import live_deployment, start  # noqa: E402
from live.swap import swap_under_load  # noqa: E402

DOCS = PROJECT_DIR / "docs" / "edge.md"
MARKERS = ("<!-- bench-swap:start -->", "<!-- bench-swap:end -->")


def main() -> int:
    import subprocess

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=25, help="requests per second through the edge (default 25)")
    parser.add_argument("--write-docs", action="store_true", help="write the table into docs/edge.md")
    args = parser.parse_args()
    subprocess.run(["bash", str(BUILD_IMAGES)], check=True)
    before = honest.load_average()
    fleet = Fleet(f"pmoves-bench-{secrets.token_hex(3)}")
    fleet.create_network()
    try:
        with tempfile.TemporaryDirectory() as root:
            live = start(fleet, live_deployment(Path(root) / "project", fleet.prefix))
            swap = swap_under_load(live, args.rate)
    finally:
        fleet.remove()
    after = honest.load_average()
    rest, during = swap.figures(during=False), swap.figures(during=True)
    lines = [
        f"Measured by `benchmarks/bench_gateway_swap.py` on this project's 2-core machine: `POST /v1/embeddings` "
        f"through the edge at {args.rate:g} requests/s (open loop, latency from each request's due time) while "
        f"the gateway is replaced (create, healthy, stop with drain, remove: {swap.ended - swap.began:.1f} s); "
        "milliseconds.",
        "",
        f"load average (1/5/15 min) before: {honest.fmt_load(before)}, after: {honest.fmt_load(after)}"
        + (
            "; BUSY MACHINE: latencies include other work's queueing"
            if honest.busy(before) or honest.busy(after)
            else ""
        ),
        "",
        "| phase | requests | failed | p50 | p99 |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, (count, p50, p99), during_swap in (("at rest", rest, False), ("during the swap", during, True)):
        failed = len([o for o in swap.phase(during_swap) if not o.ok])
        lines.append(f"| {label} | {count} | {failed} | {p50 * 1000:.1f} | {p99 * 1000:.1f} |")
    failures = Counter(f"{o.status or o.error.split(':')[0]}" for o in swap.failed())
    if failures:
        lines += ["", "Failed: " + ", ".join(f"{count} x {kind}" for kind, count in sorted(failures.items())) + "."]
    streamed = "completed" if swap.stream_done and not swap.stream_error else f"FAILED ({swap.stream_error})"
    lines += ["", f"A streamed answer open across the swap: {streamed} ({len(swap.stream_chunks)} chunks)."]
    text = "\n".join(lines)
    print(text)
    if args.write_docs:
        honest.write_between_markers(DOCS, MARKERS, text)
    return 0 if not swap.failed() else 1


if __name__ == "__main__":
    sys.exit(main())
