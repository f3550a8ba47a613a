"""The codec axis: names a user can type, mapped to zarr v3 compressors at write time.

zarr is imported only inside `build`, so listing the matrix stays cheap.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .errors import HarnessError

ZSTD_LEVELS = (0, 1, 3, 5)
BLOSC_CNAMES = ("lz4", "zstd")
BLOSC_SHUFFLES = ("shuffle", "bitshuffle", "noshuffle")
BLOSC_CLEVEL = 5

_ZSTD = re.compile(r"^zstd-(?P<level>-?\d+)(?P<checksum>-checksum)?$")
_BLOSC = re.compile(r"^blosc-(?P<cname>lz4|zstd)-(?P<shuffle>shuffle|bitshuffle|noshuffle)$")


def all_codec_names() -> list[str]:
    """Every named codec value of the axis (the full list; the default sweep picks a few)."""
    names = ["none"]
    for level in ZSTD_LEVELS:
        names += [f"zstd-{level}", f"zstd-{level}-checksum"]
    names += [f"blosc-{c}-{s}" for c in BLOSC_CNAMES for s in BLOSC_SHUFFLES]
    return names


@dataclass(frozen=True)
class CodecSpec:
    """A parsed codec value: enough to build the compressor and describe it in results."""

    name: str
    kind: str  # none | zstd | blosc
    level: int | None = None
    checksum: bool = False
    cname: str | None = None
    shuffle: str | None = None

    def build(self) -> tuple[Any, ...] | None:
        """zarr `compressors=` value; None means no compression."""
        if self.kind == "none":
            return None
        from zarr.codecs import BloscCodec, ZstdCodec

        if self.kind == "zstd":
            return (ZstdCodec(level=self.level, checksum=self.checksum),)
        return (BloscCodec(cname=self.cname, clevel=BLOSC_CLEVEL, shuffle=self.shuffle),)


def parse_codec(name: Any) -> CodecSpec:
    """Parse a codec name (`none`, `zstd-3`, `zstd-3-checksum`, `blosc-lz4-bitshuffle`, ...)."""
    if isinstance(name, CodecSpec):
        return name
    name = str(name)
    if name == "none":
        return CodecSpec(name, "none")
    if m := _ZSTD.match(name):
        level = int(m["level"])
        if not -7 <= level <= 22:
            raise HarnessError(f"zstd level {level} in codec {name!r} is outside -7..22")
        return CodecSpec(name, "zstd", level=level, checksum=bool(m["checksum"]))
    if m := _BLOSC.match(name):
        return CodecSpec(name, "blosc", cname=m["cname"], shuffle=m["shuffle"])
    raise HarnessError(
        f"unknown codec {name!r}; valid: none, zstd-<level>[-checksum], "
        f"blosc-<{'|'.join(BLOSC_CNAMES)}>-<{'|'.join(BLOSC_SHUFFLES)}>"
    )
