"""Every Docker container of every Docker stack is confined (plans.Hardening, targets/docker.py): no new
privileges, capabilities dropped (all of them under a non-root user), and a service that keeps its image's
root names why in its own module. The engine starts a container with exactly those arguments and the kernel
reports them in force (/proc/self/status)."""

import inspect
import shutil
import subprocess

import pytest
from conftest import DOCKER_STACKS, resources

from components.core.names import SERVICE_LABEL
from components.core.plans import ROOT_DROPPED
from components.operate.plan import plan
from components.services import edge, ollama, openresty
from components.targets.kubernetes.cluster import manifests
from components.targets.kubernetes.objects import shot_hardening

NET_RAW_BIT = 13  # CAP_NET_RAW in the kernel's capability sets


@pytest.fixture(scope="module")
def plans(deployments):
    return {stack: plan(deployments[stack]) for stack in DOCKER_STACKS}


def role_of(container: dict) -> str:
    return next(label["value"] for label in container["inputs"]["labels"] if label["label"] == SERVICE_LABEL)


@pytest.mark.parametrize("stack", DOCKER_STACKS)
def test_every_container_is_confined_and_each_root_one_is_an_explained_exception(stack, plans, deployments):
    deployment = deployments[stack]
    found = resources(plans[stack], "container:Container")
    assert found
    for container in found:
        inputs, role = container["inputs"], role_of(container)
        assert inputs["securityOpts"] == ["no-new-privileges:true"], role
        hardening = deployment.plans[role].hardening
        if inputs.get("attach") or hardening.user is None:  # a one-shot, or a service keeping root
            assert inputs["capabilities"]["drops"] == list(ROOT_DROPPED), role
            assert "user" not in inputs, role
        else:
            assert inputs["capabilities"]["drops"] == ["ALL"], role
            assert inputs["user"] == f"{hardening.user}:{hardening.user}" and hardening.user != 0, role
    for role, planned in deployment.plans.items():
        if planned.runs_container and planned.hardening.user is None:
            module = inspect.getsource(inspect.getmodule(deployment.spec.definition(role).plan))
            assert "Hardening exception:" in module, f"{role} keeps root without saying why in its plan"


def engine_run(*args: str) -> str:
    if shutil.which("docker") is None:
        pytest.skip("no docker CLI")
    done = subprocess.run(
        ["docker", "run", "--rm", *args, "pmoves-test/debian:bookworm", "sh", "-c",
         "id -u; grep -E '^(CapEff|NoNewPrivs)' /proc/self/status"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    if "Unable to find image" in done.stderr or "No such image" in done.stderr:
        pytest.skip("pmoves-test/debian:bookworm is built by the live tests (tests/live/build-images)")
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_engine_runs_a_non_root_container_with_no_capability_and_no_new_privileges():
    out = engine_run("--security-opt", "no-new-privileges:true", "--cap-drop", "ALL", "--user", "65534:65534")
    uid, effective, no_new = out.split("\n")[:3]
    assert uid == "65534" and int(effective.split()[1], 16) == 0 and no_new.split()[1] == "1"


def test_the_engine_runs_a_root_container_without_the_dropped_capabilities():
    drops = [arg for cap in ROOT_DROPPED for arg in ("--cap-drop", cap)]
    out = engine_run("--security-opt", "no-new-privileges:true", *drops)
    uid, effective, no_new = out.split("\n")[:3]
    capabilities = int(effective.split()[1], 16)
    assert uid == "0" and capabilities != 0 and not capabilities & (1 << NET_RAW_BIT) and no_new.split()[1] == "1"


def test_every_cluster_pod_runs_as_the_non_root_uid_its_plan_names(deployments):
    """On a cluster nothing keeps root: each workload (the one-shots' Jobs as the service whose image they run)
    runs as its plan's UID, and what a non-root OpenResty or Ollama needs is there (checkov checks the rest)."""
    deployment = deployments["cluster"]
    pods = {}
    for group in manifests(deployment).values():
        for obj in group:
            if obj["kind"] in ("Deployment", "StatefulSet", "Job"):
                pods[(obj["kind"], obj["metadata"]["labels"][SERVICE_LABEL])] = obj["spec"]["template"]["spec"]
    expected = {("Deployment", role): p.hardening.pod_user for role, p in deployment.plans.items() if p.runs_container}
    expected |= {
        ("Job", role): shot_hardening(deployment, p, shot).pod_user
        for role, p in deployment.plans.items()
        for shot in p.one_shots
    }
    found = {
        (kind if kind == "Job" else "Deployment", role): pod["securityContext"].get("runAsUser")
        for (kind, role), pod in pods.items()
    }
    assert found == expected and None not in found.values() and 0 not in found.values(), found
    assert all(pod["securityContext"]["runAsNonRoot"] for pod in pods.values())
    assert expected[("Job", ollama.SERVICE.role)] == ollama.CLUSTER_USER  # `ollama pull` as the server runs
    server = pods[("StatefulSet", ollama.SERVICE.role)]["containers"][0]
    assert {"name": "HOME", "value": ollama.CLUSTER_HOME} in server["env"]
    assert {m["mountPath"] for m in server["volumeMounts"]} == {f"{ollama.CLUSTER_HOME}/.ollama"}
    edge_pod = pods[("Deployment", edge.SERVICE.role)]
    scratch = {v["name"] for v in edge_pod.get("volumes", []) if "emptyDir" in v}
    mounts = {m["mountPath"] for m in edge_pod["containers"][0]["volumeMounts"] if m["name"] in scratch}
    assert mounts == {openresty.TEMP_DIR} and openresty.PID in " ".join(edge_pod["containers"][0]["args"])
