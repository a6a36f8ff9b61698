"""How each pod is confined on a cluster (plans.Hardening), and the Pod Security Standard its namespace enforces."""

from components.core.plans import ROOT_DROPPED, Hardening

RESTRICTED = "restricted"  # the Pod Security Standard the namespace enforces when every workload meets it
BASELINE = "baseline"
ROOT_IMAGE = Hardening()  # a one-shot's: a client run in its service's image, as root


def confinement(hardening: Hardening) -> tuple[dict, dict]:
    """(pod, container) securityContexts of plans.Hardening. No pod here talks to the Kubernetes API, so none
    mounts a service-account token (set in pod_template). A non-root user meets the Pod Security Standard
    "restricted"; a root image (an exception its plan names) keeps only what plans.ROOT_DROPPED leaves."""
    pod: dict = {"seccompProfile": {"type": "RuntimeDefault"}}
    container: dict = {"allowPrivilegeEscalation": False}
    if hardening.user is None:
        container["capabilities"] = {"drop": list(ROOT_DROPPED)}
        return pod, container
    user = hardening.user
    pod |= {"runAsNonRoot": True, "runAsUser": user, "runAsGroup": user, "fsGroup": user}
    container["capabilities"] = {
        "drop": ["ALL"],
        **({"add": list(hardening.capabilities)} if hardening.capabilities else {}),
    }
    return pod, container


def pod_security(plans) -> str:
    """The Pod Security Standard the namespace enforces: "restricted" once every workload meets it."""
    return (
        RESTRICTED if all(p.hardening.user is not None for p in plans if p.runs_container or p.one_shots) else BASELINE
    )
