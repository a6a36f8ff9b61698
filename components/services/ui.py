"""The TensorZero UI: reads everything through the gateway."""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from pydantic import Field

from components.core.envfiles import Variable
from components.core.plans import Hardening, Monitoring, ServicePlan
from components.core.types import ImageRef, Port, image_tag
from components.model.environment import ServiceDefinition
from components.model.settings import PUBLISHED_PORT, ServiceSpec
from components.services import gateway

if TYPE_CHECKING:
    from components.model.context import Context

PORT = 4000
HEALTH_PATH = "/health"  # 200 without asking the gateway
HEALTHCHECK = ("wget", "--spider", "--tries", "1", f"http://localhost:{PORT}{HEALTH_PATH}")
USER = 1001  # the image's `ui` (its Dockerfile's `useradd` on a node image, whose `node` user is 1000)


class UiSpec(ServiceSpec):
    enabled: bool = Field(True, description="Deploy the TensorZero UI.")
    image: ImageRef = Field("tensorzero/ui:2026.6.0", description="Pinned UI image; same tag as the gateway.")
    port: Optional[Port] = Field(PORT, description=PUBLISHED_PORT)


def plan(ctx: Context) -> ServicePlan:
    url = ctx.reach(gateway.SERVICE).url
    # Its image's own non-root user, by UID on both targets: a cluster's "restricted" asks for one.
    return ServicePlan(
        env=(Variable("TENSORZERO_GATEWAY_URL", url, "built from the gateway's placement", False),),
        healthcheck=HEALTHCHECK,
        waits_for=(gateway.SERVICE.role,),
        image_tools=frozenset({"wget"}),
        hardening=Hardening(user=USER),
    )


def checks(spec) -> list[tuple[str, str]]:
    ours, theirs = image_tag(spec.ui.image), image_tag(spec.gateway.image)
    if ours == theirs:
        return []
    return [
        ("ui.image", f"tag '{ours}' differs from gateway.image tag '{theirs}'; gateway and UI are released together")
    ]


SERVICE = ServiceDefinition(
    role="ui",
    component="Ui",
    plan=plan,
    description="The TensorZero UI.",
    spec=UiSpec,
    container="tensorzero-ui",
    alias="tensorzero-ui",
    port=PORT,
    checks=checks,
    monitoring=lambda spec: Monitoring(probe=HEALTH_PATH),
)
