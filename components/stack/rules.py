"""The rules that hold across services, each a list of (stack-file key, problem): read by the loader."""

import ipaddress
from urllib.parse import urlsplit

from components.catalog.format import ENV_PREFIX, Catalog
from components.catalog.native_tables import MODEL_TABLES
from components.catalog.translation import Translation
from components.core.errors import Problem
from components.core.names import DOCKER_RESERVED_NETWORKS
from components.core.types import image_tag
from components.core.urls import PRIVATE_HOSTS, is_loopback_host, is_private_url, shown_host
from components.model.environment import EnvironmentBase, ServiceDefinition, ServiceRef
from components.model.settings import Tier, can_bind


def host_problems(spec: EnvironmentBase) -> list[tuple[str, str]]:
    """(key, problem) of every deployed service placed on a host `hosts` does not name; plans need none."""
    if spec.kubernetes is not None:
        return []  # one cluster: `hosts` and each section's `host` are not read
    return [
        (f"{spec.key(service)}.host", f"'{host}' is not one of hosts ({', '.join(sorted(spec.hosts))})")
        for service in spec.deployed_services
        if service.spec and (host := service.placement(spec, service).host) not in spec.hosts
    ]


def overlaps(a: str, b: str) -> bool:
    """Two bind addresses that would both take a port: the same one, or either one every address."""
    return a == b or ipaddress.ip_address(a).is_unspecified or ipaddress.ip_address(b).is_unspecified


def placement_problems(spec: EnvironmentBase) -> list[tuple[str, str]]:
    """(key, problem) of every rule that holds across services: hosts, host ports, fronts, images, each
    service's own cross-field checks. Reachability is checked as the plans ask for addresses (planner.py)."""
    problems = host_problems(spec)
    if problems:
        return problems  # the rules below need every host to exist
    deployed = spec.deployed_services
    # (host, port) -> (address, owner) of each `port` setting publishing it there.
    seen: dict[tuple[str, int], list[tuple[str, ServiceRef]]] = {}
    for service in deployed:
        placement = spec.placement(service)
        for published in placement.ports:
            where, owner = (placement.host, published.external), published.origin or service
            # One host port on two distinct addresses (the edge's loopback and outside faces) is no clash.
            clash = [first for ip, first in seen.get(where, []) if overlaps(ip, published.ip)]
            if clash:
                problems.append(_clash(spec, clash[0], owner, published.external, placement.host))
            seen.setdefault(where, []).append((published.ip, owner))
    for service in deployed:
        for front in spec.fronts_served(service):
            host, fronted_host = spec.placement(service).host, spec.placement(front.role).host
            if host != fronted_host:
                problems.append(
                    (
                        f"{spec.key(service)}.host",
                        f"'{host}' must be the {front.role}'s host '{fronted_host}'; "
                        f"the {service.role} reaches the {front.role} on that host's network",
                    )
                )
        problems += joined_network_problems(spec, service)
        problems += unpublished_bind_problems(spec, service)
        problems += service.checks(spec)
        if spec.tier != Tier.dev and service.spec and image_tag(spec.section(service).image) == "latest":
            image = spec.section(service).image
            problems.append((f"{spec.key(service)}.image", f"'{image}' uses 'latest', refused in {spec.tier.value}"))
    return problems + clear_text_problems(spec)


