"""The Celery application workers run: ``celery -A worker.app worker -Q interactive,bulk``.

It holds the app, the process's services and the worker's lifecycle (logging, engine warm-up,
metrics, the retention sweeper and the lease reaper); the tasks are ``worker/tasks.py``, the job
pipeline ``worker/pipeline.py``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from celery.signals import (
    setup_logging,
    worker_init,
    worker_process_init,
    worker_ready,
    worker_shutdown,
    worker_shutting_down,
)

from core.logs import configure_logging
from core.queue import make_celery
from core.services import Services
from core.settings import Settings

from . import drain, engines
from .leases import Heartbeat, reap
from .periodic import Periodic, retention_sweeper

log = logging.getLogger("sneaky.worker")


settings = Settings.from_env()
app = make_celery(settings)
app.conf.include = ["worker.tasks"]
engines.configure(settings.weights, flip_average=bool(settings.flip_average))
_services: Services | None = None
_heartbeat: Heartbeat | None = None


def services() -> Services:
    global _services
    if _services is None:  # per process, after the fork
        _services = Services(settings, celery=app)
    return _services


def heartbeat() -> Heartbeat:
    """The leases of the jobs this process runs, renewed from a thread of this process."""
    global _heartbeat
    if _heartbeat is None:
        _heartbeat = Heartbeat(services().leases)
    return _heartbeat


@setup_logging.connect
def _logging(**_: object) -> None:
    """Our format (JSON lines, or text under `sneaky up`) instead of Celery's."""
    configure_logging()


READY_FILE = os.environ.get("SNEAKY_READY_FILE", "/tmp/sneaky-worker-ready")


@worker_init.connect
def _share_the_cores(sender: object = None, **_: object) -> None:
    """In the main process, before the pool forks: each pool process gets its share of the cores."""
    processes = int(getattr(sender, "concurrency", 1) or 1)
    threads = engines.threads_per_process(len(os.sched_getaffinity(0)), processes, settings.worker_threads)
    engines.configure(settings.weights, flip_average=bool(settings.flip_average), threads=threads,
                      runtime=settings.cpu_runtime)
    log.info("%d pool processes, %d CPU threads each", processes, threads)


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


_background: list[Periodic] = []


@worker_ready.connect
def _start_background(**_: object) -> None:
    """In the worker's main process: the retention sweep, and the reaper that puts back jobs whose
    worker stopped renewing their lease (another host's, or a pool child of this one that died)."""
    _background.append(retention_sweeper(lambda: services().storage, settings.retention_seconds).start())
    _background.append(Periodic("lease-reaper", settings.lease_seconds / 3, lambda: reap(services(), app)).start())


@worker_shutting_down.connect
def _begin_drain(**_: object) -> None:
    """SIGTERM: the job in hand has SNEAKY_STOP_GRACE_SECONDS, then it is handed back (worker/drain.py)."""
    drain.begin(settings.stop_grace_seconds)
    log.info("worker stopping: a running job has %d s to finish", settings.stop_grace_seconds)


@worker_shutdown.connect
def _stop_background(**_: object) -> None:
    for duty in _background:
        duty.stop()
    drain.end()
