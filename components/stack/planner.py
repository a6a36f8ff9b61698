"""From a resolved deployment to every service's plan: the registry walked once, every problem collected.

A service's `plan(ctx)` asks its context for what lies outside it: another service's address
(`ctx.reach`, which records the dependency and checks it can be reached where the spec placed both),
a credential named by a spec key (`ctx.credential`, checked for presence and, outside dev, for the seed's
defaults), how every service is watched (`ctx.monitored`) and the plans of the others (`ctx.others`).
"""

import ipaddress
from dataclasses import replace
from functools import reduce
from pathlib import PurePosixPath
from typing import Optional

from components.catalog.translation import KeyUse
from components.core.envfiles import Variable, looks_generated
from components.core.errors import ConfigError, Problem
from components.core.names import COMPOSE_VOLUMES, PEM_BEGIN, SEED_CONTAINERS
from components.core.plans import Endpoint, Monitoring, Placement, ServicePlan, Volume
from components.model.environment import ServiceDefinition, ServiceRef, Unreachable, role_of
from components.model.resolved import ResolvedStack
from components.model.settings import (
    LOOPBACK,
    SEED_DEFAULT_CREDENTIALS,
    Tier,
    is_public_credential,
    is_single_line,
    key_weakness,
    password_weakness,
)
from components.stack.seed import strings_in


class Context:
    """The planner's side of model/context.py's Context: what one service's plan may read."""

    def __init__(self, planner: "Planner", service: ServiceDefinition):
        self._planner = planner
        self.service = service
        self.deployment: ResolvedStack = planner.deployment
        self.spec = planner.deployment.spec
        self.role = service.role
        self.reached: list[tuple[str, Optional[int]]] = []  # (role, internal port or None: its service port)
        self.notices: list[str] = []

    @property
    def section(self):
        return self.spec.section(self.role)

    @property
    def placement(self) -> Placement:
        return self.spec.placement(self.role)

    def deployed(self, service: ServiceRef) -> bool:
        return self.spec.deployed(service)

    def reach(self, service: ServiceRef, port: Optional[int] = None, switch: Optional[str] = None) -> Endpoint:
        role = role_of(service)
        if (role, port) not in self.reached:
            self.reached.append((role, port))
        here = self.placement.host
        try:
            return self.spec.endpoint(role, seen_from=here, port=port)
        except Unreachable as error:
            there = self.spec.placement(role)
            if switch:
                self._planner.problem(
                    switch,
                    f"port {port} of {role} is internal to host '{there.host}' and {self.role} runs on host "
                    f"'{here}'; place them together or set {switch} false",
                )
            else:
                self._planner.problem(error.key, f"{self.role} runs on host '{here}' and {error.message}")
            return Endpoint(there.alias or role, port or there.port or 0)

    def problem(self, key: str, message: str, file: Optional[str] = None, missing: bool = False) -> None:
        """A problem this plan found, reported with every other one (`file` defaults to the stack file);
        `missing`: a credential nobody supplies yet."""
        self._planner.problem(key, message, file, missing)

    def origin(self, key: str) -> str:
        value = self.spec
        for part in key.split("."):
            if part not in value.model_fields_set:
                return f"default of {key}"
            value = getattr(value, part)
        return f"{self.deployment.stack_file}: {key}"

    def from_spec(self, name: str, key: str) -> Variable:
        value = self.spec
        for part in key.split("."):
            value = getattr(value, part)
        return Variable(name, str(value), self.origin(key), False)

    def notice(self, message: str) -> None:
        self.notices.append(message)

    def credential(self, key: str) -> Variable:
        role, *path = key.split(".")
        return self._own(key, self._planner.credential(key, reduce(getattr, path, self.spec.section(role))))

    def access_key(self, key: str, name: str) -> Variable:
        return self._own(key, self._planner.credential(key, name, is_key=True))

    def _own(self, key: str, found: Variable) -> Variable:
        """A credential of the service's own section is what it asks callers for (Grafana's admin password, the
        edge's keys and UI password, ClickHouse's users'): one with a public value is noted for exposure_problems."""
        if key.startswith(f"{self.spec.key(self.role)}.") and is_public_credential(found.value):
            self._planner.public_logins.setdefault(self.role, []).append((key, found.name))
        return found

    def monitored(self) -> list[tuple[ServiceDefinition, Monitoring]]:
        return [(s, s.monitoring(self.spec)) for s in self.spec.deployed_services]

    def others(self) -> list[ServicePlan]:
        return [self._planner.plan_of(s) for s in self.spec.deployed_services if s.role != self.role]


