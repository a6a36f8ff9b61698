"""A Docker host: one provider and the stack's network on it."""

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_docker as docker

from .names import TYPE_PREFIX
from .spec import DockerHost as DockerHostSpec
from .spec import Endpoint


class DockerHost(pulumi.ComponentResource):
    def __init__(
        self, name: str, spec: DockerHostSpec, *, network_name: str, opts: Optional[pulumi.ResourceOptions] = None
    ):
        super().__init__(f"{TYPE_PREFIX}:DockerHost", name, None, opts)
        self.provider = docker.Provider(f"{name}-provider", host=spec.url, opts=pulumi.ResourceOptions(parent=self))
        self.network = docker.Network(
            f"{name}-network",
            name=network_name,
            driver="bridge",
            opts=pulumi.ResourceOptions(parent=self, provider=self.provider),
        )
        self.register_outputs({"network": self.network.name})


@dataclass(frozen=True)
class Placement:
    """Where a service runs and how others reach it."""

    host_name: str
    host: DockerHost
    name_prefix: str
    bind_address: str
    internal: Endpoint  # from containers on the same host
    published: Optional[Endpoint]  # from operators and other hosts

    def docker_name(self, suffix: str) -> str:
        return f"{self.name_prefix}-{suffix}"

    def endpoint_from(self, host_name: str) -> Endpoint:
        return self.internal if host_name == self.host_name else self.published
