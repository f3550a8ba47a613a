"""Real servers on 127.0.0.1 that the harness starts itself: an S3 server (moto) and nginx.

Each server binds a free loopback port, is health-checked before use, keeps its log (shown when it
fails), runs in its own process group and is stopped with the whole group on exit, on error and on
Ctrl-C. nginx can add a fixed latency per request with its Lua module (`ngx.sleep`), because this
kernel has no netem qdisc; the added latency is measured, not assumed.
"""

from __future__ import annotations

import fcntl
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

from ..errors import HarnessError
from .lifecycle import die_with_parent
from .network import LUA_MODULES, Network, lua_available, require_lua

S3_KEY, S3_SECRET, S3_REGION, S3_BUCKET = "harness", "harness-secret", "us-east-1", "harness"


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
    access_log: Path | None = None
    children: list[Server] = field(default_factory=list)
    engine: str = ""

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
        for child in self.children:
            child.stop()
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
        # SIGTERM when the harness dies, even by SIGKILL: nginx then stops its workers, node and moto exit
        return subprocess.Popen(
            cmd,
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **(env or {})},
            preexec_fn=die_with_parent(signal.SIGTERM),
        )


#: S3 server engines: s3rver (npm; Node, files on disk, 7-19x moto's range-GET rate measured here) and
#: moto (PyPI; Python, in memory, CPU-bound on range GETs of large objects). `auto` prefers s3rver.
S3_ENGINES = ("auto", "s3rver", "moto")
S3RVER_VERSION = "3.7.1"
S3_ENGINE_ENV = "HARNESS_S3_ENGINE"


def tools_dir() -> Path:
    return Path(os.environ.get("HARNESS_TOOLS_DIR") or Path.home() / ".cache" / "harness" / "tools")


