"""Instructions per request under callgrind: a count that does not depend on how busy the machine is.

Each proxy runs as one nginx process (`master_process off`) under `valgrind --tool=callgrind` and serves N1, then
(started afresh) N2 identical requests one after another; (Ir(N2) - Ir(N1)) / (N2 - N1) is what one request
costs in user space (nginx, LuaJIT, libc), start-up and shutdown cancelling out. The kernel's share (the sockets'
system calls) is not counted, so the edge-to-hop ratio here is larger than their CPU-time ratio: it is the part
the edge's own configuration and Lua decide, and it moves only when they change.

Parts of the edge switched off in turn: the same rendered files with one directive taken out (a measurement
variant, never deployed).
"""

import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from edge_rig import NGINX, container_env, global_directives, local_layout, place

from components.services import edge as edge_service

N1, N2 = 100, 600
# The edge's API server, each part switched off: (label, text in default.conf, its replacement).
SWITCHED_OFF = (
    ("access log off", f"access_log logs/access.log pmoves_edge {edge_service.ACCESS_LOG_BUFFER};", "access_log off;"),
    ("metrics off (no log_by_lua)", '    log_by_lua_block { require("pmoves_edge").log() }\n', ""),
)


def check_switches(deployment, upstream) -> None:
    """Before any timing: each part to switch off is still in the edge's config (the timed rounds take minutes)."""
    default = next(f for f in edge_service.config_files(deployment, upstream, None) if f.path.endswith(".conf"))
    if missing := [old for _, old, _ in SWITCHED_OFF if old not in default.content]:
        raise SystemExit(f"the edge's config no longer holds {missing}: update SWITCHED_OFF")


def available() -> bool:
    return shutil.which("valgrind") is not None


def _instructions(argv: list[str], env: dict, url: str, health: str, body: bytes, headers: dict, n: int) -> int:
    out = Path(argv[argv.index("-p") + 1]) / f"callgrind.{n}"
    process = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--smc-check=all-non-file", *argv],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with httpx.Client(timeout=60) as client:
            deadline = time.monotonic() + 120
            while True:
                try:
                    client.get(health)
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline or process.poll() is not None:
                        raise SystemExit(f"no answer from {' '.join(argv)} under valgrind") from None
                    time.sleep(0.2)
            for _ in range(n):
                answer = client.post(url, content=body, headers={"Content-Type": "application/json", **headers})
                if answer.status_code != 200:
                    raise SystemExit(f"{url} answered {answer.status_code} under valgrind: {answer.text}")
    finally:
        process.terminate()
        process.wait(timeout=120)
    return int(re.search(r"^summary: (\d+)", out.read_text(errors="replace"), re.MULTILINE).group(1))


def _per_request(argv: list[str], env: dict, url: str, health: str, body: bytes, headers: dict) -> float:
    first, second = (_instructions(argv, env, url, health, body, headers, n) for n in (N1, N2))
    return (second - first) / (N2 - N1)


def measure(
    deployment, upstream, root: Path, port, bodies: dict, key: dict, plain_hop: Callable[[Path, int], str]
) -> dict[str, float]:
    """Instructions per request: the plain hop, the edge, the edge with a full name, and each part switched off.
    `bodies` holds "direct" (TensorZero's full name) and "edge" (the seed's bare name); `plain_hop(prefix, port)`
    is the timed benchmark's own plain hop's nginx.conf, so both tables measure the same hop."""
    results = {}
    plain_root = root / "callgrind-plain"
    plain_root.mkdir()
    plain_port = port()
    conf = plain_root / "nginx.conf"
    conf.write_text(plain_hop(plain_root, plain_port))
    plain_argv = [NGINX, "-p", f"{plain_root}/", "-c", str(conf), "-g", "daemon off; master_process off;"]
    chat = f"http://127.0.0.1:{plain_port}/openai/v1/chat/completions"
    # Ready once it answers anything (the hop has no health route of its own); N1's and N2's runs ask alike.
    results["plain nginx hop (keep-alive pool)"] = _per_request(
        plain_argv, {"PATH": os.environ["PATH"]}, chat, chat, bodies["direct"], {}
    )
    variants = (("edge", None, "edge"), ("edge, full name (no rename)", None, "direct"))
    variants += tuple((f"edge, {label}", (old, new), "edge") for label, old, new in SWITCHED_OFF)
    for label, change, body in variants:
        prefix = root / f"callgrind-{len(results)}"
        layout = local_layout(prefix)
        place(edge_service.config_files(deployment, upstream, None, layout=layout), prefix)
        if change:
            default = prefix / "conf.d" / Path(edge_service.CONFIG_PATH).name
            text = default.read_text()
            if change[0] not in text:
                raise SystemExit(f"the edge's config no longer holds {change[0]!r}: update SWITCHED_OFF")
            default.write_text(text.replace(change[0], change[1], 1))
        argv = [
            NGINX,
            "-p",
            f"{prefix}/",
            "-c",
            str(prefix / "nginx.conf"),
            "-g",
            global_directives(deployment) + " master_process off;",
        ]
        env = {"PATH": os.environ["PATH"], **container_env(deployment)}
        url = f"http://{layout.api}"
        results[label] = _per_request(
            argv, env, f"{url}/v1/chat/completions", url + edge_service.HEALTH_PATH, bodies[body], key
        )
    return results
