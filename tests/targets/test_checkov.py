"""checkov (a scanner nobody here wrote, pinned in requirements-checkov.txt, in .venv-checkov) on every cluster
stack's rendered manifests: a check it fails is either fixed or waived below, in this one place, with the
reason. None of the Pod Security Standard "restricted" checks may fail, on any workload (the one-shots' Jobs
too): every pod runs as a non-root UID its plan names (plans.Hardening), so the namespace enforces "restricted".
"""

import json
import subprocess

import pytest
import yaml
from conftest import STACKS, unavailable

from components.core.names import PROJECT_DIR
from components.targets.kubernetes.cluster import yaml_files

CHECKOV = PROJECT_DIR / ".venv-checkov" / "bin" / "python"
TIMEOUT_S = 600
ENFORCE = "pod-security.kubernetes.io/enforce"

# Pod Security Standard "restricted", as checkov names its parts.
RESTRICTED = {
    "CKV_K8S_20": "allowPrivilegeEscalation false",
    "CKV_K8S_23": "runAsNonRoot",
    "CKV_K8S_28": "NET_RAW dropped",
    "CKV_K8S_37": "capabilities dropped (ALL)",
    "CKV_K8S_31": "seccomp RuntimeDefault",
    "CKV_K8S_16": "not privileged",
}
WAIVERS = {
    "CKV_K8S_15": "imagePullPolicy Always: images are pinned by tag, and IfNotPresent keeps a node starting "
    "without the registry; a re-tagged image is what `validate`'s pinning rule prevents",
    "CKV_K8S_43": "image by digest: the stack pins tags that match the `tensorzero` package (gateway.py); digests "
    "differ per architecture (the Jetson is arm64)",
    "CKV_K8S_22": "read-only root: the images write caches, pid and temp files outside their volumes (nginx's "
    "temp paths, Grafana's plugins, ClickHouse's tmp); not proven here per image",
    "CKV_K8S_35": "secrets as files: the images read their credentials from environment variables only "
    "(CLICKHOUSE_PASSWORD, GF_SECURITY_ADMIN_PASSWORD, the edge's keys), from a Secret by secretKeyRef",
    "CKV_K8S_40": "UID above 10000: each image's own non-root user is kept (clickhouse 101, gateway 1000, ui "
    "1001, grafana 472); another UID would not own the files its image ships",
    "CKV2_K8S_6": "NetworkPolicy per pod: every Deployment and StatefulSet has one; the Jobs (one-shots) reach "
    "only their service and need none of their own",
}


def checkov(directory) -> dict:
    if not CHECKOV.exists():
        unavailable(f"checkov is not installed in {CHECKOV.parent.parent} (make test-venv)")
    done = subprocess.run(
        [str(CHECKOV), "-m", "checkov.main", "-d", str(directory), "--framework", "kubernetes", "-o", "json",
         "--skip-download"],
        capture_output=True, text=True, timeout=TIMEOUT_S,
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stderr[-2000:]
    found = json.loads(done.stdout)
    return found[0] if isinstance(found, list) else found


def yaml_documents(directory) -> list[dict]:
    return [d for path in sorted(directory.rglob("*.yaml")) for d in yaml.safe_load_all(path.read_text()) if d]


CLUSTER_STACKS = [stack for stack in STACKS if stack == "cluster"]


@pytest.mark.parametrize("stack", CLUSTER_STACKS)
def test_checkov_finds_no_restricted_failure_and_nothing_unwaived(stack, deployments, tmp_path):
    deployment = deployments[stack]
    for path, content in yaml_files(deployment).items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(content)
    report = checkov(tmp_path / "kubernetes")
    assert report["summary"]["passed"] > 0 and report["summary"]["parsing_errors"] == 0
    failed = report["results"]["failed_checks"]
    restricted_failed = sorted((f["check_id"], f["resource"]) for f in failed if f["check_id"] in RESTRICTED)
    assert restricted_failed == [], restricted_failed
    unexplained = sorted((f["check_id"], f["resource"]) for f in failed if f["check_id"] not in WAIVERS)
    assert unexplained == [], unexplained
    restricted_passed = {p["check_id"] for p in report["results"]["passed_checks"]} & set(RESTRICTED)
    assert restricted_passed == set(RESTRICTED)  # each is checked, so a pass above is not a check never run
    namespaces = [o for o in yaml_documents(tmp_path / "kubernetes") if o.get("kind") == "Namespace"]
    assert namespaces and all(n["metadata"]["labels"][ENFORCE] == "restricted" for n in namespaces), namespaces
