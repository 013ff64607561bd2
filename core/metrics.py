"""Prometheus metrics of the API and the workers.

Under gunicorn and Celery's prefork pool many processes count at once: with
``PROMETHEUS_MULTIPROC_DIR`` set (``sneaky up`` sets it; so do the images) each
process writes its samples there and ``/metrics`` adds them up. ``sneaky up`` gives
API and worker the same folder, so its one ``/metrics`` shows both.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

from . import keyspace

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600)

JOBS_SUBMITTED = Counter("sneaky_jobs_submitted_total", "Jobs accepted by the API", ["priority", "engine"])
JOBS_FINISHED = Counter("sneaky_jobs_finished_total", "Jobs that reached an end state", ["status", "engine"])
JOB_LATENCY = Histogram("sneaky_job_latency_seconds", "Submission to end state, per job", ["engine"],
                        buckets=LATENCY_BUCKETS)
MODEL_LATENCY = Histogram("sneaky_model_latency_seconds", "Filling one group of jobs (decode excluded)",
                          ["engine"], buckets=LATENCY_BUCKETS)
MODEL_BUSY = Histogram("sneaky_model_busy_fraction", "Share of a group's time spent filling (the rest: reading, "
                       "decoding, encoding, storing, recording)", ["engine"],
                       buckets=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0))
BATCH_SIZE = Histogram("sneaky_batch_size", "Jobs filled together in one group", buckets=(1, 2, 4, 8, 16, 32))
GPU_MEMORY = Gauge("sneaky_worker_gpu_memory_bytes", "GPU memory allocated by a worker process",
                   multiprocess_mode="max")
STORAGE_ERRORS = Counter("sneaky_storage_errors_total", "Storage calls that failed (before retries)", ["op"])
JOBS_REQUEUED = Counter("sneaky_jobs_requeued_total", "Running jobs whose lease ran out, put back on their queue")
LEASE_RENEW_FAILURES = Counter("sneaky_lease_renew_failures_total", "Heartbeats that could not renew their leases")
REDIS_ERRORS = Counter("sneaky_redis_errors_total", "Redis calls that failed (before retries)", ["op"])


class QueueDepthCollector:
    """Messages waiting per queue, read from the broker at scrape time."""

    def __init__(self, depth: Callable[[str], int], queues: tuple[str, ...] = keyspace.QUEUES) -> None:
        self.depth = depth
        self.queues = queues

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("sneaky_queue_depth", "Messages waiting in the broker", labels=["queue"])
        for queue in self.queues:
            try:
                family.add_metric([queue], float(self.depth(queue)))
            except Exception:  # a scrape must not fail because the broker does
                REDIS_ERRORS.labels("queue_depth").inc()
        yield family


def exposition(depth: Callable[[str], int] | None = None) -> bytes:
    """The text format for /metrics: every process's samples when multiprocess, plus queue depth."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)
    else:
        from prometheus_client import REGISTRY

        registry = REGISTRY
    if depth is not None:
        collector = QueueDepthCollector(depth)
        registry.register(collector)
        try:
            return generate_latest(registry)
        finally:
            registry.unregister(collector)
    return generate_latest(registry)
