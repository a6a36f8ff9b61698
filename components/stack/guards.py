"""Guards on every way this package can lose data, outside dev.

A setting that deletes data (each service names its own: `ServiceDefinition.destructive`; `protect_data:
false` is stack-wide) is refused by `validate` unless the stack file confirms that very value, by name and
date:

    pmoves-tensorzero:data_loss_confirmations:
      - change: "clickhouse.retention_days: 90"
        by: Jane Operator
        date: "2026-07-01"

A confirmation names the value, so lowering retention to 30 later needs a new one. What a change of the
stack would do to data volumes is seen only by comparing plans: `diff` marks every one it would delete, detach,
replace or move as DATA LOSS (components/operate/dataloss.py) and refuses one outside dev that no confirmation
names.
"""

import datetime

from components.model.settings import CONFIRMATIONS as KEY
from components.model.settings import Tier


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
