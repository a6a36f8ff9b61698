"""The real Prometheus tools, and the `promtool test rules` cases rendered for one deployment.

`promtool` (Debian `prometheus` 2.42) checks configs and rules and runs rule unit
tests; `prometheus-blackbox-exporter` (Debian 0.23) validates its config. A missing
tool fails the test: these checks are the proof, never optional.
"""

import math
import shutil
import subprocess
from pathlib import Path

import jinja2
import pytest

from components.core.names import TYPE_PREFIX
from components.core.render import RenderedFile
from components.operate.plan import plan
from components.stack.loader import Deployment

HERE = Path(__file__).resolve().parent
HEALTHY = 10  # minutes of healthy samples before every case turns
CGROUP_V1_UNLIMITED = 9223372036854771712  # what cgroup v1 reports as memory.limit_in_bytes without a limit


def tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"`{name}` is not installed; it is the program these tests prove the files with (apt-get install)")
    return found


def run(*args: str, cwd: Path | None = None, stdin: str | None = None) -> subprocess.CompletedProcess:
    """Run a tool; the caller asserts on returncode and shows the output when it fails."""
    return subprocess.run([tool(args[0]), *args[1:]], cwd=cwd, input=stdin, capture_output=True, text=True, timeout=120)


def write_mounted(root: Path, files: list[RenderedFile]) -> dict[str, Path]:
    """Write each file where its container sees it, under `root`; by mount path."""
    written = {}
    for rendered in files:
        path = root / rendered.mount.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(rendered.content)
        written[rendered.mount] = path
    return written


def declared(deployment: Deployment, role: str) -> list[dict]:
    """The resources of one service's component, as `plan` records the whole stack under Pulumi's mocks."""
    desired = plan(deployment)["resources"]
    [component] = [r for r in desired if r["type"].startswith(TYPE_PREFIX) and r["name"] == role]
    return [component] + [r for r in desired if r["parent"] == component["urn"]]


def humanize_percentage(value: float) -> str:
    return "%.4g%%" % (value * 100)  # Prometheus's template function: Sprintf("%.4g%%", v*100)


def hold_minutes(duration: str) -> int:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
    number = int(duration.rstrip("mshdwy"))
    return math.ceil(number * units[duration[len(str(number)) :]] / 60)


