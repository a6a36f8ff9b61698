"""The Docker target: service plans become pulumi-docker resources, every service by the same component."""

import json
from collections.abc import Sequence
from typing import Optional

import pulumi
import pulumi_docker as docker
import pulumi_random as random

from components.core.envfiles import Variable
from components.core.names import PROJECT, PROJECT_LABEL, SERVICE_LABEL, STACK_LABEL, TYPE_PREFIX
from components.core.plans import ROOT_DROPPED, Hardening, OneShot, SecretFile, ServicePlan, Volume, VolumeMount
from components.core.render import RenderedFile
from components.model.settings import DockerHost as DockerHostSpec

HEALTH_INTERVAL = "10s"
HEALTH_TIMEOUT = "5s"
HEALTH_RETRIES = 6
HEALTH_START_PERIOD = "20s"
WAIT_TIMEOUT_S = 300
LOG_OPTS = {"max-size": "20m", "max-file": "5"}


class DockerHost(pulumi.ComponentResource):
    """A Docker host: one provider and the stack's network on it."""

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


def envs(variables: Sequence[Variable]) -> list[pulumi.Input[str]]:
    """`K=V` strings; a credential stays a Pulumi secret all the way to the container."""
    return [pulumi.Output.secret(f"{v.name}={v.value}") if v.secret else f"{v.name}={v.value}" for v in variables]


def uploads(files: Sequence[RenderedFile], secret_files: Sequence[SecretFile] = ()) -> list[docker.ContainerUploadArgs]:
    return [docker.ContainerUploadArgs(file=f.mount, content=f.content) for f in files] + [
        docker.ContainerUploadArgs(file=f.mount, content=pulumi.Output.secret(f.variable.value)) for f in secret_files
    ]


# No process gains privileges it did not start with (setuid binaries, file capabilities), in every container.
NO_NEW_PRIVILEGES = ["no-new-privileges:true"]


def confinement(hardening: Hardening) -> dict:
    """The Container arguments that confine it (plans.Hardening). No read-only root: the plan's files are
    uploaded into the container, which Docker refuses on a read-only root ("container rootfs is marked
    read-only"); each is a read-only file of the image's user instead."""
    if hardening.user is None:
        capabilities = docker.ContainerCapabilitiesArgs(drops=list(ROOT_DROPPED))
        return {"capabilities": capabilities, "security_opts": NO_NEW_PRIVILEGES}
    capabilities = docker.ContainerCapabilitiesArgs(drops=["ALL"], adds=list(hardening.capabilities) or None)
    user = f"{hardening.user}:{hardening.user}"
    return {"capabilities": capabilities, "security_opts": NO_NEW_PRIVILEGES, "user": user}


ROLLING_SUFFIX_BYTES = 4  # 8 hex digits after the Docker name of a container replaced create-before-delete


def labels(name_prefix: str, role: str) -> list[docker.ContainerLabelArgs]:
    return [
        docker.ContainerLabelArgs(label=PROJECT_LABEL, value=PROJECT),
        docker.ContainerLabelArgs(label=STACK_LABEL, value=name_prefix),
        docker.ContainerLabelArgs(label=SERVICE_LABEL, value=role),
    ]


def passed(name: str):
    """A one-shot's exit code, checked: anything but 0 stops the program before what waits for it."""

    def check(code: Optional[float]) -> None:
        # None: not known yet (a preview, or Pulumi's mocks): nothing to hold back on.
        if code is not None and int(code) != 0:
            raise pulumi.RunError(
                f"{name} exited with {int(code)}: nothing that waits for it was changed. See `docker logs {name}`; "
                "once fixed, run it again with `pulumi up --replace <its URN>`."
            )

    return check


