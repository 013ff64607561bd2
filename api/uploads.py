"""/v1/uploads: presigned PUT URLs (S3) or upload URLs on the API (local storage), so bulk
clients send photos straight to storage. Keys never used expire with the retention sweep."""

from __future__ import annotations

from typing import Any

from apiflask import APIBlueprint
from flask import request, url_for

from core.uploads import new_upload_key, upload_object_key

from .context import services
from .schemas import UploadRequest, Uploads
from .tenants import current_tenant

bp = APIBlueprint("uploads", __name__, url_prefix="/v1/uploads", tag="uploads")
UPLOAD_URL_SECONDS = 3600


@bp.post("")
@bp.input(UploadRequest, arg_name="body")
@bp.output(Uploads, status_code=201)
def create_uploads(body: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Upload slots: PUT each file's bytes to its URL, then name its key in a job or batch."""
    s = services()
    tenant = current_tenant()
    slots = []
    with s.redis.pipeline() as pipe:
        for _ in range(body["count"]):
            key = new_upload_key()
            url = s.storage.upload_url(upload_object_key(tenant, key), UPLOAD_URL_SECONDS, body["content_type"])
            if url is None:  # local storage: the API takes the bytes itself
                url = url_for("uploads.put_upload", key=key, _external=True)
                s.uploads.issue(pipe, tenant, key, UPLOAD_URL_SECONDS)
            slots.append({"key": key, "url": url, "method": "PUT", "headers": {"Content-Type": body["content_type"]}})
        pipe.execute()
    return {"uploads": slots, "expires_in": UPLOAD_URL_SECONDS}, 201


@bp.put("/<key>")
@bp.doc(responses={201: "stored", 404: "unknown or expired upload key", 409: "the slot already holds its file",
                   413: "too large"})
def put_upload(key: str) -> tuple[dict[str, str], int]:
    """The upload URL of local storage (S3 storage hands out presigned URLs instead): one file per
    slot, streamed to storage a chunk at a time."""
    s = services()
    tenant = current_tenant()
    content_type = request.content_type or "application/octet-stream"
    s.uploads.fill(tenant, key, lambda: s.storage.put_stream(upload_object_key(tenant, key), request.stream,
                                                             content_type, s.settings.max_upload_bytes))
    return {"key": key}, 201
