"""The codec axis: names a user can type, mapped to zarr v3 compressors at write time, one codec for every
array or a codec per array role.

No codec suits every array of an AnnData: zstd keeps log-normalised values at 3-4x the ratio of any Blosc
setting, while Blosc with a shuffle wins on integer indices and counts. Roles:

- `data`: the values of sparse matrices (`X.data` and `layers.data` override it for X or for the layers);
- `index`: their `indices` and `indptr`;
- `dense`: arrays of two or more dimensions (dense X, layers, obsm, varm);
- `columns`: one-dimensional arrays (obs/var columns, categorical codes, strings).

Spelling: a codec name (`zstd-0`, `zstd-1`, `zstd--3`, `blosc-zstd-shuffle-1`, `none`) for every array, or
`role:codec` joined by `+` (e.g. `data:zstd-1+index:blosc-zstd-shuffle-1`); unnamed roles keep zarr's default,
zstd-0. zarr is imported only inside `build`, so listing the matrix stays cheap.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from .errors import HarnessError

ZSTD_LEVELS = (0, 1, 3, 5)
BLOSC_CNAMES = ("lz4", "zstd")
BLOSC_SHUFFLES = ("shuffle", "bitshuffle", "noshuffle")
BLOSC_CLEVEL = 5
DEFAULT = "zstd-0"  # zarr's v3 default, and anndata's

_ZSTD = re.compile(r"^zstd-(?P<level>-?\d+)(?P<checksum>-checksum)?$")
_BLOSC = re.compile(r"^blosc-(?P<cname>lz4|zstd)-(?P<shuffle>shuffle|bitshuffle|noshuffle)(?:-(?P<clevel>\d))?$")


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
    level: int | None = None  # zstd level, or Blosc's clevel
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
        return (BloscCodec(cname=self.cname, clevel=self.level, shuffle=self.shuffle),)


def parse_codec(name: Any) -> CodecSpec:
    """Parse one codec name (`none`, `zstd-3`, `zstd-3-checksum`, `zstd--1`, `blosc-lz4-bitshuffle`,
    `blosc-zstd-shuffle-1`: Blosc's level last, 5 when left out)."""
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
        clevel = int(m["clevel"] or BLOSC_CLEVEL)
        if not 1 <= clevel <= 9:
            raise HarnessError(f"Blosc level {clevel} in codec {name!r} is outside 1..9")
        canonical = f"blosc-{m['cname']}-{m['shuffle']}" + ("" if clevel == BLOSC_CLEVEL else f"-{clevel}")
        return CodecSpec(canonical, "blosc", level=clevel, cname=m["cname"], shuffle=m["shuffle"])
    raise HarnessError(
        f"unknown codec {name!r}; valid: none, zstd-<level>[-checksum], "
        f"blosc-<{'|'.join(BLOSC_CNAMES)}>-<{'|'.join(BLOSC_SHUFFLES)}>[-<level 1-9>], or role:codec joined by + "
        "(roles: data, X.data, layers.data, index, dense, columns)"
    )


@dataclass(frozen=True)
class Codecs:
    """A codec per array role (see the module's docstring); `x_data` / `layers_data` None follow `data`."""

    data: CodecSpec
    index: CodecSpec
    dense: CodecSpec
    columns: CodecSpec
    x_data: CodecSpec | None = None
    layers_data: CodecSpec | None = None

    @property
    def roles(self) -> dict[str, CodecSpec]:
        """Every role's codec, by its spelling."""
        return {role: getattr(self, field) or self.data for field, role in ROLE_NAMES.items()}

    @property
    def uniform(self) -> CodecSpec | None:
        """The one codec of every array, or None when roles differ."""
        specs = set(self.roles.values())
        return specs.pop() if len(specs) == 1 else None

    @property
    def name(self) -> str:
        if self.uniform is not None:
            return self.uniform.name
        explicit = {ROLE_NAMES[field]: getattr(self, field) for field in ROLE_NAMES if getattr(self, field)}
        return "+".join(f"{role}:{spec.name}" for role, spec in explicit.items() if spec.name != DEFAULT)

    @property
    def kind(self) -> str:
        return self.uniform.kind if self.uniform else "per-role"

    def for_data(self, matrix: str) -> CodecSpec:
        """The codec of a sparse matrix's values: X's, a layer's, or another's."""
        if matrix == "X" and self.x_data:
            return self.x_data
        if matrix == "layers" and self.layers_data:
            return self.layers_data
        return self.data

    def build(self) -> tuple[Any, ...] | None:
        """zarr `compressors=` for every array (a uniform codec only)."""
        if self.uniform is None:
            raise HarnessError(f"codec {self.name!r} differs by role: build per role with `roles`")
        return self.uniform.build()


#: Field -> spelling of a role.
ROLE_NAMES = {
    "data": "data",
    "x_data": "X.data",
    "layers_data": "layers.data",
    "index": "index",
    "dense": "dense",
    "columns": "columns",
}


def parse_codecs(text: Any) -> Codecs:
    """A codec for every array (`zstd-1`), or per role (`data:zstd-1+index:blosc-zstd-shuffle-1`)."""
    if isinstance(text, Codecs):
        return text
    if isinstance(text, CodecSpec) or ":" not in str(text):
        spec = parse_codec(text)
        return Codecs(spec, spec, spec, spec)
    default = parse_codec(DEFAULT)
    given: dict[str, CodecSpec] = {}
    field_of = {v: k for k, v in ROLE_NAMES.items()}
    for part in str(text).split("+"):
        role, _, name = part.partition(":")
        if role not in field_of:
            raise HarnessError(f"unknown codec role {role!r} in {text!r}; valid: {', '.join(field_of)}")
        given[field_of[role]] = parse_codec(name)
    codecs = Codecs(default, default, default, default)
    return replace(codecs, **given)
