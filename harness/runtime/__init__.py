"""What production code imports: `IOConfig` (how to store AnnData on zarr v3), `layered()` (what a
generated `recommended_config()` calls) and the typed setting values.

Depends on anndata, zarr and numcodecs only; zarrs, obstore, uvloop and dask are imported when a
configuration asks for them, and nothing of the benchmarking side of harness is imported here.
"""

from .cache import CacheSpec, parse_cache
from .codecs import Codecs, CodecSpec, parse_codec, parse_codecs
from .config import Api, IOConfig, element_keys, layered, zarrs_obstore_unsafe
from .errors import HarnessError, UnsupportedPoint
from .filters import Filter
from .knobs import Knobs, parse_knobs
from .pipelines import Loop, Pipeline
from .sharding import Policy, parse_policy
from .stores import Client, Location, Protocol, Store, parse_location

__all__ = [
    "Api",
    "CacheSpec",
    "Client",
    "CodecSpec",
    "Codecs",
    "Filter",
    "HarnessError",
    "IOConfig",
    "Knobs",
    "Location",
    "Loop",
    "Pipeline",
    "Policy",
    "Protocol",
    "Store",
    "UnsupportedPoint",
    "element_keys",
    "layered",
    "parse_cache",
    "parse_codec",
    "parse_codecs",
    "parse_knobs",
    "parse_location",
    "parse_policy",
    "zarrs_obstore_unsafe",
]
