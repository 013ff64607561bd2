"""Every error the service reports, as one family: a stable code, and its HTTP status in one table.

The API renders any ``SneakyError`` as problem+json with the table's status (one Flask handler,
``api/problems.py``); a worker records the same code on the failed job. Libraries keep their own
errors (pconv's ``InpaintError``, redis-py's ``RedisError``); ``translate`` turns them into ours at
the one edge where they cross into the service, so nothing downstream inspects a foreign type.
The README's "Errors" table is this table for people (``tests/test_errors.py`` keeps them equal).
"""

from __future__ import annotations

from typing import Any

# code → (HTTP status, when); a failed job carries the same codes (status then only orders them)
ERRORS: dict[str, tuple[int, str]] = {
    "bad_request": (400, "a body the server cannot parse (a broken form or JSON)"),
    "invalid_json": (400, "a JSON body that does not parse, holds NaN or Infinity, or nests more than 32 deep"),
    "missing_field": (400, "a required field is missing"),
    "invalid_image": (400, "the file is not an image, or it is truncated"),
    "unauthorized": (401, "missing, unknown or revoked API key"),
    "not_found": (404, "unknown job, batch or upload key (or another tenant's)"),
    "method_not_allowed": (405, "the route does not take this method"),
    "not_ready": (409, "the result was asked for before the job ended"),
    "no_result": (409, "the result of a job that failed or was canceled"),
    "not_cancelable": (409, "cancel of a finished job"),
    "input_changed": (409, "a job's input was replaced after the job was accepted"),
    "idempotency_in_progress": (409, "a request with the same Idempotency-Key is being handled"),
    "upload_used": (409, "a second PUT to an upload slot, which takes one file"),
    "too_large": (413, "an upload or body above the size limit"),
    "unsupported_media_type": (415, "a body whose Content-Type the route does not take"),
    "unsupported_format": (415, "not JPEG, PNG or WebP (judged by content, not name)"),
    "too_many_pixels": (422, "more pixels than SNEAKY_MAX_PIXELS"),
    "mask_size_mismatch": (422, "the mask's size differs from the photo's (after EXIF orientation)"),
    "invalid_field": (422, "a field's value is not allowed"),
    "invalid_metadata": (422, "metadata is not a JSON object"),
    "metadata_too_large": (422, "metadata above SNEAKY_MAX_METADATA_BYTES"),
    "invalid_webhook": (422, "a webhook URL that is not http(s) or not a public address"),
    "invalid_key": (422, "an image or mask key that is not an upload key"),
    "upload_missing": (422, "nothing was uploaded under the key"),
    "invalid_items": (422, "batch items that cannot be processed (each listed)"),
    "too_many_items": (422, "a batch above SNEAKY_MAX_BATCH_ITEMS items (10,000 in one JSON body)"),
    "idempotency_mismatch": (422, "an Idempotency-Key reused for a different request"),
    "queue_full": (429, "back-pressure: the queue is at its limit"),
    "rate_limited": (429, "the tenant's request rate is over SNEAKY_RATE_LIMIT"),
    "internal": (500, "a bug: logged with its traceback"),
    "poisoned": (500, "a job started SNEAKY_MAX_ATTEMPTS times that never finished"),
    "engine_unavailable": (503, "the worker cannot load the engine"),
    "input_missing": (503, "an input of the job is gone from storage"),
    "queue_unavailable": (503, "Redis is unreachable"),
    "storage_unavailable": (503, "storage is unreachable or failing"),
    "timeout": (504, "the job ran past SNEAKY_JOB_TIME_LIMIT"),
}
RETRY_LATER = {"queue_unavailable", "storage_unavailable"}  # answered with Retry-After


class SneakyError(Exception):
    """An error with a stable code; ``extra`` travels into the problem document (``items``, ``fields``)."""

    code = "internal"

    def __init__(self, detail: str, code: str | None = None, *, headers: dict[str, str] | None = None,
                 **extra: Any) -> None:
        super().__init__(detail)
        if code is not None:
            self.code = code
        if self.code not in ERRORS:
            raise ValueError(f"unknown error code {self.code!r}: add it to core.errors.ERRORS")
        self.detail = detail
        self.headers = dict(headers or {})
        if self.code in RETRY_LATER:
            self.headers.setdefault("Retry-After", "5")
        self.extra = extra

    @property
    def status(self) -> int:
        return ERRORS[self.code][0]


class StorageUnavailable(SneakyError):
    """The storage could not be reached or answered with a server error."""

    code = "storage_unavailable"


class ObjectMissing(SneakyError, KeyError):
    """No object under this key (never stored, deleted or expired)."""

    code = "not_found"

    def __str__(self) -> str:  # KeyError's own would quote the message
        return self.detail


class WebhookRefused(SneakyError):
    code = "invalid_webhook"


class QueueUnavailable(SneakyError):
    code = "queue_unavailable"


def translate(exc: BaseException) -> SneakyError:
    """The service's error for one raised anywhere below it: ours pass through, the libraries'
    become the code they stand for, anything else is ``internal`` (a bug)."""
    if isinstance(exc, SneakyError):
        return exc
    from pconv.images import InpaintError

    if isinstance(exc, InpaintError):
        return SneakyError(str(exc), exc.code if exc.code in ERRORS else "invalid_image")
    import redis
    from kombu.exceptions import OperationalError

    if isinstance(exc, redis.RedisError | OperationalError):  # the job store, or the broker (Redis or RabbitMQ)
        return QueueUnavailable("the job store is unavailable; retry shortly")
    return SneakyError(f"internal error ({type(exc).__name__})", "internal")
