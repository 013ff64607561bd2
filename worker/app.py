"""The Celery application workers run: ``celery -A worker.app worker -Q interactive,bulk``.

It holds the app, the process's services and the worker's lifecycle (logging, engine warm-up,
metrics, the retention sweeper); the task is ``worker/tasks.py``, the job pipeline
``worker/pipeline.py``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from celery.signals import setup_logging, worker_process_init, worker_ready, worker_shutdown

from core.logs import configure_logging
from core.queue import make_celery
from core.services import Services
from core.settings import Settings

from . import engines
from .sweeper import Sweeper

log = logging.getLogger("sneaky.worker")


settings = Settings.from_env()
app = make_celery(settings)
app.conf.include = ["worker.tasks"]
engines.configure(settings.weights, flip_average=bool(settings.flip_average))
_services: Services | None = None


def services() -> Services:
    global _services
    if _services is None:  # per process, after the fork
        _services = Services(settings, celery=app)
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


_sweeper: Sweeper | None = None


@worker_ready.connect
def _start_retention_sweeper(**_: object) -> None:
    global _sweeper
    _sweeper = Sweeper(lambda: services().storage, settings.retention_seconds).start()


@worker_shutdown.connect
def _stop_retention_sweeper(**_: object) -> None:
    if _sweeper is not None:
        _sweeper.stop()