class ServiceComponent(pulumi.ComponentResource):
    """One service: its image, volumes and container, and its one-shots, at its placement on its host."""

    container: Optional[docker.Container] = None

    def __init__(
        self,
        plan: ServicePlan,
        *,
        host: DockerHost,
        name_prefix: str,
        protect_data: bool,
        volume_prefix: str,
        started: dict[str, "ServiceComponent"],
        opts: Optional[pulumi.ResourceOptions] = None,
    ):
        super().__init__(f"{TYPE_PREFIX}:{plan.component}", plan.role, None, opts)
        self.plan = plan
        self._host = host
        self._name_prefix = name_prefix
        self.volumes = {volume.name: self._volume(volume, protect_data, volume_prefix) for volume in plan.volumes}
        volumes = [(self.volumes[v.name], v.mount) for v in plan.volumes]
        volumes += [self._shared(mount, started) for mount in plan.mounts]
        if plan.runs_container:
            self.container = self._container(plan, volumes, started)
        started = {**started, plan.role: self}
        self.one_shots = [self._one_shot(shot, started) for shot in plan.one_shots]
        # A one-shot's exit code is reported here: pulumi-docker does not fail on it.
        exit_codes = [shot.exit_code for shot in self.one_shots]
        self.register_outputs({"container": self.container.name} if self.container else {"exit_codes": exit_codes})

    def _volume(self, volume: Volume, protect_data: bool, volume_prefix: str) -> docker.Volume:
        opts = pulumi.ResourceOptions(parent=self, provider=self._host.provider)
        if volume.adopted:
            # Read, not declared: Pulumi never creates, replaces or deletes it, and `pulumi up` stops when it is
            # missing instead of Docker quietly creating an empty one at the container's start.
            return docker.Volume.get(f"{self.plan.role}-{volume.name}", volume.docker_name, opts=opts)
        # Every volume holds data: protected outside dev, and never deleted by Pulumi (retain_on_delete:
        # `pulumi destroy`, or a volume dropped from the spec, leaves it in Docker, protected or not).
        return docker.Volume(
            f"{self.plan.role}-{volume.name}",
            name=volume.docker_name_in(volume_prefix),
            opts=pulumi.ResourceOptions.merge(
                opts, pulumi.ResourceOptions(protect=protect_data, retain_on_delete=True)
            ),
        )

    @staticmethod
    def _shared(mount: VolumeMount, started: dict[str, "ServiceComponent"]) -> tuple[docker.Volume, str]:
        return started[mount.owner].volumes[mount.volume], mount.mount

    @staticmethod
    def gates(role: str, started: dict[str, "ServiceComponent"]) -> list:
        """The one-shots declared before `role`'s container must run first, and exit 0 (`OneShot.before`)."""
        found = []
        for component in started.values():
            for shot, container in zip(component.plan.one_shots, component.one_shots, strict=True):
                if role in shot.before:
                    name = f"{component._name_prefix}-{shot.docker_name}"
                    found += [container, container.exit_code.apply(passed(name))]
        return found

    def _container(self, plan, volumes, started) -> docker.Container:
        placement = plan.placement
        image = docker.RemoteImage(
            f"{plan.role}-image",
            name=plan.image,
            keep_locally=True,
            opts=pulumi.ResourceOptions(parent=self, provider=self._host.provider),
        )
        ports = [docker.ContainerPortArgs(internal=p.internal, external=p.external, ip=p.ip) for p in placement.ports]
        replaced_by = dict(
            image=image.image_id,
            command=list(plan.command) or None,
            envs=envs(plan.env),
            ports=ports,
            # The stack's own network (with the names only it has), then existing networks it joins only by
            # name: no resource of the stack, so `pulumi destroy` never touches them. Callers there resolve the
            # same hostname.
            networks_advanced=[
                docker.ContainerNetworksAdvancedArgs(
                    name=self._host.network.name, aliases=[placement.alias, *plan.own_network_aliases]
                ),
                *(
                    docker.ContainerNetworksAdvancedArgs(name=network, aliases=[placement.alias])
                    for network in plan.networks
                ),
            ],
            volumes=[
                *(docker.ContainerVolumeArgs(volume_name=v.name, container_path=path) for v, path in volumes),
                *(
                    docker.ContainerVolumeArgs(host_path=p.source, container_path=p.target, read_only=True)
                    for p in plan.host_paths
                ),
            ],
            uploads=uploads(plan.files, plan.secret_files),
            healthcheck=docker.ContainerHealthcheckArgs(
                tests=["CMD", *plan.healthcheck],
                interval=HEALTH_INTERVAL,
                timeout=HEALTH_TIMEOUT,
                retries=HEALTH_RETRIES,
                start_period=HEALTH_START_PERIOD,
            ),
        )
        name = plan.container_name(self._name_prefix)
        return docker.Container(
            f"{plan.role}-container",
            name=self._rolling_name(name, replaced_by) if plan.rolling else name,
            **replaced_by,
            device_requests=[docker.ContainerDeviceRequestArgs(driver="nvidia", count=-1, capabilities=["gpu"])]
            if plan.gpu
            else None,
            labels=labels(self._name_prefix, plan.role),
            memory=plan.memory_mb,
            **confinement(plan.hardening),
            restart="unless-stopped",
            log_driver="json-file",
            log_opts=LOG_OPTS,
            wait=True,
            wait_timeout=WAIT_TIMEOUT_S,
            # `docker stop` waits this long after SIGTERM: in-flight requests drain before the container goes.
            destroy_grace_seconds=plan.stop_grace_s,
            opts=pulumi.ResourceOptions(
                parent=self,
                provider=self._host.provider,
                depends_on=[started[role].container for role in plan.waits_for] + self.gates(plan.role, started),
                # A fixed Docker name (and host port) must be freed before the new container takes it; a rolling
                # one gets a fresh name and publishes no port: the new one is healthy before the old one goes.
                delete_before_replace=not plan.rolling,
            ),
        )

    def _rolling_name(self, name: str, replaced_by: dict) -> pulumi.Output[str]:
        """`name-<random hex>`, drawn anew whenever an input that replaces the container changes.

        Random, not a hash of those inputs: they hold credentials, and a name is shown everywhere.
        """
        keepers = pulumi.Output.from_input(replaced_by).apply(
            lambda resolved: {"replaced_by": json.dumps(resolved, sort_keys=True, default=str)}
        )
        suffix = random.RandomId(
            f"{self.plan.role}-generation",
            byte_length=ROLLING_SUFFIX_BYTES,
            keepers=keepers,
            opts=pulumi.ResourceOptions(parent=self),
        )
        return pulumi.Output.concat(name, "-", suffix.hex)

    def _one_shot(self, shot: OneShot, started: dict[str, "ServiceComponent"]) -> docker.Container:
        """Runs once per change of its inputs (uploads and envs force replacement) and exits."""
        mounts = [self._shared(mount, started) for mount in shot.mounts]
        if shot.image:
            image = docker.RemoteImage(
                f"{self.plan.role}-{shot.name}-image",
                name=shot.image,
                keep_locally=True,
                opts=pulumi.ResourceOptions(parent=self, provider=self._host.provider),
            ).image_id
        else:
            image = started[shot.image_of].container.image
        return docker.Container(
            f"{self.plan.role}-{shot.name}",
            name=f"{self._name_prefix}-{shot.docker_name}",
            image=image,
            entrypoints=[shot.entrypoint],
            command=list(shot.command),
            envs=envs(shot.env),
            uploads=uploads(shot.files) or None,
            networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=self._host.network.name)],
            volumes=[docker.ContainerVolumeArgs(volume_name=v.name, container_path=path) for v, path in mounts] or None,
            labels=labels(self._name_prefix, shot.image_of),
            # A client of its service (a pull, a schema apply): root in its image, confined as a root service.
            **confinement(Hardening()),
            # pulumi-docker waits for an attached container to stop, but does not fail on its exit code
            # (terraform-provider-docker, resourceDockerContainerCreate): the smoke suite checks the result.
            attach=True,
            must_run=False,
            logs=True,
            restart="no",
            opts=pulumi.ResourceOptions(
                parent=self,
                provider=self._host.provider,
                depends_on=[started[role].container for role in shot.after],
                # A fixed Docker name: the old run must go before the new one starts.
                delete_before_replace=True,
            ),
        )
