"""The job pipeline: load a group's inputs, fill them together, store each result, record each outcome.

Every job of a group ends on its own: one bad photo fails alone, with the code of the error that
stopped it (``core/errors.py``). Webhooks are not sent here (``worker/webhooks.py``, after the
pipeline): a slow receiver must not hold the group's results.
"""

from __future__ import annotations

import io
import logging
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
from celery.exceptions import SoftTimeLimitExceeded
from PIL import Image

from core.errors import ObjectMissing, SneakyError, translate
from core.jobs import TERMINAL, Job, JobStatus
from core.metrics import BATCH_SIZE, GPU_MEMORY, JOB_LATENCY, JOBS_FINISHED, MODEL_BUSY, MODEL_LATENCY
from core.photos import ACCEPTED_FORMATS, EXTENSIONS, check_decodes, inspect
from core.queue import enqueue
from core.retry import retrying
from core.services import Services
from pconv.images import check_mask_size, decode_hole, grow_hole, orientation, upright
from pconv.jpegpatch import Window, decode_window
from pconv.results import patches, write_result

from . import drain, engines

if TYPE_CHECKING:  # pconv.inpaint brings torch: only with the first engine, in the worker process
    from pconv.inpaint import Plan

    from .leases import Heartbeat

log = logging.getLogger("sneaky.worker")


class Canceled(Exception):
    """Everyone who wanted the result asked to cancel: stop at the next safe point."""


@dataclass
class Work:
    """One job on its way through a group: inputs decoded, then filled, then stored."""

    job_id: str
    started: float
    job: Job | None = None  # None: skipped before it was read (a late or duplicate delivery)
    attempt: int = 0  # the attempt this worker runs: its transitions are fenced to it
    image: Image.Image | None = None
    original: bytes = b""  # the photo's file: a JPEG result is this file with the hole's blocks patched
    window: Window | None = None  # only this window of the JPEG was decoded
    plan: Plan | None = None  # the crops to fill
    fmt: str = ""
    hole_ratio: float = 0.0
    result: Image.Image | None = None
    outcome: str | None = None  # a JobStatus once the job has ended, or why it was skipped
    group: int = 1  # how many jobs were filled with it, in the same forward passes


def should_split(services: Services, job_ids: list[str]) -> bool:
    """A group coming back (its worker died) is split into one message per job, so a photo
    that kills workers takes no other job down with it again."""
    if len(job_ids) < 2:
        return False
    return max(retrying(lambda: services.jobs.attempts(job_ids), "read attempts")) > 0


def run(services: Services, job_ids: list[str], heartbeat: Heartbeat) -> list[Work]:
    """Run a group of jobs: decode each, fill all that share an engine together (their crops
    share forward passes), then store each result. Returns each job's work, in order, with its
    outcome; jobs that ended have woken their waiters. Each started job's lease is held by
    ``heartbeat`` until the group is done."""
    try:
        return _finish(services, _load_group(services, job_ids, heartbeat))
    finally:
        _release(heartbeat, job_ids)


def run_groups(services: Services, take: Callable[[], list[str] | None], heartbeat: Heartbeat,
               budget_seconds: float) -> list[Work]:
    """Bulk groups one after another, each next one taken (``take``: the tenants' turn, core/fairshare.py),
    read and decoded in a thread while the model fills the one before, so a GPU waits for no input.
    Stops when no group waits, when ``budget_seconds`` have passed (the task's time limit), or when the
    worker is stopping: a group read ahead then goes back to its queue, as any job in hand does."""
    deadline = time.monotonic() + budget_seconds
    first = take()
    if not first:
        return []
    done: list[Work] = []
    current: tuple[list[str], list[Work]] | None = (first, _load_group(services, first, heartbeat))
    with ThreadPoolExecutor(1, thread_name_prefix="read-ahead") as ahead:
        while current is not None:
            job_ids, loaded = current

            def read_next() -> tuple[list[str], list[Work]] | None:
                if time.monotonic() > deadline or drain.stopping():
                    return None
                following = take()
                return (following, _load_group(services, following, heartbeat)) if following else None

            following = ahead.submit(read_next)
            try:
                done += _finish(services, loaded)
            finally:
                _release(heartbeat, job_ids)
            current = following.result()
            if current is not None and drain.stopping():  # read ahead, never filled: back to the queue
                job_ids, loaded = current
                for w in loaded:
                    if w.outcome is None and w.job is not None:
                        w.outcome = _hand_back(services, w)
                done += loaded
                _release(heartbeat, job_ids)
                current = None
    return done


