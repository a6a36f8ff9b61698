"""What the three OpenResty-based services share (the edge, Ollama's guard, the Docker proxy): image, command,
a healthcheck the image can run, and how it runs without root."""

from components.core.plans import Hardening

IMAGE = "openresty/openresty:1.27.1.2-bookworm"
BINARY = "/usr/bin/openresty"
COMMAND = (BINARY, "-g", "daemon off;")
TOOLS = frozenset({"bash"})  # the bookworm image has neither curl nor wget; bash is Essential in Debian
# Without root (a cluster's pod): its workers' user `nobody`; the pid file, which nginx writes at start, in /tmp
# (its default, logs/, is root's, and its log files there are the image's links to stdout and stderr); the temp
# paths of the image's nginx.conf on an emptyDir. Its listeners are all above 1024: no capability is added back.
NOBODY = 65534
PID = "pid /tmp/nginx.pid;"
TEMP_DIR = "/var/run/openresty"
WITHOUT_ROOT = Hardening(cluster_user=NOBODY, scratch=(TEMP_DIR,))


def healthcheck(port: int, path: str) -> tuple[str, ...]:
    """bash speaking HTTP over /dev/tcp to the container's own `path`: only a status line of exactly 200 passes."""
    return (
        "bash",
        "-c",
        f"exec 3<>/dev/tcp/127.0.0.1/{port} && printf 'GET {path} HTTP/1.0\\r\\n\\r\\n' >&3 "
        "&& head -n 1 <&3 | grep -q '^HTTP/1\\.[01] 200 '",
    )
