"""Network conditions the loopback servers apply (nginx: added latency per request through its Lua module,
a per-connection response rate), and the round trip measured through them: the condition is measured,
not assumed. This kernel has no netem qdisc, so nothing lower is used."""

from __future__ import annotations

import re
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ..errors import HarnessError

LUA_MODULES = ("/usr/lib/nginx/modules/ndk_http_module.so", "/usr/lib/nginx/modules/ngx_http_lua_module.so")


@dataclass(frozen=True)
class Network:
    """A network condition applied by the nginx in front of every server: added latency per request and a
    per-connection response rate (nginx `limit_rate`). This kernel has no netem, so nothing lower is used."""

    latency_ms: float = 0.0
    rate_bytes_per_s: int = 0

    @classmethod
    def parse(cls, text: str | None) -> Network:
        """`latency=20ms,rate=1gbit` (units: ms or s; bit, kbit, mbit, gbit or b, kb, mb, gb per second)."""
        if not text or text.strip() in ("", "none"):
            return cls()
        latency, rate = 0.0, 0
        for part in (p.strip() for p in text.split(",") if p.strip()):
            key, _, value = part.partition("=")
            value = value.strip().lower()
            match = re.fullmatch(r"([0-9.]+)\s*([a-z]*)", value)
            if not match:
                raise HarnessError(
                    f"--network {part!r}: expected a number with a unit, e.g. latency=20ms or rate=1gbit"
                )
            number, unit = float(match.group(1)), match.group(2)
            if key == "latency":
                scale = {"ms": 1.0, "": 1.0, "s": 1000.0}.get(unit)
                if scale is None:
                    raise HarnessError(f"--network latency unit {unit!r} unknown; use ms or s (e.g. latency=20ms)")
                latency = number * scale
            elif key == "rate":
                scale = {
                    "bit": 1 / 8,
                    "kbit": 1e3 / 8,
                    "mbit": 1e6 / 8,
                    "gbit": 1e9 / 8,
                    "b": 1,
                    "kb": 1e3,
                    "mb": 1e6,
                    "gb": 1e9,
                }.get(unit)
                if scale is None:
                    raise HarnessError(
                        f"--network rate unit {unit!r} unknown; use bit, kbit, mbit, gbit (e.g. rate=1gbit)"
                    )
                rate = int(number * scale)
            else:
                raise HarnessError(f"--network condition {key!r} unknown; valid: latency=<ms>, rate=<bits per second>")
        if latency:
            require_lua("added latency")  # fail at parse time, before any server or point starts
        return cls(latency, rate)

    @property
    def label(self) -> str:
        parts = [f"latency={self.latency_ms:g}ms"] if self.latency_ms else []
        parts += [f"rate={self.rate_bytes_per_s * 8 / 1e6:g}mbit"] if self.rate_bytes_per_s else []
        return ",".join(parts) or "none"


def lua_available() -> bool:
    return all(Path(m).exists() for m in LUA_MODULES)


def require_lua(what: str) -> None:
    """One check, one message: `what` needs nginx's Lua module."""
    if not lua_available():
        raise HarnessError(f"{what} needs nginx's Lua module: apt-get install libnginx-mod-http-lua")


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
