"""What `plan` prints for people: a summary first, as `pulumi preview` does, every input only on request."""

from collections import Counter
from typing import Any
from urllib.parse import urlsplit

from components.core.names import OLLAMA_API_PATH
from components.stack.loader import stack_ollamas

PROVIDER_PREFIX = "pulumi:providers:"


def kind(resource_type: str) -> str:
    """`docker:index/container:Container` -> `Container`; a provider -> `Provider`."""
    return "Provider" if resource_type.startswith(PROVIDER_PREFIX) else resource_type.rsplit(":", 1)[-1]


def counts(desired: dict[str, Any]) -> str:
    """`11 Container, 8 RemoteImage, ...`: resources by type, most first."""
    found = Counter(kind(resource["type"]) for resource in desired["resources"])
    return ", ".join(f"{count} {name}" for name, count in sorted(found.items(), key=lambda item: (-item[1], item[0])))


def tree(desired: dict[str, Any]) -> list[str]:
    """One line per resource, under its parent, in declaration order of the stack (components first)."""
    by_parent: dict[str, list[dict]] = {}
    urns = {resource["urn"] for resource in desired["resources"]}
    for resource in desired["resources"]:
        parent = resource["parent"] if resource["parent"] in urns else None
        by_parent.setdefault(parent, []).append(resource)
    lines: list[str] = []

    def walk(parent, depth: int) -> None:
        for resource in by_parent.get(parent, []):
            marks = "".join(f" [{flag}]" for flag in ("protect",) if resource.get(flag))
            lines.append(f" +  {'  ' * depth}{kind(resource['type'])} {resource['name']}{marks}")
            walk(resource["urn"], depth + 1)

    walk(None, 0)
    return lines


def adopted(desired: dict[str, Any]) -> list[str]:
    """The existing resources the stack reads (adopted volumes): never created, replaced or deleted."""
    external = desired.get("external", [])
    if not external:
        return []
    lines = [f"    > {len(external)} to read: existing, adopted; never created, replaced or deleted"]
    return lines + [f"      > read {kind(r['type'])} {r['name']} ({r['id']})" for r in external]


def plan_text(desired: dict[str, Any], details_hint: str) -> str:
    """The summary `plan` leads with: the resources as a tree, their counts, the stack outputs."""
    stack, total = desired["stack"], len(desired["resources"])
    lines = [f"Plan of stack {stack} (offline, under Pulumi's mocks): what `pulumi up` declares", ""]
    lines += tree(desired)
    lines += [
        "",
        "Resources:",
        f"    + {total} to create (against an empty stack; `diff` compares two plans)",
        f"      {counts(desired)}",
        *adopted(desired),
        "",
        f"Outputs: {', '.join(desired['outputs'])}",
        "",
        details_hint,
    ]
    return "\n".join(lines) + "\n"


def serving(deployment) -> list[str]:
    """`model: upstream name on Ollama pmoves-ollama, then ...`: who serves each model, in routing order."""
    ollamas = {url + OLLAMA_API_PATH: alias for alias, url in stack_ollamas(deployment.spec).items()}
    translation = deployment.translation
    chains = [(m.name, [b.fields for b in m.providers]) for m in (*translation.models, *translation.embedding_models)]
    for table in ("models", "embedding_models"):
        for name, body in translation.native.get(table, {}).items():
            providers = body.get("providers") or {}
            chains.append((name, [providers.get(p) or {} for p in body.get("routing") or providers]))

    def who(fields: dict) -> str:
        api_base, upstream = fields.get("api_base"), fields.get("model_name") or "?"
        if api_base in ollamas:
            return f"{upstream} on Ollama {ollamas[api_base]}"
        where = f"at {urlsplit(api_base).hostname}" if api_base else "(hosted)"
        return f"{upstream} by {fields.get('type', '?')} {where}"

    return [f"{name}: {', then '.join(who(fields) for fields in chain)}" for name, chain in sorted(chains)]
