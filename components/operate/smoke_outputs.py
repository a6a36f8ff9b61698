"""The stack outputs the smoke suite reads (`outputs` of components/targets/build.py), and what must never show.

Standard library only: the smoke command runs where only requirements-smoke.txt is installed.
"""

import base64
import json
import re
from dataclasses import dataclass, field, fields
from typing import Any, Optional, Union
from urllib.parse import quote, quote_plus, unquote, urlsplit

MASK = "***"
# A secret shorter than this is not worth erasing every such letter from every message.
MIN_REDACTED = 4


class OutputsError(ValueError):
    """The outputs are not the stack outputs' shape; the message names keys, never values."""


@dataclass(frozen=True)
class Secret:
    """A value never shown: not in repr, not in a message."""

    value: str = field(repr=False)

    def get_secret_value(self) -> str:
        return self.value

    def __repr__(self) -> str:
        return f"Secret('{MASK}')"


@dataclass(frozen=True)
class SmokeModels:
    chat_model: Optional[str] = None  # `tensorzero::model_name::X` for one chat request
    embedding_model: Optional[str] = None  # `tensorzero::embedding_model_name::Y` for one embedding


@dataclass(frozen=True)
class GrafanaAdmin:
    user: str
    password: Secret


@dataclass(frozen=True)
class EdgeKey:
    caller: str  # the edge caller (edge.keys) the key belongs to
    key: Secret


@dataclass(frozen=True)
class ClickHouseAccess:
    url: str  # scheme://host:port, without credentials: the only form ever printed
    user: str
    password: str
    database: str


# Each key's shape: "str", "list" (of str), "map" (str to str), "map-list" (str to list of str), a tuple of
# shapes any of which it may have, or a dataclass.
SHAPES: dict[str, Any] = {
    "endpoints": "map",  # role: published http://host:port
    "internal_urls": "map",
    "containers": "map",  # role: Docker container name
    "docker_hosts": "map",  # role: Docker host URL
    "models": "map-list",
    # Role of each of the stack's Ollamas: the models that must be in its /api/tags (a list: the one Ollama of a
    # stack deployed before instances).
    "ollama_models": ("map-list", "list"),
    "smoke": SmokeModels,
    "clickhouse_views": "list",  # views the schema one-shot creates; absent from a stack deployed before this key
    "clickhouse_url": "str",  # http://user:password@host:port/database
    "grafana_admin": GrafanaAdmin,
    "edge_key": EdgeKey,  # the key the suite sends to the gateway (the edge's)
}


