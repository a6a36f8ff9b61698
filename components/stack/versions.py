"""Versions that must go together, checked before an upgrade is deployed.

- The gateway, the UI and the `tensorzero` client the tests pin are one release (FACTS: CalVer, released
  together); the UI's tag is checked by ui.py, the client's here against requirements.txt.
- ClickHouse within what that TensorZero release runs on. TensorZero publishes no hard minimum; what it
  says and does (read in its docs and source): its deployment docs say "use ClickHouse lts, not latest,
  in production; we test against both"; its ClickHouse CI workflow (.github/workflows/clickhouse-tests.yml)
  runs `lts` and `25.11`; its compose examples pinned `clickhouse/clickhouse-server:24.12-alpine` until they
  moved to `lts`. So for 2026.6.0 the range is 24.12 to 25.11 (major.minor, both included). A release not
  in the table is refused until someone checks its notes and adds its range: the way to upgrade safely.
"""

import re
from pathlib import Path
from typing import Optional

from components.core.types import image_tag

CLIENT_PINS = "requirements.txt"  # validate runs the `tensorzero` loader of the gateway's release
CLICKHOUSE_RANGES: dict[str, tuple[tuple[int, int], tuple[int, int]]] = {
    "2026.6.0": ((24, 12), (25, 11)),
}
_MAJOR_MINOR = re.compile(r"^(\d+)\.(\d+)(?:[.-].*)?$")


def clickhouse_version(image: str) -> Optional[tuple[int, int]]:
    """(major, minor) of a ClickHouse image tag (`24.12-alpine`, `25.8.3.1`); None for `lts`, `latest`..."""
    found = _MAJOR_MINOR.match(image_tag(image))
    return (int(found[1]), int(found[2])) if found else None


def pinned_client(project_dir: Path) -> Optional[str]:
    pins = project_dir / CLIENT_PINS
    if not pins.is_file():
        return None  # a project without the tests (a throwaway one): nothing to compare with
    found = re.search(r"^tensorzero==(\S+)", pins.read_text(), re.MULTILINE)
    return found[1] if found else None


def _shown(version: tuple[int, int]) -> str:
    return f"{version[0]}.{version[1]}"


def upgrade_problems(spec, project_dir: Path) -> list[tuple[str, str]]:
    """(key, problem) of every version that does not go with the others."""
    gateway = image_tag(spec.gateway.image)
    problems = []
    client = pinned_client(project_dir)
    if client is not None and client != gateway:
        problems.append(
            (
                "gateway.image",
                f"tag '{gateway}' differs from the tensorzero client the tests pin ({CLIENT_PINS}: "
                f"tensorzero=={client}); gateway, UI and client are one release: bump them together",
            )
        )
    supported = CLICKHOUSE_RANGES.get(gateway)
    if supported is None:
        known = ", ".join(sorted(CLICKHOUSE_RANGES))
        problems.append(
            (
                "gateway.image",
                f"no ClickHouse range is known for TensorZero {gateway} (known: {known}); check its release notes "
                "and add it to components/stack/versions.py",
            )
        )
        return problems
    version = clickhouse_version(spec.clickhouse.image)
    low, high = supported
    if version is None:
        problems.append(
            ("clickhouse.image", f"pin a ClickHouse version ({_shown(low)} to {_shown(high)} for TensorZero {gateway})")
        )
    elif not low <= version <= high:
        problems.append(
            (
                "clickhouse.image",
                f"ClickHouse {_shown(version)} is outside what TensorZero {gateway} runs on ({_shown(low)} to "
                f"{_shown(high)}; components/stack/versions.py)",
            )
        )
    return problems
