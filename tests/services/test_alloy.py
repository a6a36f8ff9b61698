"""Grafana Alloy: ships exactly this stack's container logs to the stack's Loki.

No Alloy binary runs here; the checks are on what this package decides in its config.
"""

import re

from conftest import CANARIES, container_of, resources

from components.core.names import SERVICE_LABEL, STACK_LABEL
from components.services import alloy, docker_proxy
from components.services.alloy import SERVICE as ALLOY
from components.services.docker_proxy import SERVICE as DOCKER_PROXY
from components.services.gateway import SERVICE as GATEWAY
from components.services.loki import SERVICE as LOKI


def alloy_stacks(deployments):
    return {stack: d for stack, d in deployments.items() if d.spec.deployed(ALLOY)}


def attribute(config: str, name: str) -> list[str]:
    return re.findall(rf'^\s*{name}\s*=\s*"([^"]*)"', config, re.MULTILINE)


def test_pushes_to_the_stack_loki_where_the_spec_places_it(deployments):
    for deployment in alloy_stacks(deployments).values():
        spec = deployment.spec
        [file] = deployment.plans[ALLOY.role].files
        assert file.mount == alloy.CONFIG_PATH
        loki = spec.endpoint(LOKI, seen_from=spec.alloy.host)
        assert attribute(file.content, "url") == [f"{loki.url}{alloy.LOKI_PUSH_PATH}"]


def test_reads_only_this_stack_containers_labelled_as_the_stack_labels_them(plans, deployments):
    for stack, deployment in alloy_stacks(deployments).items():
        [file] = deployment.plans[ALLOY.role].files
        assert f'"{STACK_LABEL}={deployment.spec.name_prefix}"' in file.content
        # Docker service discovery exposes label com.pmoves.service as this meta label.
        assert alloy.docker_meta_label(SERVICE_LABEL) == "__meta_docker_container_label_com_pmoves_service"
        assert f'"{alloy.docker_meta_label(SERVICE_LABEL)}"' in file.content
        for container in resources(plans[stack], "container:Container"):
            labels = {label["label"]: label["value"] for label in container["inputs"]["labels"]}
            assert labels[STACK_LABEL] == deployment.spec.name_prefix and SERVICE_LABEL in labels
        # The gateway's JSON level is parsed only on the gateway's own stream.
        assert f'selector = "{{service=\\"{GATEWAY.role}\\"}}"' in file.content


def test_config_blocks_are_balanced_and_hold_no_credential(deployments):
    for deployment in alloy_stacks(deployments).values():
        [file] = deployment.plans[ALLOY.role].files
        code = re.sub(r'"(\\.|[^"\\])*"', '""', file.content)  # braces inside strings do not count
        depth = 0
        for char in code:
            depth += {"{": 1, "}": -1}.get(char, 0)
            assert depth >= 0
        assert depth == 0
        assert not [name for name, value in CANARIES.items() if value in file.content]


def test_alloy_reaches_docker_only_through_the_read_only_proxy_and_starts_after_loki(plans, deployments):
    for stack, deployment in alloy_stacks(deployments).items():
        container = container_of(plans[stack], ALLOY.role)
        inputs = container["inputs"]
        assert inputs.get("volumes", []) == []  # no Docker socket in Alloy
        [file] = deployment.plans[ALLOY.role].files
        proxy = deployment.spec.endpoint(DOCKER_PROXY, seen_from=deployment.spec.alloy.host)
        assert attribute(file.content, "host") == [f"tcp://{proxy.host}:{proxy.port}"] * 2
        assert inputs["command"][:2] == ["run", alloy.CONFIG_PATH]
        assert container_of(plans[stack], LOKI.role)["urn"] in container["dependencies"]
        assert container_of(plans[stack], DOCKER_PROXY.role)["urn"] in container["dependencies"]
        # The socket is the proxy's alone, and the proxy publishes nothing.
        proxy_inputs = container_of(plans[stack], DOCKER_PROXY.role)["inputs"]
        assert [v["hostPath"] for v in proxy_inputs["volumes"]] == [docker_proxy.DOCKER_SOCKET]
        assert proxy_inputs.get("ports", []) == []
