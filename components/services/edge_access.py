"""Who may use the edge: per-caller keys (with optional rate limits), the UI's login, and TLS.

Every credential reaches the edge's container as a secret: keys and the UI password as environment
variables, a TLS key as a secret upload (or a file on the Docker host). What the edge's Lua module is told
(settings.json) names callers and variables only, never a value.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Annotated, Any, Optional, Union

from pydantic import Discriminator, Field, Tag, field_validator, model_validator

from components.core.envfiles import Variable, is_placeholder
from components.core.errors import MAPPING_BRANCH, NAME_BRANCH
from components.core.plans import HostPath, Secret, SecretFile
from components.core.types import EnvName, FilePath, Identifier, StrictModel, TlsTerminator
from components.model.settings import can_bind

if TYPE_CHECKING:
    from components.model.context import Context
    from components.model.resolved import ResolvedStack

KEY_ENV_PREFIX = "PMOVES_EDGE_KEY_"  # + caller name: the container variable holding that caller's key
UI_PASSWORD_ENV = "PMOVES_EDGE_UI_PASSWORD"
UI_REALM = "TensorZero UI"
TLS_DIR = "/etc/pmoves-edge/tls"
TLS_CERTIFICATE = f"{TLS_DIR}/certificate.pem"
TLS_KEY = f"{TLS_DIR}/key.pem"
# Mozilla's "intermediate" profile: TLS 1.2 with forward-secret AEAD suites only, and TLS 1.3.
TLS_PROTOCOLS = ("TLSv1.2", "TLSv1.3")
TLS_CIPHERS = (
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
)
LIMIT_WINDOW_S = 60  # rate limits count requests per caller over a sliding minute


class CallerKey(StrictModel):
    var: EnvName = Field(description="Variable (env layer or stack secret) holding this caller's key.")
    requests_per_minute: Optional[int] = Field(
        None, ge=1, description="Most requests a minute this caller may send; beyond it, a JSON 429. Null: no limit."
    )

    @field_validator("requests_per_minute", mode="before")
    @classmethod
    def _a_limit(cls, value: Any) -> Any:
        if type(value) is int and value < 1:  # said before `ge` would, in its own words
            raise ValueError(f"{value} would refuse every request: give at least 1, or leave it out for no limit")
        return value


# A caller's entry is its variable's name, or a mapping: validated as the one its shape says, so a mapping's
# problem is reported as that, never as "not a valid string".
CallerEntry = Annotated[
    Union[Annotated[EnvName, Tag(NAME_BRANCH)], Annotated[CallerKey, Tag(MAPPING_BRANCH)]],
    Discriminator(lambda value: NAME_BRANCH if isinstance(value, str) else MAPPING_BRANCH),
]


class EdgeTls(StrictModel):
    """TLS on the edge's published ports: certificate and key from variables (secrets) or from host files."""

    enabled: bool = Field(False, description="Serve HTTPS on the edge's published ports (TLS 1.2 and 1.3 only).")
    certificate_var: Optional[EnvName] = Field(None, description="Variable holding the PEM certificate (chain).")
    key_var: Optional[EnvName] = Field(None, description="Variable holding the PEM private key (a secret).")
    certificate_file: Optional[FilePath] = Field(None, description="PEM certificate (chain) on the edge's Docker host.")
    key_file: Optional[FilePath] = Field(None, description="PEM private key on the edge's Docker host.")

    @model_validator(mode="after")
    def _one_source(self):
        by_var, by_file = (self.certificate_var, self.key_var), (self.certificate_file, self.key_file)
        if self.enabled and not (all(by_var) and not any(by_file) or all(by_file) and not any(by_var)):
            raise ValueError(
                "with TLS enabled, give certificate_var and key_var (secrets), or certificate_file and key_file "
                "(paths on the Docker host), not a mix"
            )
        for name in ("certificate_file", "key_file"):
            path = getattr(self, name)
            if path is not None and not PurePosixPath(path).is_absolute():
                raise ValueError(f"{name} {path!r} must be an absolute path on the Docker host: Docker mounts no other")
        return self


class EdgeAccess(StrictModel):
    """The edge section's access keys (mixed into EdgeSpec)."""

    keys: dict[Identifier, CallerEntry] = Field(
        default_factory=lambda: {"pmoves": CallerKey(var="TENSORZERO_API_KEY")},
        description="Callers by name: the variable holding each one's key (or {var, requests_per_minute}). "
        "A caller whose variable is empty or missing is refused (revoked); with no key supplied at all, "
        "the edge asks for none, which `validate` refuses beyond loopback.",
    )
    serve_ui: bool = Field(
        True, description="Serve the TensorZero UI on ui.port behind a login; the UI itself is then not published."
    )
    ui_user: Identifier = Field("pmoves", description="User name of the UI's login.")
    ui_password_var: EnvName = Field(
        "TENSORZERO_UI_PASSWORD", description="Variable (env layer or stack secret) holding the UI login's password."
    )
    failures_per_minute: int = Field(
        10,
        ge=1,
        le=1000,
        description="Failed keys or UI logins one client address may send within a sliding minute; beyond it, "
        "that address is refused (429, logged) until they slide out. A person who mistypes gets several tries, "
        "a guesser a few a minute.",
    )
    tls: EdgeTls = Field(default_factory=EdgeTls, description="TLS on the edge's published ports.")
    tls_terminated_by: Optional[TlsTerminator] = Field(
        None,
        description="With TLS off on a non-loopback bind: what terminates TLS in front of the edge "
        "(a load balancer, a tunnel); `validate` refuses such a stack without it.",
    )

    def callers(self) -> dict[str, CallerKey]:
        return {
            name: key if isinstance(key, CallerKey) else CallerKey(var=key) for name, key in sorted(self.keys.items())
        }


