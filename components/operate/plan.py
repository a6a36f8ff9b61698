"""The desired state of a stack, computed offline under Pulumi's own mocks.

The program that `pulumi up` runs is run here unchanged; a recording monitor
keeps what the engine would receive for each resource: type, name, parent,
provider, dependencies, protect and inputs, with secrets masked; and, apart
(`external`), each existing resource the program only reads by its id.
"""

import hashlib
import json
import re
from typing import Any

import pulumi
from pulumi.runtime import mocks, rpc, settings
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from components.core.envfiles import MASK
from components.core.names import PROJECT
from components.core.types import url_password
from components.stack.guards import confirmed
from components.stack.loader import Deployment
from components.targets.build import build

IMAGE = "docker:index/remoteImage:RemoteImage"
_URL_PASSWORD = re.compile(r"^([a-z][a-z0-9+.-]*://[^/:@]*:)[^/@]*@")
RANDOM_ID = "random:index/randomId:RandomId"


class StackMocks(pulumi.runtime.Mocks):
    """Answers the engine's questions for every resource type the stack declares."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        state = dict(args.inputs)
        if args.resource_id is not None:
            # A resource read by its id (an adopted volume): Docker names such objects by their id.
            state.setdefault("name", args.resource_id)
        if args.typ == IMAGE:
            # The engine would answer with the pulled image's id; its reference reads better in a plan.
            state["imageId"] = args.inputs["name"]
        if args.typ == RANDOM_ID:
            # The engine draws random bytes; a digest of the resource's name keeps offline plans reproducible
            # (never of its inputs: they hold credentials).
            digest = hashlib.sha256(args.name.encode()).hexdigest()
            state["hex"] = digest[: 2 * int(args.inputs["byteLength"])]
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs):
        return {}, None


class RecordingMonitor(mocks.MockMonitor):
    def __init__(self, plain_names: frozenset[str] = frozenset()):
        super().__init__(StackMocks())
        self.recorded: list[dict[str, Any]] = []
        self.plain_names = plain_names
        self.read: list[dict[str, Any]] = []  # existing resources the program only reads (never owns)

    def ReadResource(self, request):
        response = super().ReadResource(request)
        self.read.append(
            {
                "urn": response.urn,
                "type": request.type,
                "name": request.name,
                "id": request.id,
                "parent": request.parent or None,
                "provider": request.provider.rsplit("::", 1)[0] if request.provider else None,
            }
        )
        return response

    def RegisterResource(self, request):
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            self.recorded.append(
                {
                    "urn": response.urn,
                    "type": request.type,
                    "name": request.name,
                    "parent": request.parent or None,
                    "provider": request.provider.rsplit("::", 1)[0] if request.provider else None,
                    "dependencies": sorted(set(request.dependencies)),
                    "protect": bool(request.protect),
                    "delete_before_replace": bool(request.deleteBeforeReplace),
                    "retain_on_delete": bool(request.retainOnDelete),
                    "inputs": masked(rpc.deserialize_properties(request.object), self.plain_names),
                }
            )
        return response


def _is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(rpc._special_sig_key) == rpc._special_secret_sig


def masked(value: Any, plain_names: frozenset[str] = frozenset()) -> Any:
    """Replace every secret with "[secret]".

    Pulumi marks a container's whole `envs` list secret when one entry is: there each `K=V` keeps its name,
    and only the entries whose name is not a known plain variable are masked, so a changed plain value
    beside a secret still shows (and `diff` sees the container replaced).
    """
    if _is_secret(value):
        inner = value["value"]
        if isinstance(inner, list) and all(isinstance(item, str) and "=" in item for item in inner):
            return [_masked_entry(item, plain_names) for item in inner]
        return MASK
    if isinstance(value, dict):
        return {key: masked(item, plain_names) for key, item in sorted(value.items())}
    if isinstance(value, list):
        return [masked(item, plain_names) for item in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)  # protobuf carries every number as a double
    return value


def _masked_entry(item: str, plain_names: frozenset[str]) -> str:
    """`K=V` as a plan shows it: V itself when K is plain; a URL's password alone (its user, host and database
    are the spec's, and a change to them replaces the container); else "[secret]"."""
    name, value = item.split("=", 1)
    if name in plain_names:
        return item
    shown, found = _URL_PASSWORD.subn(rf"\1{MASK}@", value, count=1)
    return f"{name}={shown if found and url_password(value) else MASK}"


def plain_names(deployment: Deployment) -> frozenset[str]:
    """Variables no container gets as a secret: the only entries a secret env list may show."""
    variables = [
        variable
        for service in deployment.plans.values()
        for variable in service.env + tuple(v for shot in service.one_shots for v in shot.env)
    ]
    secret = {v.name for v in variables if v.secret}
    return frozenset(v.name for v in variables if not v.secret and v.name not in secret)


def use_mocks(stack: str, monitor: mocks.MockMonitor | None = None) -> mocks.MockMonitor:
    """Point the Pulumi runtime at mocks for `stack`, with a fresh root resource."""
    monitor = monitor or mocks.MockMonitor(StackMocks())
    settings.ROOT.set(None)
    mocks.set_mocks(monitor.mocks, project=PROJECT, stack=stack, preview=False, monitor=monitor)
    return monitor


def plan(deployment: Deployment) -> dict[str, Any]:
    """Run the stack's program under mocks; return its resources and outputs."""
    monitor = use_mocks(deployment.stack, RecordingMonitor(plain_names(deployment)))
    settings.SETTINGS.rpc_manager.clear()
    settings.SETTINGS.outputs.clear()
    outputs: dict[str, Any] = {}

    async def resolve(name: str, value: Any) -> None:
        output = pulumi.Output.from_input(value)
        outputs[name] = MASK if await output.is_secret() else await output.future()

    def program():
        for name, value in build(deployment).outputs.items():
            _sync_await(resolve(name, value))

    _sync_await(run_pulumi_func(program))
    desired = {
        "project": PROJECT,
        "stack": deployment.stack,
        # What `diff` needs to tell a refused data loss from a confirmed one (components/stack/guards.py).
        "guards": {"tier": deployment.spec.tier.value, "confirmed": sorted(confirmed(deployment.spec))},
        "resources": sorted(monitor.recorded, key=lambda r: r["urn"]),
        "outputs": dict(sorted(outputs.items())),
    }
    if monitor.read:  # only stacks that adopt something: every other plan stays as it was
        desired["external"] = sorted(monitor.read, key=lambda r: r["urn"])
    return desired


def to_json(desired: dict[str, Any]) -> str:
    return json.dumps(desired, indent=2, sort_keys=True) + "\n"
