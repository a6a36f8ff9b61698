"""What every benchmark here does to keep its figures honest.

- The machine's load average is read before and after each round; a round that starts or ends with more than
  BUSY_PER_CPU runnable tasks per core is a *busy* round. Figures come from the quiet rounds; when every
  round was busy they come from all of them and say so loudly, never silently.
- The configurations run rotated within each round (round r starts at the r-th one), so none always runs
  first (cold caches) or last (after the others heated the machine).
- Each figure is the median over rounds with its range (min-max).
"""

import os
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BUSY_PER_CPU = 0.25


def load_average() -> tuple[float, float, float]:
    return os.getloadavg()


def busy(load: tuple[float, float, float]) -> bool:
    return load[0] > BUSY_PER_CPU * (os.cpu_count() or 1)


@dataclass
class Rounds:
    """Per configuration, one value per round; per round, the load before and after."""

    values: dict[str, list] = field(default_factory=dict)  # a float, or a dict of named floats, per round
    loads: list[tuple[tuple[float, ...], tuple[float, ...]]] = field(default_factory=list)

    def busy_rounds(self) -> list[int]:
        return [i for i, (before, after) in enumerate(self.loads) if busy(before) or busy(after)]

    def counted(self) -> list[int]:
        """The rounds the figures come from: the quiet ones, or all when none was quiet."""
        quiet = [i for i in range(len(self.loads)) if i not in self.busy_rounds()]
        return quiet or list(range(len(self.loads)))

    def figure(self, config: str, name: str | None = None) -> tuple[float, float, float]:
        """(median, min, max) over the counted rounds (of the value called `name`, when a round gives several)."""
        picked = [self.values[config][i] if name is None else self.values[config][i][name] for i in self.counted()]
        return statistics.median(picked), min(picked), max(picked)

    def verdict_note(self) -> str:
        """One line to print with the figures: how many rounds were busy and what the figures are from."""
        n, busy_n = len(self.loads), len(self.busy_rounds())
        if busy_n == 0:
            return f"all {n} rounds on a quiet machine (1-min load at most {BUSY_PER_CPU} per core)"
        if busy_n < n:
            return f"{busy_n} of {n} rounds on a BUSY machine were left out; figures from the {n - busy_n} quiet ones"
        return (
            f"BUSY MACHINE: all {n} rounds ran with a 1-min load above {BUSY_PER_CPU} per core; these figures "
            "are not comparable with the targets (re-run on an idle machine)"
        )

    @property
    def quiet(self) -> bool:
        return not self.busy_rounds()


def run_rounds(configs: Sequence[str], n: int, measure: Callable[[str], Any], log=sys.stderr) -> Rounds:
    """`measure(config)` for every configuration, `n` rounds, rotated within each round."""
    result = Rounds({config: [None] * n for config in configs})
    for r in range(n):
        before = load_average()
        order = list(configs[r % len(configs) :]) + list(configs[: r % len(configs)])
        for config in order:
            result.values[config][r] = measure(config)
        after = load_average()
        result.loads.append((before, after))
        flag = " BUSY" if busy(before) or busy(after) else ""
        print(f"round {r + 1}/{n}: load {fmt_load(before)} -> {fmt_load(after)}{flag}", file=log)
    return result


def fmt_load(load: Sequence[float]) -> str:
    return "/".join(f"{x:.2f}" for x in load)


def load_line(rounds: Rounds) -> str:
    first, last = rounds.loads[0][0], rounds.loads[-1][1]
    return (
        f"load average (1/5/15 min) before: {fmt_load(first)}, after: {fmt_load(last)}, "
        f"{os.cpu_count()} cores; {rounds.verdict_note()}"
    )


def command_line() -> str:
    return "python " + " ".join([os.path.relpath(sys.argv[0]), *sys.argv[1:]])


def write_between_markers(page: Path, markers: tuple[str, str], text: str) -> None:
    """Replace what stands between a page's two markers with `text` (the page's figures, re-run)."""
    document = page.read_text()
    begin, end = (document.index(marker) for marker in markers)
    page.write_text(document[: begin + len(markers[0])] + "\n" + text + "\n" + document[end:])
