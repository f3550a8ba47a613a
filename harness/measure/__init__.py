"""The engine: datasets, workloads and their verification, the runner and its isolated workers, the
loopback servers and request counting, provenance, and the asv / pytest-benchmark glue."""
