"""What an operator or the schedule asks of backupctl: take a backup, list them, restore one, run the drill."""

import datetime
import os
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

from .clickhouse import ClickHouse, ClickHouseError, identifier, string
from .s3 import S3, S3Error
from .store import Backup, Destination, Disk, Offsite, describe, new_name, next_base, to_delete

REREAD_S = 1  # before a corrupt backup is deleted, its description is read once more
ADMIN_DATABASE = "system"  # the session database of statements that drop or rename the backed-up one
# The seed's queries over its `requests` table (a view the stack creates), as the seed writes them: the drill
# runs them against the restored copy.
SEED_QUERIES = (
    "SELECT COUNT(*) FROM requests",
    "SELECT model, COUNT(*) as count FROM requests GROUP BY model ORDER BY model",
    "SELECT AVG(latency_ms) FROM requests WHERE model = 'claude-sonnet-4-5'",
    "SELECT timestamp, model, request_tokens, response_tokens, latency_ms FROM requests "
    "ORDER BY timestamp DESC LIMIT 10",
)


class Refused(Exception):
    """Not done, on purpose: nothing was changed."""


@dataclass(frozen=True)
class Settings:
    """Everything backupctl reads, from the container's environment (set by the stack's plan)."""

    clickhouse_url: str
    user: str
    password: str
    database: str
    disk: str
    disk_path: str
    every_s: int = 86400
    full_every: int = 7
    keep: int = 4
    offsite_url: str = ""
    offsite_access_key: str = ""
    offsite_secret_key: str = ""
    offsite_region: str = "us-east-1"
    offsite_keep: int = 0  # 0: as `keep`
    metrics_port: int = 9187

    @property
    def backup_timeout_s(self) -> int:
        """How long one BACKUP statement may take: no longer than the schedule's interval (the next run is due
        then), at least a minute, at most six hours."""
        return max(60, min(self.every_s, 6 * 3600))

    @classmethod
    def from_env(cls, environ: Optional[dict[str, str]] = None) -> "Settings":
        env = os.environ if environ is None else environ
        names = {
            "clickhouse_url": "CLICKHOUSE_URL",
            "user": "CLICKHOUSE_USER",
            "password": "CLICKHOUSE_PASSWORD",
            "database": "CLICKHOUSE_DATABASE",
            "disk": "BACKUP_DISK",
            "disk_path": "BACKUP_PATH",
        }
        missing = [variable for variable in names.values() if not env.get(variable)]
        if missing:
            raise Refused(f"backupctl needs {', '.join(missing)} in its environment")
        numbers = {"every_s": "BACKUP_EVERY_S", "full_every": "BACKUP_FULL_EVERY", "keep": "BACKUP_KEEP"}
        numbers |= {"offsite_keep": "BACKUP_OFFSITE_KEEP", "metrics_port": "BACKUP_METRICS_PORT"}
        optional = {
            "offsite_url": "BACKUP_OFFSITE_URL",
            "offsite_access_key": "BACKUP_OFFSITE_ACCESS_KEY",
            "offsite_secret_key": "BACKUP_OFFSITE_SECRET_KEY",
            "offsite_region": "BACKUP_OFFSITE_REGION",
        }
        return cls(
            **{key: env[variable] for key, variable in names.items()},
            **{key: int(env[variable]) for key, variable in numbers.items() if env.get(variable)},
            **{key: env[variable] for key, variable in optional.items() if env.get(variable)},
        )

    def clickhouse(self) -> ClickHouse:
        return ClickHouse(self.clickhouse_url, self.user, self.password, self.database)

    def destinations(self) -> dict[str, Destination]:
        """`local` (the backups disk) and, when configured, `offsite` (S3)."""
        found: dict[str, Destination] = {"local": Disk(self.disk, self.disk_path)}
        if self.offsite_url:
            s3 = S3(self.offsite_url, self.offsite_access_key, self.offsite_secret_key, self.offsite_region)
            found["offsite"] = Offsite(s3)
        return found

    def keep_for(self, destination: str) -> int:
        return self.offsite_keep if destination == "offsite" and self.offsite_keep else self.keep


@dataclass
class Outcome:
    destination: str
    name: str
    ok: bool
    started: float  # unix time
    duration_s: float = 0.0
    backup: Optional[Backup] = None
    error: str = ""
    deleted: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)  # corrupt or failed backups cleaned away, with why

    def line(self) -> str:
        removed = f"; removed {'; '.join(self.removed)}" if self.removed else ""
        if not self.ok:
            return f"FAILED  {self.destination}: {self.name}: {self.error}{removed}"
        kind = f"incremental on {self.backup.base}" if self.backup.base else "full"
        pruned = f"; retention deleted {', '.join(self.deleted)}" if self.deleted else ""
        return (
            f"ok      {self.destination}: {self.name} ({kind}, {self.backup.size_bytes} bytes, "
            f"{self.duration_s:.1f}s){pruned}{removed}"
        )


