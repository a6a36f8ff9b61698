"""`make pulumi-cli` (the first prerequisite of `make up`, `make preview` and `make smoke`): without a `pulumi` on
PATH it downloads the pinned release into the venv's bin and checks its SHA-256 first. The release host is out of
reach here: a local file server stands in for it, serving a stand-in tarball of the release's layout
(`pulumi/pulumi`, `pulumi/pulumi-language-python`) whose `pulumi` is a shell script, not Pulumi."""

import hashlib
import io
import os
import re
import shutil
import subprocess
import tarfile
from functools import partial
from http.server import SimpleHTTPRequestHandler

import pytest
from conftest import LocalServer

from components.stack.loader import PROJECT_DIR

VERSION = re.search(r"^PULUMI_VERSION = (\S+)$", (PROJECT_DIR / "Makefile").read_text(), re.M).group(1)
TARBALL = f"pulumi-v{VERSION}-linux-x64.tar.gz"
STAND_IN = f'#!/bin/sh\nif [ "$1" = version ]; then echo v{VERSION}; else echo "stand-in pulumi: $*"; fi\n'


def stand_in_release() -> bytes:
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:gz") as tar:
        for name, text in (("pulumi/pulumi", STAND_IN), ("pulumi/pulumi-language-python", "#!/bin/sh\n")):
            member = tarfile.TarInfo(name)
            member.size, member.mode = len(text), 0o755
            tar.addfile(member, io.BytesIO(text.encode()))
    return data.getvalue()


@pytest.fixture
def release_host(tmp_path):
    """The stand-in release host on loopback: serves the tarball and counts what was asked of it."""
    served = tmp_path / "releases"
    served.mkdir()
    (served / TARBALL).write_bytes(stand_in_release())
    asked = []

    class Handler(SimpleHTTPRequestHandler):
        def do_GET(self):
            asked.append(self.path)
            super().do_GET()

        def log_message(self, *args):
            pass

    server = LocalServer(partial(Handler, directory=str(served)))
    sha = hashlib.sha256((served / TARBALL).read_bytes()).hexdigest()
    yield f"http://127.0.0.1:{server.port}/{TARBALL}", sha, asked
    server.close()


@pytest.fixture
def project(tmp_path):
    """A fresh clone's Makefile and committed checksums, and a PATH without any `pulumi`."""
    root = tmp_path / "clone"
    (root / ".ci").mkdir(parents=True)
    shutil.copy(PROJECT_DIR / "Makefile", root / "Makefile")
    shutil.copy(PROJECT_DIR / ".ci" / "pulumi.sha256", root / ".ci" / "pulumi.sha256")
    path = os.pathsep.join(d for d in os.environ["PATH"].split(os.pathsep) if not shutil.which("pulumi", path=d))
    assert shutil.which("pulumi", path=path) is None
    return root, {**os.environ, "PATH": path}


def make(project, *args: str) -> subprocess.CompletedProcess:
    root, env = project
    return subprocess.run(["make", "-C", str(root), *args], env=env, capture_output=True, text=True, timeout=120)


def test_installs_the_release_whose_checksum_matches_once(project, release_host):
    url, sha, asked = release_host
    done = make(project, "pulumi-cli", f"PULUMI_URL={url}", f"PULUMI_SHA256={sha}")
    assert done.returncode == 0, done.stderr
    installed = project[0] / ".venv" / "bin"
    assert sorted(p.name for p in installed.iterdir()) == ["pulumi", "pulumi-language-python"]
    version = subprocess.run([installed / "pulumi", "version"], capture_output=True, text=True, check=True)
    assert version.stdout.strip() == f"v{VERSION}"
    assert f"installed the Pulumi CLI v{VERSION} into .venv/bin (SHA-256 checked" in done.stdout
    again = make(project, "pulumi-cli", f"PULUMI_URL={url}", f"PULUMI_SHA256={sha}")
    assert again.returncode == 0 and len(asked) == 1  # installed once: not downloaded again
    assert not list((project[0] / ".venv").glob(".pulumi-download.*"))


def test_a_wrong_checksum_stops_with_a_clear_message_and_installs_nothing(project, release_host):
    url, sha, asked = release_host
    wrong = hashlib.sha256(b"another release").hexdigest()
    done = make(project, "pulumi-cli", f"PULUMI_URL={url}", f"PULUMI_SHA256={wrong}")
    assert done.returncode != 0 and asked == [f"/{TARBALL}"]
    assert f"error: {TARBALL} from {url} has SHA-256 {sha}," in done.stderr
    assert f"not the {wrong} committed in .ci/pulumi.sha256: not installed (nothing was)." in done.stderr
    assert not list((project[0] / ".venv" / "bin").iterdir())  # no pulumi
    assert not list((project[0] / ".venv").glob(".pulumi-download.*"))  # no leftover download


def test_make_up_stops_before_anything_else_when_the_cli_cannot_be_verified(project, release_host):
    """`up`'s first prerequisite: no venv created, nothing deployed, when the download does not verify."""
    url, _, asked = release_host
    done = make(project, "up", f"PULUMI_URL={url}", f"PULUMI_SHA256={'0' * 64}")
    assert done.returncode != 0 and "not installed (nothing was)" in done.stderr
    assert not (project[0] / ".venv" / "bin" / "python").exists() and len(asked) == 1


def test_the_committed_checksums_name_the_pinned_release_for_each_linux_platform():
    """One "<sha256>  <file>" line per platform the Makefile can fetch, for the version it pins."""
    lines = [
        line for line in (PROJECT_DIR / ".ci" / "pulumi.sha256").read_text().splitlines() if not line.startswith("#")
    ]
    pinned = dict(reversed(line.split("  ")) for line in lines)
    assert set(pinned) == {f"pulumi-v{VERSION}-linux-{arch}.tar.gz" for arch in ("x64", "arm64")}
    assert all(re.fullmatch(r"[0-9a-f]{64}", sha) for sha in pinned.values())


def test_the_makefile_checks_against_the_committed_line(project, release_host):
    """With no override, the SHA-256 a download must match is the committed line (the stand-in never does)."""
    url, _, asked = release_host
    [committed] = [
        line.split()[0]
        for line in (PROJECT_DIR / ".ci" / "pulumi.sha256").read_text().splitlines()
        if line.endswith(f"  {TARBALL}")
    ]
    done = make(project, "pulumi-cli", f"PULUMI_URL={url}")
    assert done.returncode != 0 and asked == [f"/{TARBALL}"]
    assert f"not the {committed} committed in .ci/pulumi.sha256: not installed (nothing was)." in done.stderr


def test_without_a_checksum_nothing_is_downloaded(project, release_host):
    """A release the committed file has no line for (here: the checksum given empty) is never fetched unverified."""
    url, _, asked = release_host
    done = make(project, "pulumi-cli", f"PULUMI_URL={url}", "PULUMI_SHA256=")
    assert done.returncode != 0 and asked == []
    assert f"holds no SHA-256 for {TARBALL}" in done.stderr
    assert f"https://get.pulumi.com/releases/sdk/pulumi-{VERSION}-checksums.txt" in done.stderr


def test_the_pinned_cli_is_the_sdks_version():
    """The CLI `make up` installs is the one the CI workflows install: the SDK's version in requirements.txt."""
    sdk = re.search(r"^pulumi==(\S+)$", (PROJECT_DIR / "requirements.txt").read_text(), re.M).group(1)
    assert VERSION == sdk
