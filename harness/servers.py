"""Real servers on 127.0.0.1 that the harness starts itself: an S3 server (moto) and nginx.

Each server binds a free loopback port, is health-checked before use, keeps its log (shown when it
fails), runs in its own process group and is stopped with the whole group on exit, on error and on
Ctrl-C. nginx can add a fixed latency per request with its Lua module (`ngx.sleep`), because this
kernel has no netem qdisc; the added latency is measured, not assumed.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from .errors import HarnessError

S3_KEY, S3_SECRET, S3_REGION, S3_BUCKET = "harness", "harness-secret", "us-east-1", "harness"
LUA_MODULES = ("/usr/lib/nginx/modules/ndk_http_module.so", "/usr/lib/nginx/modules/ngx_http_lua_module.so")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    """A running server process; use as a context manager."""

    kind: str
    url: str
    process: subprocess.Popen
    log: Path
    workdir: Path
    env: dict[str, str] = field(default_factory=dict)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.alive():
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=5)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.process.wait()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _wait_healthy(server: Server, probe: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not server.alive():
            break
        try:
            with urllib.request.urlopen(probe, timeout=2) as response:
                if response.status < 500:
                    return
        except urllib.error.HTTPError as exc:
            if exc.code < 500:
                return
        except OSError:
            pass
        time.sleep(0.1)
    tail = server.log_tail()
    server.stop()
    raise HarnessError(f"{server.kind} server did not become healthy at {probe}; its log ends with: {tail[-400:]}")


def _spawn(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    with open(log, "w") as fh:
        return subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True,
                                env={**os.environ, **(env or {})})


def start_s3(bucket: str = S3_BUCKET) -> Server:
    """moto's S3 server on a free loopback port, with `bucket` created."""
    beside = Path(sys.executable).with_name("moto_server")  # this environment's moto first
    moto = str(beside) if beside.exists() else (shutil.which("moto_server") or str(beside))
    if not Path(moto).exists():
        raise HarnessError("moto_server not found: pip install 'moto[server]' (it ships with harness's set-up)")
    workdir = Path(tempfile.mkdtemp(prefix="harness-s3-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = Server("s3", url, _spawn([moto, "-H", "127.0.0.1", "-p", str(port)], workdir / "moto.log"),
                    workdir / "moto.log", workdir)
    _wait_healthy(server, url + "/")
    request = urllib.request.Request(f"{url}/{bucket}", method="PUT")
    urllib.request.urlopen(request, timeout=10).close()
    server.env = s3_env(url)
    return server


def s3_env(endpoint: str) -> dict[str, str]:
    """Environment that points both s3fs (botocore) and obstore at a loopback endpoint."""
    return {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": S3_KEY, "AWS_SECRET_ACCESS_KEY": S3_SECRET,
            "AWS_REGION": S3_REGION, "AWS_DEFAULT_REGION": S3_REGION, "AWS_ALLOW_HTTP": "true"}


def lua_available() -> bool:
    return all(Path(m).exists() for m in LUA_MODULES)


def start_http(root: Path, latency_ms: float = 0.0) -> Server:
    """nginx serving `root` read-only (GET/HEAD with range requests), optionally `latency_ms` per request."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        raise HarnessError("nginx not found: install the Debian package nginx-light (bash scripts/bootstrap.sh does)")
    if latency_ms and not lua_available():
        raise HarnessError("added latency needs nginx's Lua module: apt-get install libnginx-mod-http-lua")
    workdir = Path(tempfile.mkdtemp(prefix="harness-nginx-"))
    port = free_port()
    load = "".join(f"load_module {m};\n" for m in LUA_MODULES) if latency_ms else ""
    delay = f"access_by_lua_block {{ ngx.sleep({latency_ms / 1000:.4f}) }}" if latency_ms else ""
    conf = workdir / "nginx.conf"
    user = "user root;\n" if os.geteuid() == 0 else ""  # workers must read the caller's private temp dirs
    conf.write_text(f"""{load}{user}daemon off;
worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log {workdir}/access.log;
    client_body_temp_path {workdir}/body; proxy_temp_path {workdir}/proxy;
    fastcgi_temp_path {workdir}/fcgi; uwsgi_temp_path {workdir}/uwsgi; scgi_temp_path {workdir}/scgi;
    sendfile on; keepalive_requests 100000;
    types {{ application/json json; }}
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port};
        root {Path(root).absolute()};
        location / {{ {delay} limit_except GET HEAD {{ deny all; }} }}
    }}
}}
""")
    server = Server("http", f"http://127.0.0.1:{port}", _spawn([nginx, "-c", str(conf), "-p", str(workdir)], workdir / "error.log"),
                    workdir / "error.log", workdir)
    _wait_healthy(server, server.url + "/")
    return server


def measured_latency_ms(url: str, requests: int = 20) -> float:
    """Median round trip of small GETs against a server (404s count: they still cross the proxy)."""
    times = []
    for _ in range(requests):
        t0 = time.perf_counter()
        try:
            urllib.request.urlopen(url, timeout=10).close()
        except urllib.error.HTTPError:
            pass
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return times[len(times) // 2]
