"""The job: fetch inputs, run the engine, store the result in the input's format, record the outcome."""

from __future__ import annotations

import io
import logging
import sys
import time
import warnings
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import requests
from celery.exceptions import SoftTimeLimitExceeded
from PIL import Image

from core.jobs import CANCELED, RUNNING, TERMINAL, JobStore, object_key, public_view
from core.metrics import BATCH_SIZE, GPU_MEMORY, JOB_LATENCY, JOBS_FINISHED, MODEL_LATENCY
from core.photos import ACCEPTED_FORMATS, EXTENSIONS
from core.retry import retrying
from core.storage import ObjectMissing, StorageUnavailable
from core.webhooks import WebhookRefused, check_webhook_url
from pconv.images import InpaintError, check_mask_size, encode, grow_hole, mask_to_hole, upright

from . import engines

if TYPE_CHECKING:  # the app module imports this one; pconv.inpaint brings torch
    from pconv.inpaint import Plan

    from .app import Services

log = logging.getLogger("sneaky.worker")


class Canceled(Exception):
    pass


@dataclass
class Work:
    """One job on its way through a group: inputs decoded, then filled, then stored."""

    job_id: str
    job: dict
    started: float
    image: Image.Image | None = None
    plan: Plan | None = None  # the crops to fill
    fmt: str = ""
    hole_ratio: float = 0.0
    result: Image.Image | None = None
    outcome: str | None = None  # set once the job has ended (or was skipped)


def split_if_retried(services: Services, job_ids: list[str]) -> bool:
    """A group coming back (its worker died) is split into one message per job, so a photo
    that kills workers takes no other job down with it again. True if it was split."""
    if len(job_ids) < 2:
        return False
    jobs = services.jobs
    with jobs.redis.pipeline() as pipe:
        for job_id in job_ids:
            pipe.hget(jobs.job_key(job_id), "attempts")
        attempts = [int(a or 0) for a in pipe.execute()]
    return max(attempts) > 0


def run_jobs(services: Services, job_ids: list[str]) -> list[str | None]:
    """Run a group of jobs: decode each, fill all that share an engine together (their crops
    share forward passes), then store each result. Each job ends on its own: one bad photo
    fails alone. Returns each job's outcome, in order; finished jobs notify their webhooks."""
    work = [_load(services, job_id) for job_id in job_ids]
    by_engine: dict[str, list[Work]] = {}
    for w in work:
        if w.outcome is None:
            by_engine.setdefault(w.job["engine"], []).append(w)
    for engine, group in by_engine.items():
        BATCH_SIZE.observe(len(group))
        with MODEL_LATENCY.labels(engine).time():
            _fill(services, engine, group)
        _record_gpu_memory()
    for w in work:
        if w.outcome is None:
            w.outcome = _store(services, w)
        if w.outcome in TERMINAL and w.job:
            services.jobs.signal_done(w.job_id)
            _count_finished(w)
            notify_webhook(services, w.job_id)
    return [w.outcome for w in work]


def _count_finished(w: Work) -> None:
    engine = w.job.get("engine", "")
    JOBS_FINISHED.labels(w.outcome, engine).inc()
    created = w.job.get("created_at")
    if created:
        waited = time.time() - datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp()
        JOB_LATENCY.labels(engine).observe(max(0.0, waited))
    log.info("job %s %s", w.job_id, w.outcome, extra={"job_id": w.job_id, "tenant": w.job.get("tenant"),
                                          "batch_id": w.job.get("batch_id") or None, "engine": engine,
                                          "duration_ms": round((time.monotonic() - w.started) * 1000, 1)})


def _record_gpu_memory() -> None:
    torch = sys.modules.get("torch")  # only where an engine brought it in
    if torch is not None and torch.cuda.is_available():
        GPU_MEMORY.set(torch.cuda.max_memory_allocated())


