"""The blackbox exporter: its config, proven by the real exporter, and the probes Prometheus asks of it."""

import subprocess
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml
from conftest import free_port
from promtool import declared, run, tool, write_mounted

from components.services import blackbox, prometheus
from components.services.blackbox import SERVICE as BLACKBOX


def written_config(deployment, root):
    [rendered] = blackbox.config_files(deployment)
    assert (rendered.kind, rendered.container) == ("blackbox-config", BLACKBOX.role)
    return write_mounted(root, [rendered])[blackbox.CONFIG_PATH]


def test_the_exporter_accepts_the_config(deployments, stack, tmp_path):
    checked = run(
        "prometheus-blackbox-exporter",
        "--config.check",
        f"--config.file={written_config(deployments[stack], tmp_path)}",
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "Config file is ok" in checked.stderr


def test_the_config_check_refuses_a_misspelt_key(deployments, tmp_path):
    """Control: the check reads every key, so passing it means something."""
    path = written_config(deployments["dev"], tmp_path)
    path.write_text(path.read_text().replace("preferred_ip_protocol", "preferred_ip_protocl"))
    checked = run("prometheus-blackbox-exporter", "--config.check", f"--config.file={path}")
    assert checked.returncode != 0 and "preferred_ip_protocl" in checked.stderr


def test_prometheus_asks_for_a_module_the_exporter_has(deployments, stack, tmp_path):
    deployment = deployments[stack]
    modules = yaml.safe_load(written_config(deployment, tmp_path).read_text())["modules"]
    [config] = [f for f in deployment.plans[prometheus.SERVICE.role].files if f.mount == prometheus.CONFIG_PATH]
    asked = [job["params"]["module"] for job in yaml.safe_load(config.content)["scrape_configs"] if "params" in job]
    assert asked == [[blackbox.PROBE_MODULE]] and blackbox.PROBE_MODULE in modules


class Answers(BaseHTTPRequestHandler):
    """Stand-in for a probed service (UI /health, Ollama /api/version): answers by path."""

    def do_GET(self):
        status = {"/health": 200, "/broken": 503, "/moved": 302}.get(self.path, 404)
        self.send_response(status)
        if status == 302:
            self.send_header("location", "/health")
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


@pytest.fixture
def service():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Answers)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def fetch(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=15) as response:
        return response.status, response.read().decode()


def probe_success(exporter: str, target: str) -> float:
    query = urllib.parse.urlencode({"module": blackbox.PROBE_MODULE, "target": target})
    _, body = fetch(f"{exporter}/probe?{query}")
    [line] = [line for line in body.splitlines() if line.startswith("probe_success ")]
    return float(line.split()[1])


def test_the_real_exporter_probes_with_the_rendered_module(deployments, tmp_path, service):
    """Debian's exporter runs the rendered config: 2xx is up; an error, a redirect or silence is down."""
    path = written_config(deployments["dev"], tmp_path)
    port = free_port()
    exporter = subprocess.Popen(
        [
            tool("prometheus-blackbox-exporter"),
            f"--config.file={path}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                fetch(base + "/-/healthy")
                break
            except OSError:
                time.sleep(0.1)
        assert fetch(base + "/-/healthy")[0] == 200  # the healthcheck's path
        assert probe_success(base, service + "/health") == 1
        assert probe_success(base, service + "/broken") == 0
        assert probe_success(base, service + "/moved") == 0
        assert probe_success(base, f"http://127.0.0.1:{free_port()}/health") == 0  # nothing listens
    finally:
        exporter.terminate()
        exporter.wait(timeout=30)


def test_the_component_runs_the_rendered_config_with_a_healthcheck(deployments, stack):
    deployment = deployments[stack]
    spec = deployment.spec
    files = blackbox.config_files(deployment)
    recorded = declared(deployment, BLACKBOX.role)
    assert not [r for r in recorded if r["type"].endswith("volume:Volume")]  # it keeps no state
    [container] = [r for r in recorded if r["type"].endswith("container:Container")]
    inputs = container["inputs"]
    assert inputs["name"] == f"{spec.name_prefix}-{BLACKBOX.container}"
    assert inputs["command"] == [f"--config.file={blackbox.CONFIG_PATH}"]
    assert inputs["uploads"] == [{"file": blackbox.CONFIG_PATH, "content": files[0].content}]
    assert inputs["healthcheck"]["tests"] == [
        "CMD",
        "wget",
        "--spider",
        "-q",
        f"http://127.0.0.1:{BLACKBOX.port}/-/healthy",
    ]
    assert inputs["networksAdvanced"][0]["aliases"] == [BLACKBOX.alias]
