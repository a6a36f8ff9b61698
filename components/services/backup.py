"""Scheduled backups of ClickHouse, on the `backups` disk and off-host, and one before every upgrade.

The backup container runs `backupctl` (components/backupctl, standard library only, uploaded as it is into a
pinned `python` image): on the spec's schedule it asks ClickHouse for `BACKUP DATABASE <db>` to the
`backups` disk (ClickHouse's backups volume, which this container mounts too, to list and prune it) and,
with `backup.offsite`, to an S3 prefix (MinIO in PMOVES; ClickHouse finds the credentials in its own
config, `from_env`). Backups are incremental on the previous one until a chain holds `full_every`; the
newest `keep` chains are kept. It serves Prometheus metrics: each run's outcome and when the last good
backup started, per destination; the alerts are in prometheus.py.

`pre-upgrade` is a one-shot taking a full backup before the gateway (which runs TensorZero's migrations at
start, with no way back) is created or replaced: it runs again whenever the gateway's or ClickHouse's image
changes, and a failed run stops `pulumi up` before the gateway (docker_target.passed).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from pydantic import Field

from components.core.envfiles import Variable
from components.core.monitoring import BACKUP_JOB
from components.core.names import METRICS_PATH, PROJECT_DIR
from components.core.plans import Hardening, Monitoring, OneShot, Placement, Scrape, ServicePlan, VolumeMount
from components.core.render import RenderedFile
from components.core.types import (
    Duration,
    EnvName,
    ImageRef,
    Port,
    StrictModel,
    duration_seconds,
)
from components.core.urls import S3BucketURL, S3Region
from components.model.environment import ServiceDefinition
from components.model.settings import PUBLISHED_PORT, ServiceSpec
from components.services import clickhouse

if TYPE_CHECKING:
    from components.model.context import Context

ALIAS = "tensorzero-backup"
PORT = 9187  # backupctl's metrics and health
HEALTH_PATH = "/health"
PROGRAM = PROJECT_DIR / "components" / "backupctl"
PROGRAM_DIR = "/opt/pmoves"  # the package is uploaded to PROGRAM_DIR/backupctl
KIND = "backupctl-program"
COMMAND = ("python3", "-m", "backupctl", "serve")
HEALTHCHECK = (
    "python3",
    "-c",
    f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{PORT}{HEALTH_PATH}', timeout=4)",
)
GATEWAY = "gateway"  # runs TensorZero's migrations at start: the pre-upgrade backup comes before it


class OffsiteSpec(StrictModel):
    # The URL is printed by `plan`, set in the container's env and written into ClickHouse's config: S3 takes its
    # keys apart, as secrets (S3BucketURL refuses a URL holding any).
    url: S3BucketURL = Field(
        description="S3-compatible bucket and prefix the backups are copied to: http[s]://host:port/bucket/prefix "
        "(path style, as MinIO serves it); beyond dev, plain http only to a private host.",
    )
    access_key_var: EnvName = Field(
        "TENSORZERO_BACKUP_S3_ACCESS_KEY", description="Variable (env layer or stack secret) holding the access key."
    )
    secret_key_var: EnvName = Field(
        "TENSORZERO_BACKUP_S3_SECRET_KEY", description="Variable (env layer or stack secret) holding the secret key."
    )
    region: S3Region = Field(
        "us-east-1", description="Region the signatures name: lower-case letters, digits and inner '-'."
    )
    keep: Optional[int] = Field(None, ge=1, description="Full backups (with their chains) kept there; null: `keep`.")


# A schedule Prometheus can judge (its alert compares ages in seconds) and a person can reason about.
BackupInterval = Duration(low_s=60, high="365d")
Grace = Duration(low_s=0, high="30d")


class BackupSpec(ServiceSpec):
    enabled: bool = Field(True, description="Take scheduled backups (needs clickhouse.backups).")
    image: ImageRef = Field("python:3.11.13-slim-bookworm", description="Pinned Python image backupctl runs in.")
    host: Optional[str] = Field(
        None, description="Docker host; null: ClickHouse's, where it must run (it mounts the backups volume)."
    )
    port: Optional[Port] = Field(None, description=PUBLISHED_PORT)
    every: BackupInterval = Field("24h", description="A backup is due this long after the newest one.")
    full_every: int = Field(
        7, ge=1, description="A full backup once a chain holds this many; the others are incremental (1: all full)."
    )
    keep: int = Field(4, ge=1, description="Full backups (each with the incrementals built on it) kept.")
    grace: Grace = Field(
        "2h",
        description="BackupTooOld fires when the newest complete backup is older than `every` plus this.",
    )
    pre_upgrade: bool = Field(
        True, description="Take a full backup before the gateway is created or replaced (its migrations)."
    )
    offsite: Optional[OffsiteSpec] = Field(None, description="Copy every backup off the host too (S3, MinIO).")

    def max_age_s(self) -> int:
        return int(duration_seconds(self.every) + duration_seconds(self.grace))


def program_files() -> tuple[RenderedFile, ...]:
    """backupctl's modules, uploaded as they are: the tests run the same files."""
    return tuple(
        RenderedFile(
            path=f"backup/backupctl/{path.name}",
            kind=KIND,
            container=SERVICE.role,
            mount=f"{PROGRAM_DIR}/backupctl/{path.name}",
            content=path.read_text(),
        )
        for path in sorted(PROGRAM.glob("*.py"))
    )


