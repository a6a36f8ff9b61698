"""Pulumi's own share of `plan`: the same resources declared without this package, as a fresh process.

    python benchmarks/pulumi_floor.py PLAN.json     (PLAN.json: `python -m components plan STACK --json`)

It imports what `plan` imports from Pulumi (the SDK, pulumi-docker, and pulumi-kubernetes for a cluster
stack's plan), points the runtime at mocks, and declares every resource of PLAN.json (same type, name, parent and
inputs) as a generic resource, then waits for the runtime to finish, as `plan` does. None of this package's code
runs, and a generic resource gets fewer output properties than pulumi-docker's classes give it: the time is a
floor under what any `plan` of these resources costs while it runs Pulumi's SDK. bench_plan.py times it beside
each `plan`.
"""

import json
import os
import sys
from pathlib import Path

import pulumi
import pulumi_docker  # noqa: F401  (imported as `plan` imports it: part of the floor)
from pulumi.runtime import mocks, settings
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

PROVIDERS = "pulumi:providers:"


class Echo(pulumi.runtime.Mocks):
    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args: pulumi.runtime.MockCallArgs):
        return {}, None


def declare(resources: list[dict]) -> None:
    declared: dict[str, pulumi.Resource] = {}
    for resource in resources:  # a parent is declared before its children: urns sort so
        parent = declared.get(resource["parent"] or "")
        opts = pulumi.ResourceOptions(parent=parent, protect=resource["protect"])
        kind, name = resource["type"], resource["name"]
        if kind.startswith(PROVIDERS):
            declared[resource["urn"]] = pulumi.ProviderResource(kind.removeprefix(PROVIDERS), name, {}, opts)
        elif ":stack:" in kind:
            declared[resource["urn"]] = pulumi.ComponentResource(kind, name, None, opts)
        else:
            declared[resource["urn"]] = pulumi.CustomResource(kind, name, resource["inputs"], opts)


def main(path: str) -> None:
    plan = json.loads(Path(path).read_text())
    resources = sorted(plan["resources"], key=lambda r: (r["urn"].count("$"), r["urn"]))
    if any(r["type"].startswith("kubernetes:") for r in resources):
        import pulumi_kubernetes  # noqa: F401
    mocks.set_mocks(Echo(), project=plan["project"], stack=plan["stack"], preview=False)
    settings.ROOT.set(None)
    _sync_await(run_pulumi_func(lambda: declare(resources)))
    print(f"{len(resources)} resources declared")


if __name__ == "__main__":
    main(sys.argv[1])
    sys.stdout.flush()
    os._exit(0)  # as `plan` ends (components/operate/exits.py: leave), without the interpreter's slow exit
