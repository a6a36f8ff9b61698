"""The stack file's reference (components/operate/reference.py): its JSON Schema and docs/reference.md, generated
from the models, committed current, and holding every stack file the loader accepts (and refusing what it refuses)."""

import copy

import jsonschema
import pytest
import yaml
from conftest import STACKS, cli, copy_project
from pydantic import Field, ValidationError, create_model

from components.core.names import PROJECT
from components.model.settings import Tier
from components.operate import reference
from components.stack.loader import PROJECT_DIR
from components.stack.registry import REGISTRY
from components.stack.stackconfig import project_keys

SCHEMA = reference.stack_schema()
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def stack_document(stack: str) -> dict:
    return yaml.safe_load((PROJECT_DIR / "stacks" / f"Pulumi.{stack}.yaml").read_text())


def loader_refuses(document: dict) -> bool:
    """Whether the loader refuses the document's config: its keys, or the model."""
    raw, _, problems = project_keys(document["config"], "stack file")
    try:
        REGISTRY.environment.model_validate(raw)
    except ValidationError:
        return True
    return bool(problems)


def test_the_schema_is_a_valid_draft_2020_12_schema():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"


@pytest.mark.parametrize("path", [reference.SCHEMA_PATH, reference.REFERENCE_PATH])
def test_the_committed_files_equal_a_fresh_generation(path):
    assert (PROJECT_DIR / path).read_text() == reference.artifacts()[path], f"stale: run {reference.COMMAND}"


def test_a_changed_description_makes_both_files_stale():
    changed = create_model(
        "EnvironmentBase",
        __base__=REGISTRY.environment,
        tier=(Tier, Field(description="A description the committed files do not hold.")),
    )
    assert reference.stale(PROJECT_DIR) == []
    assert reference.stale(PROJECT_DIR, changed) == [reference.SCHEMA_PATH, reference.REFERENCE_PATH]
    assert "A description the committed files do not hold." in reference.artifacts(changed)[reference.REFERENCE_PATH]


def test_a_hand_edit_makes_its_file_stale(tmp_path):
    for path, text in reference.artifacts().items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    assert reference.stale(tmp_path) == []
    edited = tmp_path / reference.REFERENCE_PATH
    edited.write_text(edited.read_text().replace("Stack file reference", "Stack file handbook"))
    assert reference.stale(tmp_path) == [reference.REFERENCE_PATH]
    (tmp_path / reference.SCHEMA_PATH).unlink()
    assert reference.stale(tmp_path) == [reference.SCHEMA_PATH, reference.REFERENCE_PATH]


@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_file_validates_against_the_schema(stack):
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in VALIDATOR.iter_errors(stack_document(stack))
    ]
    assert errors == []


def gateway(document: dict, **changes) -> dict:
    section = dict(document["config"].get(f"{PROJECT}:gateway", {}), **changes)
    return {f"{PROJECT}:gateway": section}


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda d: {f"{PROJECT}:nonsense": 1}, id="unknown project key"),
        pytest.param(lambda d: {"tier": "dev"}, id="key without the namespace"),
        pytest.param(lambda d: {"pmoves-tensorzro:tier": "dev"}, id="misspelled namespace"),
        pytest.param(lambda d: gateway(d, port=70000), id="port above 65535"),
        pytest.param(lambda d: gateway(d, port=0), id="port 0"),
        pytest.param(lambda d: gateway(d, imagee="tensorzero/gateway:1"), id="unknown key in a section"),
        pytest.param(lambda d: {f"{PROJECT}:tier": "qa"}, id="unknown tier"),
    ],
)
def test_the_schema_refuses_what_the_loader_refuses(change):
    document = stack_document("dev")
    bad = copy.deepcopy(document)
    bad["config"].update(change(document))
    assert not VALIDATOR.is_valid(bad)
    assert loader_refuses(bad)


def test_the_schema_refuses_a_secret_that_is_neither_a_value_nor_encrypted():
    document = stack_document("dev")
    document["config"][f"{PROJECT}:secrets"] = {"API_KEY": {"secure": "v1:x", "other": 1}}
    assert not VALIDATOR.is_valid(document)


def test_the_schema_accepts_pulumi_keys_secrets_and_a_missing_section():
    document = stack_document("dev")
    document["config"]["pulumi:disable-default-providers"] = ["*"]
    document["config"][f"{PROJECT}:secrets"] = {"OPENAI_API_KEY": {"secure": "v1:abc"}, "PLAIN": "value"}
    document["config"].pop(f"{PROJECT}:grafana")
    document["encryptionsalt"] = "v1:salt"
    assert VALIDATOR.is_valid(document)
    assert not loader_refuses(document)
    document["config"].pop(f"{PROJECT}:tier")
    assert not VALIDATOR.is_valid(document)  # required, as the model has it


def test_every_field_has_a_description():
    undescribed = []

    def walk(node, where: str) -> None:
        if isinstance(node, dict):
            for name, field in node.get("properties", {}).items():
                if not (isinstance(field, dict) and field.get("description", "").strip()):
                    undescribed.append(f"{where}.{name}")
            for key, value in node.items():
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, f"{where}[{index}]")

    walk(SCHEMA, "#")
    assert undescribed == []
    assert len(SCHEMA["$defs"]) > 10  # the walk reached the models


def test_the_reference_documents_every_section_and_field():
    text = (PROJECT_DIR / reference.REFERENCE_PATH).read_text()
    assert text.startswith(f"<!-- Generated by `{reference.COMMAND}`")
    for key in REGISTRY.environment.model_fields:
        assert f"\n## {key}\n" in text
    for definition in SCHEMA["$defs"].values():
        for field, value in definition.get("properties", {}).items():
            assert f".{field}` |" in text and value["description"].split()[0] in text


@pytest.mark.parametrize("stack", STACKS)
def test_each_stack_file_names_the_schema_in_its_first_line(stack):
    path = PROJECT_DIR / "stacks" / f"Pulumi.{stack}.yaml"
    first = path.read_text().splitlines()[0]
    assert first == reference.MODELINE
    named = first.partition("$schema=")[2]
    assert (path.parent / named).resolve() == (PROJECT_DIR / reference.SCHEMA_PATH).resolve()


def test_the_check_passes_on_the_committed_tree():
    result = cli(PROJECT_DIR, "reference", "--check")
    assert result.returncode == 0, result.stderr


def test_the_check_names_each_stale_file_and_the_command_writes_them(tmp_path):
    project = copy_project(tmp_path)  # stacks/ and its schema, but no docs/
    (project / reference.SCHEMA_PATH).write_text("{}\n")
    result = cli(project, "reference", "--check")
    assert result.returncode == 1
    assert reference.SCHEMA_PATH in result.stderr and reference.REFERENCE_PATH in result.stderr
    assert not (project / reference.REFERENCE_PATH).exists()  # --check writes nothing
    assert cli(project, "reference").returncode == 0
    assert cli(project, "reference", "--check").returncode == 0
    assert (project / reference.REFERENCE_PATH).read_text() == reference.artifacts()[reference.REFERENCE_PATH]
