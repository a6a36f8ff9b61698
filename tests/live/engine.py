"""The local Docker engine for the live tests: containers on one network, bounded waits, logs on failure,
and every container and network removed at the end."""

import io
import json
import os
import secrets
import shlex
import subprocess
import tarfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Optional, TypeVar

T = TypeVar("T")

DOCKER_TIMEOUT_S = 120
ENGINE_TIMEOUT_S = 20
LOG_LINES = 60
# Healthchecks of the live containers: quick, since a test waits on them.
HEALTH = ("--health-interval", "1s", "--health-timeout", "3s", "--health-retries", "3", "--health-start-period", "60s")


class DockerFailed(Exception):
    pass


class NotReady(Exception):
    """What a readiness probe saw."""


def docker(
    *args: str, timeout: float = DOCKER_TIMEOUT_S, env: Optional[dict[str, str]] = None, data: bytes = b""
) -> str:
    done = subprocess.run(
        ["docker", *args],
        input=data or None,
        capture_output=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )
    if done.returncode != 0:
        raise DockerFailed(f"`docker {' '.join(args[:2])} ...` failed: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout.decode(errors="replace")


def engine_problem() -> Optional[str]:
    """Why the local engine cannot be used, or None."""
    try:
        docker("version", "--format", "{{.Server.Version}}", timeout=ENGINE_TIMEOUT_S)
    except FileNotFoundError:
        return "the docker CLI is not installed"
    except subprocess.TimeoutExpired:
        return f"the Docker engine did not answer within {ENGINE_TIMEOUT_S}s"
    except DockerFailed as error:
        return str(error)
    return None


def docker_host_url() -> str:
    """The engine as the smoke suite's outputs name it."""
    return os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")


def wait_for(what: str, probe: Callable[[], T], timeout: float, logs: Callable[[], str] = lambda: "") -> T:
    """`probe()` until it returns instead of raising NotReady, backing off; fails with what it saw and logs."""
    deadline = time.monotonic() + timeout
    delay, seen = 0.1, ""
    while True:
        try:
            return probe()
        except NotReady as not_ready:
            seen = str(not_ready)
        if time.monotonic() + delay > deadline:
            raise AssertionError(f"{what}: not ready after {timeout:g}s: {seen}\n{logs()}")
        time.sleep(delay)
        delay = min(delay * 2, 1.0)


def tar_of(files: dict[str, str]) -> bytes:
    """A tar of absolute paths to contents (and their parent directories), for `docker cp - name:/`."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        directories = sorted({str(p) for path in files for p in PurePosixPath(path).parents if str(p) != "/"})
        for directory in directories:
            info = tarfile.TarInfo(directory.lstrip("/"))
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            archive.addfile(info)
        for path, content in files.items():
            payload = content.encode()
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size, info.mode = len(payload), 0o644
            archive.addfile(info, io.BytesIO(payload))
    return buffer.getvalue()


@dataclass
class Container:
    name: str
    role: str

    def inspect(self) -> dict:
        return json.loads(docker("inspect", "--type", "container", self.name))[0]

    def url(self, port: int) -> str:
        """Where the host reaches `port`, published on 127.0.0.1 with an engine-chosen port."""
        published = docker("port", self.name, f"{port}/tcp").split()[0]
        return f"http://{published}"

    def logs(self, lines: int = LOG_LINES) -> str:
        try:
            done = subprocess.run(
                ["docker", "logs", "--tail", str(lines), self.name], capture_output=True, timeout=20, check=False
            )
        except subprocess.TimeoutExpired:
            return "(docker logs did not answer)"
        text = (done.stdout + done.stderr).decode(errors="replace").strip()
        return f"--- last {lines} log lines of {self.name} ({self.role}) ---\n{text or '(none)'}"

    def stop(self) -> None:
        docker("stop", "--time", "2", self.name)

    def start(self) -> None:
        docker("start", self.name)

    def health(self) -> str:
        state = self.inspect()["State"]
        if state["Status"] != "running":
            return f"{state['Status']} (exit code {state['ExitCode']})"
        return state.get("Health", {}).get("Status", "running")

    def wait_healthy(self, timeout: float = 60) -> None:
        def probe():
            health = self.health()
            if health.startswith(("exited", "dead")):
                raise AssertionError(f"{self.name} ({self.role}) stopped: {health}\n{self.logs()}")
            if health != "healthy":
                raise NotReady(health)

        wait_for(f"{self.role} container {self.name} healthy", probe, timeout, self.logs)


@dataclass
class Fleet:
    """The containers of one test session, on networks with the stack's aliases (one per Docker host the stack
    places services on), and the volumes they made; always removed."""

    prefix: str
    containers: dict[str, Container] = field(default_factory=dict)
    network: str = ""  # the main host's
    networks: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)

    def create_network(self, suffix: str = "net") -> str:
        name = f"{self.prefix}-{suffix}"
        docker("network", "create", "--label", f"org.pmoves.test={self.prefix}", name)
        self.networks.append(name)
        self.network = self.network or name
        return name

    def gateway_address(self, network: str) -> str:
        """The Docker host's address on `network`: where containers on every network reach its published ports."""
        inspected = json.loads(docker("network", "inspect", network))[0]
        return inspected["IPAM"]["Config"][0]["Gateway"]

    def create_volume(self, name: str) -> str:
        docker("volume", "create", "--label", f"org.pmoves.test={self.prefix}", name)
        self.volumes.append(name)
        return name

    def run(
        self,
        role: str,
        image: str,
        *,
        aliases: Iterable[str] = (),
        env: Sequence[tuple[str, str]] = (),
        command: Sequence[str] = (),
        entrypoint: Optional[str] = None,
        publish: Iterable[int | str] = (),
        files: Optional[dict[str, str]] = None,
        mounts: Iterable[tuple[str, str]] = (),
        volumes: Iterable[tuple[str, str]] = (),
        healthcheck: Optional[Sequence[str]] = None,
        network: Optional[str] = None,
        joins: Iterable[tuple[str, Sequence[str]]] = (),
    ) -> Container:
        """Create, upload `files` (path: content, as the stack's uploads), start. `publish`: a port, published on
        127.0.0.1 at a port the engine picks, or a whole `--publish` value. `mounts` are read-only host paths,
        `volumes` (name, path) named volumes; `joins` (network, aliases) further networks, joined before it
        starts. Env values travel in the docker CLI's own environment
        (`--env NAME`), never in its arguments."""
        container = Container(f"{self.prefix}-{role}", role)
        args = [
            "create",
            "--name",
            container.name,
            "--network",
            network or self.network,
            "--label",
            f"org.pmoves.test={self.prefix}",
        ]
        for alias in aliases:
            args += ["--network-alias", alias]
        for name, _ in env:
            args += ["--env", name]
        for port in publish:
            args += ["--publish", port if isinstance(port, str) else f"127.0.0.1::{port}"]
        for source, target in mounts:
            args += ["--volume", f"{source}:{target}:ro"]
        for name, target in volumes:
            args += ["--volume", f"{name}:{target}"]
        if healthcheck:
            args += ["--health-cmd", shlex.join(healthcheck), *HEALTH]
        if entrypoint:
            args += ["--entrypoint", entrypoint]
        docker(*args, image, *command, env=dict(env))
        self.containers[role] = container
        for joined, joined_aliases in joins:
            docker("network", "connect", *(f"--alias={alias}" for alias in joined_aliases), joined, container.name)
        if files:
            docker("cp", "-", f"{container.name}:/", data=tar_of(files))
        docker("start", container.name)
        return container

    def logs(self) -> str:
        return "\n".join(container.logs() for container in self.containers.values())

    def remove_container(self, role: str) -> None:
        container = self.containers.pop(role)
        try:
            docker("rm", "--force", "--volumes", container.name, timeout=60)
        except (DockerFailed, subprocess.TimeoutExpired):
            pass

    def remove(self) -> None:
        for role in list(self.containers):
            self.remove_container(role)
        for kind, names in (("network", self.networks), ("volume", self.volumes)):
            for name in names:
                try:
                    docker(kind, "rm", name, timeout=60)
                except (DockerFailed, subprocess.TimeoutExpired):
                    pass


@contextmanager
def fleet_of(name: str, network: str = "net") -> Iterator[Fleet]:
    """A fleet with its first network (`<prefix>-<network>`), under a unique prefix (sessions and other users never
    collide); everything it made is removed at the end."""
    fleet = Fleet(f"pmoves-{name}-{secrets.token_hex(3)}")
    fleet.create_network(network)
    try:
        yield fleet
    finally:
        fleet.remove()
