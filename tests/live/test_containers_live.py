"""The seed's `docker compose logs/exec/restart`, as `make logs/exec/restart`, run on the local engine.

A throwaway stack (a unique name_prefix) and a stand-in container under the name its ClickHouse would have:
the verbs find it by the seed's compose name and run real `docker` commands on it.
"""

import subprocess
import uuid

from conftest import MINIMAL_CATALOG, MINIMAL_ENV, cli, copy_project, make_project, minimal_config

from components.core.names import PROJECT, PROJECT_LABEL, SERVICE_LABEL, STACK_LABEL

STAND_IN_IMAGE = "pmoves-test/debian:bookworm"  # built by tests/live/build-images


def test_logs_exec_and_restart_reach_the_container_by_the_seeds_name(live_images, tmp_path):
    prefix = f"i19-{uuid.uuid4().hex[:8]}"
    project = make_project(
        copy_project(tmp_path),
        minimal_config(name_prefix=prefix),
        {"catalog.toml": MINIMAL_CATALOG, "env/env.shared": MINIMAL_ENV},
    )
    name = f"{prefix}-tensorzero-clickhouse"
    # The labels the Docker target gives every container of the stack: how the verbs find it.
    labels = [
        arg
        for label in (f"{PROJECT_LABEL}={PROJECT}", f"{STACK_LABEL}={prefix}", f"{SERVICE_LABEL}=clickhouse")
        for arg in ("--label", label)
    ]
    started = subprocess.run(
        ["docker", "run", "-d", "--name", name, *labels, STAND_IN_IMAGE, "sh", "-c", "echo ready; exec sleep 300"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    try:
        env_dir = ["--env-dir", str(project / "env")]

        def run(*args):
            return cli(project, *args)

        logs = run("logs", *env_dir, "test", "tensorzero-clickhouse")
        assert logs.returncode == 0 and "ready" in logs.stdout, logs.stderr
        ran = run("exec", *env_dir, "test", "clickhouse", "--", "echo", "inside")
        assert ran.returncode == 0 and ran.stdout.splitlines()[-1] == "inside", ran.stderr
        before = subprocess.run(
            ["docker", "inspect", "-f", "{{.State.StartedAt}}", name], capture_output=True, text=True
        )
        restarted = run("restart", *env_dir, "test", "tensorzero-clickhouse")
        after = subprocess.run(
            ["docker", "inspect", "-f", "{{.State.StartedAt}}", name], capture_output=True, text=True
        )
        assert restarted.returncode == 0 and before.stdout != after.stdout, restarted.stderr
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, timeout=60)
