"""Pulumi entry point: load this stack's environment, declare it, export its outputs."""

import pulumi

from components.core.errors import ConfigError
from components.stack.loader import read_pulumi_config
from components.targets.build import build
from components.targets.preflight import load

stack = pulumi.get_stack()
try:
    deployment = load(stack, read_config=lambda: read_pulumi_config(stack))
except ConfigError as error:
    # A clean, complete message and no resource declared: nothing is half-applied.
    raise pulumi.RunError(f"stack {stack} is not valid:\n{error}") from None

for name, value in build(deployment).outputs.items():
    pulumi.export(name, value)
