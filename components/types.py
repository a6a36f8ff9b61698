"""Annotated types shared by the spec and the catalog: small, pure, offline."""

import ipaddress
import re
from typing import Annotated

from pydantic import AfterValidator, Field

_IMAGE = re.compile(
    r"^(?P<repo>[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]+)?(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*)"
    r":(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})(?:@sha256:[0-9a-f]{64})?$"
)
_DOCKER_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_KUBERNETES_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")  # RFC 1123 label
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)


def image_tag(image: str) -> str:
    return _IMAGE.match(image).group("tag")


def _pinned_image(value: str) -> str:
    if not _IMAGE.match(value):
        raise ValueError(f"'{value}' is not an image reference with a tag (repository:tag)")
    return value


def _matches(pattern: re.Pattern, what: str):
    def check(value: str) -> str:
        if not pattern.match(value):
            raise ValueError(f"'{value}' is not a valid {what}")
        return value

    return check


def _host_address(value: str) -> str:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        if not _HOSTNAME.match(value):
            raise ValueError(f"'{value}' is neither an IP address nor a hostname") from None
    return value


def _ip_address(value: str) -> str:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise ValueError(f"'{value}' is not an IP address") from None
    return value


ImageRef = Annotated[str, AfterValidator(_pinned_image)]
Port = Annotated[int, Field(ge=1, le=65535)]
DockerName = Annotated[str, AfterValidator(_matches(_DOCKER_NAME, "Docker object name"))]
EnvName = Annotated[str, AfterValidator(_matches(_ENV_NAME, "environment variable name"))]
KubernetesName = Annotated[str, AfterValidator(_matches(_KUBERNETES_NAME, "Kubernetes name (RFC 1123 label)"))]
Identifier = Annotated[str, AfterValidator(_matches(_IDENTIFIER, "identifier (letters, digits, _)"))]
HostAddress = Annotated[str, AfterValidator(_host_address)]
IPAddress = Annotated[str, AfterValidator(_ip_address)]
