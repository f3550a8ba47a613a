"""harness: measure and tune how AnnData is stored on zarr v3."""

__version__ = "0.1.0"
