"""No verb prints a traceback: a reader that closes early, Ctrl-C and a file that cannot be read each end a verb
with at most one line and a conventional exit code (components/operate/exits.py)."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from components.operate import exits
from components.operate.cli import parser
from components.stack.loader import PROJECT_DIR

VERBS = sorted(parser()._subparsers._group_actions[0].choices)  # every verb the CLI has, new ones included


def closed_reader(args: list[str], **env: str) -> subprocess.CompletedProcess:
    """`python -m components ARGS` writing into a pipe whose reader has already gone (`| head -0`)."""
    read, write = os.pipe()
    os.close(read)
    try:
        return subprocess.run(
            [sys.executable, "-m", "components", *args],
            cwd=PROJECT_DIR,
            env={**os.environ, **env},
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=300,
        )
    finally:
        os.close(write)


def assert_clean(done: subprocess.CompletedProcess, codes: tuple[int, ...]) -> None:
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr, done.stderr
    assert len(done.stderr.splitlines()) <= 3, done.stderr  # a verb's own refusal: its line and its problems
    assert done.returncode in codes, (done.returncode, done.stderr)


@pytest.mark.parametrize("verb", VERBS)
def test_every_verbs_help_into_a_closed_pipe_ends_quietly(verb):
    done = closed_reader([verb, "--help"])
    assert_clean(done, (0, exits.EXIT_CLOSED_PIPE))  # argparse itself drops a help text nobody reads
    assert done.stderr == ""


@pytest.fixture(scope="module")
def plan_file(tmp_path_factory, canary_env_dirs):
    path = tmp_path_factory.mktemp("plan") / "dev.plan.json"
    done = subprocess.run(
        [sys.executable, "-m", "components", "plan", "dev", "--json", "--env-dir", canary_env_dirs["dev"]],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    path.write_text(done.stdout)
    return str(path)


def runs(verb: str, env_dirs: dict, plan_file: str, tmp_path) -> tuple[list[str], tuple[int, ...]]:
    """Each verb as an operator runs it, and the exit codes it may end with when its reader is gone: 141 where it
    writes to stdout; where it refuses first (no deployed stack here, no CI secrets), its refusal's 2."""
    dev = ["dev", "--env-dir", env_dirs["dev"]]
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps({}))
    return {
        "render": ([verb, *dev, "--out", str(tmp_path / "out")], (141,)),
        "plan": ([verb, *dev, "--details"], (141,)),
        "validate": ([verb, *dev], (141,)),
        "env": ([verb, "prod", "--env-dir", env_dirs["prod"]], (141,)),
        "diff": ([verb, plan_file, plan_file], (141,)),
        "env-layers": ([verb, "dev"], (0, 141)),  # prints only the layers it creates
        "ci-env": ([verb, "dev"], (2, 141)),
        "smoke": ([verb, "dev", "--outputs", str(outputs), "--budget", "5"], (141,)),
        "reference": ([verb, "--check"], (141,)),
        "reach": ([verb, "dev"], (141,)),
        "backup": ([verb, *dev], (2, 141)),
        "backups": ([verb, *dev], (2, 141)),
        "restore": ([verb, *dev, "--from", "tensorzero-20261130T030000.000000Z-full"], (2, 141)),
        "restore-drill": ([verb, *dev], (2, 141)),
        # The seed's compose verbs: no stack is deployed here, so each refuses, naming the container it looked for.
        "logs": ([verb, *dev, "clickhouse"], (2, 141)),
        "exec": ([verb, *dev, "clickhouse", "--", "true"], (2, 141)),
        "restart": ([verb, *dev, "clickhouse"], (2, 141)),
    }[verb]


@pytest.mark.parametrize("verb", VERBS)
def test_every_verb_into_a_closed_pipe_ends_without_a_traceback(verb, canary_env_dirs, plan_file, tmp_path):
    args, codes = runs(verb, canary_env_dirs, plan_file, tmp_path)
    assert_clean(closed_reader(args), codes)


def validate_prod(env_dirs: dict) -> list[str]:
    # --no-cache: TensorZero's loader runs in its child every time, as on the first `validate` after a change.
    return [sys.executable, "-m", "components", "validate", "prod", "--env-dir", env_dirs["prod"], "--no-cache"]


@pytest.fixture(scope="module")
def validate_seconds(canary_env_dirs) -> float:
    """How long `validate prod` takes here, uninterrupted: the moments below are shares of it."""
    start = time.monotonic()
    subprocess.run(validate_prod(canary_env_dirs), cwd=PROJECT_DIR, capture_output=True, check=True, timeout=120)
    return time.monotonic() - start