def _remove_corrupt(destination: Destination, backups: list[Backup]) -> list[str]:
    """Corrupt backups (an unreadable description: a disk that filled up) deleted before the next one is
    written, which needs their space; what was removed, and why."""
    removed = []
    suspects = [backup for backup in backups if backup.problem]
    if suspects:
        time.sleep(REREAD_S)  # a description ClickHouse is writing this very moment reads whole a moment later
    for backup in suspects:
        again = describe(backup.name, destination.description(backup.name))
        if again is not None and again.problem:
            destination.delete(backup.name)
            removed.append(f"corrupt {backup.name} ({backup.problem})")
    return removed


def _discard_failed(destination: Destination, name: str) -> list[str]:
    """What a failed BACKUP of ours left behind, deleted: a partial backup only takes space and confuses."""
    try:
        if name in destination.names() and not any(b.name == name and b.complete for b in destination.backups()):
            destination.delete(name)
            return [f"the failed {name}"]
    except (S3Error, OSError):
        pass  # the destination is what failed; the next run cleans it as corrupt or stale
    return []


def take(settings: Settings, kind: str, only: Optional[str] = None, now: Callable = time.time) -> list[Outcome]:
    """One backup to every destination (or `only` one). `scheduled` ones are incremental on the newest backup
    until the chain since the last full holds `full_every`; `manual` and `pre-upgrade` ones are always full.
    A failed destination does not stop the next; retention runs after each success."""
    clickhouse = settings.clickhouse()
    outcomes = []
    for label, destination in settings.destinations().items():
        if only and label != only:
            continue
        started = now()
        name, removed, written = "?", [], False
        try:
            present = destination.backups()
            removed = _remove_corrupt(destination, present)
            base = next_base(present, settings.full_every) if kind == "scheduled" else None
            at = datetime.datetime.fromtimestamp(started, datetime.timezone.utc)
            name = new_name(settings.database, "incr" if base else ("full" if kind == "scheduled" else kind), at)
            sql = f"BACKUP DATABASE {identifier(settings.database)} TO {destination.sql(name)}"
            if base:
                sql += f" SETTINGS base_backup = {destination.sql(base.name)}"
            written = True
            rows = clickhouse.run(sql, ADMIN_DATABASE, timeout_s=settings.backup_timeout_s)
            status = rows[0][1] if rows and len(rows[0]) > 1 else "no status"
            if status != "BACKUP_CREATED":
                raise ClickHouseError(f"BACKUP answered {status}")
            outcome = Outcome(label, name, True, started, now() - started, destination.find(name), removed=removed)
            at_end = datetime.datetime.fromtimestamp(now(), datetime.timezone.utc)
            for old in to_delete(destination.backups(), settings.keep_for(label), at_end):
                destination.delete(old.name)
                outcome.deleted.append(old.name)
        except (ClickHouseError, S3Error, LookupError, OSError) as error:
            removed += _discard_failed(destination, name) if written else []
            outcome = Outcome(label, name, False, started, now() - started, error=str(error), removed=removed)
        outcomes.append(outcome)
    return outcomes


def table_rows(clickhouse: ClickHouse, database: str) -> dict[str, int]:
    """Rows of every table (views excluded) of `database`."""
    rows = clickhouse.run(
        f"SELECT name, total_rows FROM system.tables WHERE database = {string(database)} AND total_rows IS NOT NULL "
        "ORDER BY name",
        ADMIN_DATABASE,
    )
    return {name: int(count) for name, count in rows}


def _verify(clickhouse: ClickHouse, database: str) -> dict[str, int]:
    """Every MergeTree table's parts checked against their checksums (a corrupt file fails here, not on the
    first query that reads it); the row count of every table."""
    tables = clickhouse.run(
        f"SELECT name FROM system.tables WHERE database = {string(database)} AND engine LIKE '%MergeTree' "
        "ORDER BY name",
        ADMIN_DATABASE,
    )
    for [table] in tables:
        checked = clickhouse.value(
            f"CHECK TABLE {identifier(database)}.{identifier(table)} SETTINGS check_query_single_value_result = 1",
            ADMIN_DATABASE,
        )
        if str(checked) != "1":
            raise ClickHouseError(f"table {table} fails CHECK TABLE: its parts do not match their checksums")
    return table_rows(clickhouse, database)


# The backup of a database created by the server itself (`default`, where PMOVES's gateway logs) holds a bare
# `CREATE DATABASE default`, which ClickHouse finds different from the Atomic database it restores into.
RESTORE_SETTINGS = "SETTINGS allow_different_database_def = true"


def _restore_copy(clickhouse: ClickHouse, destination: Destination, name: str, copy: str) -> dict[str, int]:
    """Restore backup `name` as database `copy` and check it; on failure nothing of it is left."""
    target = f"{identifier(clickhouse.database)} AS {identifier(copy)}"
    clickhouse.run(f"DROP DATABASE IF EXISTS {identifier(copy)} SYNC", ADMIN_DATABASE)
    try:
        clickhouse.run(f"RESTORE DATABASE {target} FROM {destination.sql(name)} {RESTORE_SETTINGS}", ADMIN_DATABASE)
        return _verify(clickhouse, copy)
    except ClickHouseError:
        clickhouse.run(f"DROP DATABASE IF EXISTS {identifier(copy)} SYNC", ADMIN_DATABASE)
        raise


