"""Request bodies: JSON is size-checked before it is parsed, and parsed strictly
(``core/strictjson.py``), so a 31 MB body or one nested 3,000 deep costs the API nothing; and every
body is read to its end before the answer goes out, so a client still sending gets its answer.

A refusal made before the body was read (401, 429, a 413 from a size check) would otherwise close a
connection with unread bytes in it, which TCP answers with a reset: the client sees
``Connection aborted`` instead of the 429 and its ``Retry-After``. Draining costs network time, not
memory (a chunk at a time), and stops at the largest body the API accepts at all.
"""

from __future__ import annotations

from flask import Response, current_app, request

from core import strictjson
from core.errors import SneakyError

from .context import services

DRAIN_CHUNK = 64 * 1024


def drain_body(response: Response) -> Response:
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    length = request.content_length
    if length is not None and length <= limit:
        stream = request.stream
        while stream.read(DRAIN_CHUNK):
            pass
    elif length is not None:  # larger than anything accepted: say the connection ends here
        response.headers["Connection"] = "close"
    return response


def check_json_body() -> None:
    if request.method not in ("POST", "PUT", "PATCH") or not request.is_json:
        return
    limit = services().settings.max_json_bytes
    if request.content_length is None or request.content_length > limit:
        # without a length (chunked) the body is read up to the limit and no further
        data = request.stream.read(limit + 1) if request.content_length is None else b""
        if request.content_length is not None or len(data) > limit:
            raise SneakyError(f"a JSON body may hold at most {limit:,} bytes", "too_large")
        request._cached_data = data  # what get_data() returns from now on
    try:
        strictjson.loads(request.get_data(cache=True))
    except ValueError as exc:
        raise SneakyError(f"the body is not acceptable JSON: {exc}", "invalid_json") from None
