"""Files named by path in native tables: read from beside the catalog file that names them, checked, uploaded
beside tensorzero.toml (the PMOVES fixture shows them read by TensorZero: tests/catalog/test_pmoves_catalog.py)."""

import pytest
from conftest import MINIMAL_CATALOG, MINIMAL_ENV, make_project, minimal_config

from components.core.errors import ConfigError
from components.stack.loader import load

FUNCTION = """
[functions.f]
type = "chat"
system_schema = "{schema}"

[functions.f.variants.v]
type = "chat_completion"
model = "local_chat"
system_template = "{template}"

[models.local_chat]
provider = "ollama"
model = "qwen2.5:0.5b"
"""
SCHEMA = '{"type": "object", "properties": {"context": {"type": "string"}}}'
TEMPLATE = "Context: {{ context }}\n"


def deploy(tmp_path, files: dict[str, str], schema="f/schema.json", template="f/system.minijinja", extra=""):
    catalog = MINIMAL_CATALOG + FUNCTION.format(schema=schema, template=template) + extra
    config = minimal_config(catalog={"files": ["catalog/main.toml"]})
    written = {"catalog/main.toml": catalog, "env/env.shared": MINIMAL_ENV, **files}
    return load("test", project_dir=make_project(tmp_path, config, written))


def test_files_are_found_beside_the_catalog_file_and_uploaded_beside_tensorzero_toml(tmp_path):
    deployment = deploy(tmp_path, {"catalog/f/schema.json": SCHEMA, "catalog/f/system.minijinja": TEMPLATE})
    mounted = {f.mount: (f.kind, f.content) for f in deployment.plans["gateway"].files}
    assert mounted["/app/config/f/schema.json"] == ("tensorzero-schema", SCHEMA)
    assert mounted["/app/config/f/system.minijinja"] == ("tensorzero-template", TEMPLATE)


@pytest.mark.parametrize(
    ("files", "schema", "key", "message"),
    [
        ({}, "f/schema.json", "functions.f.system_schema", "catalog/f/schema.json: file not found"),
        ({"catalog/f/schema.json": "{not json"}, "f/schema.json", "functions.f.system_schema",
         "catalog/f/schema.json is not JSON"),
        ({}, "/etc/passwd", "functions.f.system_schema", "'/etc/passwd' must be a path inside the catalog file's"),
        ({}, "../env/env.shared", "functions.f.system_schema", "'../env/env.shared' must be a path inside"),
    ],
    ids=["missing", "not-json", "absolute", "leaves-the-directory"],
)  # fmt: skip
def test_a_file_that_cannot_be_uploaded_is_an_error_naming_the_key(tmp_path, files, schema, key, message):
    files = {"catalog/f/system.minijinja": TEMPLATE, **files}
    with pytest.raises(ConfigError) as failure:
        deploy(tmp_path, files, schema=schema)
    [problem] = failure.value.problems
    assert (problem.file, problem.key) == ("catalog/main.toml", key)
    assert problem.message.startswith(message), problem.message


def test_one_path_naming_two_different_files_is_an_error(tmp_path):
    other = '\n[tools.t]\ndescription = "d"\nparameters = "f/schema.json"\n'
    files = {
        "catalog/f/schema.json": SCHEMA,
        "catalog/f/system.minijinja": TEMPLATE,
        "catalog/more/more.toml": other,
        "catalog/more/f/schema.json": '{"type": "object"}',
    }
    config = minimal_config(catalog={"files": ["catalog/main.toml", "catalog/more/more.toml"]})
    catalog = MINIMAL_CATALOG + FUNCTION.format(schema="f/schema.json", template="f/system.minijinja")
    written = {"catalog/main.toml": catalog, "env/env.shared": MINIMAL_ENV, **files}
    with pytest.raises(ConfigError) as failure:
        load("test", project_dir=make_project(tmp_path, config, written))
    [problem] = failure.value.problems
    assert problem.key == "tools.t.parameters"
    assert problem.message == (
        "'f/schema.json' is catalog/more/f/schema.json here but catalog/f/schema.json for functions.f.system_schema"
    )


def test_files_of_dropped_variants_are_not_needed(tmp_path):
    """A variant this stack does not serve names no file the stack must have."""
    extra = (
        '\n[models.hosted]\nprovider = "anthropic"\nmodel = "claude"\n'
        '[functions.f.variants.cloud]\ntype = "chat_completion"\nmodel = "hosted"\n'
        'system_template = "f/cloud.minijinja"\n'
    )
    files = {"catalog/f/schema.json": SCHEMA, "catalog/f/system.minijinja": TEMPLATE}
    catalog = MINIMAL_CATALOG + FUNCTION.format(schema="f/schema.json", template="f/system.minijinja") + extra
    config = minimal_config(catalog={"files": ["catalog/main.toml"], "models": ["local_chat", "gemma_embed_local"]})
    written = {"catalog/main.toml": catalog, "env/env.shared": MINIMAL_ENV, **files}
    deployment = load("test", project_dir=make_project(tmp_path, config, written))
    assert {f.path for f in deployment.translation.files} == {"f/schema.json", "f/system.minijinja"}
