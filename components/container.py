"""The one way this package declares a service container, so every service gets the same care."""

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_docker as docker

from .envfiles import Variable
from .host import Placement
from .names import PROJECT, PROJECT_LABEL, SERVICE_LABEL, STACK_LABEL, Service
from .render import RenderedFile
from .spec import Endpoint, ServiceSpec

HEALTH_INTERVAL = "10s"
HEALTH_TIMEOUT = "5s"
HEALTH_RETRIES = 6
HEALTH_START_PERIOD = "20s"
WAIT_TIMEOUT_S = 300
LOG_OPTS = {"max-size": "20m", "max-file": "5"}


@dataclass(frozen=True)
class ContainerPlan:
    """What differs between the stack's containers, beyond their spec; the rest is decided once, here."""

    env: Sequence[Variable]
    healthcheck: Sequence[str]
    command: Sequence[str] = ()
    files: Sequence[RenderedFile] = ()
    volumes: Sequence[tuple[docker.Volume, str]] = ()  # (volume, container path)
    host_paths: Sequence[tuple[str, str]] = ()  # (host path, container path), mounted read-only
    gpu: bool = False
    depends_on: Sequence[pulumi.Resource] = field(default_factory=tuple)


def envs(variables: Sequence[Variable]) -> list[pulumi.Input[str]]:
    """`K=V` strings; a credential stays a Pulumi secret all the way to the container."""
    return [pulumi.Output.secret(f"{v.name}={v.value}") if v.secret else f"{v.name}={v.value}" for v in variables]


def image(parent: pulumi.Resource, name: str, reference: str, placement: Placement) -> docker.RemoteImage:
    return docker.RemoteImage(
        f"{name}-image",
        name=reference,
        keep_locally=True,
        opts=pulumi.ResourceOptions(parent=parent, provider=placement.host.provider),
    )


def service_container(
    parent: pulumi.Resource,
    name: str,
    service: Service,
    spec: ServiceSpec,
    placement: Placement,
    plan: ContainerPlan,
) -> docker.Container:
    pulled = image(parent, name, spec.image, placement)
    ports = (
        [docker.ContainerPortArgs(internal=service.port, external=spec.port, ip=placement.bind_address)]
        if spec.port is not None
        else []
    )
    return docker.Container(
        f"{name}-container",
        name=placement.docker_name(service.container),
        image=pulled.image_id,
        command=list(plan.command) or None,
        envs=envs(plan.env),
        ports=ports,
        networks_advanced=[
            # The spec decides the alias (the gateway's moves when the edge takes it over).
            docker.ContainerNetworksAdvancedArgs(name=placement.host.network.name, aliases=[placement.internal.host])
        ],
        volumes=[
            *(docker.ContainerVolumeArgs(volume_name=v.name, container_path=path) for v, path in plan.volumes),
            *(
                docker.ContainerVolumeArgs(host_path=host, container_path=path, read_only=True)
                for host, path in plan.host_paths
            ),
        ],
        uploads=[docker.ContainerUploadArgs(file=f.mount, content=f.content) for f in plan.files],
        healthcheck=docker.ContainerHealthcheckArgs(
            tests=["CMD", *plan.healthcheck],
            interval=HEALTH_INTERVAL,
            timeout=HEALTH_TIMEOUT,
            retries=HEALTH_RETRIES,
            start_period=HEALTH_START_PERIOD,
        ),
        device_requests=[docker.ContainerDeviceRequestArgs(driver="nvidia", count=-1, capabilities=["gpu"])]
        if plan.gpu
        else None,
        labels=labels(placement, service),
        memory=spec.memory_mb,
        restart="unless-stopped",
        log_driver="json-file",
        log_opts=LOG_OPTS,
        wait=True,
        wait_timeout=WAIT_TIMEOUT_S,
        opts=pulumi.ResourceOptions(
            parent=parent,
            provider=placement.host.provider,
            depends_on=list(plan.depends_on),
            # Fixed Docker names and host ports: the old container must go first.
            delete_before_replace=True,
        ),
    )


def labels(placement: Placement, service: Service) -> list[docker.ContainerLabelArgs]:
    return [
        docker.ContainerLabelArgs(label=PROJECT_LABEL, value=PROJECT),
        docker.ContainerLabelArgs(label=STACK_LABEL, value=placement.name_prefix),
        docker.ContainerLabelArgs(label=SERVICE_LABEL, value=service.role),
    ]


def one_shot_container(
    parent: pulumi.Resource,
    name: str,
    docker_name: str,
    service: Service,
    placement: Placement,
    *,
    image: pulumi.Input[str],
    entrypoint: str,
    command: Sequence[str],
    env: Sequence[Variable],
    depends_on: Sequence[pulumi.Resource],
    files: Sequence[RenderedFile] = (),
) -> docker.Container:
    """A container that runs once per change of its inputs (uploads and envs force replacement) and exits."""
    return docker.Container(
        name,
        name=placement.docker_name(docker_name),
        image=image,
        entrypoints=[entrypoint],
        command=list(command),
        envs=envs(env),
        uploads=[docker.ContainerUploadArgs(file=f.mount, content=f.content) for f in files] or None,
        networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=placement.host.network.name)],
        labels=labels(placement, service),
        # pulumi-docker waits for an attached container to stop, but does not fail on its exit code.
        attach=True,
        must_run=False,
        logs=True,
        restart="no",
        opts=pulumi.ResourceOptions(
            parent=parent,
            provider=placement.host.provider,
            depends_on=list(depends_on),
            # A fixed Docker name: the old run must go before the new one starts.
            delete_before_replace=True,
        ),
    )


def data_volume(
    parent: pulumi.Resource, name: str, docker_name: str, placement: Placement, protect: bool
) -> docker.Volume:
    return docker.Volume(
        name,
        name=placement.docker_name(docker_name),
        opts=pulumi.ResourceOptions(parent=parent, provider=placement.host.provider, protect=protect),
    )


def served_variables(spec: ServiceSpec, variables: dict[str, Variable]) -> list[Variable]:
    """The layered variables a service asked for by name in `extra_env`."""
    return [variables[name] for name in spec.extra_env]


class ServiceComponent(pulumi.ComponentResource):
    """A component that runs one service container at a placement."""

    placement: Placement
    container: docker.Container

    def run(self, name: str, service: Service, spec: ServiceSpec, placement: Placement, plan: ContainerPlan) -> None:
        self.placement = placement
        self.container = service_container(self, name, service, spec, placement, plan)

    def endpoint_from(self, host_name: str) -> Endpoint:
        return self.placement.endpoint_from(host_name)