@dataclass(frozen=True)
class Caller:
    name: str
    key: Variable  # under the container's name for it
    requests_per_minute: Optional[int]


def callers(deployment: ResolvedStack) -> list[Caller]:
    """Every caller whose key the stack supplies; a listed caller without one is revoked."""
    found = []
    for name, spec in deployment.spec.edge.callers().items():
        variable = deployment.variables.get(spec.var)
        if variable is not None and variable.value != "":
            found.append(
                Caller(
                    name,
                    Variable(KEY_ENV_PREFIX + name, variable.value, variable.source, True),
                    spec.requests_per_minute,
                )
            )
    return found


def serves_ui(spec) -> bool:
    return spec.edge.serve_ui and spec.deployed("ui")


def settings(deployment: ResolvedStack) -> dict:
    """What the Lua module is told: caller names and variable names, never a value."""
    spec = deployment.spec.edge
    return {
        "callers": [
            {"name": c.name, "env": c.key.name, "requests_per_minute": c.requests_per_minute}
            for c in callers(deployment)
        ],
        "limit_window_s": LIMIT_WINDOW_S,
        "failures_per_window": spec.failures_per_minute,
        "ui": {"user": spec.ui_user, "password_env": UI_PASSWORD_ENV, "realm": UI_REALM},
    }


def env(ctx: Context) -> tuple[Variable, ...]:
    """The keys and, when the edge serves the UI, the UI's password (checked present, not a seed default)."""
    found = callers(ctx.deployment)
    _refuse_every_key_empty(ctx, found)
    for caller in found:  # checked as keys: long, random, single-line, each its own
        spec = ctx.spec.edge.callers()[caller.name]
        ctx.access_key(f"edge.keys.{caller.name}", spec.var)
    found = tuple(c.key for c in found)
    if serves_ui(ctx.spec):
        password = ctx.credential("edge.ui_password_var")
        found += (Variable(UI_PASSWORD_ENV, password.value, password.source, True),)
    return found


def _refuse_every_key_empty(ctx: Context, found: list[Caller]) -> None:
    """An emptied key revokes its caller; every one of several callers' keys emptied would leave the edge asking
    no one. The templates leave their one caller's key empty until one is made: that is a key not yet supplied
    (the edge then publishes on loopback only, planner.exposure_problems)."""
    named = ctx.spec.edge.callers()
    variables = [ctx.deployment.variables.get(spec.var) for spec in named.values()]
    if len(named) > 1 and not found and all(v is not None and v.value == "" for v in variables):
        empty = ", ".join(sorted({v.name for v in variables if v is not None}))
        ctx.problem(
            "edge.keys",
            f"every caller's key is empty ({empty}): the edge would let anyone in; supply a key, or remove the "
            "callers' lines (edge.keys: {}) to run without keys on loopback",
            missing=True,
        )


def env_names(deployment: ResolvedStack) -> list[str]:
    """Container variables the edge's nginx must keep for its workers (`env` directives)."""
    names = [c.key.name for c in callers(deployment)]
    return names + ([UI_PASSWORD_ENV] if serves_ui(deployment.spec) else [])


# On a cluster the ingress terminates TLS: the edge's own files are a Docker host's.
TLS_ON_CLUSTER = "set edge.tls.enabled false and name the certificate's Secret in kubernetes.ingress.tls_secret"


def tls_files(ctx: Context) -> tuple[tuple[SecretFile, ...], tuple[HostPath, ...]]:
    tls = ctx.spec.edge.tls
    if not tls.enabled:
        return (), ()
    if tls.certificate_file:
        _check_local_files(ctx, tls)
        return (), (
            HostPath(tls.certificate_file, TLS_CERTIFICATE, "edge.tls.certificate_file", TLS_ON_CLUSTER),
            HostPath(tls.key_file, TLS_KEY, "edge.tls.key_file", TLS_ON_CLUSTER),
        )
    certificate, key = ctx.credential("edge.tls.certificate_var"), ctx.credential("edge.tls.key_var")
    # An offline placeholder (`diff`, a plan without secrets) is no PEM to parse: the real pair is checked where
    # it is supplied.
    if certificate.value and key.value and not (is_placeholder(certificate.value) or is_placeholder(key.value)):
        # Named where each value was given: its env layer's line, or the stack secret.
        named = [("edge.tls.certificate_var", certificate), ("edge.tls.key_var", key)]
        _report_tls(ctx, [(name, v.name, v.source) for name, v in named], certificate.value, key.value)
    return (SecretFile(TLS_CERTIFICATE, certificate), SecretFile(TLS_KEY, key)), ()