def restore(
    settings: Settings, name: str, destination_label: str = "local", replace: bool = False, check: bool = False
) -> str:
    """Restore backup `name` into the database. It is first restored as a scratch copy and checked (a missing,
    unfinished or corrupt backup stops here, with the database untouched); a database holding rows is kept,
    renamed aside, and only with `replace`. Returns what was done. With `check`, only the checks that need no
    write run (the backup is there and complete, --replace where rows are held): the operator's `restore` asks
    before it stops the gateway, so a refused restore stops nothing."""
    clickhouse = settings.clickhouse()
    destinations = settings.destinations()
    if destination_label not in destinations:
        raise Refused(f"no {destination_label} destination is configured (have: {', '.join(destinations)})")
    destination = destinations[destination_label]
    try:
        destination.find(name)
    except LookupError as error:
        raise Refused(f"{error}; nothing was changed") from None
    database = settings.database
    present = table_rows(clickhouse, database)
    held = sum(present.values())
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    aside = f"{database}_before_restore_{stamp}"
    if held and not replace:
        raise Refused(
            f"database {database} holds {held} rows; restoring over it needs --replace (it is then kept, renamed "
            f"{aside}); nothing was changed"
        )
    if check:
        return f"restore {name} from {destination.label} into {database}: the checks pass"
    check = f"{database}_restore_check"
    try:
        expected = _restore_copy(clickhouse, destination, name, check)
    except ClickHouseError as error:
        where = f"backup {name} on {destination.label}"
        raise Refused(f"{where} cannot be restored: {error}; nothing was changed") from None
    clickhouse.run(f"DROP DATABASE IF EXISTS {identifier(check)} SYNC", ADMIN_DATABASE)
    moved = ""
    if clickhouse.value(f"EXISTS DATABASE {identifier(database)}", ADMIN_DATABASE) == 1:
        if held:
            clickhouse.run(f"RENAME DATABASE {identifier(database)} TO {identifier(aside)}", ADMIN_DATABASE)
            moved = f"; the database it replaced ({held} rows) is kept as {aside}"
        else:
            clickhouse.run(f"DROP DATABASE {identifier(database)} SYNC", ADMIN_DATABASE)
    clickhouse.run(
        f"RESTORE DATABASE {identifier(database)} FROM {destination.sql(name)} {RESTORE_SETTINGS}", ADMIN_DATABASE
    )
    restored = table_rows(clickhouse, database)
    if restored != expected:
        raise ClickHouseError(f"restored {restored}, but the checked copy held {expected}")
    summary = ", ".join(f"{table} {rows}" for table, rows in restored.items())
    return f"restored {name} from {destination.label} into {database}: {summary}{moved}"


@dataclass
class DrillReport:
    backup: str
    before: dict[str, int]
    after: dict[str, int]
    restored: dict[str, int]
    answers: list[tuple[str, list, list]]  # (query, live answer, restored answer)

    @property
    def quiet(self) -> bool:
        """No row was written while the backup ran: the restored copy must answer exactly as the live one."""
        return self.before == self.after

    def problems(self) -> list[str]:
        found = [
            f"{table}: restored {self.restored.get(table)} rows, live held {self.before[table]} before the backup "
            f"and {self.after.get(table)} after"
            for table in self.before
            if not self.before[table] <= self.restored.get(table, -1) <= self.after.get(table, self.before[table])
        ]
        if self.quiet:
            found += [f"{q!r}: live {live!r}, restored {copy!r}" for q, live, copy in self.answers if live != copy]
        return found


def drill(settings: Settings, destination_label: str = "local") -> DrillReport:
    """Back up now, restore that backup beside the live database, check it, and compare: the row count of
    every table within what the live database held before and after the backup, and (when nothing was
    written meanwhile) the seed's queries answering identically. The copy is dropped afterwards."""
    clickhouse = settings.clickhouse()
    before = table_rows(clickhouse, settings.database)
    [outcome] = take(settings, "manual", only=destination_label)
    if not outcome.ok:
        raise Refused(f"the drill's backup failed: {outcome.error}")
    after = table_rows(clickhouse, settings.database)
    copy = f"{settings.database}_drill"
    destination = settings.destinations()[destination_label]
    try:
        restored = _restore_copy(clickhouse, destination, outcome.name, copy)
        seed = SEED_QUERIES if _has_requests(clickhouse, copy) else ()
        answers = [(query, clickhouse.run(query), clickhouse.run(query, copy)) for query in seed]
    finally:
        clickhouse.run(f"DROP DATABASE IF EXISTS {identifier(copy)} SYNC", ADMIN_DATABASE)
    return DrillReport(outcome.name, before, after, restored, answers)


def _has_requests(clickhouse: ClickHouse, database: str) -> bool:
    return clickhouse.value(f"EXISTS TABLE {identifier(database)}.requests", ADMIN_DATABASE) == 1
