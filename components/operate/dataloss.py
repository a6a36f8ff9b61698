"""What a change does to data, read from the two plans rather than from resource types.

A data volume is a Docker volume (created by the stack or adopted), or a Kubernetes PersistentVolumeClaim (one
of the stack's own, or one a StatefulSet's claim template makes per replica). Each has a stable identity (the
URN that declares it, plus the claim template and ordinal) and a location: the Docker host or the cluster
context and namespace, and its name there. A change loses data when, from one plan to the next, a data volume

- leaves the stack (delete; Pulumi retains the Docker volume, but nothing uses it any more),
- stops being read (detach: an adopted volume dropped, or a volume no container mounts any more),
- keeps its place but not its name, or is replaced in place (replace: a new, empty one takes its place),
- changes host, context or namespace (move: the workload starts elsewhere, on an empty volume).

Each loss needs a confirmation naming it outside dev (`<kind> <name>: <verb>`, components/stack/guards.py).
"""

from dataclasses import dataclass
from typing import Any, Iterator, Optional

VOLUME_TYPE = "docker:index/volume:Volume"
CLAIM_TYPE = "kubernetes:core/v1:PersistentVolumeClaim"
STATEFUL_SET = "kubernetes:apps/v1:StatefulSet"
CONTAINER_TYPE = "docker:index/container:Container"
# The provider input that says where its resources live.
PROVIDER_PLACE = {"pulumi:providers:docker": ("host",), "pulumi:providers:kubernetes": ("context", "cluster")}


@dataclass(frozen=True)
class DataVolume:
    key: str  # identity across plans
    kind: str  # "volume" (Docker) or "claim" (Kubernetes)
    place: str  # Docker host URL, or `context <name>, namespace <name>`
    name: str  # its name at that place
    adopted: bool = False  # read, never created or deleted by Pulumi
    mounted: bool = True  # a Docker volume some container mounts
    deleted_with_owner: bool = False  # a claim its StatefulSet deletes with it (whenDeleted: Delete)


@dataclass(frozen=True)
class Loss:
    verb: str  # delete, detach, replace, move
    volume: DataVolume  # before the change
    after: Optional[DataVolume] = None
    keys: tuple[str, ...] = ()  # the inputs whose change replaces it

    @property
    def action(self) -> str:
        return self.verb

    @property
    def docker_name(self) -> str:
        return self.volume.name

    @property
    def need(self) -> str:
        """The confirmation the stack file must hold for it outside dev."""
        return f"{self.volume.kind} {self.volume.name}: {self.verb}"

    def explain(self) -> str:
        old, new = self.volume, self.after
        what = f"{'adopted ' if old.adopted else ''}{old.kind} {old.name}"
        if self.verb == "move":
            return (
                f"{what} stays at {old.place} while its workload moves to {new.place}, "
                f"onto a new, empty {new.kind} {new.name}; copy its data there first"
            )
        if self.verb == "delete":
            if old.kind == "claim":
                return f"{what} is deleted with its StatefulSet (persistentVolumeClaimRetentionPolicy: Delete)"
            return (
                f"{what} leaves the stack: Pulumi retains it in Docker (retain_on_delete), detached; "
                "nothing mounts its data any more"
            )
        if self.verb == "detach":
            if new is None:
                return f"{what} is no longer used by the stack: it is kept, detached; nothing mounts its data any more"
            if new.name == old.name:
                return f"{what} stays declared, but no container mounts it any more"
            instead = f"the existing {new.kind} {new.name} (adopted)" if new.adopted else f"a new, empty {new.name}"
            return f"{what} is kept but detached: the stack mounts {instead} in its place"
        if new is not None and new.name != old.name:
            hint = ""
            if old.kind == "volume" and (prefix := renamed_prefix(old.name, new.name)):
                hint = f"; to keep it (and its data), set `volume_prefix: {prefix}` in the stack file"
            return f"{what} would be replaced by a new, empty {new.name}{hint}"
        return f"{what} would be replaced by a new, empty one ({', '.join(self.keys)})"


