"""`validate` runs TensorZero's own loader on the rendered tensorzero.toml (components/operate/tensorzero_check.py)."""

import os

import pytest
from conftest import CANARIES, STACKS

from components.core.errors import ConfigError
from components.operate import tensorzero_check


@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_passes_the_loader_and_the_environment_is_left_as_it_was(stack, deployments, monkeypatch):
    # Were these left in place, the loader would try to reach a database that is not there.
    monkeypatch.setenv("TENSORZERO_CLICKHOUSE_URL", "http://nobody:nothing@127.0.0.1:9/tensorzero")
    monkeypatch.setenv("TENSORZERO_POSTGRES_URL", "postgres://nobody@127.0.0.1:9/tensorzero")
    before = dict(os.environ)
    tensorzero_check.check(deployments[stack])
    assert dict(os.environ) == before
    assert not [value for value in CANARIES.values() if value in os.environ.values()]


def test_a_refusal_names_the_catalog_entry_and_no_credential(deployments, monkeypatch):
    deployment = deployments["staging"]
    native = {**deployment.translation.native, "metrics": {"m": {"type": "boolean", "level": "inference", "x": 1}}}
    broken = type(deployment)(
        deployment.stack,
        deployment.project_dir,
        deployment.spec,
        deployment.catalog,
        type(deployment.translation)(**{**deployment.translation.__dict__, "native": native}),
        deployment.variables,
    )
    with pytest.raises(ConfigError) as refused:
        tensorzero_check.check(broken)
    [problem] = refused.value.problems
    assert (problem.file, problem.key) == ("gateway/tensorzero.toml", "metrics.m.x")
    assert "unknown field `x`" in problem.message
    assert not [value for value in CANARIES.values() if value in str(problem)]


def test_reason_is_the_loaders_sentence():
    wrapped = (
        "Failed to construct TensorZero client: ConfigParsing { error: Other { source: TensorZeroInternalError("
        "Error(Config { message: \"Model name \\'tensorzero::x\\' contains a reserved prefix\" })) } }"
    )
    assert tensorzero_check.reason(Exception(wrapped)) == "Model name 'tensorzero::x' contains a reserved prefix"
