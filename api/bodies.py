"""Request bodies before any view reads them: JSON is size-checked before it is parsed, and parsed
strictly (``core/strictjson.py``), so a 31 MB body or one nested 3,000 deep costs the API nothing."""

from __future__ import annotations

from flask import request

from core import strictjson
from core.errors import SneakyError

from .context import services


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
