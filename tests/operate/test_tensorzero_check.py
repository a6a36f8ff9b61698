"""`validate` runs TensorZero's own loader on the rendered tensorzero.toml (components/operate/tensorzero_check.py)."""

import dataclasses
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


def broken(deployment):
    """The deployment with a native table the loader refuses (an unknown field)."""
    native = {**deployment.translation.native, "metrics": {"m": {"type": "boolean", "level": "inference", "x": 1}}}
    translation = type(deployment.translation)(**{**deployment.translation.__dict__, "native": native})
    return dataclasses.replace(deployment, translation=translation)


def test_a_refusal_names_the_catalog_entry_and_no_credential(deployments, monkeypatch):
    with pytest.raises(ConfigError) as refused:
        tensorzero_check.check(broken(deployments["staging"]))
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


def test_a_pass_is_remembered_for_exactly_its_input_and_a_refusal_never(deployments, tmp_path, monkeypatch):
    deployment = dataclasses.replace(deployments["staging"], project_dir=tmp_path)
    refused = broken(deployment)
    assert tensorzero_check.loaded_key(refused) != tensorzero_check.loaded_key(deployment)
    for _ in range(2):  # the refusal is not remembered: the loader refuses it again
        with pytest.raises(ConfigError, match="unknown field"):
            tensorzero_check.started(refused)()
    tensorzero_check.started(deployment)()  # the real loader passes it, in a child: remembered

    def no_child():
        raise AssertionError("the loader ran again on an input it passed")

    monkeypatch.setattr(os, "fork", no_child)
    tensorzero_check.started(deployment)()
    with pytest.raises(AssertionError, match="ran again"):
        tensorzero_check.started(deployment, remembered=False)
    with pytest.raises(AssertionError, match="ran again"):  # never a pass taken for one with a byte changed
        tensorzero_check.started(refused)
    # Nor for a pass under another tensorzero: its version is part of the key.
    monkeypatch.setattr("importlib.metadata.version", lambda name: "0.0.0-other")
    with pytest.raises(AssertionError, match="ran again"):
        tensorzero_check.started(deployment)
