"""How every verb ends when the world interrupts it: one line on stderr and a conventional exit code, never a
traceback. Standard library only: the smoke command imports it with requirements-smoke.txt alone."""

import io
import os
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NoReturn

EXIT_INTERRUPTED = 130  # 128 + SIGINT: what a shell reports for a command stopped by Ctrl-C
EXIT_CLOSED_PIPE = 141  # 128 + SIGPIPE: what a shell reports for `command | head` when the reader left early
EXIT_IO = 74  # sysexits.h EX_IOERR: a file could not be read or written
STDOUT = "standard output"  # what a failed write to it names, where an OSError names no file of its own


def _say(line: str) -> None:
    try:
        print(line, file=sys.stderr, flush=True)
    except OSError:
        pass  # stderr is gone too: the exit code alone tells


def _interrupted(prog: str) -> None:
    _say(f"{prog}: interrupted")
    try:
        sys.stdout.flush()
    except (OSError, ValueError):
        pass
    # Now, not through the interpreter's exit: Pulumi's mocks leave threads a normal exit would wait for forever.
    os._exit(EXIT_INTERRUPTED)


def leave(status: int) -> NoReturn:
    """Ends a finished offline verb now. The interpreter's own exit tears down every module and joins Pulumi's
    idle executor threads: about 0.1 s of a 0.7 s `plan`, for nothing the verb left to do (its files are closed
    and `guarded` flushed its output; it registers no exit handler)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:  # None: the process was started with it closed
                stream.flush()
        except (OSError, ValueError):
            pass  # `guarded` already said what failed, and chose the status
    os._exit(status)


def leave_on_interrupt(prog: str) -> None:
    """Ctrl-C ends the process at once with one line. A KeyboardInterrupt raised inside a library instead (the
    gateway's loader, Pulumi's event loop) prints that library's own traceback first. Main thread only."""
    signal.signal(signal.SIGINT, lambda signum, frame: _interrupted(prog))


@contextmanager
def unwinding() -> Iterator[None]:
    """Inside, Ctrl-C raises KeyboardInterrupt, so every `finally` on the way out runs: a stopped gateway is
    started again, a file holding credentials is removed. `guarded` then ends the process as usual."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _restore(original) -> None:
    """Standard output as the interpreter made it, once what the labelled one holds is written (or dropped)."""
    for _attempt in range(2):
        try:
            sys.stdout.flush()
            break
        except (OSError, ValueError):
            _silence_stdout()  # then once more, into /dev/null: its buffer is dropped, not carried to exit
    sys.stdout = original


def _silence_stdout() -> None:
    """The interpreter flushes stdout once more at exit; into a closed pipe that flush would print a warning."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):
        pass


class _StandardOutput(io.FileIO):
    """Standard output's descriptor, whose failed writes (a full disk, `> /dev/full`) say it was standard output:
    an OSError from a write names no file. A closed pipe stays a BrokenPipeError, which `guarded` ends quietly."""

    def write(self, data) -> int:
        try:
            return super().write(data)
        except BrokenPipeError:
            raise
        except OSError as error:
            raise OSError(error.errno, error.strerror, STDOUT) from None


def _labelled_stdout():
    """Standard output rewrapped over _StandardOutput, as the interpreter set it up; the original to restore, or
    None where stdout is not the process's own (a test capturing it, no descriptor)."""
    original = sys.stdout
    if original is None or original is not sys.__stdout__:
        return None
    try:
        descriptor = original.fileno()
        original.flush()
    except (OSError, ValueError, AttributeError):
        return None
    raw = _StandardOutput(descriptor, "w", closefd=False)
    sys.stdout = io.TextIOWrapper(
        io.BufferedWriter(raw),
        encoding=original.encoding,
        errors=original.errors,
        line_buffering=original.line_buffering,
    )
    return original


def guarded(prog: str, main: Callable[[], int]) -> int:
    """main()'s status; a closed pipe, Ctrl-C or an unreadable file end it with one line and a conventional code."""
    if sys.stdout is None:  # started with standard output closed (`>&-`): nothing the verb says could arrive
        _say(f"{prog}: cannot write {STDOUT}: it is closed")
        return EXIT_IO
    previous = signal.signal(signal.SIGINT, lambda signum, frame: _interrupted(prog))
    original = _labelled_stdout()
    try:
        status = main()
        sys.stdout.flush()  # output still buffered meets a closed pipe here, inside the guard
        return status
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_CLOSED_PIPE  # the reader chose to stop reading: nothing to say
    except KeyboardInterrupt:
        _interrupted(prog)
        raise  # not reached: _interrupted leaves the process
    except OSError as error:
        if error.filename == STDOUT:
            _say(f"{prog}: cannot write {STDOUT}: {error.strerror or error}")
            _silence_stdout()  # what it still holds would fail again as the interpreter exits
            return EXIT_IO
        where = f"{error.filename}: " if error.filename else ""
        _say(f"{prog}: {where}{error.strerror or error}")
        return EXIT_IO
    finally:
        signal.signal(signal.SIGINT, previous)
        if original is not None:
            _restore(original)
