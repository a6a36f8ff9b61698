"""The offline CLI as an operator and CI run it: as a separate process, on copies of this project."""

import json
import re
from pathlib import Path

import pytest
import tomli
import yaml
from conftest import CANARIES, DOCKER_STACKS, STACKS, cli, copy_project, env_templates, write_canary_env

from components.services import edge
from components.stack.loader import PROJECT_DIR


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
    documented = set(re.findall(r"^\| `([a-z-]+)` \|", (PROJECT_DIR / "docs" / "operations.md").read_text(), re.M))
    assert {"tensorzero-config", "clickhouse-server-config"} <= {entry["kind"] for entry in manifest} <= documented
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


@pytest.mark.parametrize("stack", DOCKER_STACKS)
def test_env_lists_exactly_the_containers_the_plan_declares(stack, project, env_dirs):
    listed = cli(project, "env", stack, "--env-dir", env_dirs[stack])
    planned = cli(project, "plan", stack, "--json", "--env-dir", env_dirs[stack])
    assert listed.returncode == planned.returncode == 0, listed.stderr + planned.stderr
    headers = [line.rsplit(" ", 1)[1] for line in listed.stdout.splitlines() if line.startswith("[")]
    declared = [
        r["inputs"]["name"] for r in json.loads(planned.stdout)["resources"] if r["type"].endswith(":Container")
    ]
    # A rolling container's name ends in a random generation, drawn when it is created.
    assert sorted(re.sub(r"-[0-9a-f]{8}$", "-<generation>", name) for name in declared) == sorted(headers)
    assert len(headers) == len(set(headers)) > 0


def test_env_shows_each_value_with_its_source(project, env_dirs):
    result = cli(project, "env", "dev", "--env-dir", env_dirs["dev"])
    lines = result.stdout.splitlines()
    # One-shots too: the schema container carries the ClickHouse password.
    assert "[clickhouse-schema apply] pmoves-dev-tensorzero-clickhouse-schema" in lines
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


def test_changing_one_chat_model_replaces_the_gateway_the_edge_and_reapplies_the_schema(tmp_path, env_dirs):
    changed = copy_project(tmp_path / "changed")
    before = plan_json(changed, "staging", env_dirs["staging"], tmp_path / "before.json")
    edit(changed / "catalog" / "models.toml", 'model = "gpt-4o"', 'model = "gpt-4o-mini"')
    after = plan_json(changed, "staging", env_dirs["staging"], tmp_path / "after.json")
    result = cli(changed, "diff", str(before), str(after), "--json")
    # The `requests` view maps each provider's upstream model name, so its one-shot SQL re-runs too;
    # the edge takes upstream names as bare model names, so its settings change with them.
    assert [(c["action"], c["name"], c["keys"]) for c in json.loads(result.stdout)] == [
        ("replace", "clickhouse-schema-apply", ["uploads"]),
        ("replace", "edge-container", ["uploads"]),
        ("replace", "gateway-container", ["uploads"]),
    ]
    old_names, new_names = edge_settings(before)["models"]["chat"], edge_settings(after)["models"]["chat"]
    assert (old_names.get("gpt-4o"), new_names.get("gpt-4o-mini")) == ("gpt_4o", "gpt_4o")
    assert "gpt-4o-mini" not in old_names and "gpt-4o" not in new_names


def edge_settings(plan: Path) -> dict:
    """The settings.json the plan uploads into the edge container."""
    [container] = [r for r in json.loads(plan.read_text())["resources"] if r["name"] == "edge-container"]
    [settings] = [u for u in container["inputs"]["uploads"] if u["file"].endswith(f"/{edge.LUA_DIR}/settings.json")]
    return json.loads(settings["content"])


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
    # The output, not the configuration: sysexits' I/O error (74), naming the path, never "invalid configuration".
    assert result.returncode == 74 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith(f"dev: cannot write {blocker}/out/") and result.stderr.endswith(
        ": Not a directory\n"
    )


# Plan + diff between two versions of a stack, as the pull-request workflow shows them (`make plan-diff`).


def update_stack(project: Path, stack: str, key: str, change) -> None:
    """Change one key of a copied stack file through its parsed YAML, not its text."""
    from components.core.names import PROJECT

    path = project / "stacks" / f"Pulumi.{stack}.yaml"
    document = yaml.safe_load(path.read_text())
    change(document["config"][f"{PROJECT}:{key}"])
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def changes(project: Path, before: Path, after: Path) -> list[tuple[str, str, list[str]]]:
    result = cli(project, "diff", str(before), str(after), "--json")
    assert result.returncode == 0, result.stderr
    return [(change["action"], change["name"], change["keys"]) for change in json.loads(result.stdout)]


