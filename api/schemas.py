"""Request and response schemas: they validate at the edge and make the OpenAPI document."""

from apiflask import Schema
from apiflask.fields import URL, Dict, File, Integer, List, Nested, String
from apiflask.validators import Length, OneOf, Range

from core.jobs import STATUSES
from pconv import ENGINES

PRIORITIES = ("interactive", "bulk")


class JobForm(Schema):
    image = File(required=True, metadata={"description": "the photo: JPEG, PNG or WebP"})
    mask = File(
        required=True,
        metadata={"description": "same size as the photo after EXIF orientation; grey ≥ 128 (white) = remove"},
    )
    engine = String(load_default=None, validate=OneOf(ENGINES), metadata={"description": "default: pconv"})
    priority = String(load_default="interactive", validate=OneOf(PRIORITIES))
    metadata = String(load_default=None, metadata={"description": "a JSON object of at most 4 KiB, returned as is"})
    webhook_url = URL(load_default=None, schemes={"http", "https"}, validate=Length(max=2048))


class ListQuery(Schema):
    limit = Integer(load_default=20, validate=Range(1, 100))
    cursor = String(load_default=None, validate=Length(max=64))
    status = String(load_default=None, validate=OneOf(STATUSES))
    batch_id = String(load_default=None, validate=Length(max=64))


class ResultInfo(Schema):
    url = String(metadata={"description": "short-lived download URL"})
    width = Integer()
    height = Integer()
    format = String()


class ErrorInfo(Schema):
    code = String()
    message = String()


class Job(Schema):
    id = String()
    status = String(validate=OneOf(STATUSES))
    engine = String()
    priority = String()
    created_at = String()
    started_at = String(allow_none=True)
    finished_at = String(allow_none=True)
    attempts = Integer()
    batch_id = String(allow_none=True)
    metadata = Dict()
    input = Dict(allow_none=True)
    result = Nested(ResultInfo, allow_none=True)
    error = Nested(ErrorInfo, allow_none=True)


class JobList(Schema):
    items = List(Nested(Job))
    next_cursor = String(allow_none=True)


class Health(Schema):
    status = String()
    checks = Dict()
