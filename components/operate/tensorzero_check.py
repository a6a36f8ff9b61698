"""The rendered tensorzero.toml, loaded by TensorZero's own config loader, as `validate` runs it.

The `tensorzero` package is pinned to the gateway image's version (requirements.txt) and embeds the
gateway's loader: what it refuses here, the gateway refuses at start (a reserved `tensorzero::` name, a
`max_tokens` beyond u32, an unknown key in a native table, ...). The exact file is loaded first: with
observability on it must get through parsing and stop only where it looks for ClickHouse (there is none
here); the same file with observability off must then load completely.

The provider keys its `env::` locations name are set from the deployment's variables, only for the call,
with every variable that would point the loader at a database or a trace collector removed and the loader's
own logging off. No value is printed: only the loader's reason.

`validate` starts it in a child process (`started`) while it runs Pulumi's mocks itself: the loader and its
import take about as long as the plan, and a command's time is what an operator waits for. A load that
passed is remembered (`loaded_key`): the same bytes of every file the loader reads, the same variable
names supplied, the same installed `tensorzero` and this module unchanged are not loaded again; any other
input is.
"""

import hashlib
import json
import os
import re
import signal
import sys
import tempfile
import traceback
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from components.core.errors import ConfigError, Problem
from components.core.names import CACHE_DIR
from components.operate.exits import EXIT_INTERRUPTED
from components.stack.deployment import Deployment

OBSERVABILITY_ON = "observability.enabled = true"
BACKEND_MISSING = "Observability is enabled but no backend is available"
# What would make the embedded gateway reach out instead of only loading its config.
REACHING_OUT = ("TENSORZERO_", "OTEL_")
# Rust's Debug form of the loader's error: `... Config { message: "<reason>" } ...`.
_REASON = re.compile(r'message: "((?:[^"\\]|\\.)*)"')
_WHERE = re.compile(r"(?P<key>[A-Za-z_][A-Za-z0-9_]*\.[^\s:]+): (?P<rest>.*)", re.DOTALL)


@contextmanager
def _environment(variables: dict[str, str]):
    saved = dict(os.environ)
    try:
        for name in [name for name in os.environ if name.startswith(REACHING_OUT)]:
            del os.environ[name]
        os.environ["RUST_LOG"] = "off"
        os.environ.update(variables)
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def reason(error: Exception) -> str:
    """The loader's own sentence, out of the client's wrapping."""
    text = str(error)
    found = _REASON.search(text)
    if not found:
        return " ".join(text.split())
    return re.sub(r"\\(.)", r"\1", found.group(1))


def _problem(deployment: Deployment, rendered: str, why: str) -> Problem:
    """Names the catalog file and key when the reason starts with one (`models.X.providers.P: ...`)."""
    where = _WHERE.fullmatch(why)
    if where:
        key = where.group("key")
        entry = ".".join(key.split(".")[:2])
        file = deployment.catalog.sources.get(entry, rendered)
        return Problem(file, key, f"TensorZero's loader refuses the rendered {rendered}: {where.group('rest')}")
    return Problem(rendered, "", f"TensorZero's loader refuses it: {why}")


def loaded_key(deployment: Deployment) -> str:
    """What a load's outcome depends on: every file placed for the loader (path and bytes), the names of the
    variables set for it (never a value), the installed `tensorzero`'s version and this module's own code."""
    from importlib.metadata import version

    from components.services import gateway

    digest = hashlib.sha256()
    parts = [version("tensorzero"), Path(__file__).read_text()]
    parts += sorted(name for name in deployment.translation.variables if not deployment.unsupplied(name))
    for file in gateway.config_files(deployment):
        parts += [file.mount, file.content]
    for part in parts:
        encoded = part.encode()
        digest.update(len(encoded).to_bytes(8, "big") + encoded)  # lengths first: no two inputs hash alike
    return digest.hexdigest()


def _marker(deployment: Deployment) -> Path:
    return deployment.project_dir / CACHE_DIR / "tensorzero-loaded" / loaded_key(deployment)


def _remember(marker: Path) -> None:
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
    except OSError:
        pass  # a read-only checkout: the next `validate` loads again


def started(deployment: Deployment, *, remembered: bool = True) -> Callable[[], None]:
    """`check` in a forked child, beside the caller's own work; calling the result waits for it and raises its
    ConfigError. Where there is no fork, `check` runs at once. A pass is remembered; with `remembered`, an input
    the loader passed before (`loaded_key`) is not loaded again."""
    from components.services import gateway

    if not deployment.spec.deployed(gateway.SERVICE):
        return lambda: None
    marker = _marker(deployment)
    if remembered and marker.exists():
        return lambda: None
    if not hasattr(os, "fork"):
        check(deployment)
        _remember(marker)
        return lambda: None
    sys.stdout.flush()
    sys.stderr.flush()
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child's lines are seen by the coverage of `check` in-process
        # Ctrl-C reaches the whole process group: the parent says "interrupted", once; the child just ends.
        signal.signal(signal.SIGINT, lambda signum, frame: os._exit(EXIT_INTERRUPTED))
        os.close(reader)
        code = 0
        try:
            check(deployment)
            report = []
            _remember(marker)
        except ConfigError as error:
            report = [[p.file, p.key, p.message] for p in error.problems]
        except BaseException:
            traceback.print_exc()
            report, code = None, 1
        with os.fdopen(writer, "w") as out:
            json.dump(report, out)
        sys.stderr.flush()
        os._exit(code)  # not sys.exit: the parent's buffers and atexit handlers are the parent's
    os.close(writer)

    def wait() -> None:
        with os.fdopen(reader) as answer:
            report = json.loads(answer.read() or "null")
        _, status = os.waitpid(child, 0)
        if report is None:
            code = os.waitstatus_to_exitcode(status)
            raise RuntimeError(f"TensorZero's loader check failed in its child process (exit {code}); see above")
        if report:
            raise ConfigError([Problem(*problem) for problem in report])

    return wait


def check(deployment: Deployment) -> None:
    """Raises ConfigError with the loader's reason when TensorZero's own loader refuses the gateway's config."""
    from components.services import gateway

    if not deployment.spec.deployed(gateway.SERVICE):
        return
    rendered = gateway.config_file(deployment)
    variables = {
        name: deployment.variable(name).value
        for name in deployment.translation.variables
        if not deployment.unsupplied(name)
    }
    with tempfile.TemporaryDirectory(prefix="pmoves-tensorzero-check-") as scratch, _environment(variables):
        import tensorzero  # here: its logging reads RUST_LOG once, when the package loads

        # Beside it, every file it names by path (templates, schemas), where the gateway's container has them.
        for file in gateway.config_files(deployment):
            placed = Path(scratch) / Path(file.mount).relative_to(gateway.CONFIG_DIR)
            placed.parent.mkdir(parents=True, exist_ok=True)
            placed.write_text(file.content)
        exact = Path(scratch) / Path(gateway.CONFIG_PATH).relative_to(gateway.CONFIG_DIR)
        offline = Path(scratch) / "tensorzero-observability-off.toml"
        offline.write_text(rendered.content.replace(OBSERVABILITY_ON, "observability.enabled = false"))
        for path, tolerated in ((exact, BACKEND_MISSING), (offline, None)):
            try:
                tensorzero.TensorZeroGateway.build_embedded(config_file=str(path))
            except tensorzero.BaseTensorZeroError as error:
                why = reason(error)
                if tolerated is None or tolerated not in why:
                    raise ConfigError([_problem(deployment, rendered.path, why)]) from None
