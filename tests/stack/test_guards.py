"""Every data-loss path, under Pulumi's mocks: refused by validate, flagged (and refused outside dev) by diff,
or made harmless (retain-on-delete); the backups and their alert in every stack; upgrades checked and preceded
by a backup, whose failure stops the deploy before the gateway."""

import dataclasses
import datetime

import pytest
import yaml
from conftest import container_of, resources

from components.core.types import duration_seconds
from components.operate import plan as plan_module
from components.operate.ci import StackDiff
from components.operate.plan import plan
from components.services import backup
from components.services.prometheus import RULES_MOUNT
from components.stack import guards, versions

VOLUME = "docker:index/volume:Volume"


def with_spec(deployment, **changes):
    """The deployment with top-level keys changed, or `section={...}` merged into a section."""
    spec = deployment.spec
    update = {}
    for key, value in changes.items():
        current = getattr(spec, key)
        update[key] = (
            current.model_copy(update=value) if isinstance(value, dict) and hasattr(current, "model_copy") else value
        )
    return dataclasses.replace(deployment, spec=spec.model_copy(update=update))


def confirm(*changes: str) -> list:
    from components.model.settings import Confirmation

    return [Confirmation(change=c, by="Jane Operator", date=datetime.date(2026, 7, 1)) for c in changes]


# --- what every stack has --------------------------------------------------------------------------------


def test_every_volume_is_retained_on_delete_and_protected_outside_dev(plans, deployments, stack):
    volumes = resources(plans[stack], "volume:Volume")
    assert volumes
    for volume in volumes:
        assert volume["retain_on_delete"], volume["name"]
        assert volume["protect"] == deployments[stack].spec.protected


def test_every_stack_with_clickhouse_has_its_backup_schedule_and_alerts(plans, deployments, stack):
    deployment = deployments[stack]
    spec = deployment.spec
    assert spec.deployed("clickhouse") and spec.deployed(backup.SERVICE)
    scheduler = container_of(plans[stack], backup.SERVICE.role)
    assert scheduler["inputs"]["command"] == list(backup.COMMAND)
    mounts = {m["containerPath"]: m["volumeName"] for m in scheduler["inputs"]["volumes"]}
    assert mounts == {"/var/lib/clickhouse-backups": f"{spec.data_volume_prefix}-tensorzero-clickhouse-backups"}
    env = {v.name: v.value for v in deployment.plans["backup"].env}
    assert int(env["BACKUP_EVERY_S"]) == duration_seconds(spec.backup.every)
    rules = next(f for f in deployment.plans["prometheus"].files if f.mount == RULES_MOUNT).content
    alerts = {r["alert"]: r for g in yaml.safe_load(rules)["groups"] for r in g["rules"]}
    assert alerts["BackupTooOld"]["expr"].endswith(f"> {spec.backup.max_age_s()}")
    assert "BackupFailed" in alerts


# --- validate: settings that delete data need a named, dated confirmation outside dev -------------------

DESTRUCTIVE = {
    "protect_data: false": {"protect_data": False},
    "clickhouse.retention_days: 30": {"clickhouse": {"retention_days": 30}},
    "clickhouse.backups: false": {"clickhouse": {"backups": False}},
    "backup.enabled: false": {"backup": {"enabled": False}},
}


@pytest.mark.parametrize("change", DESTRUCTIVE)
@pytest.mark.parametrize("tier", ["staging", "prod"])
def test_a_destructive_setting_is_refused_outside_dev_until_confirmed(deployments, change, tier):
    deployment = with_spec(deployments[tier], **DESTRUCTIVE[change])
    problems = guards.confirmation_problems(deployment.spec)
    key = change.split(":")[0]
    assert [k for k, _ in problems] == [key], problems
    assert f'change: "{change}"' in problems[0][1]  # says exactly what to add
    kept = deployment.spec.data_loss_confirmations
    confirmed = with_spec(deployment, data_loss_confirmations=kept + confirm(change))
    assert guards.confirmation_problems(confirmed.spec) == []
    plan(confirmed)  # and the stack then plans


def test_lowering_retention_needs_a_new_confirmation(deployments):
    prod = deployments["prod"]
    assert prod.spec.clickhouse.retention_days == 365 and guards.confirmation_problems(prod.spec) == []
    lowered = with_spec(prod, clickhouse={"retention_days": 90})
    [(key, problem)] = guards.confirmation_problems(lowered.spec)
    assert key == "clickhouse.retention_days" and "rows older than 90 days are deleted" in problem


def test_dev_needs_no_confirmation_but_a_date_in_the_future_is_refused(deployments):
    dev = with_spec(deployments["dev"], protect_data=False, clickhouse={"retention_days": 1})
    assert guards.confirmation_problems(dev.spec) == []
    future = datetime.date.today() + datetime.timedelta(days=2)
    from components.model.settings import Confirmation

    later = [Confirmation(change="protect_data: false", by="Jane", date=future)]
    [(key, problem)] = guards.confirmation_problems(with_spec(dev, data_loss_confirmations=later).spec)
    assert key == "data_loss_confirmations.0.date" and "in the future" in problem


# --- diff: volumes replaced or deleted are DATA LOSS, refused outside dev unless confirmed -------------


def volume_names(desired) -> dict[str, str]:
    return {r["urn"]: r["inputs"]["name"] for r in desired["resources"] if r["type"] == VOLUME}