def renamed_prefix(old: str, new: str) -> Optional[str]:
    """The old prefix when only the prefix of `<prefix>-<name>` changed: pmoves-prod-x, pmoves-p2-x -> pmoves-prod."""
    common = 0
    while common < min(len(old), len(new)) and old[-1 - common] == new[-1 - common]:
        common += 1
    suffix = old[len(old) - common :]
    if "-" not in suffix:
        return None
    suffix = suffix[suffix.index("-") :]
    return old[: len(old) - len(suffix)] or None


def _at(document: Any, path: str) -> Any:
    for part in path.split("."):
        document = document.get(part) if isinstance(document, dict) else None
    return document


def _places(desired: dict[str, Any]) -> dict[str, str]:
    """Provider URN -> where its resources live."""
    found = {}
    for resource in desired["resources"]:
        if keys := PROVIDER_PLACE.get(resource["type"]):
            found[resource["urn"]] = ", ".join(
                f"{k} {resource['inputs'].get(k)}" for k in keys if k in resource["inputs"]
            )
    return found


def data_volumes(desired: dict[str, Any]) -> dict[str, DataVolume]:
    places = _places(desired)
    mounted = {
        mount.get("volumeName")
        for r in desired["resources"]
        if r["type"] == CONTAINER_TYPE
        for mount in r["inputs"].get("volumes") or ()
    }
    found: dict[str, DataVolume] = {}
    for volume in _volumes(desired, places, mounted):
        found[volume.key] = volume
    return found


def _volumes(desired: dict[str, Any], places: dict[str, str], mounted: set) -> Iterator[DataVolume]:
    for external in desired.get("external", []):
        if external["type"] == VOLUME_TYPE:
            place = places.get(external.get("provider"), "")
            yield DataVolume(external["urn"], "volume", place, external["id"], adopted=True, mounted=True)
    for resource in desired["resources"]:
        inputs, place = resource["inputs"], places.get(resource.get("provider"), "")
        if resource["type"] == VOLUME_TYPE and isinstance(inputs.get("name"), str):
            yield DataVolume(resource["urn"], "volume", place, inputs["name"], mounted=inputs["name"] in mounted)
        elif resource["type"] == CLAIM_TYPE:
            namespace = _at(inputs, "metadata.namespace")
            yield DataVolume(resource["urn"], "claim", f"{place}, namespace {namespace}", _at(inputs, "metadata.name"))
        elif resource["type"] == STATEFUL_SET:
            namespace, owner = _at(inputs, "metadata.namespace"), _at(inputs, "metadata.name")
            deleted = _at(inputs, "spec.persistentVolumeClaimRetentionPolicy.whenDeleted") == "Delete"
            for template in _at(inputs, "spec.volumeClaimTemplates") or ():
                claim = _at(template, "metadata.name")
                for ordinal in range(_at(inputs, "spec.replicas") or 1):
                    yield DataVolume(
                        f"{resource['urn']}#{claim}#{ordinal}",
                        "claim",
                        f"{place}, namespace {namespace}",
                        f"{claim}-{owner}-{ordinal}",
                        deleted_with_owner=deleted,
                    )


def losses(old: dict[str, Any], new: dict[str, Any], changes: list) -> list[Loss]:
    """Every data volume of `old` that the change to `new` deletes, detaches, replaces or moves."""
    before, after = data_volumes(old), data_volumes(new)
    replaced = {c.urn: c for c in changes if c.action in ("replace", "delete")}
    found = []
    for key, volume in sorted(before.items()):
        now = after.get(key)
        owner = replaced.get(key.split("#", 1)[0])
        if now is None:
            verb = (
                "delete" if (volume.kind == "volume" and not volume.adopted) or volume.deleted_with_owner else "detach"
            )
            found.append(Loss(verb, volume))
        elif now.place != volume.place:
            found.append(Loss("move", volume, now))
        elif now.name != volume.name:
            found.append(Loss("detach" if volume.adopted else "replace", volume, now))
        elif owner is not None and volume.kind == "volume" and not volume.adopted:
            found.append(Loss("replace", volume, now, owner.keys))
        elif owner is not None and volume.deleted_with_owner:
            found.append(Loss("delete", volume, now))
        elif volume.mounted and not now.mounted:
            found.append(Loss("detach", volume, now))
    return found