def s3rver_path(install: bool = True) -> Path | None:
    """s3rver from the harness's tool cache, installed from npm on first use when npm is available."""
    found = shutil.which("s3rver")
    if found:
        return Path(found)
    binary = tools_dir() / "node_modules" / ".bin" / "s3rver"
    if binary.exists() or not install or not shutil.which("npm") or not shutil.which("node"):
        return binary if binary.exists() else None
    tools_dir().mkdir(parents=True, exist_ok=True)
    with open(tools_dir() / ".install.lock", "w") as lock:  # two harnesses installing at once break npm's tree
        fcntl.flock(lock, fcntl.LOCK_EX)
        if binary.exists():  # the other one installed it while this one waited
            return binary
        done = subprocess.run(
            [
                "npm",
                "install",
                "--no-audit",
                "--no-fund",
                "--silent",
                "--prefix",
                str(tools_dir()),
                f"s3rver@{S3RVER_VERSION}",
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
    if done.returncode != 0 or not binary.exists():
        raise HarnessError(
            f"could not install s3rver from npm ({done.stderr.strip()[-300:]}); "
            f"use {S3_ENGINE_ENV}=moto or install it: npm install -g s3rver@{S3RVER_VERSION}"
        )
    return binary


def _node_legacy_openssl() -> dict[str, str]:
    """Node's options for s3rver: it encrypts ListObjectsV2 continuation tokens with DES, which OpenSSL 3 (Node
    17 and later) keeps in its legacy provider. Without it every listing longer than one page (1,000 keys) is
    a 500 InternalError (jamhall/s3rver #814), e.g. the file count of a zarr v2 store."""
    try:
        found = subprocess.run(["node", "--version"], capture_output=True, text=True, timeout=30).stdout
        major = int(found.strip().lstrip("v").split(".")[0])
    except (OSError, ValueError, subprocess.SubprocessError):
        return {}
    if major < 17:
        return {}
    return {"NODE_OPTIONS": f"{os.environ.get('NODE_OPTIONS', '')} --openssl-legacy-provider".strip()}


def _moto_path() -> Path | None:
    beside = Path(sys.executable).with_name("moto_server")  # this environment's moto first
    found = beside if beside.exists() else shutil.which("moto_server")
    return Path(found) if found else None


def start_s3(bucket: str = S3_BUCKET, network: Network | None = None, engine: str | None = None) -> Server:
    """An S3 server (s3rver, else moto) behind an nginx proxy on free loopback ports, with `bucket` created.

    Clients always talk to the proxy: its access log counts every request and byte, and it adds the
    network condition, so 0 ms and 20 ms runs take the same path.
    """
    network = network or Network()
    engine = engine or os.environ.get(S3_ENGINE_ENV, "auto")
    if engine not in S3_ENGINES:
        raise HarnessError(f"unknown S3 engine {engine!r} ({S3_ENGINE_ENV}); valid: {', '.join(S3_ENGINES)}")
    binary = s3rver_path() if engine in ("auto", "s3rver") and lua_available() else None  # Lua: conditional PUTs
    if binary is None and engine == "s3rver":
        raise HarnessError(
            "s3rver needs Node.js, npm and nginx's Lua module (apt-get install nodejs npm libnginx-mod-http-lua), "
            "or set HARNESS_S3_ENGINE=moto"
        )
    if binary is None:
        engine, binary = "moto", _moto_path()
        if binary is None:
            raise HarnessError("no S3 server found: install Node.js and npm (for s3rver) or pip install 'moto[server]'")
    else:
        engine = "s3rver"
    workdir = Path(tempfile.mkdtemp(prefix="harness-s3-"))
    port = free_port()
    if engine == "s3rver":
        (workdir / "data").mkdir()
        cmd = [
            str(binary),
            "-d",
            str(workdir / "data"),
            "-a",
            "127.0.0.1",
            "-p",
            str(port),
            "--silent",
            "--allow-mismatched-signatures",
            "--no-vhost-buckets",
            "--configure-bucket",
            bucket,
        ]
    else:
        cmd = [str(binary), "-H", "127.0.0.1", "-p", str(port)]
    env = _node_legacy_openssl() if engine == "s3rver" else {}
    upstream = Server(
        engine, f"http://127.0.0.1:{port}", _spawn(cmd, workdir / "server.log", env), workdir / "server.log", workdir
    )
    _wait_healthy(upstream, upstream.url + "/")
    try:
        server = _start_nginx(
            "s3", f"proxy_pass {upstream.url};", network, upstream=upstream.url if engine == "s3rver" else None
        )
    except BaseException:
        upstream.stop()
        raise
    server.children.append(upstream)
    server.engine = engine
    if engine == "moto":
        request = urllib.request.Request(f"{server.url}/{bucket}", method="PUT")
        urllib.request.urlopen(request, timeout=10).close()
    server.env = s3_env(server.url, *(("S3RVER", "S3RVER") if engine == "s3rver" else (S3_KEY, S3_SECRET)))
    return server


def s3_env(endpoint: str, key: str = S3_KEY, secret: str = S3_SECRET) -> dict[str, str]:
    """Environment that points both s3fs (botocore) and obstore at a loopback endpoint
    (s3rver knows only its built-in key pair, S3RVER/S3RVER)."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": key,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_REGION": S3_REGION,
        "AWS_DEFAULT_REGION": S3_REGION,
        "AWS_ALLOW_HTTP": "true",
    }


def start_http(
    root: Path, latency_ms: float = 0.0, network: Network | None = None, faults: dict[str, int] | None = None
) -> Server:
    """nginx serving `root` read-only (GET/HEAD with range requests) under a network condition.

    `faults` maps a URL regex to an HTTP status nginx answers instead (fault injection, e.g.
    {"/X/data/": 500}; status 0: the request hangs): readers must fail on it, never return fill values.
    """
    network = network or Network(latency_ms=latency_ms)
    hangs = any(status == 0 for status in (faults or {}).values())
    extra = "".join(
        f"location ~ {pattern} {{ {'access_by_lua_block { ngx.sleep(3600) }' if not status else f'return {int(status)};'} }}\n        "
        for pattern, status in (faults or {}).items()
    )
    return _start_nginx(
        "http",
        f"root {Path(root).absolute()}; limit_except GET HEAD {{ deny all; }}",
        network,
        extra=extra,
        needs_lua=hangs,
    )


#: Lua that fixes two s3rver gaps found by the harness's own checks, using a HEAD subrequest:
#: - a conditional create (`If-None-Match: *`, what zarr's `set_if_not_exists` sends through obstore)
#:   gets 412 when the key exists: s3rver ignores the header and overwrote a group's zarr.json with an
#:   empty one (observed: anndata's sparse `shape` attribute lost);
#: - a suffix range (`bytes=-N`, how shard indexes are read) is turned into an explicit range: s3rver
#:   answers it with the first N+1 bytes (observed: shard index checksum errors).
S3RVER_FIXES_LUA = """
        local range = ngx.var.http_range
        local suffix = ngx.req.get_method() == "GET" and range and range:match("^bytes=%-(%d+)$")
        if suffix then
            local head = ngx.location.capture("/__exists" .. ngx.var.uri, { method = ngx.HTTP_HEAD })
            local size = tonumber(head.header["Content-Length"])
            if head.status == 200 and size then
                ngx.req.set_header("Range", "bytes=" .. math.max(size - tonumber(suffix), 0) .. "-" .. (size - 1))
            end
        end
        if ngx.req.get_method() == "PUT" and ngx.var.http_if_none_match == "*" then
            local res = ngx.location.capture("/__exists" .. ngx.var.uri, { method = ngx.HTTP_HEAD })
            if res.status == 200 then
                ngx.status = 412
                ngx.header["Content-Type"] = "application/xml"
                ngx.print('<?xml version="1.0" encoding="UTF-8"?><Error><Code>PreconditionFailed</Code>'
                          .. '<Message>At least one of the pre-conditions you specified did not hold</Message></Error>')
                return ngx.exit(412)
            end
        end"""


def _start_nginx(
    kind: str, location: str, network: Network, upstream: str | None = None, extra: str = "", needs_lua: bool = False
) -> Server:
    """nginx on a free port: `location` inside `location /`; with `upstream` (s3rver), S3RVER_FIXES_LUA too."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        raise HarnessError("nginx not found: install the Debian package nginx-light (bash scripts/bootstrap.sh does)")
    if network.latency_ms or needs_lua:
        require_lua("added latency" if network.latency_ms else "a hanging fault")
    workdir = Path(tempfile.mkdtemp(prefix=f"harness-nginx-{kind}-"))
    port = free_port()
    lua = ([f"ngx.sleep({network.latency_ms / 1000:.4f})"] if network.latency_ms else []) + (
        [S3RVER_FIXES_LUA] if upstream else []
    )
    load = "".join(f"load_module {m};\n" for m in LUA_MODULES) if lua or needs_lua else ""
    delay = f"access_by_lua_block {{ {' '.join(lua)} }}" if lua else ""
    exists = (
        (
            f"location /__exists/ {{ internal; rewrite ^/__exists(.*)$ $1 break; proxy_pass_request_body off; "
            f'proxy_set_header Content-Length ""; proxy_set_header If-None-Match ""; proxy_set_header Range ""; '
            f"proxy_pass {upstream}; }}"
        )
        if upstream
        else ""
    )
    rate = f"limit_rate {network.rate_bytes_per_s};" if network.rate_bytes_per_s else ""
    conf = workdir / "nginx.conf"
    user = "user root;\n" if os.geteuid() == 0 else ""  # workers must read the caller's private temp dirs
    conf.write_text(f"""{load}{user}daemon off;
worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    log_format harness '$request_method\t$request_uri\t$http_range\t$status\t$body_bytes_sent\t$request_time';
    access_log {workdir}/access.log harness;
    client_body_temp_path {workdir}/body; proxy_temp_path {workdir}/proxy;
    fastcgi_temp_path {workdir}/fcgi; uwsgi_temp_path {workdir}/uwsgi; scgi_temp_path {workdir}/scgi;
    sendfile on; keepalive_requests 100000; client_max_body_size 0;
    proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header Host $http_host;
    proxy_request_buffering off; proxy_buffering off;
    types {{ application/json json; }}
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port};
        {extra}location / {{ {delay} {rate} {location} }}
        {exists}
    }}
}}
""")
    server = Server(
        kind,
        f"http://127.0.0.1:{port}",
        _spawn([nginx, "-c", str(conf), "-p", str(workdir)], workdir / "error.log"),
        workdir / "error.log",
        workdir,
        access_log=workdir / "access.log",
    )
    _wait_healthy(server, server.url + "/")
    return server
