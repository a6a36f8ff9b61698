"""Each of the stack's Ollamas answers, and holds every model the catalog serves from it."""

import pytest

from .probes import NotYet, endpoint, json_of, request


def test_version(outputs, budget, http, ollama_role):
    url = endpoint(outputs, ollama_role) + "/api/version"

    def attempt(timeout):
        body = json_of(request(http, "GET", url, timeout))
        if not isinstance(body, dict) or not body.get("version"):
            raise NotYet(f"no version in {body!r}")

    budget.wait(attempt, service=ollama_role, endpoint=f"GET {url}")


def tagged(name: str) -> str:
    """Ollama lists `llama3` as `llama3:latest`."""
    return name if ":" in name else f"{name}:latest"


def test_every_model_present(outputs, budget, http, ollama_role):
    url = endpoint(outputs, ollama_role) + "/api/tags"
    expected = outputs.ollama_servers().get(ollama_role, [])
    if not expected:
        pytest.skip(f"{ollama_role}: the outputs name no model to be present (ollama_models.{ollama_role} is empty)")

    def attempt(timeout):
        body = json_of(request(http, "GET", url, timeout))
        present = {tagged(model.get("name", "")) for model in body.get("models") or []}
        missing = [name for name in expected if tagged(name) not in present]
        if missing:
            has = ", ".join(sorted(present)) or "no model at all"
            raise NotYet(f"model {', '.join(missing)} missing; {ollama_role} has {has}")

    budget.wait(attempt, service=ollama_role, endpoint=f"GET {url}")
