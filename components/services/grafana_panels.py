"""The building blocks of the stack's Grafana dashboards (grafana-foundation-sdk): rows, panels, the JSON model."""

import json
from collections.abc import Sequence
from dataclasses import dataclass

from grafana_foundation_sdk.builders import dashboard, stat, timeseries
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import Threshold, ThresholdsMode

from components.services.grafana_queries import PROMETHEUS_DS


@dataclass(frozen=True)
class Row:
    title: str
    panels: Sequence[cogbuilder.Builder]


def series(title: str, description: str, unit: str, targets, datasource=PROMETHEUS_DS, span=12):
    panel = timeseries.Panel().title(title).description(description).unit(unit).datasource(datasource)
    return panel.targets(list(targets)).span(span).height(8)


def up_stat(title: str, description: str, targets) -> stat.Panel:
    steps = [Threshold(value=None, color="red"), Threshold(value=1, color="green")]
    return (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(PROMETHEUS_DS)
        .targets(list(targets))
        .thresholds(dashboard.ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps(steps))
        .span(6)
        .height(4)
    )


def assemble(uid: str, title: str, description: str, rows: Sequence[Row]) -> dict:
    """The dashboard's JSON model; panel ids follow their order, so they only change when it does."""
    board = (
        dashboard.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["tensorzero", "pmoves"])
        .time("now-6h", "now")
        .refresh("1m")
        .timezone("browser")
    )
    next_id = 1
    for row in rows:
        board = board.with_row(dashboard.Row(row.title).id(next_id))
        next_id += 1
        for panel in row.panels:
            board = board.with_panel(panel.id(next_id))
            next_id += 1
    return json.loads(json.dumps(board.build(), cls=JSONEncoder))


def to_json(model: dict) -> str:
    """Sorted keys and a trailing newline: a re-render is byte-identical and diffs stay reviewable."""
    return json.dumps(model, indent=2, sort_keys=True) + "\n"


def targets(model: dict):
    """(panel, target) for every query of a dashboard model, rows' nested panels included."""
    for panel in model.get("panels", []):
        for inner in [panel, *panel.get("panels", [])]:
            for target in inner.get("targets", []):
                yield inner, target