class Planner:
    def __init__(self, deployment: ResolvedStack):
        self.deployment = deployment
        self.plans: dict[str, ServicePlan] = {}
        self.problems: list[Problem] = []
        self.reached: dict[str, list[tuple[str, Optional[int]]]] = {}
        self._planning: list[str] = []
        self._credentials: dict[str, tuple[str, str]] = {}  # value -> (spec key, variable) that first held it
        self._adopted: dict[str, str] = {}  # existing volume name -> the spec key that adopts it
        self.public_logins: dict[str, list[tuple[str, str]]] = {}  # role -> (spec key, variable) of a public value

    def problem(self, key: str, message: str, file: Optional[str] = None, missing: bool = False) -> None:
        found = Problem(file or self.deployment.stack_file, key, message, missing)
        if found not in self.problems:
            self.problems.append(found)

    def credential(self, key: str, name: str, is_key: bool = False) -> Variable:
        deployment = self.deployment
        if why := deployment.unsupplied(name):
            self.problem(key, f"{name} is needed, {why}", missing=True)
            return Variable(name, "", f"{key}: {why.removeprefix('but ')}", True, missing=True)
        found = deployment.variable(name)
        if is_key and not is_single_line(found.value):
            # A header value cannot hold it: no caller could ever send it, in any tier.
            self.problem(key, f"{name} holds a line break or control character; a key is one line", file=found.source)
        elif is_key and found.value != found.value.strip():
            # Callers send the key as written elsewhere, without the stray blank: it would never match.
            self.problem(key, f"{name} begins or ends with a space or tab; remove it", file=found.source)
        if deployment.spec.tier != Tier.dev:
            self._check_strength(key, found, is_key)
        return Variable(name, found.value, found.source, True)

    def _check_strength(self, key: str, found: Variable, is_key: bool) -> None:
        """Outside dev: not a default, long enough (a key: and unpredictable enough), and not the value of
        another credential (a key shared by two callers included)."""
        tier = self.deployment.spec.tier.value
        if found.value.lower() in SEED_DEFAULT_CREDENTIALS:
            self.problem(found.name, f"the default password '{found.value}' is refused in {tier}", file=found.source)
        elif is_key and (weak := key_weakness(found.value)):
            self.problem(key, f"{found.name}: {weak} in {tier}", file=found.source)
        elif not is_key and not found.value.startswith(PEM_BEGIN) and (weak := password_weakness(found.value)):
            self.problem(found.name, f"{weak} in {tier}", file=found.source)
        first = self._credentials.setdefault(found.value, (key, found.name))
        if first[0] != key:
            self.problem(
                key,
                f"{found.name} holds the same value as {first[1]} ({first[0]}); each credential is its own in {tier}",
            )

    def check_provider_keys(self) -> None:
        """Once every credential is checked (beyond dev): none is a provider key of the catalog, by variable or value,
        or a caller of the edge would hold the provider's key. Providers may share one key with each other (several
        OpenAI-compatible providers behind one proxy take the proxy's key): only the stack's own credentials count."""
        deployment = self.deployment
        tier = deployment.spec.tier.value
        first_uses: dict[str, KeyUse] = {}  # one line a variable, naming the first model that needs it
        for use in deployment.translation.key_uses:
            first_uses.setdefault(use.variable, use)
        for use in first_uses.values():
            if deployment.unsupplied(use.variable):
                continue  # its absence is reported by the gateway's plan
            value = deployment.variable(use.variable).value
            for held, (key, name) in self._credentials.items():
                if name == use.variable or held == value:
                    same = "is" if name == use.variable else f"holds the same value as {use.variable}, which is"
                    self.problem(
                        key,
                        f"{name} {same} the key of provider '{use.provider}' ({use.table_key}); each credential "
                        f"is its own in {tier}",
                    )

    def listed_variables(self, service: ServiceDefinition, managed: tuple[Variable, ...]) -> tuple[Variable, ...]:
        """The layered variables a service asks for by name in `extra_env`; never one its plan sets (`managed`):
        Docker keeps the last of two, so a listed copy would replace a checked password or a managed URL."""
        found = []
        ours = {variable.name for variable in managed}
        key = self.deployment.spec.key(service)
        for name in self.deployment.spec.section(service).extra_env:
            if name in ours:
                self.problem(f"{key}.extra_env", f"{name} is set by the stack itself; extra_env adds other variables")
            elif why := self.deployment.unsupplied(name):
                self.problem(f"{key}.extra_env", f"{name} is listed, {why}", missing=True)
                found.append(Variable(name, "", f"{key}.extra_env: {why.removeprefix('but ')}", True, True))
            else:
                # Passed by a name the operator chose: a value that looks generated is masked as a credential.
                variable = self.deployment.variable(name)
                found.append(replace(variable, secret=True) if looks_generated(variable.value) else variable)
        return tuple(found)

    def adopted_volumes(self, service: ServiceDefinition, volumes: tuple[Volume, ...]) -> tuple[Volume, ...]:
        """The service's volumes, those its section adopts replaced by the existing volumes it names."""
        spec = self.deployment.spec
        adopt = spec.section(service).adopt_volumes if service.spec else {}
        own = {volume.name for volume in volumes}
        key = f"{spec.key(service)}.adopt_volumes"
        for name in sorted(set(adopt) - own):
            has = ", ".join(sorted(own)) or "none"
            self.problem(f"{key}.{name}", f"{service.role} has no volume '{name}' (its volumes: {has})")
        found = []
        for volume in volumes:
            if volume.name not in adopt:
                found.append(volume)
                continue
            existing, where = adopt[volume.name], f"{key}.{volume.name}"
            if existing.name in self._adopted:
                self.problem(where, f"'{existing.name}' is adopted by {self._adopted[existing.name]} already")
            self._adopted.setdefault(existing.name, where)
            found.append(replace(volume, docker_name=existing.name, mount=existing.mount or volume.mount, adopted=True))
        return tuple(found)

    def check_adoptions(self) -> None:
        """Once every plan is known: no adopted volume is one the stack itself creates."""
        spec = self.deployment.spec
        prefix = spec.data_volume_prefix  # the prefix the target names volumes with
        for plan in self.plans.values():
            for volume in plan.volumes:
                name = volume.docker_name_in(prefix)
                if not volume.adopted and name in self._adopted:
                    self.problem(self._adopted[name], f"'{name}' is the {plan.role}'s own volume in this stack")
                elif not volume.adopted and name in COMPOSE_VOLUMES:
                    # Silently reusing it would mount PMOVES's data as if new, and `destroy` could delete it.
                    key = spec.data_volume_prefix_key
                    self.problem(
                        key,
                        f"'{prefix}' names the {plan.role}'s volume '{name}', the volume PMOVES's compose keeps its "
                        f"data in: adopt it ({spec.key(plan.role)}.adopt_volumes, name: {name}) or change {key}",
                    )

    def check_container_names(self) -> None:
        """Once every plan is known: no two containers (one-shots included) of one host share a name, which an
        instance's name could otherwise make (`ollama.instances.guard` beside ollama_guard's container)."""
        spec = self.deployment.spec
        seen: dict[tuple[str, str], str] = {}
        for plan in self.plans.values():
            names = [plan.docker_name] if plan.runs_container else []
            for name in names + [shot.docker_name for shot in plan.one_shots]:
                where = (plan.placement.host, name)
                other = seen.setdefault(where, plan.role)
                if other != plan.role:
                    message = f"its container {name} is also that of {spec.key(other)} on host '{where[0]}'"
                    self.problem(spec.key(plan.role), message)

    def check_mount_points(self) -> None:
        """Once every plan is known: no two mounts of one container share a path, which Docker refuses
        ("Duplicate mount point") and an adopted volume's `mount` could otherwise make."""
        spec = self.deployment.spec
        for plan in self.plans.values():
            key = spec.key(plan.role)
            seen: dict[str, tuple[str, str]] = {}
            mounts = [
                (v.mount, f"volume '{v.name}'", f"{key}.adopt_volumes.{v.name}.mount" if v.adopted else key)
                for v in plan.volumes
            ]
            mounts += [(m.mount, f"the {m.owner}'s volume '{m.volume}'", key) for m in plan.mounts]
            mounts += [(p.target, p.key, p.key) for p in plan.host_paths]
            for path, what, where in mounts:
                other, other_where = seen.setdefault(path.rstrip("/") or "/", (what, where))
                if other != what:
                    named = where if where != key else other_where  # the setting that moved a mount, if one did
                    self.problem(named, f"{other} and {what} are both mounted at {path}: Docker refuses that")
            # Over the service's own files, the volume would hold its config, and its data the container's layer.
            files = [PurePosixPath(f.mount) for f in (*plan.files, *plan.secret_files)]
            for volume in (v for v in plan.volumes if v.adopted):
                if over := next((f for f in files if PurePosixPath(volume.mount) in f.parents), None):
                    self.problem(
                        f"{key}.adopt_volumes.{volume.name}.mount",
                        f"{volume.mount} holds the stack's own {over}: the volume would hide it, and the data would "
                        "go to the container's layer (lost when it is replaced); mount it where the data is kept",
                    )

    def plan_of(self, service: ServiceDefinition) -> ServicePlan:
        if service.role in self.plans:
            return self.plans[service.role]
        if service.role in self._planning:
            raise RuntimeError(f"the plans of {' -> '.join(self._planning + [service.role])} need each other")
        self._planning.append(service.role)
        context = Context(self, service)
        self.plans[service.role] = self._complete(service, context, service.plan(context))
        self.reached[service.role] = context.reached
        self._planning.pop()
        return self.plans[service.role]

    def _complete(self, service: ServiceDefinition, context: Context, plan: ServicePlan) -> ServicePlan:
        """What every service has the same way, from its definition and section."""
        spec = self.deployment.spec
        section = spec.section(service) if service.spec else None
        return replace(
            plan,
            role=service.role,
            component=service.component,
            placement=context.placement,
            image=section.image if section and service.container else None,
            docker_name=service.container,
            # A rolling container's name changes on every replacement: it cannot keep the seed's.
            seed_name=SEED_CONTAINERS.get(service.role) if spec.seed_container_names and not plan.rolling else None,
            memory_mb=section.memory_mb if section else None,
            monitoring=service.monitoring(spec),
            env=plan.env + (self.listed_variables(service, plan.env) if section else ()),
            waits_for=tuple(role for role in plan.waits_for if spec.deployed(role)),
            reaches=tuple(dict.fromkeys(role for role, _ in context.reached)),
            networks=tuple(section.networks) if section and service.container else (),
            volumes=self.adopted_volumes(service, plan.volumes),
            notices=plan.notices + tuple(context.notices),
        )


