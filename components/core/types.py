"""Annotated types shared by the spec and the catalog: small, pure, offline.

Every pattern here is applied with `fullmatch`: `re.match(r"...$")` accepts a trailing newline, and a
name with a newline becomes a Docker name, an Alloy string or SQL that its reader refuses.
"""

import ipaddress
import re
import typing
from pathlib import PurePosixPath
from typing import Annotated, Any, Optional
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from components.core.urls import shown_url, split_url

_IMAGE = re.compile(
    r"(?P<repo>[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]+)?(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*)"
    r":(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})(?:@sha256:[0-9a-f]{64})?"
)
_DOCKER_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")
_DOCKER_WHOLE_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+")  # a whole volume's name: Docker wants two characters
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_KUBERNETES_NAME = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")  # RFC 1123 label
# An Ingress host or a cluster domain: lower-case DNS labels with at least one letter (never an IP).
_DNS_LABEL = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"
_DNS_NAME = re.compile(rf"(?=.{{1,253}}\Z)(?=.*[a-z]){_DNS_LABEL}(\.{_DNS_LABEL})*")
# Kubernetes label keys (an optional DNS-subdomain prefix, then a name) and values (empty, or a name).
_LABEL_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_LABEL_KEY = re.compile(rf"([a-z0-9]([-a-z0-9.]{{0,251}}[a-z0-9])?/)?{_LABEL_NAME}")
_LABEL_VALUE = re.compile(rf"({_LABEL_NAME})?")
_IDENTIFIER = _ENV_NAME
_INSTANCE_NAME = re.compile(r"[a-z](?:[a-z0-9-]{0,30}[a-z0-9])?")
_HOSTNAME = re.compile(
    r"(?=.{1,253}\Z)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)
# A provider's own model name: printable ASCII without spaces (`@cf/meta/llama-3-8b`, `qwen2.5:0.5b`), never
# starting with `-`, which a command line would read as an option.
_UPSTREAM_MODEL = re.compile(r"[!-,.-~][!-~]{0,255}")
# Ollama's own name grammar (registry/namespace/model:tag); `ollama pull` takes it as one argument.
_OLLAMA_MODEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,255}")
_NGINX_SIZE = re.compile(r"(?P<number>[1-9][0-9]{0,9})(?P<unit>[kmg]?)")
_SIZE_BYTES = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
NGINX_SIZE_MAX = "1g"
_DURATION = re.compile(r"(?P<number>[0-9]{1,12})(?P<unit>ms|s|m|h|d|w|y)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
DOCKER_HOST_SCHEMES = ("unix", "tcp", "ssh")


def image_tag(image: str) -> str:
    return _IMAGE.fullmatch(image).group("tag")


def _pinned_image(value: str) -> str:
    if not _IMAGE.fullmatch(value):
        raise ValueError(f"{value!r} is not an image reference with a tag (repository:tag)")
    return value


def _matches(pattern: re.Pattern, what: str):
    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise ValueError(f"{value!r} is not a valid {what}")
        return value

    return check


# Where no volume may be mounted: Docker refuses the root; the others hold what the image runs on.
_SYSTEM_PATHS = {"/", "/bin", "/dev", "/etc", "/lib", "/lib64", "/proc", "/sbin", "/sys", "/usr"}


def _container_path(value: str) -> str:
    if not _path(value).startswith("/") or ".." in value.split("/"):
        raise ValueError(f"'{value}' is not an absolute path inside a container (no '..')")
    if (value.rstrip("/") or "/") in _SYSTEM_PATHS:
        raise ValueError(f"'{value}' is where the image's own files are: mount a volume elsewhere")
    return value


def _host_address(value: str) -> str:
    if not is_ip_address(value) and not _HOSTNAME.fullmatch(value):
        raise ValueError(f"{value!r} is neither an IP address nor a hostname")
    return value


def _ip_address(value: str) -> str:
    if not is_ip_address(value):
        raise ValueError(f"{value!r} is not an IP address")
    return value


def _ipv4_address(value: str) -> str:
    """A server's IPv4 address (nginx's `resolver` takes an IPv6 one only in brackets)."""
    try:
        address = ipaddress.IPv4Address(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an IPv4 address") from None
    if address.is_unspecified:
        raise ValueError(f"{value} is no server's address")
    return value


def url_password(url: str) -> bool:
    """Whether a URL carries a password (`scheme://user:password@host`)."""
    try:
        return urlsplit(url).password is not None
    except ValueError:
        return False


def _http_url(value: str) -> str:
    """An http(s) API base; credentials never ride in it (they would land in tensorzero.toml and the plan)."""
    parts, _ = split_url(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{shown_url(value)} is not an http:// or https:// URL with a host")
    if "@" in parts.netloc:
        raise ValueError('a URL may not hold credentials (user:password@); give the key with api_key = "env::VAR"')
    return value


def _docker_host_url(value: str) -> str:
    """What the Docker provider can dial: unix:///socket, tcp://host:port or ssh://[user@]host[:port]."""
    parts, port = split_url(value)
    if parts.scheme not in DOCKER_HOST_SCHEMES:
        raise ValueError(
            f"{shown_url(value)}: the scheme must be one of {', '.join(s + '://' for s in DOCKER_HOST_SCHEMES)}"
        )
    if parts.password is not None:
        raise ValueError("a Docker host URL may not hold a password (use an SSH key or TLS certificates)")
    if parts.scheme == "unix":
        if parts.netloc or not parts.path.startswith("/"):
            raise ValueError(f"{shown_url(value)}: a unix socket is written unix:///absolute/path")
    elif not parts.hostname or parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"{shown_url(value)}: write {parts.scheme}://host[:port] (no path)")
    elif parts.scheme == "tcp" and port is None:
        raise ValueError(f"{shown_url(value)}: a tcp:// Docker host needs its port (2375, or 2376 with TLS)")
    else:
        _host_address(parts.hostname)
    return value


def _nginx_size(value: str) -> str:
    found = _NGINX_SIZE.fullmatch(value)
    if not found:
        raise ValueError(f"{value!r} is not an nginx size (a number, then k, m or g: 512k, 32m)")
    if int(found.group("number")) * _SIZE_BYTES[found.group("unit")] > _SIZE_BYTES["g"]:
        raise ValueError(f"{value!r} is more than {NGINX_SIZE_MAX}")
    return value


def _path(value: str) -> str:
    if not value or value != value.strip() or any(character < " " or character == "\x7f" for character in value):
        raise ValueError(f"{value!r} is empty, starts or ends with white space, or holds a control character")
    return value


def _relative_path(value: str) -> str:
    path = PurePosixPath(_path(value))
    if path.is_absolute() or ".." in path.parts:
        raise ValueError(f"{value!r} must be a path inside the project, relative to it (no leading / and no ..)")
    return value


def duration_seconds(duration: str) -> float:
    """A Prometheus-style duration (`15s`, `5m`, `365d`) in seconds."""
    found = _DURATION.fullmatch(duration)
    return int(found.group("number")) * _UNIT_SECONDS[found.group("unit")]


def _duration(low_s: float, high_s: float, high: str):
    def check(value: str) -> str:
        if not _DURATION.fullmatch(value):
            raise ValueError(f"{value!r} is not a duration (a number and one of ms, s, m, h, d, w, y: 15s, 5m)")
        if not low_s <= duration_seconds(value) <= high_s:
            low = f"{low_s:g}s"
            raise ValueError(f"{value!r} is out of range: from {low} to {high}")
        return value

    return check


def Duration(low_s: float = 0.001, high: str = "100y"):
    """A duration between `low_s` seconds and `high`: bounded, so every reader (Prometheus, Loki) parses it."""
    return Annotated[str, AfterValidator(_duration(low_s, duration_seconds(high), high))]


ImageRef = Annotated[str, AfterValidator(_pinned_image)]
Port = Annotated[int, Field(ge=1, le=65535)]
DockerName = Annotated[str, AfterValidator(_matches(_DOCKER_NAME, "Docker object name"))]
VolumeName = Annotated[str, AfterValidator(_matches(_DOCKER_WHOLE_NAME, "Docker volume name (2 or more characters)"))]
EnvName = Annotated[str, AfterValidator(_matches(_ENV_NAME, "environment variable name"))]
KubernetesName = Annotated[str, AfterValidator(_matches(_KUBERNETES_NAME, "Kubernetes name (RFC 1123 label)"))]
DnsName = Annotated[str, AfterValidator(_matches(_DNS_NAME, "lower-case DNS name"))]
LabelKey = Annotated[str, AfterValidator(_matches(_LABEL_KEY, "Kubernetes label key"))]
LabelValue = Annotated[str, AfterValidator(_matches(_LABEL_VALUE, "Kubernetes label value"))]
Identifier = Annotated[str, AfterValidator(_matches(_IDENTIFIER, "identifier (letters, digits, _)"))]
HostAddress = Annotated[str, AfterValidator(_host_address)]
IPAddress = Annotated[str, AfterValidator(_ip_address)]
IPv4Address = Annotated[str, AfterValidator(_ipv4_address)]
DockerHostURL = Annotated[str, AfterValidator(_docker_host_url)]
HttpURL = Annotated[str, AfterValidator(_http_url)]
UpstreamModelName = Annotated[
    str, AfterValidator(_matches(_UPSTREAM_MODEL, "model name (printable, no spaces, not starting with '-')"))
]
OllamaModelName = Annotated[str, AfterValidator(_matches(_OLLAMA_MODEL, "Ollama model name (name[:tag])"))]
# A file or directory the loader reads; ProjectPath stays inside the project (the loader also refuses a
# symlink out of it), FilePath may be absolute (an operator's directory elsewhere, which `validate` names).
ProjectPath = Annotated[str, AfterValidator(_relative_path)]
FilePath = Annotated[str, AfterValidator(_path)]
NginxSize = Annotated[str, AfterValidator(_nginx_size)]
# Docker takes a memory limit in bytes as a 64-bit integer; 4 TiB is past any host this stack runs on.
# One line of text a person writes (a name, a reason): no line break or other control character, no space around.
_LINE = re.compile(r"[^\s\x00-\x1f\x7f](?:[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f])?")
Line = Annotated[str, AfterValidator(_matches(_LINE, "single line of text"))]
MemoryMB = Annotated[int, Field(ge=64, le=4 * 1024 * 1024)]


def _tls_terminator(value: str) -> str:
    if len(value) < 3:
        raise ValueError(
            f"{value!r} names nothing: say what terminates TLS in front of it, in at least 3 characters "
            "('caddy on the main host', 'cloudflared tunnel'); leave it out when nothing does"
        )
    return value


# What puts TLS in front of a service that serves plain HTTP (a reverse proxy, a tunnel), named for the reader.
TlsTerminator = Annotated[Line, AfterValidator(_tls_terminator), Field(json_schema_extra={"minLength": 3})]

ContainerPath = Annotated[str, AfterValidator(_container_path)]
Hostname = Annotated[str, AfterValidator(_matches(_HOSTNAME, "hostname"))]
# Part of container names, Pulumi names and a hostname: lower-case letters, digits and inner hyphens.
InstanceName = Annotated[str, AfterValidator(_matches(_INSTANCE_NAME, "instance name (a-z, 0-9, inner '-')"))]


def is_identifier(value: str) -> bool:
    return bool(_IDENTIFIER.fullmatch(value))


def is_ip_address(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def is_kubernetes_name(value: str) -> bool:
    return bool(_KUBERNETES_NAME.fullmatch(value))


def is_label_value(value: str) -> bool:
    return bool(_LABEL_VALUE.fullmatch(value))


def is_ollama_model(value: str) -> bool:
    return bool(_OLLAMA_MODEL.fullmatch(value))


def _takes_int_not_bool(annotation: Any) -> bool:
    """Whether a field's type takes an integer and no bool (`Optional[Port]`, `dict[str, int]`'s values)."""
    if annotation is bool:
        return False
    if annotation is int:
        return True
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is Annotated:
        return _takes_int_not_bool(args[0])
    if typing.get_origin(annotation) is dict:
        return False  # checked value by value (_bools_for_ints)
    return any(_takes_int_not_bool(arg) for arg in args) and bool not in args


def _takes_bool_not_int(annotation: Any) -> bool:
    """Whether a field's type takes a bool and no number (`bool`, `Optional[bool]`)."""
    if annotation is bool:
        return True
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is Annotated:
        return _takes_bool_not_int(args[0])
    if typing.get_origin(annotation) is dict:
        return False
    takes_number = any(_takes_int_not_bool(arg) or arg is float for arg in args)
    return any(_takes_bool_not_int(arg) for arg in args) and not takes_number


# What a bool field takes: YAML's true and false, and the same as text (the Pulumi CLI hands values over as
# strings). Not pydantic's lax extras: 1, 0, 1.0, "yes", "on", "t", which read as a count or a typo.
BOOL_WORDS = ("true", "false")


def _bool_for_int(annotation: Any, value: Any) -> Optional[str]:
    """Where a YAML boolean stands for an integer: "" (the value itself), or the dict entry's key; None: nowhere."""
    if isinstance(value, bool):
        return "" if _takes_int_not_bool(annotation) else None
    if isinstance(value, dict) and typing.get_origin(annotation) is dict:
        entries = typing.get_args(annotation)[1]
        return next((f"{key}: " for key, item in value.items() if _bool_for_int(entries, item) == ""), None)
    return None


class StrictModel(BaseModel):
    """A stack-file section: an unknown key is an error (a typo never becomes a silent default), a number is a
    number and a bool a bool: YAML's `true` is never read as 1, nor 1 as true (pydantic's lax mode would).

    Each model's validator is built when first used, not at import: a command validates one stack's sections,
    and the models nobody validates in that process (a cluster's, another verb's) cost it nothing."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_an_int(cls, value: Any, info: ValidationInfo) -> Any:
        field = cls.model_fields.get(info.field_name or "")
        where = _bool_for_int(field.annotation, value) if field is not None else None
        if where is not None:
            given = value if where == "" else value[where.removesuffix(": ")]
            raise ValueError(f"{where}must be an integer, not {str(given).lower()} (a YAML boolean)")
        if field is not None and not isinstance(value, bool) and _takes_bool_not_int(field.annotation):
            if isinstance(value, (int, float)) or isinstance(value, str) and value.lower() not in BOOL_WORDS:
                raise ValueError(f"{value!r} is not a boolean: write true or false")
        return value
