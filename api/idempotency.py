"""``Idempotency-Key`` with Stripe's semantics, per tenant, kept 24 hours.

The same key with the same request replays the first response; with a different request
it is refused (422 ``idempotency_mismatch``); while the first is still being handled a
second gets 409 ``idempotency_in_progress``. Only successful (2xx) responses are kept:
after an error the client may retry with the same key.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Callable
from functools import wraps
from typing import IO, Any

from flask import current_app, g, request

from core import keyspace
from core.errors import SneakyError

from .context import services

TTL_SECONDS = 24 * 3600


def fingerprint() -> str:
    """What makes two requests 'the same': method, path, form fields, files' contents, or the JSON body."""
    h = hashlib.sha256(f"{request.method} {request.path}\n".encode())
    if request.is_json:
        h.update(json.dumps(request.get_json(silent=True), sort_keys=True).encode())
    elif request.mimetype == "application/x-ndjson":
        # a streamed batch: hashed as it is copied aside (memory up to 8 MiB, then a file); the view reads the copy
        spool = tempfile.SpooledTemporaryFile(max_size=8 << 20)
        while chunk := request.stream.read(1 << 20):
            h.update(chunk)
            spool.write(chunk)
        spool.seek(0)
        g.spooled_body = spool
    else:
        for name in sorted(request.form):
            h.update(f"{name}={request.form.getlist(name)}\n".encode())
        for name in sorted(request.files):
            stream = request.files[name].stream
            while chunk := stream.read(1 << 20):
                h.update(chunk)
            stream.seek(0)  # the view reads it again
            h.update(f"\n{name}\n".encode())
    return h.hexdigest()


def body_stream() -> IO[bytes]:
    """The request's body to read once: the copy ``fingerprint`` made, or the request's own stream."""
    spooled = g.get("spooled_body")
    return spooled if spooled is not None else request.stream


def idempotent(view: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        key = request.headers.get("Idempotency-Key")
        if key is None:
            return view(*args, **kwargs)
        if not 1 <= len(key) <= 255:
            raise SneakyError("Idempotency-Key must be 1 to 255 characters", "invalid_field")
        redis = services().redis
        slot = keyspace.idempotency(g.tenant, hashlib.sha256(key.encode()).hexdigest())
        fp = fingerprint()
        if not redis.set(slot, json.dumps({"fp": fp, "state": "pending"}), nx=True, ex=TTL_SECONDS):
            stored = json.loads(redis.get(slot) or b"{}")
            if stored.get("fp") != fp:
                raise SneakyError("this Idempotency-Key was used with a different request", "idempotency_mismatch")
            if stored.get("state") != "done":
                raise SneakyError("a request with this Idempotency-Key is in progress", "idempotency_in_progress",
                                  headers={"Retry-After": "1"})
            response = current_app.response_class(stored["body"], status=stored["status"],
                                                  mimetype=stored["mimetype"])
            response.headers.update(stored["headers"])
            response.headers["Idempotent-Replayed"] = "true"
            return response
        try:
            response = current_app.make_response(view(*args, **kwargs))
        except BaseException:
            redis.delete(slot)
            raise
        if 200 <= response.status_code < 300:
            headers = {k: v for k, v in response.headers.items() if k in ("Location", "Retry-After")}
            redis.set(slot, json.dumps({"fp": fp, "state": "done", "status": response.status_code,
                                        "mimetype": response.mimetype, "headers": headers,
                                        "body": response.get_data(as_text=True)}), ex=TTL_SECONDS)
        else:
            redis.delete(slot)
        return response

    return wrapper
