"""backupctl: the program the stack's backup container runs, and operators run through it.

Standard library only (it is uploaded as it is into a `python` image and run with `python -m backupctl`;
the tests run the very same files). What it does, each in its own module:

- clickhouse.py: ClickHouse's HTTP interface (Basic auth, JSONCompact answers, errors as ClickHouse says them);
- s3.py: the few S3 calls retention needs (list, get, delete), signed with AWS Signature Version 4, for any
  S3-compatible store (MinIO in PMOVES);
- store.py: where backups live (the `backups` disk, mounted here too; an S3 prefix), their names, which
  one an incremental builds on, and which ones retention deletes;
- jobs.py: take a backup, list them, restore one (checked in a scratch database first), run the drill;
- serve.py: the schedule, and the metrics Prometheus scrapes.
"""