def clear_text_problems(spec: EnvironmentBase) -> list[tuple[str, str]]:
    """Nothing a login or data crosses goes in the clear beyond loopback outside dev, and nothing answers on a
    shared network without the login its front puts before it."""
    problems = []
    on_docker = spec.kubernetes is None  # a cluster refuses every Docker network (targets/preflight.py)
    if on_docker and spec.deployed("ui") and spec.deployed("edge") and spec.edge.serve_ui and spec.ui.networks:
        problems.append(
            (
                "ui.networks",
                f"the UI would answer on {', '.join(spec.ui.networks)} without the login the edge puts in front of "
                "it: leave ui.networks empty; callers there use the edge's UI port, with its login",
            )
        )
    if spec.tier == Tier.dev:
        return problems
    external = spec.clickhouse.external
    if external is not None and not external.secure and not is_loopback_host(external.host):
        problems.append(
            (
                "clickhouse.external.secure",
                f"false sends ClickHouse's password and every inference in the clear to {external.host}; "
                f"set it true (TLS: ports 8443 and 9440) in {spec.tier.value}",
            )
        )
    offsite = spec.backup.offsite if spec.deployed("backup") else None
    if offsite is not None and (why := in_clear(offsite.url, spec.tier, "every backup and its S3 access key")):
        problems.append(("backup.offsite.url", why))
    for name, host in spec.hosts.items() if on_docker else ():
        engine = urlsplit(host.url)
        if engine.scheme == "tcp" and not is_loopback_host(engine.hostname or ""):
            # The provider has no TLS for tcp://: whoever reaches the port runs any container as root there.
            problems.append(
                (
                    f"hosts.{name}.url",
                    f"{host.url} is Docker's API without TLS or login beyond loopback, refused in {spec.tier.value}: "
                    f"use ssh://[user@]{shown_host(engine.hostname or '')} (the engine's socket over SSH)",
                )
            )
    ingress = spec.kubernetes.ingress if spec.kubernetes is not None else None
    if ingress is not None and not ingress.tls_secret:
        problems.append(
            (
                "kubernetes.ingress.tls_secret",
                f"the ingress would serve callers' keys and the UI's login in plain HTTP in {spec.tier.value}: "
                "name the kubernetes.io/tls Secret of its hosts",
            )
        )
    return problems


def in_clear(url: str, tier: Tier, sends: str) -> str:
    """Why `url` may not carry `sends` in tier `tier`; "" when it may: https, dev, or plain http to a private host."""
    if tier == Tier.dev or not url.lower().startswith("http://") or is_private_url(url):
        return ""
    host = urlsplit(url).hostname
    return (
        f"plain http to {host}, a public host, would send {sends} in the clear, refused in {tier.value}: use "
        f"https://; plain http only to a private host ({PRIVATE_HOSTS})"
    )


USERINFO_IN_RENDERED = (
    "a credential in clear in the rendered tensorzero.toml and the plan; give the key by api_key_location "
    '(api_key = "env::NAME") and drop it from the URL'
)


def _has_userinfo(url: str) -> bool:
    try:
        return "@" in urlsplit(url).netloc
    except ValueError:
        return False


def provider_problems(tier: Tier, catalog: Catalog, translation: Translation) -> list[Problem]:
    """No provider's key travels in plain http to a public host beyond dev, as the stack renders its URL (`${NAME}`
    filled in): seed-format providers and native tables alike."""
    problems = []
    for routed in translation.models + translation.embedding_models:
        entry = catalog.models[routed.name]  # a seed-format model: its blocks follow its chain, fallbacks last
        chain = [entry] + [catalog.models[name] for name in entry.fallbacks]
        for link, block in zip(chain, routed.providers, strict=True):
            location, url = block.fields.get("api_key_location", ""), block.fields.get("api_base", "")
            why = in_clear(url, tier, f"its key ({location.removeprefix(ENV_PREFIX)})")
            why = why if location.startswith(ENV_PREFIX) else ""
            if _has_userinfo(url):
                # A literal one is refused as the catalog loads; this one came in through a `${NAME}`.
                why = f"holds user:password@ once its ${{NAME}} values are filled in: {USERINFO_IN_RENDERED}"
            if why:
                where = catalog.sources.get(f"providers.{link.provider}", catalog.sources[f"models.{routed.name}"])
                problem = Problem(where, f"providers.{link.provider}.base_url", why)
                problems += [problem] if problem not in problems else []  # one line for a provider many models use
    for table in MODEL_TABLES:
        for name, body in translation.native.get(table, {}).items():
            blocks = body.get("providers") if isinstance(body, dict) else None
            for provider, block in (blocks if isinstance(blocks, dict) else {}).items():
                if not isinstance(block, dict) or not isinstance(block.get("api_base"), str):
                    continue
                # Absent, TensorZero reads its type's own variable (OPENAI_API_KEY): a key is sent unless "none".
                location = str(block.get("api_key_location", "the default variable of its type"))
                sends = f"its key ({location.removeprefix(ENV_PREFIX)})"
                why = location != "none" and in_clear(block["api_base"], tier, sends)
                if why:
                    key = f"{table}.{name}.providers.{provider}.api_base"
                    problems.append(Problem(catalog.sources[f"{table}.{name}"], key, why))
    return problems


