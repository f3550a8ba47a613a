"""asv suites: thin classes over harness.workloads; parameters are harness.matrix point ids.

Widen the matrix with HARNESS_BENCH_AXES="pipeline=python,fused,zarrs;codec=zstd-0,zstd-3" and pick
the dataset with HARNESS_BENCH_DATASET (default: the built-in pbmc68k). asv times warm reads and
repeated writes over the same path (zarr clears it); `harness run` is the strict instrument (cold
reads, fresh paths, isolated processes), these suites track a stack over time.
"""

from harness.measure.bench import point_ids, prepare

POINTS = point_ids()


class _Workload:
    params = (POINTS,)
    param_names = ["point"]
    number = 1
    repeat = (1, 5, 30.0)
    timeout = 300
    workload = ""

    def setup(self, point):
        self.bench = prepare(self.workload, point)

    def teardown(self, point):
        bench = getattr(self, "bench", None)  # asv tears down after a setup that skipped, too
        if bench is not None:
            bench.cleanup()


class Write(_Workload):
    workload = "write"

    def time_write(self, point):
        self.bench.run()

    def peakmem_write(self, point):
        self.bench.run()

    def track_files(self, point):
        return self.bench.files

    track_files.unit = "files"

    def track_bytes_on_disk(self, point):
        return self.bench.bytes

    track_bytes_on_disk.unit = "bytes"

    def track_compression_ratio(self, point):
        return self.bench.compression_ratio

    track_compression_ratio.unit = "ratio"


class Read(_Workload):
    workload = "read"

    def time_read(self, point):
        self.bench.run()

    def peakmem_read(self, point):
        self.bench.run()


class LazyRows(_Workload):
    workload = "lazy-rows"

    def time_lazy_rows(self, point):
        self.bench.run()


class LazyRandom(_Workload):
    workload = "lazy-random"

    def time_lazy_random(self, point):
        self.bench.run()


class LazyObs(_Workload):
    workload = "lazy-obs"

    def time_lazy_obs(self, point):
        self.bench.run()


class Stream(_Workload):
    workload = "stream-async"

    def time_stream(self, point):
        self.bench.run()