def resources_by_name(plan: Path) -> dict[str, dict]:
    return {resource["name"]: resource for resource in json.loads(plan.read_text())["resources"]}


@pytest.mark.parametrize("stack", DOCKER_STACKS)
def test_an_ollama_model_added_replaces_the_gateway_and_creates_its_pull(stack, env_dirs, tmp_path):
    changed = copy_project(tmp_path / "changed")
    base = plan_json(changed, stack, env_dirs[stack], tmp_path / "before.json")
    with (changed / "catalog" / "models.toml").open("a") as catalog:
        catalog.write('\n[models.nomic_embed]\nprovider = "ollama"\nmodel = "nomic-embed-text"\ntype = "embedding"\n')
    update_stack(changed, stack, "catalog", lambda catalog: catalog["models"].append("nomic_embed"))
    after = plan_json(changed, stack, env_dirs[stack], tmp_path / "after.json")
    assert changes(changed, base, after) == [
        ("replace", "clickhouse-schema-apply", ["uploads"]),
        ("replace", "edge-container", ["uploads"]),
        ("replace", "gateway-container", ["uploads"]),
        ("create", "ollama-pull-nomic-embed-text", []),
    ]
    # Why: the gateway's uploaded tensorzero.toml now serves the model, a one-shot container pulls it,
    # the `requests` view learns its upstream name, and the edge maps its bare names.
    embedding_names = edge_settings(after)["models"]["embedding"]
    assert embedding_names["nomic_embed"] == embedding_names["nomic-embed-text"] == "nomic_embed"
    assert "nomic_embed" not in edge_settings(base)["models"]["embedding"]
    before, now = resources_by_name(base), resources_by_name(after)
    [config] = now["gateway-container"]["inputs"]["uploads"]
    assert tomli.loads(config["content"])["embedding_models"]["nomic_embed"]["routing"]
    assert "nomic_embed" not in tomli.loads(before["gateway-container"]["inputs"]["uploads"][0]["content"]).get(
        "embedding_models", {}
    )
    assert now["ollama-pull-nomic-embed-text"]["inputs"]["command"] == ["pull", "nomic-embed-text"]
    text = cli(changed, "diff", str(base), str(after))
    assert text.stdout.splitlines()[0] == "1 to create, 3 to replace"  # the summary leads


@pytest.mark.parametrize("stack", DOCKER_STACKS)
def test_a_ui_port_changed_replaces_the_container_publishing_it_and_nothing_else(stack, env_dirs, tmp_path):
    """The edge publishes the UI's port behind its login: the edge's container is replaced, not the UI's."""
    changed = copy_project(tmp_path / "changed")
    base = plan_json(changed, stack, env_dirs[stack], tmp_path / "before.json")
    update_stack(changed, stack, "ui", lambda ui: ui.update(port=ui["port"] + 400))
    after = plan_json(changed, stack, env_dirs[stack], tmp_path / "after.json")
    assert changes(changed, base, after) == [("replace", "edge-container", ["ports"])]
    old_ports = resources_by_name(base)["edge-container"]["inputs"]["ports"]
    new_ports = resources_by_name(after)["edge-container"]["inputs"]["ports"]
    # The UI's ports (on prod two faces: HTTPS on the host's address, plain on loopback) move; the API's stay.
    ui_port = resources_by_name(base)["edge-container"]["inputs"]["ports"][-1]["external"]  # the UI's come last
    moved = [{**p, "external": p["external"] + 400} if p["external"] == ui_port else p for p in old_ports]
    assert new_ports == moved and moved != old_ports
    text = cli(changed, "diff", str(base), str(after))
    assert text.stdout.splitlines() == [
        "1 to replace",
        "+- replace docker:index/container:Container edge-container (ports)",
    ]


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_a_plain_variable_changed_beside_a_secret_replaces_the_container(stack, env_dirs, tmp_path):
    """The ClickHouse container holds its password (secret) beside its user (plain): changing the user must
    show, as `pulumi up` will replace the containers that read it."""
    changed = copy_project(tmp_path / "changed")
    base = plan_json(changed, stack, env_dirs[stack], tmp_path / "before.json")
    update_stack(changed, stack, "clickhouse", lambda clickhouse: clickhouse.update(user="pmoves_renamed"))
    after = plan_json(changed, stack, env_dirs[stack], tmp_path / "after.json")
    assert changes(changed, base, after) == [
        ("replace", "backup-container", ["envs"]),  # backupctl logs in as that user
        ("replace", "backup-pre-upgrade", ["envs"]),
        ("replace", "clickhouse-container", ["envs"]),
        ("replace", "clickhouse-schema-apply", ["envs"]),
        ("replace", "gateway-container", ["envs"]),  # its ClickHouse URL names the user
    ]
    envs = resources_by_name(after)["clickhouse-container"]["inputs"]["envs"]
    assert "CLICKHOUSE_USER=pmoves_renamed" in envs and "CLICKHOUSE_PASSWORD=[secret]" in envs
    [url] = [e for e in resources_by_name(after)["gateway-container"]["inputs"]["envs"] if "_URL=" in e]
    database = "default" if stack == "prod" else "tensorzero"  # prod logs where PMOVES's gateway did
    assert url == f"TENSORZERO_CLICKHOUSE_URL=http://pmoves_renamed:[secret]@tensorzero-clickhouse:8123/{database}"
    assert_no_canary(after.read_text())


