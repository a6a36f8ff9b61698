"""The operator's backup verbs on a cluster stack: each refuses in one line (no traceback, nothing run) and
names the kubectl command that does the same in the stack's own backup pod, as the cluster's plan names it."""

import json
import shlex

import pytest
from conftest import CLUSTER_STACKS, PROJECT_DIR, cli, write_canary_env

VERBS = {
    "backups": ["list"],
    "backup": ["backup"],
    "restore-drill": ["drill"],
    "restore --from tensorzero-20260101T000000.000000Z-full": ["restore", "tensorzero-20260101T000000.000000Z-full"],
}


@pytest.fixture(scope="module")
def env_dir(tmp_path_factory) -> dict[str, str]:
    return {stack: str(write_canary_env(stack, tmp_path_factory.mktemp(f"env-{stack}"))) for stack in CLUSTER_STACKS}


@pytest.mark.parametrize("verb", VERBS)
@pytest.mark.parametrize("stack", CLUSTER_STACKS)
def test_a_backup_verb_on_a_cluster_refuses_in_one_line_with_the_kubectl_way(stack, verb, env_dir):
    result = cli(PROJECT_DIR, *shlex.split(verb)[:1], stack, *shlex.split(verb)[1:], "--env-dir", env_dir[stack])
    assert result.returncode == 2 and result.stdout == "", result.stdout + result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith(f"refused: stack {stack} runs on Kubernetes")
    planned = json.loads(cli(PROJECT_DIR, "plan", stack, "--json", "--env-dir", env_dir[stack]).stdout)
    names = {r["inputs"]["metadata"]["name"]: r for r in planned["resources"] if r["type"].endswith(":Deployment")}
    [provider] = [r["inputs"] for r in planned["resources"] if r["type"] == "pulumi:providers:kubernetes"]
    kubectl = f"kubectl --context {provider['context']} -n {provider['namespace']}"
    pod = next(name for name in names if name.endswith("-backup"))
    container = names[pod]["inputs"]["spec"]["template"]["spec"]["containers"][0]["args"]
    exec_line = f"{kubectl} exec deploy/{pod} -- {' '.join(container[:-1])} {' '.join(VERBS[verb])}"
    assert exec_line in line
    if verb.startswith("restore "):
        gateway = next(name for name in names if name.endswith("-gateway"))
        assert f"{kubectl} scale deploy/{gateway} --replicas=0, then {exec_line}" in line
