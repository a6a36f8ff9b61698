"""Guards on every way this package can lose data, outside dev.

A setting that deletes data (each service names its own: `ServiceDefinition.destructive`; `protect_data:
false` is stack-wide) is refused by `validate` unless the stack file confirms that very value, by name and
date:

    pmoves-tensorzero:data_loss_confirmations:
      - change: "clickhouse.retention_days: 90"
        by: Jane Operator
        date: "2026-07-01"

A confirmation names the value, so lowering retention to 30 later needs a new one. What a change of the
stack would do to volumes is seen only by comparing plans: `diff` marks every volume it would replace or
delete as DATA LOSS and (`diff --against`) refuses one outside dev that no confirmation names.
"""

import datetime
from typing import Optional

from components.model.settings import CONFIRMATIONS as KEY
from components.model.settings import Tier

VOLUME_TYPE = "docker:index/volume:Volume"


def confirmed(spec) -> set[str]:
    return {" ".join(c.change.split()) for c in getattr(spec, KEY)}


def destructive_settings(spec) -> list[tuple[str, str, str]]:
    """(key, change, what it deletes) of every setting of this stack that deletes data."""
    found = []
    if spec.protect_data is False:
        found.append(
            ("protect_data", "protect_data: false", "`pulumi destroy` may then delete the volumes' Docker resources")
        )
    for service in spec.services:
        found += service.destructive(spec)
    return found


def confirmation_problems(spec) -> list[tuple[str, str]]:
    """(key, problem): outside dev, every destructive setting must be confirmed in the stack file."""
    problems = []
    today = datetime.date.today()
    for index, confirmation in enumerate(getattr(spec, KEY)):
        if confirmation.date > today:
            problems.append((f"{KEY}.{index}.date", f"{confirmation.date} is in the future"))
    if spec.tier == Tier.dev:
        return problems
    done = confirmed(spec)
    for key, change, deletes in destructive_settings(spec):
        if change not in done:
            problems.append(
                (
                    key,
                    f"{deletes}; in {spec.tier.value} this needs a confirmation in the stack file: "
                    f'{KEY}: [{{change: "{change}", by: <name>, date: <YYYY-MM-DD>}}]',
                )
            )
    return problems


def volume_change(change) -> Optional[str]:
    """The confirmation a volume change needs (`volume <docker name>: replace`), None if it is no data loss."""
    if change.type != VOLUME_TYPE or change.action not in ("replace", "delete"):
        return None
    return f"volume {change.docker_name}: {change.action}"


def explain(change) -> str:
    """Why a volume change loses data, and how to keep it."""
    if change.action == "delete":
        return (
            f"volume {change.docker_name} leaves the stack: Pulumi retains it in Docker (retain_on_delete), "
            "detached; nothing mounts its data any more"
        )
    if "name" in change.keys and (old_prefix := _renamed_prefix(change.docker_name, change.new_docker_name)):
        return (
            f"volume {change.docker_name} would be replaced by a new, empty {change.new_docker_name}; to keep it "
            f"(and its data), set `volume_prefix: {old_prefix}` in the stack file"
        )
    return f"volume {change.docker_name} would be replaced by a new, empty one ({', '.join(change.keys)})"


def _renamed_prefix(old: str, new: str) -> Optional[str]:
    """The old prefix when only the prefix of `<prefix>-<name>` changed: pmoves-prod-x, pmoves-p2-x -> pmoves-prod."""
    common = 0
    while common < min(len(old), len(new)) and old[-1 - common] == new[-1 - common]:
        common += 1
    suffix = old[len(old) - common :]
    if "-" not in suffix:
        return None
    suffix = suffix[suffix.index("-") :]
    return old[: len(old) - len(suffix)] or None