def _load(services: Services, job_id: str) -> Work:
    jobs = services.jobs
    started = retrying(lambda: jobs.start(job_id), f"job {job_id}: start")
    w = Work(job_id, {}, time.monotonic())
    if not started.applied:
        # deleted, already finished or canceled: a late or duplicate delivery does nothing
        log.info("job %s skipped: %s", job_id, started.previous or "no record", extra={"job_id": job_id})
        w.outcome = started.previous or "missing"
        return w
    w.job = jobs.get(job_id) or {}
    if w.job.get("attempts", 0) > services.settings.max_attempts:
        jobs.fail(job_id, "poisoned", f"the job was started {w.job['attempts'] - 1} times and never finished; "
                                      "its input probably crashes the worker")
        log.error("job %s poisoned after %d attempts", job_id, w.job["attempts"] - 1)
        w.outcome = "failed"
        return w
    try:
        image_bytes = retrying(lambda: services.storage.get(w.job["image_key"]), f"job {job_id}: read photo")
        mask_bytes = retrying(lambda: services.storage.get(w.job["mask_key"]), f"job {job_id}: read mask")
        photo, mask_size, hole, w.fmt = _open_inputs(image_bytes, mask_bytes, services.settings.max_pixels)
        hole = grow_hole(hole, w.job.get("grow", 0))
        w.hole_ratio = float(np.count_nonzero(hole)) / hole.size
        # plan the crops, then let the full-size hole go before the photo is decoded
        w.plan = engines.get(w.job["engine"]).plan(hole)
        del hole
        w.image = _decode_photo(photo, mask_size, w.fmt)
    except Exception as exc:
        w.outcome = _fail_from(services, w, exc)
    return w


def _fill(services: Services, engine: str, group: list[Work]) -> None:
    def all_canceled() -> None:  # a safe point between forward passes: stop once nobody wants the result
        if all(_cancel_requested(services.jobs, w.job_id) for w in group):
            raise Canceled

    try:
        inpainter = engines.get(engine)
        pairs: list[tuple[Image.Image, np.ndarray | Plan]] = []
        for w in group:
            assert w.image is not None and w.plan is not None, "only loaded jobs are filled"
            pairs.append((w.image, w.plan))
        results = inpainter.inpaint_many(pairs, check=all_canceled, in_place=True)
        for w, result in zip(group, results):
            w.result = result
    except (Canceled, SoftTimeLimitExceeded) as exc:
        for w in group:
            w.outcome = _fail_from(services, w, exc)
    except Exception:
        if len(group) == 1:
            group[0].outcome = _fail_from(services, group[0], sys.exc_info()[1])
            return
        for w in group:  # find the one that broke the group: each alone
            _fill(services, engine, [w])


def _store(services: Services, w: Work) -> str:
    jobs, storage = services.jobs, services.storage
    result_key = None
    try:
        if _cancel_requested(jobs, w.job_id):
            raise Canceled
        assert w.result is not None, "only filled jobs are stored"
        out = io.BytesIO()
        encode(w.result, out, w.fmt)
        result_key = object_key(w.job["tenant"], w.job_id, "result" + EXTENSIONS[w.fmt])
        retrying(lambda: storage.put(result_key, out.getvalue(), ACCEPTED_FORMATS[w.fmt]), f"job {w.job_id}: store")
        info = {**(w.job.get("input") or {}), "hole_ratio": round(w.hole_ratio, 6)}
        width, height = w.result.size
        result = {"width": width, "height": height, "format": w.fmt}

        def record() -> Any:
            jobs.redis.hset(jobs.job_key(w.job_id), "result_key", result_key)
            return jobs.succeed(w.job_id, result, info)

        done = retrying(record, f"job {w.job_id}: record")
        if not done.applied:  # canceled or deleted meanwhile: leave nothing behind
            storage.delete(result_key)
            return done.previous or "missing"
        return "succeeded"
    except Exception as exc:
        if result_key:
            try:
                storage.delete(result_key)
            except Exception:
                log.warning("job %s: could not remove its partial result", w.job_id)
        return _fail_from(services, w, exc)


