"""`make restore` without FROM refuses before any prerequisite runs: no venv, no env layer, no container touched."""

import shutil
import subprocess

from components.stack.loader import PROJECT_DIR


def test_make_restore_without_from_refuses_having_created_nothing(tmp_path):
    shutil.copy(PROJECT_DIR / "Makefile", tmp_path / "Makefile")
    (tmp_path / "envfiles" / "prod").mkdir(parents=True)
    (tmp_path / "envfiles" / "prod" / "env.shared.example").write_text("A=1\n")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    done = subprocess.run(["make", "restore", "STACK=prod"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "error: make restore needs FROM=<backup>: `make backups STACK=prod` lists them; nothing was changed" in (
        done.stderr
    )
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
