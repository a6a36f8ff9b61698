"""A guard in front of Ollama where other hosts reach it: Ollama has no authentication of its own.

On the GPU host, the gateway (on another host) must reach Ollama through a published port, and Docker's
published ports bypass host firewalls such as ufw. So Ollama itself is never published there: this guard (the
edge's OpenResty image, configured only by the file rendered here) takes its published port, on a private or
tailnet address, and lets through only the addresses in its allow-list (the gateway's host). Ollama's pull
one-shots still reach Ollama by its alias on the host's own network.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Optional

from pydantic import Field, field_validator

from components.core.plans import ServicePlan
from components.core.render import RenderedFile, render
from components.core.types import Identifier, ImageRef, InstanceName, Port
from components.model.environment import Front, ServiceDefinition
from components.model.settings import ServiceSpec
from components.services import ollama, openresty

if TYPE_CHECKING:
    from components.model.context import Context
    from components.model.environment import EnvironmentBase as Environment
    from components.model.resolved import ResolvedStack

PORT = ollama.PORT  # callers keep Ollama's port
HEALTH_PATH = "/guard/health"
CONFIG_PATH = "/etc/nginx/conf.d/default.conf"
HEALTHCHECK = openresty.healthcheck(PORT, HEALTH_PATH)
COMMAND = openresty.COMMAND
TIMEOUT_S = 600  # a long unstreamed generation
WIDEST_PRIVATE = {4: 8, 6: 7}  # prefix lengths of 10.0.0.0/8 and fc00::/7, the widest private networks


class OllamaGuardSpec(ServiceSpec):
    enabled: bool = Field(
        False, description="Put the allow-list guard in front of Ollama's published port (needed beyond loopback)."
    )
    image: ImageRef = Field(openresty.IMAGE, description="Pinned OpenResty image.")
    host: Identifier = Field("main", description="Key in `hosts`; must be the guarded Ollama's host.")
    ollama: Optional[InstanceName] = Field(
        None, description="The Ollama it guards: null, the stack's own; else a name in `ollama.instances`."
    )
    port: Optional[Port] = Field(
        None, description="Host port of its own; null takes ollama.port (Ollama then has none)."
    )
    allow: list[str] = Field(
        default_factory=list,
        description="Addresses or networks (CIDR) allowed through: the gateway's host, no network wider than a "
        "private one (/8, IPv6 /7). Everything else gets a 403.",
    )

    @field_validator("allow")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                network = ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"'{item}' is not an address or network (CIDR)") from None
            if network.prefixlen < WIDEST_PRIVATE[network.version]:
                # Wider than any private network: never the gateway's host, and a few such halves admit everything.
                raise ValueError(
                    f"'{item}' admits more addresses than any private network: list the gateway's host (its address "
                    "or network)"
                )
            try:
                ipaddress.ip_network(item, strict=True)
            except ValueError:
                # `10.0.0.7/24` reads as one host and admits 256: the operator says which was meant.
                raise ValueError(
                    f"'{item}' has host bits set: the network is {network}; write that, or the address alone"
                ) from None
        return value


def config_files(deployment: ResolvedStack, listen: str = str(PORT), ollama_address: str = "") -> list[RenderedFile]:
    spec = deployment.spec
    content = render(
        "ollama_guard/default.conf.j2",
        stack=deployment.stack,
        listen=listen,
        allow=spec.ollama_guard.allow,
        ollama=ollama_address or f"{ollama.ALIAS}:{ollama.PORT}",
        resolver=spec.dns_resolver,
        health_path=HEALTH_PATH,
        timeout_s=TIMEOUT_S,
    )
    return [RenderedFile("ollama_guard/conf.d/default.conf", "openresty-config", SERVICE.role, CONFIG_PATH, content)]


def guarded(spec: Environment) -> str:
    """The role of the Ollama the guard fronts (the stack's own while `ollama_guard.ollama` names none that exists)."""
    name = spec.ollama_guard.ollama
    return ollama.instance_role(name) if name in spec.ollama.instances else ollama.SERVICE.role


def unknown_instance(spec: Environment) -> list[tuple[str, str]]:
    name = spec.ollama_guard.ollama
    if name is None or name in spec.ollama.instances:
        return []
    known = ", ".join(spec.ollama.instances) or "none"
    return [("ollama_guard.ollama", f"'{name}' is not an entry of ollama.instances (it has: {known})")]


def plan(ctx: Context) -> ServicePlan:
    target = ctx.reach(guarded(ctx.spec))
    spec = ctx.spec.ollama_guard
    if not spec.allow:
        ctx.problem("ollama_guard.allow", "lists no address: nothing could reach Ollama through the guard")
    bind = ipaddress.ip_address(ctx.placement.bind)
    if bind.is_unspecified or bind.is_global:
        ctx.problem(
            "ollama_guard.bind_address",
            f"{bind} is {'every address' if bind.is_unspecified else 'a public address'}; bind the guard to the "
            "host's private or tailnet address",
        )
    # Hardening exception: OpenResty's master starts as root and its workers switch to `nobody`.
    return ServicePlan(
        command=COMMAND,
        files=tuple(config_files(ctx.deployment, ollama_address=f"{target.host}:{target.port}")),
        healthcheck=HEALTHCHECK,
        waits_for=(guarded(ctx.spec),),
        image_tools=openresty.TOOLS,
        authentication=f"allow-list {', '.join(spec.allow)}" if spec.allow else None,
    )


SERVICE = ServiceDefinition(
    role="ollama_guard",
    component="OllamaGuard",
    plan=plan,
    description="Allow-list guard in front of Ollama's published port, for callers on other hosts.",
    spec=OllamaGuardSpec,
    container="ollama-guard",
    alias="pmoves-ollama-guard",
    port=PORT,
    # Only the gateway's host gets through: the stack outputs name no Ollama URL for operators or the smoke suite.
    fronts=(Front(ollama.SERVICE.role, None, for_callers=False, chosen=guarded),),
    checks=unknown_instance,
)
