"""Every path by which a change of the stack file loses data, with the verdict `diff` must give it: each data
volume (Docker volume, adopted volume, Kubernetes claim) deleted, detached, replaced or moved is DATA LOSS,
refused outside dev until confirmed; the changes that keep the data are not."""

import pytest
from test_guards import confirm, with_spec

from components.operate.ci import StackDiff
from components.operate.plan import plan


def adopted(section, role: str, **changes) -> dict:
    """`adopt_volumes` of a service with the entry `role` changed, or dropped (no changes)."""
    volumes = dict(section.adopt_volumes)
    if changes:
        volumes[role] = volumes[role].model_copy(update=changes)
    else:
        del volumes[role]
    return {"adopt_volumes": volumes}


def host(spec, name: str, **changes) -> dict:
    return {**spec.hosts, name: spec.hosts[name].model_copy(update=changes)}


# Every claim the cluster stack's StatefulSets make: what a change of namespace or context leaves behind.
CLUSTER_CLAIMS = (
    "data-tensorzero-clickhouse-0",
    "backups-tensorzero-clickhouse-0",
    "data-tensorzero-grafana-0",
    "models-ollama-0",
    "data-tensorzero-prometheus-0",
)


def cluster(spec, **changes):
    return spec.kubernetes.model_copy(update=changes)


# (stack, change of the stack file, the confirmations it needs: empty for a change that keeps every byte).
PATHS = {
    "prod: clickhouse.adopt_volumes dropped (ClickHouse onto a new, empty volume)": (
        "prod",
        lambda s: {"clickhouse": adopted(s.clickhouse, "data")},
        {"volume tensorzero-clickhouse-data: detach"},
    ),
    "prod: ollama.adopt_volumes dropped (its models onto a new, empty volume)": (
        "prod",
        lambda s: {"ollama": adopted(s.ollama, "models")},
        {"volume pmoves-ollama-models: detach"},
    ),
    "prod: an adopted volume renamed": (
        "prod",
        lambda s: {"clickhouse": adopted(s.clickhouse, "data", name="tensorzero-clickhouse-data-2")},
        {"volume tensorzero-clickhouse-data: detach"},
    ),
    "prod: hosts.gpu.url changed (the GPU host's containers and volumes recreated elsewhere)": (
        "prod",
        lambda s: {"hosts": host(s, "gpu", url="ssh://pmoves@jetson-ollama-2")},
        {"volume pmoves-prod-ollama-jetson-models: move"},
    ),
    "prod: Grafana disabled (its data volume leaves the stack)": (
        "prod",
        lambda s: {"grafana": {"enabled": False}},
        {"volume pmoves-prod-tensorzero-grafana-data: delete"},
    ),
    "prod: clickhouse.backups false (the backups volume leaves the stack)": (
        "prod",
        lambda s: {"clickhouse": {"backups": False}, "data_loss_confirmations": confirm("clickhouse.backups: false")},
        {"volume pmoves-prod-tensorzero-clickhouse-backups: delete"},
    ),
    "staging: name_prefix renamed (every volume renamed, replaced by empty ones)": (
        "staging",
        lambda s: {"name_prefix": "pmoves-renamed"},
        {
            f"volume pmoves-staging-tensorzero-{name}: replace"
            for name in ("clickhouse-data", "clickhouse-backups", "prometheus-data", "grafana-data", "loki-data")
        }
        | {"volume pmoves-staging-ollama-models: replace"},
    ),
    "staging: name_prefix renamed with volume_prefix kept (no loss)": (
        "staging",
        lambda s: {"name_prefix": "pmoves-renamed", "volume_prefix": s.name_prefix},
        set(),
    ),
    "prod: gateway and clickhouse upgraded (containers replaced, volumes kept)": (
        "prod",
        lambda s: {
            "gateway": {"image": "tensorzero/gateway:2026.7.0"},
            "clickhouse": {"image": "clickhouse/clickhouse-server:25.8-alpine"},
        },
        set(),
    ),
    "cluster: namespace changed (every claim left in the old namespace)": (
        "cluster",
        lambda s: {"kubernetes": cluster(s, namespace="pmoves-tz-2")},
        {f"claim {claim}: move" for claim in CLUSTER_CLAIMS},
    ),
    "cluster: kube context changed (another cluster, empty claims)": (
        "cluster",
        lambda s: {"kubernetes": cluster(s, context="pmoves-k3s-2")},
        {f"claim {claim}: move" for claim in CLUSTER_CLAIMS},
    ),
    "cluster: clickhouse.backups false (the backups claim no longer mounted)": (
        "cluster",
        lambda s: {
            "clickhouse": {"backups": False},
            "kubernetes": cluster(
                s, volume_size_gb={k: v for k, v in s.kubernetes.volume_size_gb.items() if k != "clickhouse-backups"}
            ),
            "data_loss_confirmations": confirm("clickhouse.backups: false"),
        },
        {"claim backups-tensorzero-clickhouse-0: detach"},
    ),
    "cluster: a claim's size raised (the StatefulSet is replaced, its retained claims rebound)": (
        "cluster",
        lambda s: {"kubernetes": cluster(s, volume_size_gb={**s.kubernetes.volume_size_gb, "clickhouse-data": 300})},
        set(),
    ),
}


