"""What the seed's runbook expects of the stack that replaces PMOVES's compose.

The seed's variables an operator carries over from PMOVES's compose env files, and where the stack takes
each one's value from instead. One set in an env layer that nothing of the stack reads is told at validate,
never silently ignored: the stack would otherwise run with a value the operator did not set. The seed's
container names (`seed_container_names`), like any stack's name_prefix and data-volume names, are claimed by one
stack per Docker engine only (`name_claims`).
"""

from pathlib import Path

from components.core.envfiles import Variable
from components.core.errors import ConfigError
from components.model.settings import DockerHost
from components.stack.stackconfig import read_stack_config

CLICKHOUSE_URL = (
    "the gateway's TENSORZERO_CLICKHOUSE_URL, built from clickhouse.user, the password clickhouse.password_var "
    "names and clickhouse.database"
)
# Seed name -> where the stack takes that value from.
SEED_VARIABLES = {
    "TENSORZERO_CLICKHOUSE_USER": "clickhouse.user in the stack file",
    "TENSORZERO_CLICKHOUSE_URL": CLICKHOUSE_URL,
    "TENSORZERO_OBS_CLICKHOUSE_URL": CLICKHOUSE_URL,
    "TENSORZERO_OBS_CLICKHOUSE_DB": "clickhouse.database in the stack file",
    "TENSORZERO_OBS_CLICKHOUSE_USER": "clickhouse.user in the stack file",
    "TENSORZERO_OBS_CLICKHOUSE_PASSWORD": "the variable clickhouse.password_var names",
    "TENSORZERO_GATEWAY_URL": "the endpoint rule: the UI is given the gateway's address by the stack",
    "TENSORZERO_BASE_URL": "PMOVES's callers, not the stack: the stack publishes the gateway at edge.port or "
    "gateway.port",
}


def strings_in(value) -> set[str]:
    """Every string inside a dumped model (mappings, lists): the variable names its settings hold."""
    if isinstance(value, str):
        return {value}
    if isinstance(value, dict):
        return set().union(*map(strings_in, value.values())) if value else set()
    if isinstance(value, (list, tuple)):
        return set().union(*map(strings_in, value)) if value else set()
    return set()


def seed_variable_notices(spec, layers: dict[str, Variable], read_by_catalog: set[str]) -> list[str]:
    """A notice for each seed variable set in an env layer that no stack-file key (a `*_var`) and no catalog
    provider names."""
    named = strings_in(spec.model_dump(mode="json")) | read_by_catalog
    return [
        f"{layers[name].source}: {name} is set, but nothing in this stack reads it; the stack takes that value "
        f"from {where}"
        for name, where in SEED_VARIABLES.items()
        if name in layers and name not in named
    ]


def name_claims(project_dir: Path, stack: str, spec) -> list[tuple[str, str]]:
    """(key, problem) when another stack file of the project claims this stack's Docker names on one of its
    engines: the seed's container names, or the same name_prefix (its containers and network) or volume prefix
    (its data volumes, which two stacks would then share). The second `pulumi up` would fail on a name the first
    holds, or, for a volume, quietly write into the other stack's data."""
    if spec.kubernetes is not None:
        return []
    engines = {host.engine: host.url for host in spec.hosts.values()}
    volumes = spec.data_volume_prefix
    problems = []
    for path in sorted((project_dir / "stacks").glob("Pulumi.*.yaml")):
        other = path.name.removeprefix("Pulumi.").removesuffix(".yaml")
        if other == stack:
            continue
        try:
            raw, _ = read_stack_config(project_dir, other)
            hosts = None if raw.get("kubernetes") else raw.get("hosts") or {"main": {}}
            others = {DockerHost.model_validate(host).engine for host in hosts.values()} if hosts else set()
        except (ConfigError, ValueError, AttributeError):
            continue  # that stack's own validate names its problems
        if not (shared := ", ".join(sorted(engines[engine] for engine in engines.keys() & others))):
            continue
        # As the model reads it: YAML's true, or the Pulumi CLI's text "true".
        if spec.seed_container_names and str(raw.get("seed_container_names")).lower() == "true":
            message = (
                f"stack '{other}' also carries the seed's container names on {shared}: one stack per Docker engine may"
            )
            problems.append(("seed_container_names", message))
        if raw.get("name_prefix") == spec.name_prefix:
            message = f"stack '{other}' uses the same name_prefix on {shared}: its containers and network are these"
            problems.append(("name_prefix", message))
        elif (raw.get("volume_prefix") or raw.get("name_prefix")) == volumes:
            message = f"stack '{other}' names its data volumes '{volumes}-...' too on {shared}: they would share data"
            problems.append((spec.data_volume_prefix_key, message))
    return problems
