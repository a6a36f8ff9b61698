"""Beyond dev, no weak caller key is accepted: each is long and unpredictable enough, its own (not shared by two
callers, not equal to any other credential of the stack), and one line in every tier (a header cannot carry a
line break). Each row is a stack the loader refuses, naming the key's setting; the strong stack passes."""

import secrets

import pytest
from conftest import MINIMAL_CATALOG, STRONG_CREDENTIALS, make_project, minimal_config, refusals

from components.stack.loader import load

KEY_A, KEY_B = secrets.token_hex(32), secrets.token_hex(32)
KEYS = {"pmoves": "KEY_A", "agents": "KEY_B"}


def stack(root, tier: str = "staging", keys=None, **env):
    values = {**STRONG_CREDENTIALS, "KEY_A": KEY_A, "KEY_B": KEY_B, **env}
    layer = "".join(f'{name}="{value}"\n' for name, value in values.items())
    config = minimal_config(tier=tier, clickhouse={"user": "pmoves"}, edge={"keys": keys or KEYS})
    return load(
        "test", project_dir=make_project(root, config, {"catalog.toml": MINIMAL_CATALOG, "env/env.shared": layer})
    )


def problems(root, **kwargs) -> list[str]:
    return refusals(lambda: stack(root, **kwargs))


def test_strong_distinct_keys_pass(tmp_path):
    assert stack(tmp_path).plans["edge"].authentication.startswith("bearer keys of agents, pmoves")


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        pytest.param(
            {"KEY_A": "k"}, "edge.keys.pmoves: KEY_A: 1 characters; a key has at least 32", id="one-character"
        ),
        pytest.param({"KEY_A": secrets.token_hex(8)}, "edge.keys.pmoves: KEY_A: 16 characters", id="short"),
        pytest.param({"KEY_A": "abcd" * 10}, "edge.keys.pmoves: KEY_A: about 80 bits of entropy", id="low-entropy"),
        pytest.param({"KEY_A": "a" * 40}, "edge.keys.pmoves: KEY_A: about 0 bits of entropy", id="one-character-40x"),
        pytest.param({"KEY_B": KEY_A}, "edge.keys.pmoves: KEY_A holds the same value as KEY_B", id="shared-value"),
        pytest.param(
            {"keys": {"pmoves": "KEY_A", "agents": "KEY_A"}},
            "edge.keys.pmoves: KEY_A holds the same value as KEY_A (edge.keys.agents)",
            id="shared-variable",
        ),
        pytest.param(
            {"TENSORZERO_UI_PASSWORD": KEY_A},
            "edge.ui_password_var: TENSORZERO_UI_PASSWORD holds the same value as KEY_A",
            id="equal-to-ui-password",
        ),
        pytest.param(
            {"GRAFANA_ADMIN_PASSWORD": KEY_B},
            "grafana.admin_password_var: GRAFANA_ADMIN_PASSWORD holds the same value as KEY_B",
            id="equal-to-grafana-password",
        ),
        pytest.param(
            {"KEY_A": KEY_A[:32] + "\\n" + KEY_A[32:]},
            "edge.keys.pmoves: KEY_A holds a line break or control character",
            id="newline",
        ),
    ],
)
def test_weak_keys_are_refused_beyond_dev(tmp_path, kwargs, expected):
    found = problems(tmp_path, **kwargs)
    assert any(line.startswith(expected) for line in found), found


def test_a_key_with_a_newline_is_refused_in_dev_too(tmp_path):
    found = problems(tmp_path, tier="dev", KEY_A="first\\nsecond")
    assert any(line.startswith("edge.keys.pmoves: KEY_A holds a line break") for line in found), found
    stack(tmp_path / "short", tier="dev", KEY_A="k")  # dev keeps its short keys
