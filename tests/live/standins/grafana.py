"""Stand-in for Grafana (no image here), on port 3000: `/api/health`, `/metrics`, and the provisioned
datasources with Grafana's own health check, behind the admin's basic auth.

Datasources come from the stack's rendered provisioning file (the path is the argument), with the
environment variables it names expanded as Grafana expands them. The health check really reaches each
datasource: Prometheus by a query, ClickHouse by `SELECT 1` over HTTP as the datasource's user.
"""

import base64
import os
import re
import sys
import urllib.error
import urllib.request

import yaml
from standin import JSON, TEXT, serve

ADMIN = (os.environ.get("GF_SECURITY_ADMIN_USER", "admin"), os.environ["GF_SECURITY_ADMIN_PASSWORD"])
TIMEOUT_S = 3


# Grafana's provisioning expands $VAR, ${VAR} and $__env{VAR}.
VARIABLE = re.compile(r"\$(?:__env\{(\w+)\}|\{(\w+)\}|(\w+))")


def expand(value):
    if isinstance(value, str):
        return VARIABLE.sub(lambda m: os.environ.get(next(g for g in m.groups() if g), ""), value)
    if isinstance(value, dict):
        return {k: expand(v) for k, v in value.items()}
    if isinstance(value, list):
        return [expand(v) for v in value]
    return value


with open(sys.argv[1]) as provisioning:
    DATASOURCES = {d["uid"]: d for d in expand(yaml.safe_load(provisioning))["datasources"]}


def authorized(request) -> bool:
    expected = "Basic " + base64.b64encode(f"{ADMIN[0]}:{ADMIN[1]}".encode()).decode()
    return request.headers.get("authorization") == expected


def unauthorized():
    return 401, {"message": "Unauthorized"}, JSON


def datasources(request):
    if not authorized(request):
        return unauthorized()
    listed = [
        {"id": i, "uid": d["uid"], "name": d["name"], "type": d["type"], "url": d.get("url", ""), "access": "proxy"}
        for i, d in enumerate(DATASOURCES.values(), start=1)
    ]
    return 200, listed, JSON


def fetch(url: str, data: bytes = None, auth: tuple[str, str] = None) -> str:
    request = urllib.request.Request(url, data=data)
    if auth:
        request.add_header("authorization", "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode())
    with urllib.request.urlopen(request, timeout=TIMEOUT_S) as answer:
        return answer.read().decode()


def check(source: dict) -> str:
    """What Grafana reports for a healthy datasource; raises with what went wrong."""
    kind = source["type"]
    if kind == "prometheus":
        fetch(source["url"].rstrip("/") + "/api/v1/query?query=1%2B1")
        return "Successfully queried the Prometheus API."
    if kind == "grafana-clickhouse-datasource":
        data = source.get("jsonData", {})
        if data.get("protocol", "native") != "http":
            raise ValueError("this stand-in speaks only ClickHouse's http protocol")
        url = f"http://{data['host']}:{data['port']}/?database={data.get('defaultDatabase', 'default')}"
        auth = (data.get("username", "default"), source.get("secureJsonData", {}).get("password", ""))
        if fetch(url, b"SELECT 1", auth).strip() != "1":
            raise ValueError("SELECT 1 did not answer 1")
        return "Data source is working"
    if kind == "loki":
        fetch(source["url"].rstrip("/") + "/ready")
        return "Data source successfully connected."
    raise ValueError(f"this stand-in cannot check datasources of type {kind}")


def health(request):
    if not authorized(request):
        return unauthorized()
    uid, _, rest = request.route_path.removeprefix("/api/datasources/uid/").partition("/")
    if uid not in DATASOURCES or rest != "health":
        return 404, {"message": "Data source not found"}, JSON
    try:
        return 200, {"status": "OK", "message": check(DATASOURCES[uid])}, JSON
    except urllib.error.HTTPError as error:
        return 400, {"status": "ERROR", "message": f"HTTP {error.code}: {error.read().decode()[:200]}"}, JSON
    except Exception as error:
        return 400, {"status": "ERROR", "message": f"{type(error).__name__}: {error}"}, JSON


serve(
    3000,
    {
        ("GET", "/api/health"): lambda request: (200, {"database": "ok", "version": "stand-in"}, JSON),
        ("GET", "/api/datasources"): datasources,
        ("GET", "/metrics"): lambda request: (200, 'grafana_build_info{version="stand-in"} 1\n', TEXT),
    },
    prefixes={("GET", "/api/datasources/uid/"): health},
)
