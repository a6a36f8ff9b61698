"""The annotated types every spec field is built from, good and bad values side by side."""

import pytest
from pydantic import TypeAdapter, ValidationError

from components.types import DockerName, EnvName, HostAddress, ImageRef, IPAddress, Port, image_tag

CASES = [
    (ImageRef, "tensorzero/gateway:2026.6.0", True),
    (ImageRef, "clickhouse/clickhouse-server:24.12-alpine", True),
    (ImageRef, "registry.local:5000/pmoves/ollama:0.12.6", True),
    (ImageRef, "ollama/ollama:0.12.6@sha256:" + "a" * 64, True),
    (ImageRef, "tensorzero/gateway", False),  # no tag: not pinned
    (ImageRef, "tensorzero/gateway:", False),
    (ImageRef, "TensorZero/Gateway:1", False),
    (ImageRef, "tensorzero/gateway:1 2", False),
    (Port, 1, True),
    (Port, 65535, True),
    (Port, 0, False),
    (Port, 65536, False),
    (Port, "3030x", False),
    (DockerName, "pmoves-dev", True),
    (DockerName, "-pmoves", False),
    (DockerName, "pmoves dev", False),
    (EnvName, "OPENAI_API_KEY", True),
    (EnvName, "1KEY", False),
    (EnvName, "OPENAI-API-KEY", False),
    (HostAddress, "jetson-ollama", True),
    (HostAddress, "10.0.0.7", True),
    (HostAddress, "tensorzero.pmoves.internal", True),
    (HostAddress, "bad_host!", False),
    (IPAddress, "127.0.0.1", True),
    (IPAddress, "::1", True),
    (IPAddress, "localhost", False),
]


@pytest.mark.parametrize(("annotated", "value", "valid"), CASES, ids=[f"{c[1]}" for c in CASES])
def test_annotated_type(annotated, value, valid):
    adapter = TypeAdapter(annotated)
    if valid:
        assert adapter.validate_python(value) == value
    else:
        with pytest.raises(ValidationError):
            adapter.validate_python(value)


def test_image_tag():
    assert image_tag("registry.local:5000/pmoves/ollama:0.12.6") == "0.12.6"
    assert image_tag("tensorzero/ui:2026.6.0@sha256:" + "b" * 64) == "2026.6.0"
