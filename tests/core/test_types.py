"""The annotated types every spec field is built from, good and bad values side by side, and the rule that
every pattern is a full match: a trailing newline is refused everywhere."""

import copy
from typing import Annotated, Optional, Union, get_args, get_origin

import pytest
from conftest import STACKS
from pydantic import TypeAdapter, ValidationError

from components.catalog.format import ModelEntry, ProviderEntry
from components.core import types, urls
from components.core.types import (
    ContainerPath,
    DnsName,
    DockerHostURL,
    DockerName,
    Duration,
    EnvName,
    FilePath,
    HostAddress,
    HttpURL,
    ImageRef,
    IPAddress,
    IPv4Address,
    KubernetesName,
    LabelKey,
    LabelValue,
    MemoryMB,
    NginxSize,
    OllamaModelName,
    Port,
    ProjectPath,
    StrictModel,
    UpstreamModelName,
    VolumeName,
    image_tag,
)
from components.stack.registry import Environment

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
    (DockerName, "t", True),  # a prefix: more follows it
    (VolumeName, "ab", True),
    (VolumeName, "a", False),  # Docker: "volume name is too short"
    (ContainerPath, "/root/.ollama/models", True),
    (ContainerPath, "/", False),  # Docker: "destination can't be '/'"
    (ContainerPath, "/etc/", False),
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


MORE_CASES = [
    (DockerHostURL, "unix:///var/run/docker.sock", True),
    (DockerHostURL, "tcp://10.0.0.7:2376", True),
    (DockerHostURL, "ssh://pmoves@jetson-ollama", True),
    (DockerHostURL, "htps://host", False),  # a typo of the scheme
    (DockerHostURL, "tcp://10.0.0.7", False),  # no port
    (DockerHostURL, "ssh://pmoves:pw@jetson-ollama", False),  # a password in the URL
    (DockerHostURL, "unix://var/run/docker.sock", False),  # not an absolute socket path
    (HttpURL, "https://api.venice.ai/api/v1", True),
    (HttpURL, "http://user:pw@llm.internal/v1", False),
    (HttpURL, "https://token@llm.internal/v1", False),
    (HttpURL, "ftp://llm.internal", False),
    (UpstreamModelName, "@cf/meta/llama-3.1-8b-instruct", True),
    (UpstreamModelName, "qwen2.5:0.5b", True),
    (UpstreamModelName, "--insecure", False),
    (UpstreamModelName, "gpt 4o", False),
    (OllamaModelName, "qwen2.5:0.5b", True),
    (OllamaModelName, "registry.ollama.ai/library/gemma:2b", True),
    (OllamaModelName, "-x", False),
    (OllamaModelName, "@cf/x", False),
    (NginxSize, "32m", True),
    (NginxSize, "1g", True),
    (NginxSize, "2g", False),
    (NginxSize, "99999999999999999999m", False),
    (NginxSize, "0", False),
    (Duration(low_s=1, high="5m"), "15s", True),
    (Duration(low_s=1, high="5m"), "5m", True),
    (Duration(low_s=1, high="5m"), "6m", False),
    (Duration(low_s=1, high="5m"), "999999999999999999s", False),
    (Duration(low_s=1, high="5m"), "500ms", False),
    (ProjectPath, "catalog/models.toml", True),
    (ProjectPath, "/etc/passwd", False),
    (ProjectPath, "../outside.toml", False),
    (FilePath, "/srv/pmoves/env", True),
    (FilePath, "env\tdir", False),
    (MemoryMB, 4096, True),
    (MemoryMB, 1e30, False),
    (KubernetesName, "pmoves-tensorzero", True),
    (KubernetesName, "Pmoves_TZ", False),
    (KubernetesName, "a" * 64, False),
    (KubernetesName, "-pmoves", False),
    (DnsName, "tensorzero.pmoves.internal", True),
    (DnsName, "Tensorzero.pmoves.internal", False),
    (DnsName, "10.0.0.1", False),
    (LabelKey, "nvidia.com/gpu.present", True),
    (LabelKey, "bad key!", False),
    (LabelValue, "", True),
    (LabelValue, "pmoves-cluster-", False),
    (LabelValue, "a" * 64, False),
    (IPv4Address, "10.43.0.10", True),
    (IPv4Address, "fd00::10", False),
    (IPv4Address, "0.0.0.0", False),
]


@pytest.mark.parametrize(("annotated", "value", "valid"), MORE_CASES, ids=[f"{c[1]}" for c in MORE_CASES])
def test_more_annotated_types(annotated, value, valid):
    test_annotated_type(annotated, value, valid)


