"""The rules that hold across services, each a list of (stack-file key, problem): read by the loader."""

import ipaddress

from components.core.types import image_tag
from components.model.environment import EnvironmentBase, ServiceDefinition
from components.model.settings import Tier


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
    seen: dict[tuple[str, int], list[tuple[str, str]]] = {}
    for service in deployed:
        placement = spec.placement(service)
        for published in placement.ports:
            where = (placement.host, published.external)
            # One host port on two distinct addresses (the edge's loopback and outside faces) is no clash.
            clash = [role for ip, role in seen.get(where, []) if overlaps(ip, published.ip)]
            if clash:
                problems.append(
                    (
                        f"{spec.key(published.origin or service)}.port",
                        f"{published.external} is already published by {clash[0]} on host '{placement.host}'",
                    )
                )
            seen.setdefault(where, []).append((published.ip, service.role))
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
        problems += service.checks(spec)
        if spec.tier != Tier.dev and service.spec and image_tag(spec.section(service).image) == "latest":
            image = spec.section(service).image
            problems.append((f"{spec.key(service)}.image", f"'{image}' uses 'latest', refused in {spec.tier.value}"))
    return problems


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
        if name == spec.network_name:
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
