"""Request and response schemas: they validate at the edge and make the OpenAPI document."""

from apiflask import Schema
from apiflask.fields import URL, Boolean, Dict, File, Float, Integer, List, Nested, String
from apiflask.validators import Length, OneOf, Range

from core.jobs import JobStatus
from pconv import ENGINES
from pconv.images import MAX_GROW
from pconv.results import OUTPUTS

PRIORITIES = ("interactive", "bulk")


OUTPUT_HELP = ("the result's format: same (the photo's own; a JPEG is patched only where the hole is, every other "
               "block kept), png, jpeg or webp")
QUALITY_HELP = "1–100, for output jpeg or webp (default: 95; a JPEG asked as same keeps its own tables)"


class OutputFields(Schema):
    output = String(load_default="same", validate=OneOf(list(OUTPUTS)), metadata={"description": OUTPUT_HELP})
    quality = Integer(load_default=None, validate=Range(1, 100), metadata={"description": QUALITY_HELP})


class JobForm(OutputFields):
    image = File(required=True, metadata={"description": "the photo: JPEG, PNG or WebP"})
    mask = File(
        required=True,
        metadata={"description": "same size as the photo after EXIF orientation; grey ≥ 128 (white) = remove"},
    )
    engine = String(load_default=None, validate=OneOf(ENGINES), metadata={"description": "default: pconv"})
    grow = Integer(load_default=0, validate=Range(0, MAX_GROW),
                   metadata={"description": "pixels to dilate the hole by first, so a painted object's soft edge "
                                            "and shadow are filled too; pixels within this margin change"})
    priority = String(load_default="interactive", validate=OneOf(PRIORITIES))
    metadata = String(load_default=None, metadata={"description": "a JSON object of at most 4 KiB, returned as is"})
    webhook_url = URL(load_default=None, schemes={"http", "https"}, validate=Length(max=2048))


class ListQuery(Schema):
    limit = Integer(load_default=20, validate=Range(1, 100))
    cursor = String(load_default=None, validate=Length(max=64))
    status = String(load_default=None, validate=OneOf([s.value for s in JobStatus]))
    batch_id = String(load_default=None, validate=Length(max=64))


class JobQuery(Schema):
    wait = Float(load_default=0, validate=Range(0, 20),
                 metadata={"description": "seconds to hold the answer until the job ends (long poll)"})


class ResultInfo(Schema):
    url = String(metadata={"description": "short-lived download URL"})
    width = Integer()
    height = Integer()
    format = String()
    patched = Boolean(metadata={"description": "a JPEG kept as JPEG: true when only the blocks touching the hole "
                                               "were coded anew (every other block is the input's), false when "
                                               "the photo had to be encoded whole"})


class ErrorInfo(Schema):
    code = String()
    message = String()


class WebhookDelivery(Schema):
    attempts = Integer(metadata={"description": "deliveries tried so far"})
    status = Integer(allow_none=True, metadata={"description": "the receiver's last HTTP status"})
    error = String(allow_none=True)
    delivered = Boolean()
    at = String()


class Job(Schema):
    id = String()
    status = String(validate=OneOf([s.value for s in JobStatus]))
    engine = String()
    grow = Integer()
    output = String()
    quality = Integer(allow_none=True)
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
    webhook = Nested(WebhookDelivery, allow_none=True)


class JobList(Schema):
    items = List(Nested(Job))
    next_cursor = String(allow_none=True)


class Health(Schema):
    status = String()
    checks = Dict()


class JobFromKeys(OutputFields):
    image_key = String(required=True, validate=Length(max=64))
    mask_key = String(required=True, validate=Length(max=64))
    engine = String(load_default=None, validate=OneOf(ENGINES))
    grow = Integer(load_default=0, validate=Range(0, MAX_GROW),
                   metadata={"description": "pixels to dilate the hole by first, so a painted object's soft edge "
                                            "and shadow are filled too; pixels within this margin change"})
    priority = String(load_default="interactive", validate=OneOf(PRIORITIES))
    metadata = Dict(load_default=None)
    webhook_url = URL(load_default=None, schemes={"http", "https"}, validate=Length(max=2048))


class WebhookSecret(Schema):
    secret = String(metadata={"description": "whsec_ and base64: the HMAC key is the decoded part"})
    scheme = String()


class UploadRequest(Schema):
    count = Integer(load_default=1, validate=Range(1, 1000))
    content_type = String(load_default="application/octet-stream", validate=Length(max=100))


class UploadSlot(Schema):
    key = String(metadata={"description": "name it as image_key or mask_key in a job or batch"})
    url = String()
    method = String()
    headers = Dict()


class Uploads(Schema):
    uploads = List(Nested(UploadSlot))
    expires_in = Integer()


class BatchItem(Schema):
    image_key = String(required=True, validate=Length(max=64))
    mask_key = String(load_default=None, validate=Length(max=64))
    metadata = Dict(load_default=None)


JSON_BATCH_ITEMS = 10_000  # larger batches come as NDJSON, read a part at a time (api/batches.py)


class BatchOptions(OutputFields):
    """A batch's settings: the JSON body's fields beside ``items``, or an NDJSON body's first line."""

    mask_key = String(load_default=None, validate=Length(max=64),
                      metadata={"description": "one mask for every item (a watermark, a date stamp)"})
    engine = String(load_default=None, validate=OneOf(ENGINES))
    grow = Integer(load_default=0, validate=Range(0, MAX_GROW),
                   metadata={"description": "pixels to dilate the hole by first, so a painted object's soft edge "
                                            "and shadow are filled too; pixels within this margin change"})
    priority = String(load_default="bulk", validate=OneOf(PRIORITIES))
    webhook_url = URL(load_default=None, schemes={"http", "https"}, validate=Length(max=2048))


class BatchRequest(BatchOptions):
    items = List(Nested(BatchItem), required=True, validate=Length(min=1),
                 metadata={"description": f"at most {JSON_BATCH_ITEMS:,}; more as NDJSON"})


class BatchView(Schema):
    id = String()
    status = String(metadata={"description": "running, or done once every job has ended"})
    total = Integer()
    counts = Dict()
    progress = Float()
    created_at = String()
    finished_at = String(allow_none=True)
    priority = String()
    engine = String()
    grow = Integer()
    output = String()
    quality = Integer(allow_none=True)
    job_ids = List(String(), metadata={"description": "in item order, for batches of up to 10,000 items; "
                                                      "a larger batch's jobs are in its manifest"})


class ManifestItem(Schema):
    index = Integer()
    job_id = String()
    image_key = String()
    status = String()
    result_url = String(allow_none=True)
    error = Nested(ErrorInfo, allow_none=True)


class Manifest(Schema):
    batch_id = String()
    items = List(Nested(ManifestItem))
    next_cursor = Integer(allow_none=True, metadata={"description": "the next page's cursor; null on the last"})


class ManifestQuery(Schema):
    cursor = Integer(load_default=0, validate=Range(0, 10_000_000), metadata={"description": "an item index"})
    limit = Integer(load_default=1000, validate=Range(1, 10_000))