def test_renaming_name_prefix_is_data_loss_and_volume_prefix_keeps_the_volumes(plans, deployments, stack):
    deployment = deployments[stack]
    renamed = with_spec(deployment, name_prefix="pmoves-renamed")
    result = StackDiff.of(stack, plans[stack], plan(renamed))
    lost = {change.docker_name for change, _, _ in result.data_loss()}
    assert lost == set(volume_names(plans[stack]).values())  # every volume
    text = result.text()
    assert text.startswith("DATA LOSS: ")  # at the top, before the resource lines
    assert f"set `volume_prefix: {deployment.spec.name_prefix}`" in text  # and how to keep them
    assert result.refused == (deployment.spec.tier.value != "dev")
    kept = with_spec(deployment, name_prefix="pmoves-renamed", volume_prefix=deployment.spec.name_prefix)
    result = StackDiff.of(stack, plans[stack], plan(kept))
    assert result.data_loss() == [] and not result.refused
    assert any(c.type.endswith("container:Container") and c.action == "replace" for c in result.changes)


def test_a_confirmed_volume_change_passes_and_the_pr_comment_says_data_loss(plans, deployments, tmp_path):
    from components.operate import ci

    prod = deployments["prod"]
    spec = prod.spec
    dropped = with_spec(
        prod,
        clickhouse={"backups": False},
        data_loss_confirmations=spec.data_loss_confirmations + confirm("clickhouse.backups: false"),
    )
    result = StackDiff.of("prod", plans["prod"], plan(dropped))
    [(change, need, ok)] = result.data_loss()
    assert (change.action, need, ok) == (
        "delete",
        f"volume {spec.name_prefix}-tensorzero-clickhouse-backups: delete",
        False,
    )
    assert result.refused
    comment = ci.comment("HEAD", [result], tmp_path)
    assert comment.index("### DATA LOSS") < comment.index("### `prod`")
    assert "Refused for prod" in comment
    both = dropped.spec.data_loss_confirmations + confirm(need)
    result = StackDiff.of("prod", plans["prod"], plan(with_spec(dropped, data_loss_confirmations=both)))
    assert not result.refused and "confirmed in the stack file" in result.text()


def test_unprotected_by_mistake_the_volumes_are_still_retained(deployments):
    prod = deployments["prod"]
    unprotected = with_spec(
        prod,
        protect_data=False,
        data_loss_confirmations=prod.spec.data_loss_confirmations + confirm("protect_data: false"),
    )
    volumes = resources(plan(unprotected), "volume:Volume")
    assert volumes and all(not v["protect"] and v["retain_on_delete"] for v in volumes)


# --- upgrades ------------------------------------------------------------------------------------------


def pre_upgrade(desired) -> dict:
    [shot] = [r for r in resources(desired, "container:Container") if r["name"] == "backup-pre-upgrade"]
    return shot


def test_the_pre_upgrade_backup_runs_before_the_gateway_and_again_on_each_version(plans, deployments, stack):
    desired = plans[stack]
    shot = pre_upgrade(desired)
    spec = deployments[stack].spec
    reason = f"before gateway {spec.gateway.image}, clickhouse {spec.clickhouse.image}"
    assert shot["inputs"]["command"] == ["-m", "backupctl", "backup", "--kind", "pre-upgrade", "--reason", reason]
    assert container_of(desired, "clickhouse")["urn"] in shot["dependencies"]
    assert shot["urn"] in container_of(desired, "gateway")["dependencies"]
    bumped = with_spec(
        deployments[stack],
        gateway={"image": "tensorzero/gateway:2026.7.0"},
        clickhouse={"image": "clickhouse/clickhouse-server:25.8-alpine"},
    )
    result = StackDiff.of(stack, desired, plan(bumped))
    replaced = {c.name for c in result.changes if c.action == "replace"}
    assert {"backup-pre-upgrade", "gateway-container", "clickhouse-container"} <= replaced
    assert result.data_loss() == []  # an upgrade replaces containers, never volumes


class FailingPreUpgrade(plan_module.StackMocks):
    """The engine's answer for a pre-upgrade backup that exited 1."""

    def new_resource(self, args):
        name, state = super().new_resource(args)
        if args.name == "backup-pre-upgrade":
            state = {**state, "exitCode": 1}
        return name, state


def test_a_failed_pre_upgrade_backup_stops_the_deploy_before_the_gateway(deployments, monkeypatch):
    recorded = []

    class Monitor(plan_module.RecordingMonitor):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.mocks = FailingPreUpgrade()
            recorded.append(self)

    monkeypatch.setattr(plan_module, "RecordingMonitor", Monitor)
    with pytest.raises(Exception, match="pre-upgrade exited with 1: nothing that waits for it was changed"):
        plan(deployments["dev"])
    names = {r["name"] for r in recorded[0].recorded}
    assert "backup-pre-upgrade" in names and "clickhouse-container" in names
    assert "gateway-container" not in names


@pytest.mark.parametrize(
    ("changes", "key", "message"),
    [
        ({"clickhouse": {"image": "clickhouse/clickhouse-server:24.8-alpine"}}, "clickhouse.image", "outside what"),
        ({"clickhouse": {"image": "clickhouse/clickhouse-server:26.1"}}, "clickhouse.image", "outside what"),
        ({"clickhouse": {"image": "clickhouse/clickhouse-server:lts"}}, "clickhouse.image", "pin a ClickHouse"),
        ({"gateway": {"image": "tensorzero/gateway:2026.7.0"}}, "gateway.image", "differs from the tensorzero client"),
    ],
)
def test_upgrades_are_checked_against_what_tensorzero_supports(deployments, changes, key, message):
    from components.stack.loader import PROJECT_DIR

    spec = with_spec(deployments["dev"], **changes).spec
    problems = versions.upgrade_problems(spec, PROJECT_DIR)
    assert any(k == key and message in m for k, m in problems), problems
    assert versions.upgrade_problems(deployments["dev"].spec, PROJECT_DIR) == []
