"""Liveness and readiness."""

from typing import Any

from apiflask import APIBlueprint
from flask import Response

from core.metrics import exposition
from core.queue import queue_depth
from core.storage import ping

from .context import services
from .schemas import Health

bp = APIBlueprint("health", __name__, tag="health")
METRICS_RESPONSES: dict[int | str, dict[str, str | dict[str, dict[str, Any]]]] = {
    200: {"description": "Prometheus text format", "content": {"text/plain": {"schema": {"type": "string"}}}}}


@bp.get("/healthz")
@bp.output(Health)
def healthz() -> dict[str, Any]:
    """The process is up."""
    return {"status": "ok", "checks": {}}


@bp.get("/readyz")
@bp.output(Health)
@bp.doc(responses={503: "Redis or storage unreachable"})
def readyz() -> tuple[dict[str, Any], int]:
    """Redis answers, and storage takes a small object and gives it back."""
    s = services()
    checks = {}
    try:
        s.redis.ping()
        checks["redis"] = "ok"
    except Exception as exc:  # any failure means not ready; say which
        checks["redis"] = f"error: {type(exc).__name__}"
    try:
        ping(s.storage)
        checks["storage"] = "ok"
    except Exception as exc:
        checks["storage"] = f"error: {type(exc).__name__}"
    ready = all(v == "ok" for v in checks.values())
    return {"status": "ready" if ready else "unavailable", "checks": checks}, 200 if ready else 503


@bp.get("/metrics")
@bp.doc(responses=METRICS_RESPONSES)
def metrics() -> Response:
    """Prometheus metrics of the API and, with a shared multiprocess folder, of the workers."""
    s = services()
    body = exposition(lambda queue: queue_depth(s.celery, s.redis, queue))
    return Response(body, mimetype="text/plain; version=0.0.4")