def _strings(value: Any, key: str, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        return [f"{key}: {what}"]
    return []


def _problems(key: str, shape: Any, value: Any) -> list[str]:
    if isinstance(shape, tuple):
        found = [_problems(key, one, value) for one in shape]
        return [] if [] in found else found[0]
    if shape == "str":
        return [] if isinstance(value, str) else [f"{key}: should be a string"]
    if shape == "list":
        return _strings(value, key, "should be a list of strings")
    if not isinstance(value, dict):
        kind = (
            "a mapping" if shape in ("map", "map-list") else f"a mapping of {', '.join(f.name for f in fields(shape))}"
        )
        return [f"{key}: should be {kind}"]
    if shape == "map":
        return [f"{key}.{k}: should be a string" for k, v in value.items() if not isinstance(v, str)]
    if shape == "map-list":
        return [p for k, v in value.items() for p in _strings(v, f"{key}.{k}", "should be a list of strings")]
    known = {f.name: f for f in fields(shape)}
    required = [name for name, f in known.items() if f.default is not None]
    problems = [f"{key}.{name}: missing" for name in required if name not in value]
    optional = {name for name, f in known.items() if f.default is None}
    return problems + [
        f"{key}.{name}: should be a string"
        for name, item in value.items()
        if name in known and not isinstance(item, str) and not (item is None and name in optional)
    ]


@dataclass(frozen=True)
class StackOutputs:
    """The outputs the suite reads; other keys are ignored."""

    endpoints: dict[str, str] = field(default_factory=dict)
    internal_urls: dict[str, str] = field(default_factory=dict)
    containers: dict[str, str] = field(default_factory=dict)
    docker_hosts: dict[str, str] = field(default_factory=dict)
    models: dict[str, list[str]] = field(default_factory=dict)
    ollama_models: Union[dict[str, list[str]], list[str]] = field(default_factory=dict)
    smoke: SmokeModels = field(default_factory=SmokeModels)
    clickhouse_views: Optional[list[str]] = None
    clickhouse_url: Optional[Secret] = None
    grafana_admin: Optional[GrafanaAdmin] = None
    edge_key: Optional[EdgeKey] = None

    @classmethod
    def from_document(cls, document: Any) -> "StackOutputs":
        """Raises OutputsError naming every key that is not of the outputs' shape."""
        if not isinstance(document, dict):
            raise OutputsError("should be a mapping of output name to value")
        given = {key: value for key, value in document.items() if key in SHAPES and value is not None}
        problems = [p for key, value in given.items() for p in _problems(key, SHAPES[key], value)]
        if problems:
            raise OutputsError("; ".join(problems))
        smoke = given.pop("smoke", {})
        admin = given.pop("grafana_admin", None)
        url = given.pop("clickhouse_url", None)
        key = given.pop("edge_key", None)
        return cls(
            **given,
            smoke=SmokeModels(smoke.get("chat_model"), smoke.get("embedding_model")),
            clickhouse_url=Secret(url) if url is not None else None,
            grafana_admin=GrafanaAdmin(admin["user"], Secret(admin["password"])) if admin else None,
            edge_key=EdgeKey(key["caller"], Secret(key["key"])) if key else None,
        )

    def gateway_headers(self) -> dict[str, str]:
        """What a request to the gateway's endpoint carries: the edge caller's key, when the stack has one."""
        return {"Authorization": f"Bearer {self.edge_key.key.get_secret_value()}"} if self.edge_key else {}

    @property
    def empty(self) -> bool:
        """What `pulumi stack output` gives for a stack that exists but was never deployed."""
        return not (self.endpoints or self.containers)

    def clickhouse(self) -> Optional[ClickHouseAccess]:
        if self.clickhouse_url is None:
            return None
        parts = urlsplit(self.clickhouse_url.get_secret_value())
        port = f":{parts.port}" if parts.port else ""
        return ClickHouseAccess(
            url=f"{parts.scheme}://{parts.hostname}{port}",
            user=unquote(parts.username or "default"),
            password=unquote(parts.password or ""),
            database=parts.path.strip("/") or "default",
        )

    def ollama_servers(self) -> dict[str, list[str]]:
        """Role -> the models each of the stack's Ollamas must list."""
        return {"ollama": self.ollama_models} if isinstance(self.ollama_models, list) else self.ollama_models

    def schema_container(self) -> str:
        """The schema one-shot's Docker name: clickhouse_schema.py names it after ClickHouse's container."""
        return f"{self.containers.get('clickhouse', '<name_prefix>-tensorzero-clickhouse')}-schema"

    def credentials(self) -> list[tuple[str, str]]:
        """(user, password) of every credential in the outputs."""
        found = []
        access = self.clickhouse()
        if access is not None and access.password:
            found.append((access.user, access.password))
        if self.grafana_admin is not None:
            found.append((self.grafana_admin.user, self.grafana_admin.password.get_secret_value()))
        if self.edge_key is not None:
            found.append((self.edge_key.caller, self.edge_key.key.get_secret_value()))
        return found

    def public_text(self) -> str:
        """Everything the outputs show openly (names, URLs, models): a secret found here is also a common word."""
        shown = {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name not in ("clickhouse_url", "grafana_admin", "edge_key")
        }
        return json.dumps(shown, default=lambda value: value.__dict__)

    def redactor(self):
        """A function that masks every credential in a message, in each form a server may echo it: as
        itself, URL-encoded, inside `user:password@`, base64-encoded (Basic auth's `user:password`, or the
        password alone; padded or not, standard or URL-safe, URL-encoded in turn) and hex. A password that is
        also an ordinary word of the outputs (dev's `tensorzero` is a container name's part) is masked only in
        those credential forms, not wherever the word occurs."""
        public = self.public_text()
        forms: list[tuple[re.Pattern, str]] = []
        for user, password in self.credentials():
            if len(password) < MIN_REDACTED:
                continue
            contextual = [f"{user}:{password}@", f"{user}:{quote(password, safe='')}@"]
            encoded = _encodings(f"{user}:{password}".encode()) + _encodings(password.encode())
            bare = [password, quote(password, safe=""), quote_plus(password)]
            shown = [form for form in encoded + bare if form in public]
            for text in sorted(set(contextual + encoded + bare) - set(shown), key=len, reverse=True):
                # %-escapes and hex digits may come back in either case.
                forms.append((re.compile(re.escape(text), re.IGNORECASE if _hex_or_escaped(text) else 0), MASK))

        def redact(text: str) -> str:
            for pattern, mask in forms:
                text = pattern.sub(mask, text)
            return text

        return redact


def _encodings(raw: bytes) -> list[str]:
    """`raw` base64-encoded (standard and URL-safe, padded or not, and URL-encoded) and hex-encoded."""
    found = []
    for encoded in (base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()):
        found += [encoded, encoded.rstrip("="), quote(encoded, safe="")]
    return found + [raw.hex()]


def _hex_or_escaped(text: str) -> bool:
    return "%" in text or re.fullmatch(r"[0-9a-f]+", text) is not None
