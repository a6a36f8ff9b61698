"""Who can reach what (components/operate/reach.py): generated from the plans, embedded in docs/exposure.md and
held current there; each row read from what the targets declare (a container's networks, its published ports'
bind addresses, a cluster's NetworkPolicies and ingress)."""

import dataclasses
import shutil

import yaml
from conftest import cli, copy_project

from components.core.names import PROJECT, PROJECT_DIR
from components.operate import reach
from components.services import edge, ollama, ui

STACKS = reach.committed_stacks()
DEPLOYMENTS = reach.load_stacks(STACKS)


def rows(stack: str, role: str) -> list[list[str]]:
    cells = [line.strip("| ").split(" | ") for line in reach.table(DEPLOYMENTS[stack]).splitlines()[2:]]
    return [cell for cell in cells if cell[0] == role]


def test_the_committed_section_equals_a_fresh_generation():
    document = (PROJECT_DIR / reach.DOC_PATH).read_text()
    assert reach.embedded(document, reach.section(DEPLOYMENTS)) == document, "stale: python -m components reach --write"


def test_check_fails_on_a_stale_section_and_write_mends_it(tmp_path):
    project = copy_project(tmp_path)
    (project / "docs").mkdir()
    shutil.copy(PROJECT_DIR / reach.DOC_PATH, project / reach.DOC_PATH)
    assert cli(project, "reach", "--check").returncode == 0
    path = project / reach.DOC_PATH
    path.write_text(path.read_text().replace("| grafana | host | 127.0.0.1:3000 | host loopback", "| grafana | host |"))
    stale = cli(project, "reach", "--check")
    assert stale.returncode == 1 and f"stale: {reach.DOC_PATH}" in stale.stderr
    assert cli(project, "reach", "--write").returncode == 0
    assert path.read_text() == (PROJECT_DIR / reach.DOC_PATH).read_text()


def test_a_published_port_is_loopback_or_lan_by_its_bind_address():
    edge = {(row[2], row[3]) for row in rows("prod", "edge") if row[1] == "host"}
    assert ("127.0.0.1:3030 (gateway's)", "host loopback") in edge
    assert ("100.101.0.1:3030 (gateway's)", "LAN (100.101.0.1)") in edge
    assert all(row[3] == "host loopback" for stack in ("dev", "staging") for role in ("clickhouse", "grafana")
               for row in rows(stack, role) if row[1] == "host")  # fmt: skip


def test_on_pmoves_networks_no_ui_and_ollama_only_where_the_stack_file_joins_it():
    for stack in STACKS:
        assert not [row for row in rows(stack, ui.SERVICE.role) if "(PMOVES's)" in row[1]], stack
    shared = {row[1] for row in rows("prod", ollama.SERVICE.role) if "(PMOVES's)" in row[1]}
    assert shared == {"`pmoves_app` (PMOVES's)", "`pmoves_api` (PMOVES's)"}  # the seed's direct Ollama callers
    # One network less in the stack file, one row less: the table follows the plan, not a list written here.
    deployment = DEPLOYMENTS["prod"]
    plans = dict(deployment.plans)
    plans[ollama.SERVICE.role] = dataclasses.replace(plans[ollama.SERVICE.role], networks=("pmoves_app",))
    narrowed = type("Narrowed", (), {"plans": plans, "spec": deployment.spec})()
    rows_after = [line for line in reach.table(narrowed).splitlines() if line.startswith(f"| {ollama.SERVICE.role} |")]
    assert not [line for line in rows_after if "pmoves_api" in line]


def test_a_cluster_lets_in_only_the_callers_pods_and_the_ingress():
    stack = next(s for s in STACKS if DEPLOYMENTS[s].spec.kubernetes is not None)
    clickhouse = {row[2]: row[3] for row in rows(stack, "clickhouse")}
    assert clickhouse["9000"] == "pods of: clickhouse-schema"
    ingress = [row for role in ("edge", "gateway", "ui") for row in rows(stack, role) if row[1] == "ingress (TLS)"]
    assert ingress and all(row[0] == "edge" for row in ingress)  # the ingress reaches the edge only, behind keys
    config = yaml.safe_load((PROJECT_DIR / "stacks" / f"Pulumi.{stack}.yaml").read_text())["config"]
    assert {row[2].split(":")[0] for row in ingress} == {
        config[f"{PROJECT}:kubernetes"]["ingress"][key] for key in ("host", "ui_host")
    }


def test_the_edges_metrics_port_is_reached_on_the_stacks_network_only():
    for stack in STACKS:
        if DEPLOYMENTS[stack].spec.kubernetes is not None:
            continue
        metrics = [row for row in rows(stack, edge.SERVICE.role) if row[2] == str(edge.METRICS_PORT)]
        assert [row[1] for row in metrics] == [f"`{DEPLOYMENTS[stack].spec.network_name}` (the stack's)"], stack
    # Read from the plan, not written into the table: a plan that said nothing of it lists every network again.
    deployment = DEPLOYMENTS["prod"]
    plans = dict(deployment.plans)
    plans[edge.SERVICE.role] = dataclasses.replace(plans[edge.SERVICE.role], own_network_ports=())
    widened = type("Widened", (), {"plans": plans, "spec": deployment.spec})()
    lines = [line for line in reach.table(widened).splitlines() if line.startswith("| edge | `pmoves_monitoring`")]
    assert f"| {edge.METRICS_PORT} |" in "".join(lines)