def _release(heartbeat: Heartbeat, job_ids: list[str]) -> None:
    try:
        heartbeat.release(job_ids)
    except Exception:  # leases run out by themselves; the jobs have ended or gone back
        log.warning("could not release the leases of %s", job_ids)


def _load_group(services: Services, job_ids: list[str], heartbeat: Heartbeat) -> list[Work]:
    # every job of the message from the moment it is in hand: one not yet started when the host dies
    # would otherwise wait for the broker's visibility timeout
    retrying(lambda: heartbeat.hold(*job_ids), "take the leases")
    return _each(lambda job_id: _load(services, job_id), job_ids)


def _finish(services: Services, work: list[Work]) -> list[Work]:
    """Fill a loaded group (jobs sharing an engine together), then store and record each job."""
    started, filling = time.monotonic(), 0.0
    by_engine: dict[str, list[Work]] = {}
    for w in work:
        if w.outcome is None and w.job is not None:
            by_engine.setdefault(w.job.engine, []).append(w)
    for engine, group in by_engine.items():
        BATCH_SIZE.observe(len(group))
        for w in group:
            w.group = len(group)
        began = time.monotonic()
        with MODEL_LATENCY.labels(engine).time():
            _fill(services, engine, group)
        filling += time.monotonic() - began
        _record_gpu_memory()

    def finish(w: Work) -> Work:
        if w.outcome is None:
            w.outcome = _store(services, w)
        if w.job is not None and w.outcome in TERMINAL:  # its waiters woke with the transition that ended it
            _count_finished(w)
        return w

    _each(finish, work)
    if by_engine:
        MODEL_BUSY.labels(next(iter(by_engine))).observe(filling / max(1e-9, time.monotonic() - started))
    return work


def _each(step: Callable[[Any], Work], items: list[Any]) -> list[Work]:
    """A stage of the group (reading and decoding, or encoding and storing), one job per thread where the
    process has cores to spare (a GPU host: the model waits less for them; decoders, encoders and network
    calls release the GIL), in order; one after another where the model shares the cores (CPU workers)."""
    threads = min(engines.stage_threads(), len(items))
    if threads <= 1:
        return [step(item) for item in items]
    with ThreadPoolExecutor(threads, thread_name_prefix="stage") as pool:
        return list(pool.map(step, items))


def _count_finished(w: Work) -> None:
    assert w.job is not None and w.outcome is not None
    engine = w.job.engine
    JOBS_FINISHED.labels(w.outcome, engine).inc()
    waited = time.time() - datetime.fromisoformat(w.job.created_at.replace("Z", "+00:00")).timestamp()
    JOB_LATENCY.labels(engine).observe(max(0.0, waited))
    log.info("job %s %s", w.job_id, w.outcome, extra={"job_id": w.job_id, "tenant": w.job.tenant,
                                          "batch_id": w.job.batch_id, "engine": engine, "group": w.group,
                                          "duration_ms": round((time.monotonic() - w.started) * 1000, 1)})


def _record_gpu_memory() -> None:
    torch = sys.modules.get("torch")  # only where an engine brought it in
    if torch is not None and torch.cuda.is_available():
        GPU_MEMORY.set(torch.cuda.max_memory_allocated())


def _load(services: Services, job_id: str) -> Work:
    jobs = services.jobs
    w = Work(job_id, time.monotonic())
    started = retrying(lambda: jobs.start(job_id), f"job {job_id}: start")
    if not started.applied:
        # deleted, already finished or canceled: a late or duplicate delivery does nothing
        log.info("job %s skipped: %s", job_id, started.previous or "no record", extra={"job_id": job_id})
        w.outcome = started.previous or "missing"
        return w
    w.attempt = started.attempt
    assert started.job is not None, "a start reads the job back"
    w.job = job = started.job
    if job.attempts > services.settings.max_attempts:
        poisoned = SneakyError(f"the job was started {job.attempts - 1} times and never finished; "
                               "its input probably crashes the worker", "poisoned")
        retrying(lambda: jobs.fail(job_id, poisoned, w.attempt), f"job {job_id}: record failure")
        log.error("job %s poisoned after %d attempts", job_id, job.attempts - 1)
        w.outcome = JobStatus.FAILED
        return w
    try:
        image_bytes = _read_input(services, job, job.image_key)
        mask_bytes = _read_input(services, job, job.mask_key)
        _check_as_accepted(job, image_bytes, mask_bytes, services.settings.max_pixels)
        photo, mask_size, hole, w.fmt = _open_inputs(image_bytes, mask_bytes, services.settings.max_pixels)
        w.original = image_bytes
        hole = grow_hole(hole, job.grow)
        w.hole_ratio = float(np.count_nonzero(hole)) / hole.size
        # plan the crops, then let the full-size hole go before the photo is decoded
        w.plan = engines.get(job.engine).plan(hole)
        del hole
        window = _window(w, image_bytes, photo, mask_size)
        if window is not None:  # a JPEG to patch: only the hole's surroundings are decoded
            w.image, w.plan, w.window = window.image, w.plan.within(window.box), window
        else:
            w.image = _decode_photo(photo, mask_size, w.fmt)
    except Exception as exc:
        w.outcome = _end(services, w, exc)
    return w


