"""The offline CLI as an operator and CI run it: as a separate process, on copies of this project."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tomli
from conftest import CANARIES, STACKS, write_canary_env

from components.loader import PROJECT_DIR

PROJECT_PARTS = ("components", "templates", "catalog", "stacks", "envfiles", "Pulumi.yaml")


def copy_project(target: Path) -> Path:
    for part in PROJECT_PARTS:
        source = PROJECT_DIR / part
        if source.is_dir():
            shutil.copytree(source, target / part, ignore=shutil.ignore_patterns("__pycache__", ".env.local"))
        else:
            shutil.copy(source, target / part)
    return target


def cli(project: Path, *args: str, hash_seed: str = "0") -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(project), "PYTHONHASHSEED": hash_seed}
    return subprocess.run(
        [sys.executable, "-m", "components", *args], cwd=project, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    return copy_project(tmp_path_factory.mktemp("project"))


@pytest.fixture(scope="module")
def env_dirs(tmp_path_factory) -> dict[str, str]:
    return {stack: str(write_canary_env(stack, tmp_path_factory.mktemp(f"cli-env-{stack}"))) for stack in STACKS}


def assert_no_canary(*texts: str) -> None:
    leaked = [name for name, value in CANARIES.items() for text in texts if value in text]
    assert leaked == []


@pytest.mark.parametrize("stack", STACKS)
def test_render_writes_every_mounted_file_and_its_manifest(stack, project, env_dirs, tmp_path):
    result = cli(project, "render", stack, "--out", str(tmp_path), "--env-dir", env_dirs[stack])
    assert result.returncode == 0, result.stderr
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert {entry["kind"] for entry in manifest} == {"tensorzero-config", "clickhouse-server-config"}
    for entry in manifest:
        assert set(entry) == {"path", "kind", "container", "mount"}
        assert entry["mount"].startswith("/")
    [config] = [e for e in manifest if e["kind"] == "tensorzero-config"]
    assert (config["container"], config["mount"]) == ("gateway", "/app/config/tensorzero.toml")
    assert "gateway" in tomli.loads((tmp_path / config["path"]).read_text())
    assert_no_canary(result.stdout, result.stderr, *(p.read_text() for p in tmp_path.rglob("*") if p.is_file()))


@pytest.mark.parametrize("stack", STACKS)
def test_plan_is_byte_identical_across_runs(stack, project, env_dirs):
    first = cli(project, "plan", stack, "--json", "--env-dir", env_dirs[stack], hash_seed="1")
    second = cli(project, "plan", stack, "--json", "--env-dir", env_dirs[stack], hash_seed="2")
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    assert_no_canary(first.stdout, first.stderr)


@pytest.mark.parametrize("command", ["validate", "env", "plan"])
def test_human_output_masks_credentials(command, project, env_dirs):
    for stack in STACKS:
        result = cli(project, command, stack, "--env-dir", env_dirs[stack])
        assert result.returncode == 0, result.stderr
        assert_no_canary(result.stdout, result.stderr)


def test_env_shows_each_value_with_its_source(project, env_dirs):
    result = cli(project, "env", "dev", "--env-dir", env_dirs["dev"])
    lines = result.stdout.splitlines()
    assert "  CLICKHOUSE_PASSWORD=[secret]    # " + env_dirs["dev"] + "/.env.local:1" in lines
    assert "  OLLAMA_KEEP_ALIVE=24h    # " + env_dirs["dev"] + "/env.shared:5" in lines


def plan_json(project: Path, stack: str, env_dir: str, path: Path) -> Path:
    result = cli(project, "plan", stack, "--json", "--env-dir", env_dir)
    assert result.returncode == 0, result.stderr
    path.write_text(result.stdout)
    return path


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_changing_one_chat_model_replaces_only_the_gateway(tmp_path, env_dirs):
    changed = copy_project(tmp_path / "changed")
    before = plan_json(changed, "staging", env_dirs["staging"], tmp_path / "before.json")
    edit(changed / "catalog" / "models.toml", 'model = "gpt-4o"', 'model = "gpt-4o-mini"')
    after = plan_json(changed, "staging", env_dirs["staging"], tmp_path / "after.json")
    result = cli(changed, "diff", str(before), str(after), "--json")
    assert [(c["action"], c["name"], c["keys"]) for c in json.loads(result.stdout)] == [
        ("replace", "gateway-container", ["uploads"])
    ]


def test_a_port_change_and_a_new_model_name_their_resources(tmp_path, env_dirs):
    changed = copy_project(tmp_path / "changed")
    before = plan_json(changed, "dev", env_dirs["dev"], tmp_path / "before.json")
    edit(changed / "stacks" / "Pulumi.dev.yaml", "port: 4000", "port: 4400")
    edit(
        changed / "stacks" / "Pulumi.dev.yaml",
        "      - gemma_embed_local",
        "      - gemma_embed_local\n      - nomic_embed",
    )
    (changed / "catalog" / "models.toml").write_text(
        (changed / "catalog" / "models.toml").read_text()
        + ('\n[models.nomic_embed]\nprovider = "ollama"\nmodel = "nomic-embed-text"\ntype = "embedding"\n')
    )
    after = plan_json(changed, "dev", env_dirs["dev"], tmp_path / "after.json")
    result = cli(changed, "diff", str(before), str(after))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "+- replace docker:index/container:Container gateway-container (uploads)",
        "+  create  docker:index/container:Container ollama-pull-nomic-embed-text",
        "+- replace docker:index/container:Container ui-container (ports)",
        "1 to create, 2 to replace",
    ]


def test_diff_of_identical_plans_is_empty(tmp_path, project, env_dirs):
    path = plan_json(project, "prod", env_dirs["prod"], tmp_path / "plan.json")
    assert cli(project, "diff", str(path), str(path)).stdout == "no changes\n"


def test_diff_refuses_what_is_not_a_plan(tmp_path, project):
    (tmp_path / "bad.json").write_text("{not json")
    result = cli(project, "diff", str(tmp_path / "bad.json"), str(tmp_path / "missing.json"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "bad.json: not a plan (invalid JSON" in result.stderr


def test_render_into_a_place_it_cannot_write_is_a_clean_error(project, env_dirs, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = cli(project, "render", "dev", "--out", str(blocker / "out"), "--env-dir", env_dirs["dev"])
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{blocker}/out: cannot write: Not a directory" in result.stderr