def _fail_from(services: Services, w: Work, exc: BaseException | None) -> str:
    """End a job from the error that stopped it, with a stable code."""
    jobs = services.jobs
    if isinstance(exc, Canceled):
        jobs.cancel(w.job_id, from_states=(RUNNING,))
        return CANCELED
    if isinstance(exc, SoftTimeLimitExceeded):
        code, message = "timeout", "the job ran past its time limit"
    elif isinstance(exc, InpaintError):
        code, message = exc.code, str(exc)
    elif isinstance(exc, StorageUnavailable):
        code, message = "storage_unavailable", str(exc)
    elif isinstance(exc, ObjectMissing):
        code, message = "input_missing", f"an input of the job is gone from storage: {exc}"
    else:
        log.error("job %s failed", w.job_id, exc_info=exc)
        code, message = "internal", f"internal error ({type(exc).__name__})"
    retrying(lambda: jobs.fail(w.job_id, code, message), f"job {w.job_id}: record failure")
    log.info("job %s failed: %s", w.job_id, code, extra={"job_id": w.job_id, "code": code})
    return "failed"


def _cancel_requested(jobs: JobStore, job_id: str) -> bool:
    return jobs.redis.hget(jobs.job_key(job_id), "cancel_requested") == b"1"


def _open_inputs(image_bytes: bytes, mask_bytes: bytes,
                 max_pixels: int) -> tuple[Image.Image, tuple[int, int], np.ndarray, str]:
    """The photo opened (header only), the mask decoded to its hole and let go. The photo is
    decoded later (``_decode_photo``), once the hole has been planned into crops and freed: a
    144-megapixel job never holds photo and hole at full size together (docs/benchmarks.md)."""
    Image.MAX_IMAGE_PIXELS = max_pixels  # the API already refused anything larger
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(image_bytes))  # header only, for now
            fmt = image.format
            opened = Image.open(io.BytesIO(mask_bytes))
            opened.load()
            mask = upright(opened)
            mask_size = mask.size
            hole = mask_to_hole(mask)
            del mask, opened
    except (OSError, SyntaxError, ValueError) as exc:
        raise InpaintError(f"the image or mask cannot be decoded: {exc}", "invalid_image") from None
    if fmt not in ACCEPTED_FORMATS:
        raise InpaintError(f"{fmt} is not an accepted format", "unsupported_format")
    return image, mask_size, hole, fmt


def _decode_photo(image: Image.Image, mask_size: tuple[int, int], fmt: str) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image.load()
    except (OSError, SyntaxError, ValueError) as exc:
        raise InpaintError(f"the image cannot be decoded: {exc}", "invalid_image") from None
    image = upright(image)
    check_mask_size(image.size, mask_size)
    return image


WEBHOOK_ATTEMPTS = 3


def notify_webhook(services: Services, job_id: str) -> bool:
    """POST the finished job to its webhook_url: a few tries with backoff, never failing the job."""
    job = services.jobs.get(job_id)
    if not job or not job.get("webhook_url"):
        return False
    url = None
    if job["status"] == "succeeded" and job.get("result_key"):
        settings = services.settings
        url = services.storage.result_url(job["result_key"], settings.result_url_seconds, job_id)
        if not url and settings.public_url:
            url = f"{settings.public_url.rstrip('/')}/v1/jobs/{job_id}/result"
    body = public_view(job, url)
    try:
        check_webhook_url(job["webhook_url"], services.settings.webhook_allow_private == "1")
    except WebhookRefused as exc:
        log.warning("webhook for job %s not sent: %s", job_id, exc)
        return False
    for attempt in range(WEBHOOK_ATTEMPTS):
        try:
            response = requests.post(job["webhook_url"], json=body, timeout=5, allow_redirects=False,
                                     headers={"X-Sneaky-Event": "job.finished", "X-Sneaky-Job": job_id})
            if response.status_code < 300:
                return True
            log.warning("webhook for job %s answered %d", job_id, response.status_code)
        except requests.RequestException as exc:
            log.warning("webhook for job %s failed: %s", job_id, type(exc).__name__)
        time.sleep(0.5 * 2**attempt)
    return False