def _read_input(services: Services, job: Job, key: str) -> bytes:
    try:
        return retrying(lambda: services.storage.get(key), f"job {job.id}: read input")
    except ObjectMissing:
        raise SneakyError(f"an input of the job is gone from storage: {key.rsplit('/', 1)[-1]}",
                          "input_missing") from None


def _fill(services: Services, engine: str, group: list[Work]) -> None:
    def safe_point() -> None:  # between forward passes: stop once nobody wants the result, or we must go
        if drain.grace_over():
            raise drain.HandBack
        if all(_cancel_requested(services, w) for w in group):
            raise Canceled

    try:
        inpainter = engines.get(engine)
        pairs: list[tuple[Image.Image, np.ndarray | Plan]] = []
        for w in group:
            assert w.image is not None and w.plan is not None, "only loaded jobs are filled"
            pairs.append((w.image, w.plan))
        results = inpainter.inpaint_many(pairs, check=safe_point, in_place=True)
        for w, result in zip(group, results):
            w.result = result
    except drain.HandBack:
        for w in group:
            w.outcome = _hand_back(services, w)
    except (Canceled, SoftTimeLimitExceeded) as exc:
        for w in group:
            w.outcome = _end(services, w, exc)
    except Exception as exc:
        if len(group) == 1:
            group[0].outcome = _end(services, group[0], exc)
            return
        for w in group:  # find the one that broke the group: each alone
            _fill(services, engine, [w])


def _store(services: Services, w: Work) -> str:
    jobs, storage = services.jobs, services.storage
    result_key = None
    try:
        assert w.job is not None and w.result is not None and w.plan is not None, "only filled jobs are stored"
        windowed = w.window is not None  # the result is a window of the photo: its size is the photo's, not its own
        written = write_result(w.original, w.fmt, w.result, w.plan.hole, w.job.output, w.job.quality, w.window)
        w.window = None
        w.original = b""
        # one object per attempt: a late original cleaning up after itself never takes the re-run's
        result_key = w.job.object_key(f"result-{w.attempt}{EXTENSIONS[written.format]}")
        retrying(lambda: storage.put(result_key, written.data, ACCEPTED_FORMATS[written.format]),
                 f"job {w.job_id}: store")
        info = {**w.job.input, "hole_ratio": round(w.hole_ratio, 6)}
        width, height = (w.job.input["width"], w.job.input["height"]) if windowed else w.result.size
        result: dict[str, Any] = {"width": width, "height": height, "format": written.format}
        if written.format == "JPEG" and w.fmt == "JPEG":
            result["patched"] = written.patched  # only the blocks at the hole coded anew, or the whole photo
        done = retrying(lambda: jobs.succeed(w.job_id, result, result_key, info, w.attempt),
                        f"job {w.job_id}: record")
        if done.cancel_requested:  # asked while it ran: the success is not recorded, the job ends canceled
            raise Canceled
        if not done.applied:  # canceled, deleted, or handed to another worker meanwhile: leave nothing behind
            _remove(services, w, result_key)
            return done.previous or "missing"
        for earlier in range(1, w.attempt):  # what a worker that died between storing and recording left
            _remove(services, w, w.job.object_key(f"result-{earlier}{EXTENSIONS[written.format]}"))
        return JobStatus.SUCCEEDED
    except Exception as exc:
        if result_key:
            _remove(services, w, result_key)
        return _end(services, w, exc)


