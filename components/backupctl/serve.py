"""The schedule, and the metrics Prometheus scrapes: each run's outcome and the age of the last good backup.

Backups are due every `every_s` after the newest complete one (per destination), so a restart does not
take an extra one and a missed run is made up at once; a failed run is retried after RETRY_S. What the
metrics say of backups is read from where they are (the disk, the S3 prefix), not remembered, so it
survives a restart of this container.
"""

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Optional

from .jobs import Outcome, Settings, take
from .s3 import S3Error

PREFIX = "pmoves_backup_"
RETRY_S = 600  # after a failed run
TICK_S = 30  # how often the loop looks whether a backup is due
HEALTH_PATH = "/health"
METRICS_PATH = "/metrics"
# name: (type, help); every series is labelled with its destination.
METRICS = {
    "last_success_timestamp_seconds": ("gauge", "Start time of the newest complete backup (0: none)."),
    "last_run_timestamp_seconds": ("gauge", "Start time of the last run of this container (0: none yet)."),
    "last_run_success": ("gauge", "1 if the last run of this container succeeded, 0 if it failed."),
    "last_run_duration_seconds": ("gauge", "How long the last run took."),
    "last_size_bytes": ("gauge", "Bytes the newest complete backup holds itself (an incremental: only its own)."),
    "kept": ("gauge", "Complete backups kept at the destination."),
    "schedule_seconds": ("gauge", "The schedule: a backup is due this long after the newest one."),
    "runs_total": ("counter", "Runs of this container, by outcome."),
}


class State:
    """What the metrics say, per destination; refreshed from the destinations and each run."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.lock = threading.Lock()
        self.values: dict[str, dict[str, float]] = {}
        self.runs: dict[tuple[str, str], int] = {}
        self.refresh_errors: dict[str, str] = {}

    def refresh(self) -> None:
        """Newest complete backup and the count kept, read from each destination."""
        for label, destination in self.settings.destinations().items():
            try:
                complete = [b for b in destination.backups() if b.complete]
            except (S3Error, OSError, ValueError) as error:
                self.refresh_errors[label] = str(error)
                continue
            self.refresh_errors.pop(label, None)
            with self.lock:
                values = self.values.setdefault(label, {})
                values["last_success_timestamp_seconds"] = complete[-1].started.timestamp() if complete else 0
                values["last_size_bytes"] = complete[-1].size_bytes if complete else 0
                values["kept"] = len(complete)
                values["schedule_seconds"] = self.settings.every_s
                values.setdefault("last_run_timestamp_seconds", 0)

    def record(self, outcome: Outcome) -> None:
        with self.lock:
            values = self.values.setdefault(outcome.destination, {})
            values["last_run_timestamp_seconds"] = outcome.started
            values["last_run_success"] = 1 if outcome.ok else 0
            values["last_run_duration_seconds"] = outcome.duration_s
            key = (outcome.destination, "success" if outcome.ok else "failure")
            self.runs[key] = self.runs.get(key, 0) + 1

    def due(self, now: float) -> list[str]:
        """The destinations a backup is due at: `every_s` after their newest one, or RETRY_S after a failure."""
        found = []
        with self.lock:
            for label in self.settings.destinations():
                values = self.values.get(label, {})
                newest = values.get("last_success_timestamp_seconds", 0)
                last_run = values.get("last_run_timestamp_seconds", 0)
                failed = values.get("last_run_success") == 0
                if now >= newest + self.settings.every_s and not (failed and now < last_run + RETRY_S):
                    found.append(label)
        return found

    def exposition(self) -> str:
        """Prometheus text format."""
        lines = []
        with self.lock:
            for metric, (kind, text) in METRICS.items():
                name = PREFIX + metric
                lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
                if metric == "runs_total":
                    for destination in sorted(self.values):
                        for outcome in ("success", "failure"):
                            count = self.runs.get((destination, outcome), 0)
                            lines.append(f'{name}{{destination="{destination}",outcome="{outcome}"}} {count}')
                    continue
                for destination, values in sorted(self.values.items()):
                    if metric in values:
                        lines.append(f'{name}{{destination="{destination}"}} {values[metric]:.17g}')
        return "\n".join(lines) + "\n"


def run_once(state: State, destinations: list[str], now: Callable[[], float] = time.time) -> list[Outcome]:
    """A scheduled backup to each of `destinations`."""
    outcomes = []
    for label in destinations:
        started = now()
        try:
            outcomes += take(state.settings, "scheduled", label, now)
        except Exception as error:  # noqa: BLE001 - a fault take() did not foresee fails this run, not the service
            failed = f"unexpected {type(error).__name__}: {error}"
            outcomes.append(Outcome(label, "?", False, started, now() - started, error=failed))
    for outcome in outcomes:
        state.record(outcome)
        print(outcome.line(), flush=True)
    state.refresh()
    return outcomes


def metrics_server(state: State, port: int, host: str = "0.0.0.0") -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == METRICS_PATH:
                body, kind = state.exposition().encode(), "text/plain; version=0.0.4"
            elif self.path == HEALTH_PATH:
                body, kind = b"ok\n", "text/plain"
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def serve(settings: Settings, stop: Optional[threading.Event] = None, tick_s: float = TICK_S) -> None:
    """Serve metrics and take every backup when due, until `stop` is set."""
    stop = stop or threading.Event()
    state = State(settings)
    state.refresh()
    server = metrics_server(state, settings.metrics_port)
    destinations = ", ".join(settings.destinations())
    print(f"backupctl: every {settings.every_s}s to {destinations}; metrics on :{settings.metrics_port}", flush=True)
    try:
        while not stop.is_set():
            due = state.due(time.time())
            if due:
                run_once(state, due)
            stop.wait(tick_s)
    finally:
        server.shutdown()