def changed(deployment, change):
    spec = deployment.spec
    updates = change(spec)
    extra = updates.pop("data_loss_confirmations", [])
    updates["data_loss_confirmations"] = list(spec.data_loss_confirmations) + extra
    return with_spec(deployment, **updates)


@pytest.mark.parametrize("path", PATHS)
def test_every_data_loss_path_is_flagged_and_refused_until_confirmed(path, plans, deployments):
    stack, change, needs = PATHS[path]
    deployment = changed(deployments[stack], change)
    after = plan(deployment)
    result = StackDiff.of(stack, plans[stack], after)
    assert result.changes, "the change must change the plan"
    assert {need for _, need, _ in result.data_loss()} == needs
    text = result.text()
    assert text.startswith("DATA LOSS: ") == bool(needs)
    assert result.refused == bool(needs)  # every one of these stacks is beyond dev
    if needs:
        confirmations = list(deployment.spec.data_loss_confirmations) + confirm(*needs)
        confirmed = StackDiff.of(
            stack, plans[stack], plan(with_spec(deployment, data_loss_confirmations=confirmations))
        )
        assert not confirmed.refused and "confirmed in the stack file" in confirmed.text()


def test_a_moved_host_replaces_every_resource_on_it_not_only_its_provider(plans, deployments):
    prod = deployments["prod"]
    moved = with_spec(prod, hosts=host(prod.spec, "gpu", url="ssh://pmoves@jetson-ollama-2"))
    result = StackDiff.of("prod", plans["prod"], plan(moved))
    on_gpu = {
        r["name"]
        for r in plans["prod"]["resources"]
        if (r.get("provider") or "").endswith("::host-gpu-provider") and not r["type"].startswith("tensorzero:")
    }
    replaced = {c.name for c in result.changes if c.action == "replace"}
    assert on_gpu and on_gpu | {"host-gpu-provider"} <= replaced
    [loss] = result.losses
    assert "moves to host ssh://pmoves@jetson-ollama-2" in loss.explain()


def test_a_dev_stack_flags_the_loss_but_does_not_refuse_it(plans, deployments):
    dev = deployments["dev"]
    renamed = with_spec(dev, name_prefix="pmoves-renamed")
    result = StackDiff.of("dev", plans["dev"], plan(renamed))
    assert result.data_loss() and not result.refused
    assert "dev: no confirmation needed" in result.text()


def test_the_loss_verdicts_are_the_cli_exit_status(tmp_path, plans, deployments):
    """`diff` of two plan files exits 3 on an unconfirmed loss outside dev, naming it; 0 on none."""
    import json
    import subprocess
    import sys

    from components.stack.loader import PROJECT_DIR

    prod = deployments["prod"]
    before, after = tmp_path / "before.json", tmp_path / "after.json"
    before.write_text(json.dumps(plans["prod"]))
    after.write_text(json.dumps(plan(changed(prod, PATHS[next(iter(PATHS))][1]))))
    done = subprocess.run(
        [sys.executable, "-m", "components", "diff", str(before), str(after)],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 3, done.stderr
    assert "DATA LOSS: adopted volume tensorzero-clickhouse-data is kept but detached" in done.stdout
    assert 'add {change: "volume tensorzero-clickhouse-data: detach"' in done.stdout
