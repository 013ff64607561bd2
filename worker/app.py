"""The Celery application workers run: ``celery -A worker.app worker -Q interactive,bulk``."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import redis
from celery import Task
from celery.signals import setup_logging, worker_process_init, worker_ready

from core.jobs import JobStore
from core.logs import configure_logging
from core.queue import RUN_JOBS, enqueue, make_celery
from core.settings import Settings
from core.storage import open_storage

from . import engines, tasks

log = logging.getLogger("sneaky.worker")


class Services:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.jobs = JobStore(redis.Redis.from_url(settings.redis_url), settings.retention_seconds)
        self.storage = open_storage(settings.storage_url)


settings = Settings.from_env()
app = make_celery(settings)
engines.configure(settings.weights, flip_average=bool(settings.flip_average))
_services: Services | None = None


def services() -> Services:
    global _services
    if _services is None:  # per process, after the fork
        _services = Services(settings)
    return _services


@setup_logging.connect
def _logging(**_: object) -> None:
    """Our format (JSON lines, or text under `sneaky up`) instead of Celery's."""
    configure_logging()


READY_FILE = os.environ.get("SNEAKY_READY_FILE", "/tmp/sneaky-worker-ready")


@worker_process_init.connect
def _load_default_engine(**_: object) -> None:
    """Load the default engine in each child as it starts and run one small fill through it,
    so the first job does not wait; then say ready (a file the container's probe looks for)."""
    try:
        import numpy as np
        from PIL import Image

        inpainter = engines.get(settings.default_engine)
        hole = np.zeros((64, 64), bool)
        hole[16:32, 16:32] = True
        inpainter.inpaint_hole(Image.new("RGB", (64, 64), (120, 130, 140)), hole)
        Path(READY_FILE).touch()
        log.info("worker ready", extra={"engine": settings.default_engine})
    except Exception:
        log.exception("could not load engine %s", settings.default_engine)


SWEEP_EVERY_SECONDS = 3600


@worker_ready.connect
def _serve_metrics(**_: object) -> None:
    """Workers of a pool each get scraped on SNEAKY_WORKER_METRICS_PORT (Kubernetes, compose)."""
    port = os.environ.get("SNEAKY_WORKER_METRICS_PORT")
    if not port:
        return
    from prometheus_client import CollectorRegistry, start_http_server

    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)
    start_http_server(int(port), registry=registry)


@worker_ready.connect
def _start_retention_sweeper(**_: object) -> None:
    """Stored objects outlive nothing: inputs and results older than the retention time go,
    as their job records (which expire in Redis) have gone."""

    def sweep_forever() -> None:
        while True:
            try:
                removed = services().storage.delete_older_than(settings.retention_seconds)
                if removed:
                    log.info("retention sweep removed %d stored objects", removed)
            except Exception:
                log.warning("retention sweep failed", exc_info=True)
            stop.wait(SWEEP_EVERY_SECONDS)

    stop = threading.Event()
    threading.Thread(target=sweep_forever, name="retention-sweeper", daemon=True).start()


@app.task(name=RUN_JOBS, bind=True)
def run_jobs(self: Task, job_ids: list[str]) -> list[str | None]:
    if tasks.split_if_retried(services(), job_ids):
        queue = (self.request.delivery_info or {}).get("routing_key") or "bulk"
        for job_id in job_ids:
            enqueue(app, [job_id], queue, settings.job_time_limit)
        return ["split"] * len(job_ids)
    return tasks.run_jobs(services(), job_ids)
