"""How each pod is confined on a cluster (plans.Hardening), and the Pod Security Standard its namespace enforces."""

from components.core.plans import ROOT_DROPPED, Hardening

RESTRICTED = "restricted"  # the Pod Security Standard the namespace enforces when every workload meets it
BASELINE = "baseline"
ROOT_IMAGE = Hardening()  # an image's root: what a workload gets that names no UID (an exception its plan says)


def confinement(hardening: Hardening) -> tuple[dict, dict]:
    """(pod, container) securityContexts of plans.Hardening. No pod here talks to the Kubernetes API, so none
    mounts a service-account token (set in pod_template). A non-root user (the image's own, or the one its plan
    names for a cluster) meets the Pod Security Standard "restricted"; a root image (an exception its plan
    names) keeps only what plans.ROOT_DROPPED leaves."""
    pod: dict = {"seccompProfile": {"type": "RuntimeDefault"}}
    container: dict = {"allowPrivilegeEscalation": False}
    user = hardening.pod_user
    if user is None:
        container["capabilities"] = {"drop": list(ROOT_DROPPED)}
        return pod, container
    pod |= {"runAsNonRoot": True, "runAsUser": user, "runAsGroup": user, "fsGroup": user}
    container["capabilities"] = {
        "drop": ["ALL"],
        **({"add": list(hardening.capabilities)} if hardening.capabilities else {}),
    }
    return pod, container


def pod_security(hardenings) -> str:
    """The Pod Security Standard the namespace enforces: "restricted" once every workload (the one-shots' Jobs
    too) runs as a non-root user."""
    return RESTRICTED if all(h.pod_user is not None for h in hardenings) else BASELINE