def environment(ctx: Context) -> tuple[Variable, ...]:
    spec: BackupSpec = ctx.section
    store = ctx.spec.clickhouse
    here = "components/services/backup.py"
    from_spec = f"{ctx.deployment.stack_file}: backup"
    server = ctx.reach(clickhouse.SERVICE)
    password = ctx.credential("clickhouse.password_var")
    env = [
        Variable("PYTHONPATH", PROGRAM_DIR, here, False),
        Variable("PYTHONUNBUFFERED", "1", here, False),
        Variable("CLICKHOUSE_URL", server.url, f"{ctx.deployment.stack_file}: clickhouse (its address)", False),
        Variable("CLICKHOUSE_USER", store.user, f"{ctx.deployment.stack_file}: clickhouse.user", False),
        Variable("CLICKHOUSE_PASSWORD", password.value, password.source, True),
        Variable("CLICKHOUSE_DATABASE", store.database, f"{ctx.deployment.stack_file}: clickhouse.database", False),
        Variable("BACKUP_DISK", clickhouse.BACKUPS_DISK, "components/services/clickhouse.py", False),
        Variable("BACKUP_PATH", clickhouse.BACKUPS_MOUNT, "components/services/clickhouse.py", False),
        Variable("BACKUP_EVERY_S", str(int(duration_seconds(spec.every))), f"{from_spec}.every", False),
        Variable("BACKUP_FULL_EVERY", str(spec.full_every), f"{from_spec}.full_every", False),
        Variable("BACKUP_KEEP", str(spec.keep), f"{from_spec}.keep", False),
        Variable("BACKUP_METRICS_PORT", str(PORT), here, False),
    ]
    if spec.offsite:
        access = ctx.credential("backup.offsite.access_key_var")
        secret = ctx.credential("backup.offsite.secret_key_var")
        env += [
            Variable("BACKUP_OFFSITE_URL", spec.offsite.url, f"{from_spec}.offsite.url", False),
            Variable("BACKUP_OFFSITE_REGION", spec.offsite.region, f"{from_spec}.offsite.region", False),
            Variable("BACKUP_OFFSITE_ACCESS_KEY", access.value, access.source, True),
            Variable("BACKUP_OFFSITE_SECRET_KEY", secret.value, secret.source, True),
        ]
        if spec.offsite.keep:
            env.append(Variable("BACKUP_OFFSITE_KEEP", str(spec.offsite.keep), f"{from_spec}.offsite.keep", False))
    return tuple(env)


def plan(ctx: Context) -> ServicePlan:
    spec: BackupSpec = ctx.section
    if ctx.spec.clickhouse.external:
        ctx.problem(
            "backup.enabled",
            "backs up through the ClickHouse server's own `backups` disk, which an external ClickHouse does not "
            "have: set it false (confirmed outside dev) and back the data up where that ClickHouse runs",
        )
        return ServicePlan()
    env = environment(ctx)
    files = program_files()
    mounts = (VolumeMount(clickhouse.SERVICE.role, clickhouse.BACKUPS_VOLUME, clickhouse.BACKUPS_MOUNT),)
    shots = ()
    if spec.pre_upgrade and ctx.deployed(GATEWAY):
        # Its command names both versions (a command, not an env: secret envs are masked in plans): a new one
        # replaces (re-runs) it before the gateway is replaced.
        versions = f"before gateway {ctx.spec.gateway.image}, clickhouse {ctx.spec.clickhouse.image}"
        shots = (
            OneShot(
                name="pre-upgrade",
                docker_name=f"{SERVICE.container}-pre-upgrade",
                image_of=SERVICE.role,
                entrypoint="python3",
                command=("-m", "backupctl", "backup", "--kind", "pre-upgrade", "--reason", versions),
                env=env,
                files=files,
                after=(clickhouse.SERVICE.role,),
                mounts=mounts,
                before=(GATEWAY,),
            ),
        )
    # Hardening exception: on Docker, backupctl runs as root in python:slim to read and prune ClickHouse's
    # backups volume, whose files belong to `clickhouse` (101). On a cluster it runs as 101 itself, the
    # claim's owner there (both pods' fsGroup), and needs no root.
    return ServicePlan(
        command=COMMAND,
        env=env,
        files=files,
        mounts=mounts,
        healthcheck=HEALTHCHECK,
        one_shots=shots,
        waits_for=(clickhouse.SERVICE.role,),
        image_tools=frozenset({"python3"}),
        hardening=Hardening(cluster_user=clickhouse.USER),
    )


def checks(spec) -> list[tuple[str, str]]:
    if spec.backup.host in (None, spec.clickhouse.host):
        return []
    where = f"must be clickhouse.host ('{spec.clickhouse.host}'): it mounts ClickHouse's backups volume"
    return [("backup.host", where)]


def placement(spec, definition: ServiceDefinition) -> Placement:
    """On ClickHouse's host (unless the spec says otherwise, which checks() refuses)."""
    return Placement(spec.backup.host or spec.clickhouse.host, ALIAS, PORT, spec.backup.port)


SERVICE = ServiceDefinition(
    role="backup",
    component="Backup",
    plan=plan,
    description="Scheduled ClickHouse backups (local and off-host) and the pre-upgrade backup.",
    spec=BackupSpec,
    container="tensorzero-backup",
    alias=ALIAS,
    port=PORT,
    # The backups disk is where every backup is written first: without it there is nothing to schedule.
    is_deployed=lambda spec: spec.backup.enabled and spec.clickhouse.backups,
    checks=checks,
    destructive=lambda spec: (
        [] if spec.backup.enabled else [("backup.enabled", "backup.enabled: false", "no scheduled backup is taken")]
    ),
    placement=placement,
    monitoring=lambda spec: Monitoring(scrapes=(Scrape(BACKUP_JOB, METRICS_PATH),), probe=HEALTH_PATH),
)
