"""Which Ollama serves a catalog model, and the URL the gateway calls it at.

A catalog provider of Ollama (`provider = "ollama"`, `type = "ollama"`, or any type whose `base_url` names one
of the stack's Ollamas by hostname, as PMOVES writes `type = "openai"`) names its server by hostname in
`base_url`. A hostname of one of the stack's Ollamas (`pmoves-ollama`, `jetson-ollama`, ...) means that
one: the gateway gets its address by the endpoint rule, wherever the spec places it, and the model is pulled
into it. Any other hostname is an Ollama outside the stack, called as written. Either way the gateway calls
Ollama's OpenAI-compatible routes, under `/v1`: a base URL without it is completed, one with another path is
refused. Any other OpenAI-compatible URL on Ollama's port without `/v1` is refused too: every call to it
would be a 404.
"""

from dataclasses import dataclass
from typing import Optional
from urllib.parse import urlsplit

from components.core.names import OLLAMA_ALIAS, OLLAMA_API_PATH, OLLAMA_PORT


class NotRoutable(ValueError):
    """Why a catalog URL cannot be used; the caller names the file and key."""


@dataclass(frozen=True)
class OllamaRoute:
    api_base: str  # what the rendered provider block calls
    alias: Optional[str]  # the hostname of the stack's Ollama serving it; None: an Ollama outside the stack


def route(base_url: Optional[str], stack_ollamas: dict[str, str]) -> OllamaRoute:
    """Where an Ollama provider's models are served. `stack_ollamas`: hostname -> URL the gateway reaches
    each of the stack's Ollamas at."""
    check_ollama_url(base_url or "")
    host = urlsplit(base_url or "").hostname or OLLAMA_ALIAS
    if host in stack_ollamas:
        return OllamaRoute(stack_ollamas[host] + OLLAMA_API_PATH, host)
    if base_url is None or host == OLLAMA_ALIAS:
        raise NotRoutable(f"not set and this environment deploys no Ollama answering to {OLLAMA_ALIAS}")
    return OllamaRoute(base_url.rstrip("/").removesuffix(OLLAMA_API_PATH) + OLLAMA_API_PATH, None)


def check_ollama_url(base_url: str) -> None:
    """An Ollama's base URL: its server, or its OpenAI path; any other path is not Ollama's API."""
    path = urlsplit(base_url).path
    if path.rstrip("/") not in ("", OLLAMA_API_PATH):
        raise NotRoutable(f"Ollama serves its OpenAI-compatible API under {OLLAMA_API_PATH}, not '{path}'")


def check_openai_url(url: str) -> None:
    """An OpenAI-compatible URL on Ollama's port must end in its OpenAI path."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        raise NotRoutable(f"'{url}' has no valid port") from None
    if port == OLLAMA_PORT and parts.path.rstrip("/") != OLLAMA_API_PATH:
        raise NotRoutable(
            f"'{url}' is Ollama's port without its OpenAI path: every call would be a 404; write "
            f'{url.rstrip("/")}{OLLAMA_API_PATH}, or make the provider `type = "ollama"`'
        )
