"""What `pulumi up` would do to go from one plan to another, by pulumi-docker's and pulumi-kubernetes' replacement
rules."""

from dataclasses import dataclass
from typing import Any

# Inputs pulumi-docker changes in place; a change to any other input replaces the resource.
UPDATED_IN_PLACE = {
    "docker:index/container:Container": {
        "restart",
        "memory",
        "memorySwap",
        "cpuShares",
        "cpuSet",
        "maxRetryCount",
        # provider-side behaviour, not container settings
        "wait",
        "waitTimeout",
        "mustRun",
        "attach",
        "logs",
        "start",
        "destroyGraceSeconds",
        "containerReadRefreshTimeoutMilliseconds",
    },
    "docker:index/remoteImage:RemoteImage": {"keepLocally", "forceRemove"},
    "docker:index/volume:Volume": set(),
    "docker:index/network:Network": set(),
}
# A provider is replaced, and with it every resource it manages, when the target it points at changes (the
# Docker host; the cluster, by pulumi-kubernetes' heuristics); any other change of its inputs is an update.
PROVIDER_TARGET = {
    "pulumi:providers:docker": ("host",),
    "pulumi:providers:kubernetes": ("context", "cluster", "kubeconfig"),
}
# Kubernetes objects change in place (server-side apply) but for their identity and their immutable fields,
# which pulumi-kubernetes replaces the object for: (type suffix, dotted input path).
KUBERNETES = "kubernetes:"
KUBERNETES_REPLACED_ON = {
    "": ("metadata.name", "metadata.namespace"),
    "apps/v1:Deployment": ("spec.selector",),
    "apps/v1:StatefulSet": ("spec.selector", "spec.serviceName", "spec.volumeClaimTemplates"),
    "batch/v1:Job": ("spec",),
}
# Resource options that change without touching the resource itself; absent in an older plan means off.
OPTIONS = ("protect", "dependencies", "delete_before_replace", "retain_on_delete")


@dataclass(frozen=True)
class Change:
    # "read" and "forget": an existing resource the program starts or stops reading (an adopted volume);
    # Pulumi neither creates nor deletes it.
    ACTIONS = ("create", "update", "replace", "delete", "read", "forget")

    action: str  # one of ACTIONS
    urn: str
    type: str
    name: str
    keys: tuple[str, ...] = ()
    docker_name: str = ""  # the Docker-side name before the change (after it, for a create)
    new_docker_name: str = ""

    def line(self) -> str:
        symbol = {"create": "+", "delete": "-", "replace": "+-", "update": "~", "read": ">", "forget": "<"}[self.action]
        detail = f" ({', '.join(self.keys)})" if self.keys else ""
        return f"{symbol:<2} {self.action:<7} {self.type} {self.name}{detail}"


def diff(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    before = {r["urn"]: r for r in old["resources"]}
    after = {r["urn"]: r for r in new["resources"]}
    changes = []
    for urn in sorted(before.keys() | after.keys()):
        if urn not in before:
            created = after[urn]
            name = _docker(created)
            changes.append(Change("create", urn, created["type"], created["name"], (), name, name))
        elif urn not in after:
            deleted = before[urn]
            changes.append(Change("delete", urn, deleted["type"], deleted["name"], (), _docker(deleted)))
        else:
            change = _compare(before[urn], after[urn])
            if change:
                changes.append(change)
    changes = _with_providers_replaced(changes, before, after)
    read_before = {r["urn"]: r for r in old.get("external", [])}
    read_after = {r["urn"]: r for r in new.get("external", [])}
    for urn in sorted(read_before.keys() ^ read_after.keys()):
        found = read_after.get(urn) or read_before[urn]
        action = "read" if urn in read_after else "forget"
        changes.append(Change(action, urn, found["type"], found["name"], (found["id"],)))
    return changes


def _compare(old: dict[str, Any], new: dict[str, Any]) -> Change | None:
    inputs_old, inputs_new = old["inputs"], new["inputs"]
    changed_inputs = sorted(k for k in inputs_old.keys() | inputs_new.keys() if inputs_old.get(k) != inputs_new.get(k))
    changed_options = [k for k in OPTIONS if (old.get(k) or None) != (new.get(k) or None)]
    if old.get("provider") != new.get("provider"):
        changed_inputs.append("provider")
    if not changed_inputs and not changed_options:
        return None
    if target := PROVIDER_TARGET.get(new["type"]):
        replaces = any(k in target for k in changed_inputs)
    elif new["type"].startswith(KUBERNETES):
        replaces = "provider" in changed_inputs or _kubernetes_replaces(new["type"], inputs_old, inputs_new)
    else:
        in_place = UPDATED_IN_PLACE.get(new["type"])
        # Components have no inputs of their own; an unknown type is assumed to replace.
        replaces = bool(changed_inputs) and (in_place is None or any(k not in in_place for k in changed_inputs))
    action = "replace" if replaces else "update"
    keys = tuple(changed_inputs + changed_options)
    return Change(action, new["urn"], new["type"], new["name"], keys, _docker(old), _docker(new))


def _with_providers_replaced(changes: list[Change], before: dict, after: dict) -> list[Change]:
    """Every resource managed by a replaced provider is replaced with it, on the new target."""
    gone = {c.urn for c in changes if c.action == "replace" and c.type in PROVIDER_TARGET}
    if not gone:
        return changes
    by_urn = {c.urn: c for c in changes}
    for urn, resource in after.items():
        if urn in before and resource.get("provider") in gone:
            change = by_urn.get(urn)
            keys = tuple(k for k in (change.keys if change else ()) if k != "provider") + ("provider",)
            by_urn[urn] = Change(
                "replace", urn, resource["type"], resource["name"], keys, _docker(before[urn]), _docker(resource)
            )
    return [by_urn[urn] for urn in sorted(by_urn)]


def _docker(resource: dict[str, Any]) -> str:
    name = resource["inputs"].get("name")
    return name if isinstance(name, str) else ""


def _kubernetes_replaces(kind: str, old: dict[str, Any], new: dict[str, Any]) -> bool:
    def at(inputs: dict[str, Any], path: str) -> Any:
        for part in path.split("."):
            inputs = inputs.get(part) if isinstance(inputs, dict) else None
        return inputs

    paths = KUBERNETES_REPLACED_ON[""] + next(
        (v for k, v in KUBERNETES_REPLACED_ON.items() if k and kind.endswith(k)), ()
    )
    return any(at(old, path) != at(new, path) for path in paths)
