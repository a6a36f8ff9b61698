"""`python -m backupctl {serve,backup,list,restore,drill}`: exit 0 done, 1 failed, 2 refused (nothing changed)."""

import argparse
import json
import sys
from typing import Optional

from .clickhouse import ClickHouseError
from .jobs import Refused, Settings, drill, restore, take
from .s3 import S3Error
from .serve import serve

KINDS = ("manual", "pre-upgrade", "scheduled")
EXIT_FAILED, EXIT_REFUSED = 1, 2


def cmd_backup(settings: Settings, args) -> int:
    if args.reason:
        print(f"{args.kind} backup: {args.reason}")
    outcomes = take(settings, args.kind, only=args.destination)
    for outcome in outcomes:
        print(outcome.line())
    return 0 if outcomes and all(o.ok for o in outcomes) else EXIT_FAILED


def cmd_list(settings: Settings, args) -> int:
    listing = {label: destination.backups() for label, destination in settings.destinations().items()}
    if args.json:
        print(
            json.dumps(
                {
                    label: [
                        {
                            "name": b.name,
                            "started": b.started.isoformat(),
                            "kind": b.kind,
                            "complete": b.complete,
                            "problem": b.problem,
                            "base": b.base,
                            "size_bytes": b.size_bytes,
                        }
                        for b in backups
                    ]
                    for label, backups in listing.items()
                },
                indent=2,
            )
        )
        return 0
    for label, backups in listing.items():
        complete = sum(b.complete for b in backups)
        print(f"{label} ({settings.destinations()[label].label}): {complete} backups")
        for b in backups:
            print(f"  {b.name}  {b.size_bytes:>14} bytes  {b.state}" + (f": {b.problem}" if b.problem else ""))
    return 0


def cmd_restore(settings: Settings, args) -> int:
    print(restore(settings, args.name, args.destination, replace=args.replace, check=args.check))
    return 0


def cmd_drill(settings: Settings, args) -> int:
    report = drill(settings, args.destination)
    print(f"drill: backup {report.backup} restored beside the live database and checked")
    for table, rows in report.restored.items():
        live = f"live {report.before.get(table)} before the backup, {report.after.get(table)} after"
        print(f"  {table}: {rows} rows ({live})")
    for query, live, copy in report.answers:
        print(f"  {query}\n    live:     {live}\n    restored: {copy}")
    if not report.quiet:
        print("  rows were written while the backup ran: answers are compared by row counts only")
    problems = report.problems()
    for problem in problems:
        print(f"  MISMATCH {problem}")
    print("drill: " + ("FAILED" if problems else "passed"))
    return EXIT_FAILED if problems else 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="backupctl", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="take backups on schedule; serve metrics").set_defaults(handler=None)
    backup = commands.add_parser("backup", help="take one full backup now")
    backup.add_argument("--kind", choices=KINDS, default="manual")
    backup.add_argument("--destination", choices=("local", "offsite"), help="only this one (default: every one)")
    backup.add_argument("--reason", help="said in the log (the pre-upgrade one-shot names the versions it precedes)")
    backup.set_defaults(handler=cmd_backup)
    listing = commands.add_parser("list", help="the backups at every destination")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=cmd_list)
    back = commands.add_parser("restore", help="restore one backup into the database")
    back.add_argument("name")
    back.add_argument("--destination", choices=("local", "offsite"), default="local")
    back.add_argument("--replace", action="store_true", help="restore over a database that holds rows (kept aside)")
    back.add_argument("--check", action="store_true", help="only check that the restore would proceed; change nothing")
    back.set_defaults(handler=cmd_restore)
    rehearse = commands.add_parser("drill", help="back up, restore beside the live database, compare")
    rehearse.add_argument("--destination", choices=("local", "offsite"), default="local")
    rehearse.set_defaults(handler=cmd_drill)
    return root


def main(argv: Optional[list[str]] = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        if args.handler is None:
            serve(settings)
            return 0
        return args.handler(settings, args)
    except Refused as error:
        print(f"refused: {error}", file=sys.stderr)
        return EXIT_REFUSED
    except (ClickHouseError, S3Error, OSError) as error:
        print(f"failed: {error}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
