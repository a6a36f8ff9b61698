"""pmoves-tensorzero: the TensorZero stack of PMOVES.AI as Pulumi components, and its offline CLI."""
