"""What every benchmark here does to keep its figures honest.

- The machine's load average is printed before and after each round. It counts the benchmark's own work too
  (one serial benchmark holds a 2-core machine's 1-min load near 1), so what makes a round *busy* is the CPU
  the rest of the machine used meanwhile: every core's busy time (/proc/stat) less the benchmark's own
  process tree's (itself, its reaped children, and its live descendants from /proc). A round in which others
  used more than BUSY_PER_CPU of a core per core is busy. Figures come from the quiet rounds; when every round
  was busy they come from all of them and say so loudly, never silently.
- The configurations run rotated within each round (round r starts at the r-th one), so none always runs
  first (cold caches) or last (after the others heated the machine).
- Each figure is the median over rounds with its range (min-max).
"""

import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BUSY_PER_CPU = 0.25


def load_average() -> tuple[float, float, float]:
    return os.getloadavg()


def busy(load: tuple[float, float, float]) -> bool:
    """For a one-off measurement with no round around it: the 1-min load alone (the benchmark's own included)."""
    return load[0] > BUSY_PER_CPU * (os.cpu_count() or 1)


def _own_tree_seconds() -> float:
    """CPU seconds of this process, its reaped children and every live descendant (servers the benchmark runs)."""
    tick = os.sysconf("SC_CLK_TCK")
    parents, ticks = {}, {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()  # from field 3 (state) on: ppid, ..., utime, stime
            except OSError:
                continue
            parents[int(entry)], ticks[int(entry)] = int(fields[1]), int(fields[11]) + int(fields[12])
    me, live = os.getpid(), 0
    for pid in ticks:
        ancestor = parents.get(pid)
        while ancestor and ancestor != me:
            ancestor = parents.get(ancestor)
        if ancestor == me:
            live += ticks[pid]
    usage = os.times()
    return usage.user + usage.system + usage.children_user + usage.children_system + live / tick


def _machine_busy_seconds() -> float:
    with open("/proc/stat") as stat:
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in stat.readline().split()[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


class OthersMeter:
    """Cores' worth of CPU the rest of the machine used between start() and stop()."""

    def start(self) -> None:
        self.wall, self.machine, self.own = time.monotonic(), _machine_busy_seconds(), _own_tree_seconds()

    def stop(self) -> float:
        wall = time.monotonic() - self.wall
        others = (_machine_busy_seconds() - self.machine) - (_own_tree_seconds() - self.own)
        return max(others, 0.0) / wall if wall > 0 else 0.0


@dataclass
class Rounds:
    """Per configuration, one value per round; per round, the load before and after and the others' CPU."""

    values: dict[str, list] = field(default_factory=dict)  # a float, or a dict of named floats, per round
    loads: list[tuple[tuple[float, ...], tuple[float, ...]]] = field(default_factory=list)
    others: list[float] = field(default_factory=list)  # cores' worth of CPU the rest of the machine used

    def busy_rounds(self) -> list[int]:
        limit = BUSY_PER_CPU * (os.cpu_count() or 1)
        return [i for i, others in enumerate(self.others) if others > limit]

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
        others = "/".join(f"{x:.2f}" for x in self.others)
        if busy_n == 0:
            return f"all {n} rounds quiet (other processes used {others} cores: at most {BUSY_PER_CPU} per core)"
        if busy_n < n:
            return (
                f"{busy_n} of {n} rounds on a BUSY machine were left out (other processes used {others} cores); "
                f"figures from the {n - busy_n} quiet ones"
            )
        return (
            f"BUSY MACHINE: in all {n} rounds other processes used more than {BUSY_PER_CPU} of a core per core "
            f"({others} cores); these figures are not comparable with the targets (re-run on an idle machine)"
        )

    @property
    def quiet(self) -> bool:
        return not self.busy_rounds()


def run_rounds(configs: Sequence[str], n: int, measure: Callable[[str], Any], log=sys.stderr) -> Rounds:
    """`measure(config)` for every configuration, `n` rounds, rotated within each round."""
    result = Rounds({config: [None] * n for config in configs})
    meter = OthersMeter()
    for r in range(n):
        before = load_average()
        meter.start()
        order = list(configs[r % len(configs) :]) + list(configs[: r % len(configs)])
        for config in order:
            result.values[config][r] = measure(config)
        result.others.append(meter.stop())
        after = load_average()
        result.loads.append((before, after))
        flag = " BUSY" if r in result.busy_rounds() else ""
        print(
            f"round {r + 1}/{n}: load {fmt_load(before)} -> {fmt_load(after)}, "
            f"other processes {result.others[-1]:.2f} cores{flag}",
            file=log,
        )
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
