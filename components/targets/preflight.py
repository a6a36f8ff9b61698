"""A stack loaded and checked against its target: what the target cannot run is refused before any resource.

`validate`, `plan` and `pulumi up` (__main__.py) load stacks through here; stack/loader.py knows no target.
"""

from components.stack.deployment import Deployment
from components.stack.loader import load as load_stack


def load(stack: str, **options) -> Deployment:
    """stack/loader.py's `load`, then the target's own refusals; raises ConfigError naming every problem."""
    deployment = load_stack(stack, **options)
    refuse_what_the_target_cannot_run(deployment)
    return deployment


def refuse_what_the_target_cannot_run(deployment: Deployment) -> None:
    if deployment.spec.kubernetes is not None:
        # Kubernetes' modules are imported for cluster stacks only: a Docker stack's commands stay light.
        from components.targets.kubernetes.cluster import manifests

        manifests(deployment)