def test_plan_leads_with_a_summary_and_gives_every_input_on_request(project, env_dirs):
    planned = json.loads(cli(project, "plan", "prod", "--json", "--env-dir", env_dirs["prod"]).stdout)
    short = cli(project, "plan", "prod", "--env-dir", env_dirs["prod"])
    assert short.returncode == 0, short.stderr
    lines = short.stdout.splitlines()
    assert lines[0] == "Plan of stack prod (offline, under Pulumi's mocks): what `pulumi up` declares"
    assert f"    + {len(planned['resources'])} to create (against an empty stack; `diff` compares two plans)" in lines
    containers = sum(r["type"].endswith(":Container") for r in planned["resources"])
    assert f"{containers} Container" in short.stdout
    # The migration guide's step: prod's adopted volumes, read and never created (docs/migration.md).
    assert "    > 2 to read: existing, adopted; never created, replaced or deleted" in lines
    assert "      > read Volume clickhouse-data (tensorzero-clickhouse-data)" in lines
    assert "      > read Volume ollama-models (pmoves-ollama-models)" in lines
    assert len(lines) < len(planned["resources"]) + 15  # one line per resource, not every input
    assert "inputs" not in short.stdout and "protect: " not in short.stdout
    detailed = cli(project, "plan", "prod", "--details", "--env-dir", env_dirs["prod"])
    assert detailed.stdout.startswith(short.stdout.rsplit("\n", 2)[0])
    assert yaml.safe_load(detailed.stdout.split("Every input follows.\n", 1)[1]) == planned


def test_env_works_before_the_credentials_are_filled_in_and_names_each_missing_one(project, tmp_path):
    """Straight from the templates, prod supplies no credential: `env` still lists every container, shows
    each missing credential as missing, and names them all; `validate` refuses the same stack."""
    layers = env_templates("prod", tmp_path / "env")
    listed = cli(project, "env", "prod", "--env-dir", str(layers))
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    empty = f"  CLICKHOUSE_PASSWORD=[missing]    # clickhouse.password_var: it is empty in {layers}/env.shared:"
    assert any(line.startswith(empty) for line in lines), listed.stdout
    assert any(line.startswith("  ANTHROPIC_API_KEY=[missing]    # named by the catalog: ") for line in lines)
    summary = lines.index(next(line for line in lines if line.startswith("missing: ")))
    named = lines[summary + 1 :]
    refused = cli(project, "validate", "prod", "--env-dir", str(layers))
    assert refused.returncode == 2
    # Exactly the problems `validate` reports about them, one line each.
    assert sorted(named) == sorted(refused.stderr.splitlines()[1:])
    assert lines[summary] == f"missing: {len(named)} credentials; `validate` refuses the stack until each is set:"


@pytest.mark.parametrize(
    ("stack", "expected"),
    [
        ("dev", "  CLICKHOUSE_USER=tensorzero    # default of clickhouse.user"),
        ("staging", "  CLICKHOUSE_USER=pmoves_tz    # stacks/Pulumi.staging.yaml: clickhouse.user"),
    ],
)
def test_env_names_a_spec_default_as_a_default(stack, expected, project, env_dirs):
    """dev's stack file does not set clickhouse.user: its value is the spec's default, not a key of that file."""
    listed = cli(project, "env", stack, "--env-dir", env_dirs[stack])
    assert expected in listed.stdout.splitlines()