def emptied_note(planner: Planner, role: str) -> str:
    """The variables the service's section names that a later, empty line of their layer emptied."""
    return planner.deployment.emptied_note(strings_in(planner.deployment.spec.section(role).model_dump(mode="json")))


def shared_front_problem(planner: Planner, role: str, planned: ServicePlan) -> None:
    """Beyond dev, a front (the edge) on PMOVES's shared networks asks its callers who they are: every service
    there reaches what it fronts (the gateway, the UI) through it. Dev's shared networks are a laptop's."""
    spec = planner.deployment.spec
    fronts = spec.fronts_served(role)
    if spec.tier == Tier.dev or not planned.networks or not fronts or planned.authentication:
        return
    key = spec.key(role)
    served = ", ".join(sorted({front.role for front in fronts}))
    planner.problem(
        f"{key}.networks",
        f"{role} joins {', '.join(planned.networks)} but asks no caller for a key"
        f"{emptied_note(planner, role) if planned.awaiting_credentials else ''}: every service there would reach "
        f"{served} through it; {spec.definition(role).exposure_fix or 'authenticate its callers'}, or take it off "
        f"them ({key}.networks: [])",
        missing=planned.awaiting_credentials,
    )


def exposure_problems(planner: Planner) -> None:
    """Beyond loopback, every published port must belong to a service that asks callers who they are, with a
    credential of the operator's own: in every tier, since dev's LAN can reach it too."""
    spec = planner.deployment.spec
    for role, planned in planner.plans.items():
        shared_front_problem(planner, role, planned)
        exposed = [p for p in planned.placement.ports if not ipaddress.ip_address(p.ip).is_loopback]
        if not exposed:
            continue
        key, where = spec.key(role), ", ".join(f"{p.ip}:{p.external}" for p in exposed)
        loopback = f"publish it on loopback ({key}.bind_address: {LOOPBACK})"
        if not planned.authentication:
            note = emptied_note(planner, role) if planned.awaiting_credentials else ""
            fix = spec.definition(role).exposure_fix or f"{role} does not authenticate callers"
            planner.problem(
                f"{key}.bind_address",
                f"{role} would be published on {where} without authentication{note}; {fix}, or {loopback} or not "
                f"at all ({key}.port: null)",
                missing=planned.awaiting_credentials,
            )
        for login, name in planner.public_logins.get(role, []):
            planner.problem(
                f"{key}.bind_address",
                f"{role} would be published on {where} with {name} ({login}) at the template's public value: anyone "
                f"who reaches it logs in; set your own (`openssl rand -hex 32`) or {loopback}",
            )


def plan_services(deployment: ResolvedStack) -> tuple[dict[str, ServicePlan], tuple[Problem, ...]]:
    """Every deployed service's plan, in registry (start) order, and the credentials nobody supplies yet when the
    deployment allows them; raises ConfigError naming every other problem (every problem, without allowance)."""
    planner = Planner(deployment)
    deployed = deployment.spec.deployed_services
    for service in deployed:
        planner.plan_of(service)
    exposure_problems(planner)
    planner.check_provider_keys()
    planner.check_adoptions()
    planner.check_container_names()
    planner.check_mount_points()
    missing = tuple(p for p in planner.problems if p.missing) if deployment.allow_missing else ()
    if blocking := [p for p in planner.problems if p not in missing]:
        raise ConfigError(blocking)
    callers: dict[str, set[tuple[str, int]]] = {service.role: set() for service in deployed}
    for consumer, reached in planner.reached.items():
        for role, port in reached:
            if role in callers:
                callers[role].add((consumer, port or planner.plans[role].placement.port))
    plans = {s.role: replace(planner.plans[s.role], callers=tuple(sorted(callers[s.role]))) for s in deployed}
    return plans, missing
