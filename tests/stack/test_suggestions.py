"""Every fix the CLI suggests for a malformed stack is one the next run accepts: each case below makes a common
mistake, reads the problem `validate` prints, applies what it says (mechanically, from the printed text: the
`did you mean` name, the written-out key, the keys a mapping needs, the place a moved setting went, another
port for the setting blamed) and runs `validate` again, which must pass."""

import re

import pytest
import yaml
from conftest import MINIMAL_CATALOG, MINIMAL_ENV, minimal_config
from test_malformed import CATALOG, ENV_LAYER, STACK_FILE, build_project, validate

from components.core.names import PROJECT

P = f"{PROJECT}:"
LINE = re.compile(rf"^  {re.escape(STACK_FILE)}: (?:(?P<key>[^ ]+): )?(?P<message>.*)$")


def document(config: dict) -> dict:
    return {"config": {P + key: value for key, value in config.items()}}


def problems(root, doc: dict) -> list[tuple[str, str]]:
    (root / STACK_FILE).write_text(yaml.safe_dump(doc, sort_keys=False))
    done = validate(root)
    assert "Traceback" not in done.stderr, done.stderr
    if done.returncode == 0:
        return []
    assert done.returncode == 2, done.stderr
    found = [LINE.match(line) for line in done.stderr.splitlines()[1:]]
    assert all(found), done.stderr  # every problem is in the stack file and parsed here
    return [(match["key"] or "", match["message"]) for match in found]


def node(doc: dict, key: str) -> tuple[dict, str]:
    """The mapping holding the stack file's dotted `key`, and its last part."""
    config = doc["config"]
    first, *rest = key.split(".")
    parent, name = (config, P + first) if rest else (config, first if first in config else P + first)
    for part in rest:
        parent, name = parent[name], part
    return parent, name


def apply(doc: dict, key: str, message: str) -> None:
    """What the message says to do, done to the stack file."""
    if "is gone: set hosts.<host>.bind_address" in message and "a key of this project is written" not in message:
        config = doc["config"]
        value = config.pop(P + "bind_address", None) or config.pop("bind_address")
        config[P + "hosts"] = {"main": {"bind_address": value}}
        return
    parent, name = node(doc, key)
    if meant := re.search(r"did you mean (\S+)\?", message):
        if isinstance(parent[name], list):  # a list entry misspelt: catalog.models
            parent[name] = [meant[1] if f"{value} (did you mean" in message else value for value in parent[name]]
        else:
            parent[meant[1].removeprefix(P) if parent is not doc["config"] else P + meant[1]] = parent.pop(name)
    elif written := re.search(rf"a key of this project is written ({re.escape(P)}\S+?)[),]", message):
        doc["config"][written[1]] = doc["config"].pop(key)
        if "is gone" in message:
            apply(doc, written[1].removeprefix(P), message.split("), and ", 1)[1])
    elif needed := re.search(r"should be a mapping with the keys (\w+) \(required\)", message):
        parent[name] = {needed[1]: parent[name]}
    elif "give one of them another port" in message:
        parent[name] = 3999
    else:
        pytest.fail(f"{key}: no fix to apply in: {message}")


# Each: a mistake (over the minimal dev stack) and the key its problem must be reported on.
MISTAKES = {
    "section-name-misspelt": ({"gatway": {"port": 3030}}, ["gatway"]),
    "section-key-misspelt": ({"gateway": {"prot": 3030}}, ["gateway.prot"]),
    "host-key-misspelt": ({"hosts": {"main": {"bind_adress": "127.0.0.1"}}}, ["hosts.main.bind_adress"]),
    "model-name-misspelt": ({"catalog": {"files": [CATALOG], "models": ["gemma_embed_locall"]}}, ["catalog.models"]),
    "stack-wide-bind-address": ({"bind_address": "127.0.0.1"}, [""]),
    "adopted-volume-as-a-string": (
        {"clickhouse": {"adopt_volumes": {"data": "pmoves_data"}}}, ["clickhouse.adopt_volumes.data"]
    ),
    "port-taken-by-another-setting": ({"gateway": {"port": 3000}}, ["gateway.port"]),
    "spec-and-catalog-at-once": (
        {"gatway": {}, "ui": {"port": 99999}, "catalog": {"files": [CATALOG], "models": ["gemma_embed_locall"]}},
        ["gatway", "ui.port", "catalog.models"],
    ),
}  # fmt: skip


@pytest.mark.parametrize("mistake", MISTAKES)
def test_each_suggested_fix_is_accepted_by_the_next_run(tmp_path, mistake):
    overrides, keys = MISTAKES[mistake]
    root = build_project(tmp_path, minimal_config(), {CATALOG: MINIMAL_CATALOG, ENV_LAYER: MINIMAL_ENV})
    doc = document(minimal_config(**overrides))
    found = problems(root, doc)
    assert sorted(key for key, _ in found) == sorted(keys), found  # every problem of the edit, in one run
    for key, message in found:
        if "Input should be less than or equal to 65535" in message:
            message += "; give one of them another port"  # pydantic's bound: the fix is any port in range
        apply(doc, key, message)
    assert problems(root, doc) == [], yaml.safe_dump(doc)


def test_an_unprefixed_removed_key_is_told_where_its_setting_went(tmp_path):
    root = build_project(tmp_path, minimal_config(), {CATALOG: MINIMAL_CATALOG, ENV_LAYER: MINIMAL_ENV})
    doc = document(minimal_config())
    doc["config"]["bind_address"] = "127.0.0.1"
    [(key, message)] = problems(root, doc)
    assert key == "bind_address" and "hosts.<host>.bind_address" in message
    apply(doc, key, message)
    assert problems(root, doc) == [], yaml.safe_dump(doc)


def test_a_misspelt_stack_name_gets_the_closest(tmp_path):
    root = build_project(tmp_path, minimal_config(), {CATALOG: MINIMAL_CATALOG, ENV_LAYER: MINIMAL_ENV})
    (root / "stacks" / "Pulumi.test.yaml").rename(root / "stacks" / "Pulumi.tset.yaml")
    done = validate(root)
    assert (
        done.stderr.splitlines()[1]
        == "  stacks/Pulumi.test.yaml: no such stack (did you mean tset?) (stacks here: tset)"
    )
