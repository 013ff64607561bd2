"""The job: fetch inputs, run the engine, store the result in the input's format, record the outcome."""

from __future__ import annotations

import io
import logging
import time
import warnings

import numpy as np
import requests
from PIL import Image

from core.jobs import CANCELED, RUNNING, TERMINAL, object_key, public_view
from core.photos import ACCEPTED_FORMATS, EXTENSIONS
from core.storage import ObjectMissing, StorageUnavailable
from pconv.images import InpaintError, check_mask_size, encode, mask_to_hole, upright

from . import engines

log = logging.getLogger("sneaky.worker")


class Canceled(Exception):
    pass


def run_job(services, job_id: str) -> str:
    """Run one job to its outcome, then tell its webhook; returns the status it ended in
    (or why it was skipped)."""
    outcome = _run(services, job_id)
    if outcome in TERMINAL:
        notify_webhook(services, job_id)
    return outcome


def _run(services, job_id: str) -> str:
    jobs, storage = services.jobs, services.storage
    started = jobs.start(job_id)
    if not started.applied:
        # deleted, already finished or canceled: a late or duplicate delivery does nothing
        log.info("job %s skipped: %s", job_id, started.previous or "no record")
        return started.previous or "missing"
    job = jobs.get(job_id)
    t0 = time.monotonic()
    result_key = None
    try:
        image_bytes, mask_bytes = storage.get(job["image_key"]), storage.get(job["mask_key"])
        result, fmt, hole_ratio = inpaint_bytes(image_bytes, mask_bytes, job["engine"], services.settings.max_pixels)
        if _cancel_requested(jobs, job_id):
            raise Canceled
        result_key = object_key(job["tenant"], job_id, "result" + EXTENSIONS[fmt])
        storage.put(result_key, result.getvalue(), ACCEPTED_FORMATS[fmt])
        jobs.redis.hset(jobs.job_key(job_id), "result_key", result_key)
        info = {**(job.get("input") or {}), "hole_ratio": round(hole_ratio, 6)}
        done = jobs.succeed(job_id, {"width": result.width, "height": result.height, "format": fmt}, info)
        if not done.applied:  # canceled or deleted meanwhile: leave nothing behind
            storage.delete(result_key)
            return done.previous or "missing"
        log.info("job %s succeeded in %.3fs", job_id, time.monotonic() - t0)
        return "succeeded"
    except Canceled:
        jobs.cancel(job_id, from_states=(RUNNING,))
        return CANCELED
    except InpaintError as exc:
        return _fail(jobs, storage, job_id, result_key, exc.code, str(exc))
    except (StorageUnavailable, ObjectMissing) as exc:
        code = "storage_unavailable" if isinstance(exc, StorageUnavailable) else "input_missing"
        return _fail(jobs, storage, job_id, result_key, code, str(exc))
    except Exception as exc:
        log.exception("job %s failed", job_id)
        return _fail(jobs, storage, job_id, result_key, "internal", f"internal error ({type(exc).__name__})")


def _cancel_requested(jobs, job_id: str) -> bool:
    return jobs.redis.hget(jobs.job_key(job_id), "cancel_requested") == b"1"


def _fail(jobs, storage, job_id, result_key, code, message) -> str:
    if result_key:
        storage.delete(result_key)
    jobs.fail(job_id, code, message)
    log.info("job %s failed: %s", job_id, code)
    return "failed"


class EncodedResult(io.BytesIO):
    width: int
    height: int


def inpaint_bytes(image_bytes: bytes, mask_bytes: bytes, engine: str, max_pixels: int):
    """Decode, inpaint, encode in the photo's own format. Returns (bytes, format, hole ratio)."""
    Image.MAX_IMAGE_PIXELS = max_pixels  # the API already refused anything larger
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(image_bytes))
            fmt = image.format
            image.load()
            mask = Image.open(io.BytesIO(mask_bytes))
            mask.load()
    except (OSError, SyntaxError, ValueError) as exc:
        raise InpaintError(f"the image or mask cannot be decoded: {exc}", "invalid_image") from None
    if fmt not in ACCEPTED_FORMATS:
        raise InpaintError(f"{fmt} is not an accepted format", "unsupported_format")
    image, mask = upright(image), upright(mask)
    check_mask_size(image.size, mask.size)
    hole = mask_to_hole(mask)
    del mask
    hole_ratio = float(np.count_nonzero(hole)) / hole.size
    result = engines.get(engine).inpaint_hole(image, hole)
    if fmt == "JPEG" and result.mode not in ("RGB", "L", "CMYK"):
        result = result.convert("RGB")  # a JPEG decodes to these modes only; kept for safety
    out = EncodedResult()
    encode(result, out, fmt)
    out.width, out.height = result.size
    return out, fmt, hole_ratio


WEBHOOK_ATTEMPTS = 3


def notify_webhook(services, job_id: str) -> bool:
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
    for attempt in range(WEBHOOK_ATTEMPTS):
        try:
            response = requests.post(job["webhook_url"], json=body, timeout=5,
                                     headers={"X-Sneaky-Event": "job.finished", "X-Sneaky-Job": job_id})
            if response.status_code < 300:
                return True
            log.warning("webhook for job %s answered %d", job_id, response.status_code)
        except requests.RequestException as exc:
            log.warning("webhook for job %s failed: %s", job_id, type(exc).__name__)
        time.sleep(0.5 * 2**attempt)
    return False