@pytest.mark.parametrize("share", [0.15, 0.4, 0.65, 0.85])
def test_ctrl_c_ends_a_verb_with_one_line_and_130(canary_env_dirs, validate_seconds, share):
    """At each moment: importing, loading, planning under Pulumi's mocks (whose threads once kept it hanging)."""
    after = share * validate_seconds
    running = subprocess.Popen(
        validate_prod(canary_env_dirs), cwd=PROJECT_DIR, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    time.sleep(after)
    running.send_signal(signal.SIGINT)
    out, err = running.communicate(timeout=60)
    if running.returncode == 0 or "prod: valid" in out:  # the signal met only the interpreter's exit
        pytest.skip(f"validate prod finished within {after:.2f}s this time: nothing left to interrupt")
    # 130, or killed by the signal itself (a shell shows both as 130) when it lands while Python exits.
    assert running.returncode in (exits.EXIT_INTERRUPTED, -signal.SIGINT), (running.returncode, err)
    assert err.splitlines() == ["python -m components: interrupted"], err


def test_ctrl_c_at_a_terminal_says_interrupted_once_though_the_loader_check_runs_in_a_child(canary_env_dirs):
    """A terminal's Ctrl-C reaches the whole process group: `validate` and the child running TensorZero's loader
    (operate/tensorzero_check.py). One line, from the parent."""
    running = subprocess.Popen(
        validate_prod(canary_env_dirs),
        cwd=PROJECT_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    children = []
    deadline = time.monotonic() + 60
    while not children and running.poll() is None and time.monotonic() < deadline:
        children = subprocess.run(["pgrep", "-P", str(running.pid)], capture_output=True, text=True).stdout.split()
        time.sleep(0.02)
    if not children:
        pytest.skip("validate prod ended before its loader's child was seen: nothing left to interrupt")
    os.killpg(running.pid, signal.SIGINT)
    out, err = running.communicate(timeout=60)
    if running.returncode == 0:
        pytest.skip("validate prod finished before the signal landed")
    assert err.splitlines() == ["python -m components: interrupted"], err


def test_a_plan_that_is_not_text_is_one_line_naming_it(plan_file, tmp_path):
    binary = tmp_path / "binary.json"
    binary.write_bytes(b"\xff\xfe")
    done = closed_reader(["diff", str(binary), plan_file])
    assert_clean(done, (2,))
    assert done.stderr.splitlines()[1:] == [f"  {binary}: not UTF-8 text (byte 0)"], done.stderr


def test_a_file_error_no_verb_caught_is_one_line_naming_the_file_and_74(capsys):
    def writes_into_a_directory() -> int:
        raise IsADirectoryError(21, "Is a directory", "out/plan-diff/comment.md")

    assert exits.guarded("python -m components", writes_into_a_directory) == exits.EXIT_IO
    assert capsys.readouterr().err == "python -m components: out/plan-diff/comment.md: Is a directory\n"


def failed_output(args: list[str], **stdout) -> tuple[int, str]:
    """The verb's exit code and standard error when its standard output fails as `stdout` makes it."""
    done = subprocess.run(
        [sys.executable, "-m", "components", *args],
        cwd=PROJECT_DIR,
        stderr=subprocess.PIPE,
        text=True,
        timeout=300,
        **stdout,
    )
    return done.returncode, done.stderr


@pytest.mark.parametrize("verb", ["plan", "validate", "render"])
def test_standard_output_closed_from_the_start_is_one_line_and_74(verb, canary_env_dirs, tmp_path):
    """`>&-`: the interpreter starts without a standard output; the verb says so instead of a traceback."""
    extra = ["--out", str(tmp_path / "out")] if verb == "render" else []
    args = [verb, "dev", "--env-dir", canary_env_dirs["dev"], *extra]
    assert failed_output(args, preexec_fn=lambda: os.close(1)) == (
        exits.EXIT_IO,
        "python -m components: cannot write standard output: it is closed\n",
    )


@pytest.mark.parametrize("verb", ["validate", "plan", "env", "reach", "reference"])
def test_standard_output_that_cannot_be_written_is_named_with_74(verb, canary_env_dirs, tmp_path):
    """`> /dev/full` (a full disk): the one line says it was standard output, whatever the verb had printed."""
    args = {
        "plan": ["plan", "dev", "--details", "--env-dir", canary_env_dirs["dev"]],  # more than one buffer's worth
        "validate": ["validate", "dev", "--env-dir", canary_env_dirs["dev"]],
        "env": ["env", "prod", "--env-dir", canary_env_dirs["prod"]],
        "reach": ["reach", "dev"],
        "reference": ["reference", "--check"],
    }[verb]
    with open("/dev/full", "w") as full:
        assert failed_output(args, stdout=full) == (
            exits.EXIT_IO,
            "python -m components: cannot write standard output: No space left on device\n",
        )