def render_cases(
    rule_file: Path,
    scraped: list[dict],
    probes: list[dict],
    thresholds,
    clickhouse: bool,
    backup_max_age_s: int | None = None,
) -> str:
    """The unit-test file for these targets and thresholds (tests/promtool/alerts.test.yml.j2)."""
    hold = hold_minutes(thresholds.for_duration)
    fire_at = HEALTHY + hold + 7  # the 5m rate windows hold only failing samples by then
    failing = fire_at - HEALTHY + 15
    ratio = thresholds.clickhouse_memory_ratio
    high, low = (1 + ratio) / 2, ratio * 0.99
    host, limited = 16_000_000_000, 4_000_000_000
    clickhouse_instance = next((t["instance"] for t in scraped if t["service"] == "clickhouse"), "")
    servers = [
        (clickhouse_instance, 0, host, high),  # cgroup v2 without a limit reads 0
        ("limited-by-its-container:9363", limited, limited, high),
        ("cgroup-v1-without-limit:9363", CGROUP_V1_UNLIMITED, host, high),
        ("just-under-threshold:9363", 0, host, low),
    ]
    memory = {
        "host_total": host,
        "threshold": f"{ratio * 100:g}%",
        "servers": [
            {
                "instance": instance,
                "cgroup": cgroup,
                "resident_before": round(limit * low),
                "resident_after": round(limit * share),
                "fires": share > ratio,
                "expected_value": humanize_percentage(round(limit * share) / limit),
            }
            for instance, cgroup, limit, share in servers
        ],
    }
    free = thresholds.clickhouse_disk_free_ratio
    total = 100_000_000_000
    roomy, near = free + (1 - free) / 2, free + (1 - free) * 0.01
    disks = [
        {
            "name": name,
            "total": total,
            "available_before": round(total * roomy),
            "available_after": round(total * after),
        }
        # Every disk the server declares is watched: the data disk, the backups disk, any other.
        for name, after in (("default", free / 2), ("backups", free / 3), ("other", near))
    ]
    for disk in disks:
        disk["fires"] = disk["available_after"] / total < free
        disk["expected_value"] = humanize_percentage(disk["available_after"] / total)
    p99 = thresholds.gateway_overhead_p99_seconds
    below, above = repr(p99 * 0.9), repr(p99 * 2)
    # Observations a minute: 0.5% beyond `above` while healthy, then 5%: the 99th percentile
    # crosses the threshold while the median stays far below it.
    each, slow_before, slow_after = 200, 1, 10
    fast = f"0+{each - slow_before}x{HEALTHY} {(each - slow_before) * HEALTHY}+{each - slow_after}x{failing}"
    overhead = {
        "threshold": repr(p99),
        # Beyond the highest finite bucket histogram_quantile answers that bucket's bound: exactly `above`.
        "expected_value": "%.3f" % float(above),
        "buckets": [
            {"le": below, "samples": fast},
            {"le": above, "samples": fast},
            {"le": "+Inf", "samples": f"0+{each}x{HEALTHY + failing}"},
        ],
    }
    edge_scrape = next((t for t in scraped if t["service"] == "edge"), None)
    template = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE), undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True
    ).get_template("alerts.test.yml.j2")
    gateway_scrape = next(t for t in scraped if t["service"] == "gateway")
    return template.render(
        rule_file=str(rule_file),
        healthy=HEALTHY,
        failing=failing,
        series_length=HEALTHY + failing,
        pending_at=HEALTHY + hold,
        fire_at=fire_at,
        for_duration=thresholds.for_duration,
        phases={"always_up": f"1x{HEALTHY + failing}", "up_then_down": f"1x{HEALTHY} 0x{failing}"},
        scraped=scraped,
        probes=probes,
        gateway_scrape=gateway_scrape,
        gateway_probe=next(p for p in probes if p["service"] == "gateway"),
        clickhouse=clickhouse,
        clickhouse_instance=clickhouse_instance,
        memory=memory,
        disks=disks,
        disk_threshold=f"{free * 100:g}%",
        overhead=overhead,
        edge_scrape=edge_scrape,
        errors=edge_errors(thresholds.gateway_error_ratio, failing) if edge_scrape else None,
        backup=backup_ages(scraped, backup_max_age_s),
    )


def backup_ages(scraped: list[dict], max_age_s: int | None) -> dict | None:
    """backupctl's last-success series (a unix time, per destination): `local` last succeeded at 0 (epoch,
    where promtool's clock starts) and is checked a minute before and after the schedule runs out; `offsite`
    succeeded again halfway and stays quiet at both. Samples every 10 minutes."""
    target = next((t for t in scraped if t["service"] == "backup"), None)
    if target is None or not max_age_s:
        return None
    step = 600
    steps = max_age_s // step + 3
    halfway = (max_age_s // 2) // step
    return {
        "instance": target["instance"],
        "job": target["job"],
        "steps": steps,
        "max_age": max_age_s,
        "halfway": halfway,
        "offsite_success": halfway * step,
        "quiet_at": f"{max_age_s - 60}s",
        "fire_at": f"{max_age_s + 60}s",
        "fired_value": max_age_s + 60,
    }


def edge_errors(ratio: float, failing: int) -> dict:
    """Per-minute request counts through the edge: a 5xx share well under, just under, and above `ratio`.

    Client errors (4xx) are not the gateway failing: the just-under case adds a large share of them.
    """
    each = 10_000  # requests a minute
    shares = {"healthy": ratio / 2, "under": ratio * 0.9, "high": (1 + ratio) / 2}
    errors = {name: round(each * share) for name, share in shares.items()}
    assert errors["healthy"] / each < errors["under"] / each < ratio < errors["high"] / each
    client_errors = each // 2

    def counter(before: int, after: int) -> str:
        return f"0+{before}x{HEALTHY} {before * HEALTHY}+{after}x{failing}"

    return {
        "threshold": f"{ratio * 100:g}%",
        "expected_value": humanize_percentage(errors["high"] / each),
        "firing": [
            {"status": "200", "samples": counter(each - errors["healthy"], each - errors["high"])},
            {"status": "502", "samples": counter(errors["healthy"], errors["high"])},
        ],
        "under": [
            {"status": "200", "samples": counter(each - errors["under"], each - errors["under"] - client_errors)},
            {"status": "401", "samples": counter(0, client_errors)},
            {"status": "503", "samples": counter(errors["under"], errors["under"])},
        ],
    }
