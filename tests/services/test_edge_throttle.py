"""Failed authentication is throttled per client address and logged, and a caller's rate limit slides: proven
on the edge's rendered files under a real nginx with the Lua module (edge_rig.py), with clients on distinct
loopback source addresses (127.0.0.0/8) standing for distinct machines."""

import time

import httpx
import pytest
from conftest import MINIMAL_ENV, make_project, minimal_config
from edge_rig import (  # noqa: F401 (rig, ui_stand_in: fixtures)
    CALLERS,
    KEYED_ENV,
    KEYS,
    LIMIT_PER_MINUTE,
    UI_PASSWORD,
    rig,
    running_edge,
    ui_stand_in,
)

from components.services import edge_access
from components.stack.loader import load

DEFAULT_FAILURES = edge_access.EdgeAccess().failures_per_minute
WINDOW_S = 4  # the rate limit's window in the sliding-window test: a minute's behaviour, in seconds


def default_stack(rig, root):
    """The rig's callers and catalog with the default throttle of failures (the rig's own raises it)."""
    catalog = (rig.keyed.project_dir / "catalog.toml").read_text()
    config = minimal_config(ollama={"enabled": False}, edge={"keys": CALLERS})
    project = make_project(root, config, {"catalog.toml": catalog, "env/env.shared": MINIMAL_ENV + KEYED_ENV})
    return load("test", project_dir=project)


@pytest.fixture(scope="module")
def edge_of(rig, ui_stand_in, tmp_path_factory):
    deployment = default_stack(rig, tmp_path_factory.mktemp("throttle-project"))
    with running_edge(
        deployment, rig.gateway_routes, tmp_path_factory.mktemp("throttle-edge"), ui=ui_stand_in.endpoint
    ) as running:
        yield running


# An inference call: it needs the key on every face of the edge (/metrics does not, from inside).
CHAT = {"model": "throttle-probe", "messages": [{"role": "user", "content": "hi"}]}


def keyed(client: httpx.Client, url: str, headers: dict | None = None) -> httpx.Response:
    return client.post(url + "/v1/chat/completions", json=CHAT, headers=headers or {})


def client(source: str) -> httpx.Client:
    return httpx.Client(transport=httpx.HTTPTransport(local_address=source), timeout=10)


def test_failed_keys_are_throttled_per_address_and_logged(edge_of):
    wrong = "edge-wrong-key-canary-91d3"
    with client("127.0.0.2") as guesser, client("127.0.0.3") as other:
        statuses = [
            keyed(guesser, edge_of.url, {"Authorization": f"Bearer {wrong}{i}"}).status_code
            for i in range(DEFAULT_FAILURES + 5)
        ]
        assert statuses == [401] * DEFAULT_FAILURES + [429] * 5
        refused = keyed(guesser, edge_of.url, {"Authorization": f"Bearer {KEYS['pmoves']}"})
        assert refused.status_code == 429  # the right key too: the address is throttled, not the key
        assert refused.json()["error"]["code"] == "too_many_failed_attempts"
        assert 1 <= int(refused.headers["retry-after"]) <= edge_access.LIMIT_WINDOW_S
        # Another address is not held by the guesser's failures; a request with no key at all is not a failure.
        assert keyed(other, edge_of.url).status_code == 401
        assert keyed(other, edge_of.url, {"Authorization": f"Bearer {KEYS['pmoves']}"}).status_code != 401
    log = edge_of.log("error.log")
    assert log.count("pmoves_edge: failed API key from 127.0.0.2") == DEFAULT_FAILURES
    assert "authentication throttled for 127.0.0.2" in log
    assert wrong not in log and "from 127.0.0.3" not in log


def test_failed_ui_logins_are_throttled_per_address(edge_of, ui_stand_in):
    url = f"http://{edge_of.layout.ui}/"
    with client("127.0.0.4") as guesser, client("127.0.0.5") as person:
        statuses = [guesser.get(url, auth=("pmoves", f"guess-{i}")).status_code for i in range(DEFAULT_FAILURES + 20)]
        assert statuses == [401] * DEFAULT_FAILURES + [429] * 20
        assert guesser.get(url, auth=("pmoves", UI_PASSWORD)).status_code == 429
        assert person.get(url).status_code == 401  # a browser's first request, before it asks for the login
        assert person.get(url, auth=("pmoves", UI_PASSWORD)).status_code == 200
    assert edge_of.log("error.log").count("pmoves_edge: failed UI login from 127.0.0.4") == DEFAULT_FAILURES


def test_the_rate_limit_slides_no_double_burst_across_a_windows_edge(rig, ui_stand_in, tmp_path, monkeypatch):
    """Where a fixed window let 2x the limit through within 1.8 s around its edge, the sliding one lets the limit."""
    monkeypatch.setattr(edge_access, "LIMIT_WINDOW_S", WINDOW_S)
    deployment = default_stack(rig, tmp_path / "project")
    headers = {"Authorization": f"Bearer {KEYS['limited']}"}
    with running_edge(deployment, rig.gateway_routes, tmp_path / "edge", ui=ui_stand_in.endpoint) as running:
        with client("127.0.0.6") as caller:
            edge = (time.time() // WINDOW_S + 1) * WINDOW_S
            if edge - time.time() < 1.2:
                edge += WINDOW_S
            time.sleep(edge - 0.9 - time.time())
            before = [keyed(caller, running.url, headers).status_code for _ in range(LIMIT_PER_MINUTE)]
            time.sleep(max(0.0, edge + 0.05 - time.time()))
            after = [keyed(caller, running.url, headers).status_code for _ in range(LIMIT_PER_MINUTE)]
            assert time.time() - edge < 0.9, "the requests took too long to be around the window's edge"
            assert 429 not in before, before
            assert after == [429] * LIMIT_PER_MINUTE, after
            # Refused requests are not counted: once the last window has slid out, the caller has its whole limit.
            time.sleep(edge + WINDOW_S + 0.2 - time.time())
            again = [keyed(caller, running.url, headers).status_code for _ in range(LIMIT_PER_MINUTE)]
            assert 429 not in again, again
