"""The seed's variables an operator carries over from PMOVES's compose env files, and where the stack takes
each one's value from instead. One set in an env layer that nothing of the stack reads is told at validate,
never silently ignored: the stack would otherwise run with a value the operator did not set.
"""

from components.core.envfiles import Variable

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


def _strings(value) -> set[str]:
    if isinstance(value, str):
        return {value}
    if isinstance(value, dict):
        return set().union(*map(_strings, value.values())) if value else set()
    if isinstance(value, (list, tuple)):
        return set().union(*map(_strings, value)) if value else set()
    return set()


def seed_variable_notices(spec, layers: dict[str, Variable], read_by_catalog: set[str]) -> list[str]:
    """A notice for each seed variable set in an env layer that no stack-file key (a `*_var`) and no catalog
    provider names."""
    named = _strings(spec.model_dump(mode="json")) | read_by_catalog
    return [
        f"{layers[name].source}: {name} is set, but nothing in this stack reads it; the stack takes that value "
        f"from {where}"
        for name, where in SEED_VARIABLES.items()
        if name in layers and name not in named
    ]