def _remove(services: Services, w: Work, key: str) -> None:
    """A result that will not be the job's: retried like every storage call (a worker cut off from
    storage and back must not leave a second result behind), then given up to the retention sweep."""
    try:
        retrying(lambda: services.storage.delete(key), f"job {w.job_id}: remove a result not kept")
    except Exception:
        log.warning("job %s: could not remove %s; the retention sweep will", w.job_id, key)


def _cancel_requested(services: Services, w: Work) -> bool:
    """Read as every Redis call of a job is: a Redis restart is waited for, not taken for a failure."""
    return retrying(lambda: services.jobs.cancel_requested(w.job_id), f"job {w.job_id}: read cancel")


def _hand_back(services: Services, w: Work) -> str:
    """The worker stops before the job could end: queued again, on its own queue, attempt uncounted."""
    assert w.job is not None
    if retrying(lambda: services.jobs.hand_back(w.job_id, w.attempt), f"job {w.job_id}: hand back").applied:
        enqueue(services.celery, [w.job_id], w.job.priority, services.settings.job_time_limit)
        log.warning("job %s handed back: the worker is stopping", w.job_id, extra={"job_id": w.job_id})
    return "handed_back"


def _end(services: Services, w: Work, exc: BaseException) -> str:
    """End a job from the error that stopped it: canceled, or failed with the error's own code."""
    jobs = services.jobs
    if isinstance(exc, Canceled):
        jobs.cancel(w.job_id, from_states=(JobStatus.RUNNING,), attempt=w.attempt)
        return JobStatus.CANCELED
    if isinstance(exc, SoftTimeLimitExceeded):
        error = SneakyError("the job ran past its time limit", "timeout")
    else:
        error = translate(exc)
        if error.code == "internal":
            log.error("job %s failed", w.job_id, exc_info=exc)
    retrying(lambda: jobs.fail(w.job_id, error, w.attempt), f"job {w.job_id}: record failure")
    log.info("job %s failed: %s", w.job_id, error.code, extra={"job_id": w.job_id, "code": error.code})
    return JobStatus.FAILED


def _check_as_accepted(job: Job, image_bytes: bytes, mask_bytes: bytes, max_pixels: int) -> None:
    """The limits again, from the stored files' headers, before anything is decoded: an upload may
    have been replaced (a presigned URL stays valid for its hour) since the API checked it."""
    photo = inspect(image_bytes, max_pixels, "image", complete=False)
    mask = inspect(mask_bytes, max_pixels, "mask", complete=False)
    check_decodes(image_bytes, photo.format, "image")
    check_decodes(mask_bytes, mask.format, "mask")
    if photo.as_input() != {k: job.input.get(k) for k in ("width", "height", "format")}:
        raise SneakyError(f"the photo is now a {photo.width}×{photo.height} {photo.format}, not the "
                          f"{job.input.get('width')}×{job.input.get('height')} {job.input.get('format')} "
                          "that was accepted", "input_changed")


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
            hole, mask_size = decode_hole(mask_bytes)
    except (OSError, SyntaxError, ValueError) as exc:
        raise SneakyError(f"the image or mask cannot be decoded: {exc}", "invalid_image") from None
    if fmt not in ACCEPTED_FORMATS:
        raise SneakyError(f"{fmt} is not an accepted format", "unsupported_format")
    return image, mask_size, hole, fmt


def _window(w: Work, image_bytes: bytes, photo: Image.Image, mask_size: tuple[int, int]) -> Window | None:
    """For a JPEG that will be patched, and a hole whose crops cover under half the photo: the part of it the
    fill reads, decoded alone (``pconv.jpegpatch.decode_window``). None: decode the whole photo."""
    assert w.job is not None and w.plan is not None
    bounds = w.plan.bounds()
    if bounds is None or not patches(w.fmt, w.job.output, w.job.quality):
        return None
    width, height = photo.size if orientation(photo) < 5 else photo.size[::-1]  # upright, as the mask is
    check_mask_size((width, height), mask_size)
    x0, y0, x1, y1 = bounds
    if (x1 - x0) * (y1 - y0) * 2 > width * height:
        return None
    try:
        return decode_window(image_bytes, bounds)
    except (OSError, subprocess.SubprocessError) as exc:
        raise SneakyError(f"the image cannot be decoded: {exc}", "invalid_image") from None


def _decode_photo(image: Image.Image, mask_size: tuple[int, int], fmt: str) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image.load()
    except (OSError, SyntaxError, ValueError) as exc:
        raise SneakyError(f"the image cannot be decoded: {exc}", "invalid_image") from None
    image = upright(image)
    check_mask_size(image.size, mask_size)
    return image