def _check_local_files(ctx: Context, tls: EdgeTls) -> None:
    """Host files are read where `validate` runs on that host (its Docker engine is this machine's socket);
    on another host they are the operator's to check, and `pulumi up` stops on a missing one."""
    host = ctx.spec.hosts.get(ctx.placement.host)
    files = (Path(tls.certificate_file), Path(tls.key_file))
    if host is None or not host.on_this_machine:
        return
    # The edge's host is a machine holding the addresses it publishes on. Elsewhere on a local engine (a CI
    # runner validating prod) the stack file's paths are that host's, so a missing one is told, not refused.
    foreign = sorted({port.ip for port in ctx.placement.ports if not can_bind(port.ip)})
    keys = ("edge.tls.certificate_file", "edge.tls.key_file")
    for key_name, path in zip(keys, files, strict=True):
        if path.is_dir():
            ctx.problem(key_name, f"{path} is a directory, not a PEM file (Docker would mount it as one)")
        elif not path.is_file() and foreign:
            ctx.notice(
                f"{key_name}: {path} does not exist here, and this machine is not the edge's host (it does not "
                f"hold {', '.join(foreign)}): checked where the edge is published"
            )
        elif not path.is_file():
            ctx.problem(
                key_name,
                f"{path} does not exist{' (a symlink to nothing)' if path.is_symlink() else ''}: Docker would "
                "mount an empty directory there and nginx could not start",
            )
    if not all(path.is_file() for path in files):
        return
    texts = []
    for key_name, path in zip(keys, files, strict=True):
        try:
            texts.append(path.read_text())
        except UnicodeDecodeError:
            converts = "`openssl x509` or `openssl pkey` with `-inform der` converts it"
            ctx.problem(key_name, f"{path} is not text: nginx reads PEM, not DER ({converts})")
        except OSError as error:
            ctx.problem(key_name, f"cannot read {path}: {error.strerror}")
    if len(texts) != len(files):
        return
    _report_tls(ctx, [(name, str(path), None) for name, path in zip(keys, files, strict=True)], *texts)


def _report_tls(ctx: Context, named: list[tuple[str, str, Optional[str]]], certificate: str, key: str) -> None:
    """Each of the pair's problems (as nginx would meet them) under (spec key, what holds it, file named)."""
    from components.core.pem import tls_problems  # cryptography: only for a stack that has a TLS pair

    for (key_name, holder, file), problem in zip(named, tls_problems(certificate, key), strict=True):
        if problem:
            ctx.problem(key_name, f"{holder} {problem}", file=file)


def authentication(deployment: ResolvedStack) -> Optional[str]:
    """How the edge's published ports ask who is calling; None when it asks no one."""
    names = [c.name for c in callers(deployment)]
    if not names:
        return None
    ui = f"; UI: login as {deployment.spec.edge.ui_user}" if serves_ui(deployment.spec) else ""
    return f"bearer keys of {', '.join(names)}{ui}"


def outputs(ctx: Context) -> dict:
    """`edge_key` (secret): the caller and key the smoke suite sends through the edge."""
    found = callers(ctx.deployment)
    wanted = ctx.spec.smoke.caller
    if wanted is not None:
        if wanted not in ctx.spec.edge.callers():
            ctx.problem("smoke.caller", f"'{wanted}' is not a caller of edge.keys")
        found = [c for c in found if c.name == wanted]
        if not found and wanted in ctx.spec.edge.callers():
            ctx.problem("smoke.caller", f"no key is supplied for caller '{wanted}'")
    if not found:
        return {}
    return {"edge_key": Secret({"caller": found[0].name, "key": found[0].key.value})}


def tls_checks(spec) -> list[tuple[str, str]]:
    """Beyond loopback without TLS, the stack must say what terminates TLS in front of the edge."""
    if not spec.deployed("edge") or spec.edge.tls.enabled or spec.edge.tls_terminated_by:
        return []
    bind = spec.bind_address("edge")
    if ipaddress.ip_address(bind).is_loopback:
        return []
    return [
        (
            "edge.tls",
            f"TLS is off and the edge is published on {bind}: enable edge.tls (certificate and key from secrets "
            "or host files), or name what terminates TLS in front of it in edge.tls_terminated_by",
        )
    ]


def tls_notices(spec) -> tuple[str, ...]:
    if spec.edge.tls.enabled or not spec.edge.tls_terminated_by:
        return ()
    bind = spec.bind_address("edge")
    if ipaddress.ip_address(bind).is_loopback:
        return ()
    return (f"edge: TLS is off on {bind}; {spec.edge.tls_terminated_by} is expected to terminate it",)
