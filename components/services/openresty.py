"""What the three OpenResty-based services share (the edge, Ollama's guard, the Docker proxy): image, command
and a healthcheck the image can run."""

IMAGE = "openresty/openresty:1.27.1.2-bookworm"
BINARY = "/usr/bin/openresty"
COMMAND = (BINARY, "-g", "daemon off;")
TOOLS = frozenset({"bash"})  # the bookworm image has neither curl nor wget; bash is Essential in Debian


def healthcheck(port: int, path: str) -> tuple[str, ...]:
    """bash speaking HTTP over /dev/tcp to the container's own `path`: only a status line of exactly 200 passes."""
    return (
        "bash",
        "-c",
        f"exec 3<>/dev/tcp/127.0.0.1/{port} && printf 'GET {path} HTTP/1.0\\r\\n\\r\\n' >&3 "
        "&& head -n 1 <&3 | grep -q '^HTTP/1\\.[01] 200 '",
    )