def _is_default(spec: EnvironmentBase, service: ServiceRef) -> bool:
    """Whether the service's `port` setting still holds its section's default: not what an edit changed."""
    section = spec.section(service)
    field = type(section).model_fields.get("port")
    return field is not None and getattr(section, "port", None) == field.default


def _clash(spec: EnvironmentBase, first: ServiceRef, second: ServiceRef, port: int, host: str) -> tuple[str, str]:
    """Two settings publishing one port: blamed on the one that left its default (the edit), naming both."""
    if _is_default(spec, second) and not _is_default(spec, first):
        first, second = second, first
    return (
        f"{spec.key(second)}.port",
        f"{port} is already published by {spec.key(first)}.port on host '{host}'; give one of them another port",
    )


def unpublished_bind_problems(spec: EnvironmentBase, service: ServiceDefinition) -> list[tuple[str, str]]:
    """A service's own bind_address where it publishes no port would be silently ignored: said, with where its
    port is published instead (by the front that took it) and the key that moves it."""
    section = spec.section(service) if service.spec else None
    own = getattr(section, "bind_address", None)
    if own is None or spec.kubernetes is not None or spec.placement(service).ports:
        return []
    key = f"{spec.key(service)}.bind_address"
    for front_service, _ in spec.active_fronts(service):
        faces = [p for p in spec.placement(front_service).ports if p.origin == service.role]
        if faces:
            where = ", ".join(f"{face.ip}:{face.external}" for face in faces)
            return [
                (
                    key,
                    f"{own} has no effect: the {service.role} publishes no port of its own; the {front_service.role} "
                    f"publishes it on {where}: set {spec.key(front_service)}.bind_address instead",
                )
            ]
    return [(key, f"{own} has no effect: {spec.key(service)}.port is null, so the {service.role} publishes nothing")]


def joined_network_problems(spec: EnvironmentBase, service: ServiceDefinition) -> list[tuple[str, str]]:
    """A service joins only networks its host declares, each once, and never the stack's own."""
    if not service.spec or spec.kubernetes is not None:
        return []  # on a cluster, any network is refused with the other Docker-only settings (kubernetes_cluster.py)
    section, key = spec.section(service), f"{spec.key(service)}.networks"
    host = spec.placement(service).host  # a section without a host of its own runs on another's (backup's)
    declared = spec.hosts[host].networks if host in spec.hosts else []
    problems = []
    for name in sorted(set(section.networks)):
        if section.networks.count(name) > 1:
            problems.append((key, f"'{name}' is listed twice"))
        if name in DOCKER_RESERVED_NETWORKS:
            problems.append(
                (key, f"'{name}' is Docker's own network: a container beside the stack's network cannot join it")
            )
        elif name == spec.network_name:
            problems.append((key, f"'{name}' is the stack's own network; list only others"))
        elif name not in declared:
            listed = ", ".join(declared) or "none"
            problems.append(
                (
                    key,
                    f"'{name}' is not declared in hosts.{host}.networks ({listed}): the stack joins only "
                    "networks that exist on the service's host",
                )
            )
    return problems


def unbindable_notices(spec: EnvironmentBase, file: str) -> list[str]:
    """Bind addresses this machine does not hold, on a host whose Docker engine is this machine's (a unix socket):
    `make up` from here would fail as Docker publishes the first port there. Told, not refused: the stack files
    ship with addresses each operator sets (prod's edge.bind_address), and CI validates them elsewhere."""
    if spec.kubernetes is not None:
        return []
    told: dict[str, str] = {}
    for service in spec.deployed_services:
        placement = spec.placement(service)
        host = spec.hosts.get(placement.host)
        if host is None or not host.on_this_machine:
            continue
        own = service.spec and getattr(spec.section(service), "bind_address", None) is not None
        key = f"{spec.key(service)}.bind_address" if own else f"hosts.{placement.host}.bind_address"
        for address in sorted({port.ip for port in placement.ports}):
            if key not in told and not can_bind(address):
                told[key] = (
                    f"{file}: {key}: {address} is not an address of this machine, whose Docker engine ({host.url}) "
                    f"would publish {service.role}'s ports there: `make up` from here fails (Docker: cannot assign "
                    "requested address). Set it to the host's own address (`ip -brief address`): "
                    "docs/exposure.md"
                )
    return list(told.values())
