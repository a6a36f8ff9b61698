"""Where backups live, what they are called, what each builds on, and what retention deletes.

A backup is a directory ClickHouse writes: `<database>-<UTC start>-<kind>`, complete once ClickHouse has
written its `.backup` description last. The description says whether it is incremental and on which
backup (`<base_backup>`); a chain is a full backup and the incrementals that build on it. Retention keeps
the newest `keep` full backups with everything newer, and whatever those need; it never deletes a backup
something kept builds on, and leaves unfinished ones alone until they are stale.

A backup whose description cannot be read (empty, as a full disk leaves it, or not ClickHouse's XML) is
corrupt: listed as such, never restored nor built on, and removed by the next run.
"""

import datetime
import os
import re
import shutil
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from .clickhouse import string
from .s3 import S3

KINDS = ("full", "incr", "manual", "pre-upgrade")  # all but `incr` are full backups
STAMP = "%Y%m%dT%H%M%S.%fZ"  # to the microsecond: two backups of one chain never share a start
NAME = re.compile(r"^(?P<database>.+)-(?P<stamp>\d{8}T\d{6}\.\d{6}Z)-(?P<kind>" + "|".join(KINDS) + ")$")
DESCRIPTION = ".backup"  # ClickHouse writes it last: a backup without it is unfinished or failed
STALE_AFTER_S = 86400  # an unfinished backup older than this is a failed one


def new_name(database: str, kind: str, now: datetime.datetime) -> str:
    return f"{database}-{now.strftime(STAMP)}-{kind}"


@dataclass(frozen=True)
class Backup:
    name: str
    started: datetime.datetime
    kind: str
    complete: bool
    base: Optional[str] = None  # the backup this one builds on (incremental)
    size_bytes: int = 0  # what this backup itself holds (files it takes from its base not counted)
    files: int = 0
    problem: str = ""  # why its description is unreadable: a corrupt backup (never complete)

    @property
    def full(self) -> bool:
        return self.complete and self.base is None

    @property
    def state(self) -> str:
        if self.problem:
            return "CORRUPT"
        return ("incremental on " + self.base if self.base else "full") if self.complete else "UNFINISHED"


def describe(name: str, description: Optional[bytes]) -> Optional[Backup]:
    """A backup from its directory name and `.backup` text (None: unfinished); None for a foreign name."""
    found = NAME.match(name)
    if not found:
        return None
    started = datetime.datetime.strptime(found["stamp"], STAMP).replace(tzinfo=datetime.timezone.utc)
    if description is None:
        return Backup(name, started, found["kind"], complete=False)
    try:
        root = ElementTree.fromstring(description)
        base = root.findtext("base_backup")
        own = [f for f in root.iter("file") if f.findtext("use_base") != "true"]
        size_bytes = sum(int(f.findtext("size") or 0) for f in own)
    except (ElementTree.ParseError, ValueError) as error:
        problem = "empty" if not description.strip() else f"unreadable ({error})"
        return Backup(name, started, found["kind"], complete=False, problem=f"its {DESCRIPTION} is {problem}")
    return Backup(
        name,
        started,
        found["kind"],
        complete=True,
        base=_backup_name(base) if base else None,
        size_bytes=size_bytes,
        files=len(own),
    )


def _backup_name(reference: str) -> str:
    """`Disk('backups', 'name')` or `S3('http://.../name')` -> name."""
    quoted = re.findall(r"'((?:[^'\\]|\\.)*)'", reference)
    return quoted[-1].rstrip("/").rsplit("/", 1)[-1] if quoted else reference


class Destination:
    """Where one chain of backups is kept; ClickHouse writes there, this program lists and prunes."""

    label: str

    def sql(self, name: str) -> str:
        """The backup's place as BACKUP and RESTORE name it."""
        raise NotImplementedError

    def names(self) -> list[str]:
        raise NotImplementedError

    def description(self, name: str) -> Optional[bytes]:
        raise NotImplementedError

    def delete(self, name: str) -> None:
        raise NotImplementedError

    def backups(self) -> list[Backup]:
        """Every backup here, oldest first."""
        found = [describe(name, self.description(name)) for name in self.names()]
        return sorted((b for b in found if b is not None), key=lambda b: (b.started, b.name))

    def find(self, name: str) -> Backup:
        """The complete backup `name`; LookupError naming what is there otherwise."""
        for backup in self.backups():
            if backup.name == name:
                if backup.problem:
                    raise LookupError(f"backup {name} on {self.label} is corrupt ({backup.problem}): not restorable")
                if not backup.complete:
                    raise LookupError(f"backup {name} on {self.label} is unfinished (no {DESCRIPTION}): not restorable")
                return backup
        there = ", ".join(b.name for b in self.backups() if b.complete) or "none"
        raise LookupError(f"no backup {name} on {self.label} (complete backups there: {there})")


class Disk(Destination):
    """ClickHouse's `backups` disk; this container mounts the same volume at `path`."""

    def __init__(self, disk: str, path: str):
        self.disk = disk
        self.path = Path(path)
        self.label = f"disk '{disk}'"

    def sql(self, name: str) -> str:
        return f"Disk({string(self.disk)}, {string(name)})"

    def names(self) -> list[str]:
        return sorted(entry.name for entry in os.scandir(self.path) if entry.is_dir()) if self.path.is_dir() else []

    def description(self, name: str) -> Optional[bytes]:
        path = self.path / name / DESCRIPTION
        return path.read_bytes() if path.is_file() else None

    def delete(self, name: str) -> None:
        shutil.rmtree(self.path / name)


class Offsite(Destination):
    """An S3 prefix (MinIO in PMOVES); ClickHouse finds the credentials for its URL in its own config."""

    def __init__(self, s3: S3):
        self.s3 = s3
        self.label = f"offsite {s3.location.url()}"

    def sql(self, name: str) -> str:
        return f"S3({string(self.s3.location.url(name))})"

    def names(self) -> list[str]:
        return self.s3.directories()

    def description(self, name: str) -> Optional[bytes]:
        try:
            return self.s3.get(name, DESCRIPTION)
        except FileNotFoundError:
            return None

    def delete(self, name: str) -> None:
        self.s3.delete_directory(name)


def next_base(backups: list[Backup], full_every: int) -> Optional[Backup]:
    """The backup the next scheduled one builds on; None when it must be full (none yet, or the chain since
    the newest full already holds `full_every` backups)."""
    complete = [b for b in backups if b.complete]
    fulls = [i for i, b in enumerate(complete) if b.full]
    if not fulls or len(complete) - fulls[-1] >= full_every:
        return None
    return complete[-1]


def to_delete(backups: list[Backup], keep: int, now: datetime.datetime) -> list[Backup]:
    """What retention drops: complete backups older than the `keep`-th newest full one that nothing kept
    builds on, and unfinished or corrupt ones older than STALE_AFTER_S (a run removes a corrupt one at its start,
    jobs.py)."""
    complete = [b for b in backups if b.complete]
    fulls = [b for b in complete if b.full]
    if len(fulls) <= keep:
        kept = {b.name for b in complete}
    else:
        oldest_kept = fulls[-keep]
        kept = {b.name for b in complete if (b.started, b.name) >= (oldest_kept.started, oldest_kept.name)}
    by_name = {b.name: b for b in complete}
    needed = set(kept)
    for name in list(kept):
        base = by_name[name].base
        while base and base not in needed and base in by_name:
            needed.add(base)
            base = by_name[base].base
    stale = [b for b in backups if not b.complete and (now - b.started).total_seconds() > STALE_AFTER_S]
    return [b for b in complete if b.name not in needed] + stale