# Every named pattern of components/core/types.py, with a value it accepts.
ACCEPTED = {
    "ContainerPath": "/root/.ollama/models",
    "Hostname": "jetson-ollama",
    "InstanceName": "jetson",
    "Line": "ops on call: restore tested 2026-11-30",
    "ImageRef": "tensorzero/gateway:2026.6.0",
    "DockerName": "pmoves-test",
    "VolumeName": "tensorzero-clickhouse-data",
    "EnvName": "OPENAI_API_KEY",
    "Identifier": "local_chat",
    "HostAddress": "jetson-ollama",
    "IPAddress": "10.0.0.7",
    "DockerHostURL": "tcp://10.0.0.7:2376",
    "HttpURL": "https://api.venice.ai/api/v1",
    "UpstreamModelName": "claude-sonnet-4-5",
    "OllamaModelName": "qwen2.5:0.5b",
    "NginxSize": "32m",
    "ProjectPath": "catalog/models.toml",
    "FilePath": "envfiles/dev",
    "KubernetesName": "pmoves-tensorzero",
    "DnsName": "tensorzero.pmoves.internal",
    "LabelKey": "nvidia.com/gpu.present",
    "LabelValue": "true",
    "IPv4Address": "10.43.0.10",
    "S3BucketURL": "http://minio.pmoves.internal:9000/tensorzero-backups/prod",
    "S3Region": "us-east-1",
    "TlsTerminator": "caddy on the main host",
}
MODULES = {**vars(types), **vars(urls)}  # the annotated types, and those of URLs


def test_every_string_type_is_listed_here():
    strings = {name for name, value in MODULES.items() if get_origin(value) is Annotated and get_args(value)[0] is str}
    assert strings == set(ACCEPTED)


@pytest.mark.parametrize(("name", "value"), sorted(ACCEPTED.items()))
@pytest.mark.parametrize("suffix", ["\n", "\r\n", " "])
def test_a_trailing_newline_is_refused_by_every_type(name, value, suffix):
    adapter = TypeAdapter(MODULES[name])
    assert adapter.validate_python(value) == value
    with pytest.raises(ValidationError):
        adapter.validate_python(value + suffix)


def string_leaves(value, path=()):
    """(path, text) of every string in a dumped spec, dict keys included (path ends with KEY for those)."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield path + (key, KEY), key
            yield from string_leaves(item, path + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from string_leaves(item, path + (index,))


KEY = object()


def with_newline(document, path):
    """A deep copy of `document` with a newline after the string (or dict key) at `path`."""
    document = copy.deepcopy(document)
    *parents, last = path
    holder = document
    for part in parents[:-1] if last is KEY else parents:
        holder = holder[part]
    if last is KEY:
        holder[parents[-1] + "\n"] = holder.pop(parents[-1])
    else:
        holder[last] += "\n"
    return document


@pytest.mark.parametrize("stack", STACKS)
def test_a_trailing_newline_anywhere_in_a_stack_spec_is_refused(stack, deployments):
    """Every string of the whole spec, defaults spelled out: each pattern is a full match."""
    dumped = deployments[stack].spec.model_dump(mode="json")
    accepted = [path for path, _ in string_leaves(dumped) if _accepts(Environment, with_newline(dumped, path))]
    assert accepted == []


@pytest.mark.parametrize("stack", STACKS)
def test_a_trailing_newline_anywhere_in_a_catalog_entry_is_refused(stack, deployments):
    catalog = deployments[stack].catalog
    entries = [(ModelEntry, e) for e in catalog.models.values()] + [
        (ProviderEntry, e) for e in catalog.providers.values()
    ]
    for model, entry in entries:
        dumped = entry.model_dump(mode="json", exclude_none=True)
        accepted = [path for path, _ in string_leaves(dumped) if _accepts(model, with_newline(dumped, path))]
        assert accepted == [], dumped


def _accepts(model, document) -> bool:
    try:
        model.model_validate(document)
    except ValidationError:
        return False
    return True


class _Numbers(StrictModel):
    port: Optional[Port] = None
    memory_mb: MemoryMB = 1024
    sizes: dict[str, int] = {}
    keep: int = 4
    enabled: bool = False
    either: Union[bool, int] = 0


@pytest.mark.parametrize(
    "values", [{"port": True}, {"memory_mb": True}, {"keep": False}, {"sizes": {"data": True}}], ids=str
)
def test_a_yaml_boolean_is_never_read_as_an_integer(values):
    with pytest.raises(ValidationError) as raised:
        _Numbers(**values)
    (error,) = raised.value.errors()
    assert error["loc"][0] == next(iter(values)) and "must be an integer, not" in error["msg"], error


@pytest.mark.parametrize("given", [1, 0, 1.0, "1", "yes", "on", "t"], ids=repr)
def test_a_number_or_a_word_is_never_read_as_a_boolean(given):
    """pydantic's lax mode reads 1, 1.0, "yes" and "on" as true: here a bool is written true or false."""
    with pytest.raises(ValidationError) as raised:
        _Numbers(enabled=given)
    (error,) = raised.value.errors()
    assert error["loc"] == ("enabled",) and f"{given!r} is not a boolean: write true or false" in error["msg"], error


@pytest.mark.parametrize(("given", "read"), [(True, True), (False, False), ("true", True), ("False", False)])
def test_a_boolean_as_yaml_or_as_the_pulumi_clis_text(given, read):
    assert _Numbers(enabled=given).enabled is read


def test_booleans_stay_booleans_and_integers_integers():
    taken = _Numbers(port=3000, memory_mb=64, sizes={"data": 5}, keep=1, enabled=True, either=True)
    assert (taken.port, taken.memory_mb, taken.sizes, taken.keep, taken.enabled, taken.either) == (
        3000, 64, {"data": 5}, 1, True, True
    )  # fmt: skip
    assert _Numbers(either=1).either == 1  # a field that takes either keeps the number
