"""The API's edge through Flask's test client, against the suite's real redis-server, with no worker:
validation, refusals, problem documents, cancel and result links. Seconds, not a stack's minutes.

What needs a worker (a job running, its result, webhooks) is in test_jobs_api.py, over HTTP.
"""

from __future__ import annotations

import io
import json

import pytest
import redis

from api import create_app
from core.errors import ERRORS, SneakyError
from core.jobs import JobStatus
from core.settings import Settings
from tests.helpers import bomb_png, jpeg_bytes, mask_for, photo, png_bytes, stored_objects

LIMIT = 3 * 1024 * 1024


@pytest.fixture(scope="module")
def app(redis_server, tmp_path_factory):
    url = f"redis://127.0.0.1:{redis_server.port}/7"
    redis.Redis.from_url(url).flushdb()
    settings = Settings(redis_url=url, auth="open", storage_url=str(tmp_path_factory.mktemp("edge-storage")),
                        max_upload_bytes=LIMIT, max_pixels=40_000_000, default_engine="telea", rate_limit="",
                        webhook_allow_private="")
    return create_app(settings)


@pytest.fixture
def client(app):
    return app.test_client()


def services(app):
    return app.extensions["sneaky"]


def post_job(client, image: bytes, mask: bytes, **data):
    form = {"image": (io.BytesIO(image), "p"), "mask": (io.BytesIO(mask), "m"), **data}
    return client.post("/v1/jobs", data=form, content_type="multipart/form-data")


def gif_bytes() -> bytes:
    buf = io.BytesIO()
    photo(40, 30).save(buf, "GIF")
    return buf.getvalue()


def ok_pair():
    return png_bytes(photo(40, 30)), mask_for(40, 30)[0]


BAD_SUBMISSIONS = {  # case: (image, mask, form fields) → status, code
    "not an image": (lambda: (b"just some text", mask_for(40, 30)[0], {}), 400, "invalid_image"),
    "empty image": (lambda: (b"", mask_for(40, 30)[0], {}), 400, "invalid_image"),
    "truncated png": (lambda: (png_bytes(photo(40, 30))[:300], mask_for(40, 30)[0], {}), 400, "invalid_image"),
    "truncated jpeg": (lambda: (jpeg_bytes(photo(200, 150))[:2000], mask_for(200, 150)[0], {}), 400, "invalid_image"),
    "unsupported format": (lambda: (gif_bytes(), mask_for(40, 30)[0], {}), 415, "unsupported_format"),
    "mask size mismatch": (lambda: (png_bytes(photo(40, 30)), mask_for(30, 40)[0], {}), 422, "mask_size_mismatch"),
    "decompression bomb": (lambda: (bomb_png(), mask_for(40, 30)[0], {}), 422, "too_many_pixels"),
    "oversize upload": (lambda: (b"\x89PNG" + b"\0" * (LIMIT + 10), mask_for(40, 30)[0], {}), 413, "too_large"),
    "unknown engine": (lambda: (*ok_pair(), {"engine": "magic"}), 422, "invalid_field"),
    "unknown priority": (lambda: (*ok_pair(), {"priority": "urgent"}), 422, "invalid_field"),
    "grow below 0": (lambda: (*ok_pair(), {"grow": "-1"}), 422, "invalid_field"),
    "grow above 64": (lambda: (*ok_pair(), {"grow": "65"}), 422, "invalid_field"),
    "grow not a number": (lambda: (*ok_pair(), {"grow": "lots"}), 422, "invalid_field"),
    "metadata over 4 KiB": (lambda: (*ok_pair(), {"metadata": '{"x": "' + "a" * 4100 + '"}'}),
                            422, "metadata_too_large"),
    "metadata not an object": (lambda: (*ok_pair(), {"metadata": "[1]"}), 422, "invalid_metadata"),
    "metadata not JSON": (lambda: (*ok_pair(), {"metadata": "{oops"}), 422, "invalid_metadata"),
    "webhook not http": (lambda: (*ok_pair(), {"webhook_url": "ftp://example/x"}), 422, "invalid_field"),
    "unknown output": (lambda: (*ok_pair(), {"output": "gif"}), 422, "invalid_field"),
    "quality for png": (lambda: (*ok_pair(), {"output": "png", "quality": "80"}), 422, "invalid_field"),
    "quality for same": (lambda: (*ok_pair(), {"quality": "80"}), 422, "invalid_field"),
    "quality above 100": (lambda: (*ok_pair(), {"output": "jpeg", "quality": "101"}), 422, "invalid_field"),
    "transparency as jpeg": (lambda: (png_bytes(photo(40, 30, "RGBA")), mask_for(40, 30)[0], {"output": "jpeg"}),
                             422, "invalid_field"),
    "webhook to loopback": (lambda: (*ok_pair(), {"webhook_url": "http://127.0.0.1:9/hook"}), 422,
                            "invalid_webhook"),
}


@pytest.mark.parametrize("case", sorted(BAD_SUBMISSIONS))
def test_bad_submissions_are_refused_with_their_code_and_leave_nothing(app, client, case):
    make, status, code = BAD_SUBMISSIONS[case]
    image, mask, data = make()
    jobs_before = set(services(app).redis.keys("sneaky:job:*"))
    objects_before = stored_objects(services(app).settings.storage_url)
    r = post_job(client, image, mask, **data)
    assert r.status_code == status, r.get_data(as_text=True)
    assert r.mimetype == "application/problem+json"
    body = r.get_json()
    assert body["code"] == code and body["status"] == status and body["title"] and body["detail"]
    assert body["type"].endswith("/" + code) and ERRORS[code][0] == status
    assert set(services(app).redis.keys("sneaky:job:*")) == jobs_before
    assert stored_objects(services(app).settings.storage_url) == objects_before


BAD_JSON_SUBMISSIONS = {  # POST /v1/jobs with JSON naming uploads
    "no keys": ({}, 400, "missing_field"),
    "not an upload key": ({"image_key": "../etc/passwd", "mask_key": "upl_" + "0" * 32}, 422, "invalid_key"),
    "nothing uploaded": ({"image_key": "upl_" + "1" * 32, "mask_key": "upl_" + "2" * 32}, 422, "upload_missing"),
    "grow out of range": ({"image_key": "upl_" + "1" * 32, "mask_key": "upl_" + "2" * 32, "grow": 99}, 422,
                          "invalid_field"),
    "metadata not an object": ({"image_key": "upl_" + "1" * 32, "mask_key": "upl_" + "2" * 32, "metadata": [1]},
                               422, "invalid_field"),
}


@pytest.mark.parametrize("case", sorted(BAD_JSON_SUBMISSIONS))
def test_bad_json_submissions_are_refused(client, case):
    body, status, code = BAD_JSON_SUBMISSIONS[case]
    r = client.post("/v1/jobs", json=body)
    assert (r.status_code, r.get_json()["code"]) == (status, code), r.get_json()


@pytest.mark.parametrize("body,content_type", [
    (b"--xyz\r\nContent-Disposition: form-data; name=\"image\"\r\n\r\nabc", "multipart/form-data; boundary=xyz"),
    (b"garbage without any boundary", "multipart/form-data"),
    (b"{not json", "application/json"),
    (b"\x00" * 1000, "application/octet-stream"),
])
def test_malformed_bodies_get_problems_not_500(client, body, content_type):
    r = client.post("/v1/jobs", data=body, content_type=content_type)
    assert 400 <= r.status_code < 500, r.get_data(as_text=True)
    assert r.mimetype == "application/problem+json" and r.get_json()["code"] in ERRORS


def test_missing_fields_name_what_is_missing(client):
    r = client.post("/v1/jobs", data={"image": (io.BytesIO(png_bytes(photo(10, 10))), "p")},
                    content_type="multipart/form-data")
    assert r.status_code == 400 and r.get_json()["code"] == "missing_field" and "mask" in r.get_json()["detail"]


def test_framework_errors_are_problems_of_the_same_family(client):
    for method, path, status, code in [("get", "/v1/jobs/0123456789abcdef", 404, "not_found"),
                                       ("get", "/v1/jobs/0123456789abcdef/result", 404, "not_found"),
                                       ("post", "/v1/jobs/nope/cancel", 404, "not_found"),
                                       ("delete", "/v1/jobs/nope", 404, "not_found"),
                                       ("get", "/v1/batches/nope", 404, "not_found"),
                                       ("get", "/no/such/route", 404, "not_found"),
                                       ("put", "/v1/jobs", 405, "method_not_allowed"),
                                       ("get", "/v1/jobs?limit=1000", 422, "invalid_field"),
                                       ("get", "/v1/jobs?status=lost", 422, "invalid_field")]:
        r = getattr(client, method)(path)
        assert (r.status_code, r.get_json()["code"]) == (status, code), (method, path, r.get_json())
        assert r.mimetype == "application/problem+json"
    assert "GET" in client.put("/v1/jobs").headers["Allow"]


def test_a_bug_is_a_logged_500_without_details(app, client, monkeypatch):
    def broken(*_, **__):
        raise ZeroDivisionError("secret internals")

    monkeypatch.setattr(services(app).jobs, "list", broken)
    r = client.get("/v1/jobs")
    assert r.status_code == 500 and r.get_json()["code"] == "internal" and "secret" not in r.get_data(as_text=True)


def test_redis_down_is_503_with_retry_after(app, client, monkeypatch):
    def down(*_, **__):
        raise redis.ConnectionError("Connection refused to 10.0.0.7:6379")

    monkeypatch.setattr(services(app).jobs, "get", down)
    r = client.get("/v1/jobs/0123456789abcdef")
    assert r.status_code == 503 and r.get_json()["code"] == "queue_unavailable" and r.headers["Retry-After"]
    assert "10.0.0.7" not in r.get_data(as_text=True)


def test_the_json_submission_is_in_the_openapi_document(client):
    spec = client.get("/openapi.json").get_json()
    content = spec["paths"]["/v1/jobs"]["post"]["requestBody"]["content"]
    assert set(content) == {"multipart/form-data", "application/json"}
    keys = spec["components"]["schemas"]["JobFromKeys"]
    assert set(keys["required"]) == {"image_key", "mask_key"} and "grow" in keys["properties"]
    assert set(spec["components"]["schemas"]["Problem"]["properties"]["code"]["enum"]) == set(ERRORS)


def upload(client, data: bytes) -> str:
    slot = client.post("/v1/uploads", json={"count": 1}).get_json()["uploads"][0]
    assert client.put(f"/v1/uploads/{slot['key']}", data=data).status_code == 201
    return slot["key"]


def test_cancel_means_the_same_for_a_job_and_a_batch(app, client):
    """Queued jobs (no worker here) end canceled and wake their waiters, whether canceled one by one
    or as a batch; each loses the objects that are its own, never the uploads it was made from."""
    s = services(app)
    image, mask = ok_pair()
    single = post_job(client, image, mask).get_json()
    shared_mask = upload(client, mask)
    batch = client.post("/v1/batches", json={"items": [{"image_key": upload(client, image)} for _ in range(3)],
                                             "mask_key": shared_mask}).get_json()
    assert batch["counts"]["queued"] == 3
    jobs = [s.jobs.get(single["id"])] + [s.jobs.get(i) for i in batch["job_ids"]]
    own, uploaded = [jobs[0].image_key, jobs[0].mask_key], [j.image_key for j in jobs[1:]] + [jobs[1].mask_key]
    assert all(s.storage.exists(key) for key in own + uploaded)

    assert client.post(f"/v1/jobs/{single['id']}/cancel").get_json()["status"] == "canceled"
    after = client.post(f"/v1/batches/{batch['id']}/cancel").get_json()
    assert after["counts"]["canceled"] == 3 and after["status"] == "done"
    for job in jobs:
        assert s.jobs.get(job.id).status == JobStatus.CANCELED
        assert s.redis.llen(s.jobs.done_key(job.id)) == 1  # a long poll on it answers at once
    assert not any(s.storage.exists(key) for key in own)
    assert all(s.storage.exists(key) for key in uploaded)  # the client's uploads: swept with the retention
    again = client.post(f"/v1/jobs/{single['id']}/cancel")
    assert again.status_code == 409 and again.get_json()["code"] == "not_cancelable"


def test_jobs_sharing_uploads_never_take_each_others_inputs(app, client):
    image_key, mask_key = upload(client, ok_pair()[0]), upload(client, ok_pair()[1])
    keys = {"image_key": image_key, "mask_key": mask_key}
    first, second = (client.post("/v1/jobs", json=keys).get_json() for _ in range(2))
    assert client.post(f"/v1/jobs/{first['id']}/cancel").status_code == 200
    assert client.delete(f"/v1/jobs/{second['id']}").status_code == 204
    third = client.post("/v1/jobs", json=keys)
    assert third.status_code == 202, third.get_json()  # the uploads are still there for it


def test_an_upload_slot_takes_one_file(app, client):
    slot = client.post("/v1/uploads", json={"count": 1}).get_json()["uploads"][0]["key"]
    too_big = CountingStream(99 * 1024 * 1024)
    r = client.put(f"/v1/uploads/{slot}", input_stream=too_big, content_length=too_big.size)
    assert r.status_code == 413 and r.get_json()["code"] == "too_large"
    assert too_big.read_bytes <= LIMIT + 2 * 1024 * 1024  # streamed and stopped, not read whole
    assert client.put(f"/v1/uploads/{slot}", data=ok_pair()[0]).status_code == 201  # the refusal left it empty
    again = client.put(f"/v1/uploads/{slot}", data=bomb_png())
    assert again.status_code == 409 and again.get_json()["code"] == "upload_used"
    assert services(app).storage.get(f"default/uploads/{slot}") == ok_pair()[0]
    unknown = client.put("/v1/uploads/upl_" + "f" * 32, data=b"x")
    assert unknown.status_code == 404 and unknown.get_json()["code"] == "not_found"


def test_one_result_link_for_the_job_its_batch_manifest_and_the_download(app, client):
    s = services(app)
    image, mask = ok_pair()
    batch = client.post("/v1/batches", json={"items": [{"image_key": upload(client, image),
                                                        "mask_key": upload(client, mask)}]}).get_json()
    job_id = batch["job_ids"][0]
    r = client.get(f"/v1/jobs/{job_id}/result")
    assert r.status_code == 409 and r.get_json()["code"] == "not_ready" and r.headers["Retry-After"]
    # what a worker does, through the same store
    job = s.jobs.get(job_id)
    s.storage.put(job.object_key("result.png"), image, "image/png")
    assert s.jobs.start(job_id).applied
    assert s.jobs.succeed(job_id, {"width": 40, "height": 30, "format": "PNG"}, job.object_key("result.png")).applied
    link = client.get(f"/v1/jobs/{job_id}").get_json()["result"]["url"]
    assert link == f"http://localhost/v1/jobs/{job_id}/result"
    manifest = client.get(f"/v1/batches/{batch['id']}/results").get_json()["items"]
    assert [item["result_url"] for item in manifest] == [link]
    download = client.get(link)
    assert download.status_code == 200 and download.data == image and download.mimetype == "image/png"
    assert f"{job_id}.png" in download.headers["Content-Disposition"]


def test_every_code_renders_with_its_status_and_unknown_codes_are_refused():
    for code, (status, when) in ERRORS.items():
        assert SneakyError("x", code).status == status and when
    with pytest.raises(ValueError):
        SneakyError("x", "made_up")
    assert SneakyError("x", "storage_unavailable").headers["Retry-After"]


def test_json_bodies_are_fingerprinted_for_idempotency(client):
    key = {"Idempotency-Key": "edge-1"}
    body = {"image_key": "upl_" + "3" * 32, "mask_key": "upl_" + "4" * 32}
    first = client.post("/v1/jobs", json=body, headers=key)
    assert first.status_code == 422  # a refusal is not kept: the same key may be retried
    assert client.post("/v1/jobs", json=body, headers=key).status_code == 422
    assert json.loads(first.data)["code"] == "upload_missing"


def test_storage_trouble_is_503_with_retry_after_and_readyz_says_so(redis_server, tmp_path):
    root = tmp_path / "store"
    broken = create_app(Settings(redis_url=f"redis://127.0.0.1:{redis_server.port}/7", auth="open",
                                 storage_url=str(root), default_engine="telea", rate_limit=""))
    client = broken.test_client()
    assert client.get("/readyz").status_code == 200
    root.rmdir()
    root.write_bytes(b"a file where the folder was")  # as root, a read-only folder would still take writes
    r = post_job(client, *ok_pair())
    assert r.status_code == 503 and r.get_json()["code"] == "storage_unavailable" and r.headers["Retry-After"]
    assert str(root) not in r.get_data(as_text=True)
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.get_json()["checks"]["storage"].startswith("error")
    upload_slot = client.post("/v1/uploads", json={"count": 1}).get_json()["uploads"][0]
    put = client.put(f"/v1/uploads/{upload_slot['key']}", data=b"x")
    assert put.status_code == 503 and put.get_json()["code"] == "storage_unavailable"


class CountingStream(io.RawIOBase):
    """A request body of spaces that counts what the server reads of it."""

    def __init__(self, size: int) -> None:
        self.size, self.position, self.read_bytes = size, 0, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        self.position = self.size if whence == 2 else offset
        return self.position

    def tell(self) -> int:
        return self.position

    def readinto(self, buffer) -> int:
        n = min(len(buffer), self.size - self.position)
        buffer[:n] = b" " * n
        self.position += n
        self.read_bytes += n
        return n


def test_a_json_body_over_the_limit_is_refused_without_being_held(redis_server, tmp_path):
    """JSON over SNEAKY_MAX_JSON_BYTES: refused from its Content-Length before parsing; the body is read
    through in small chunks (so a client still sending gets the answer, not a reset) but never held.
    A body larger than any the API accepts is not read at all: the answer says the connection closes."""
    import tracemalloc

    app = create_app(Settings(redis_url=f"redis://127.0.0.1:{redis_server.port}/7", auth="open", rate_limit="",
                              storage_url=str(tmp_path), max_upload_bytes=LIMIT, max_json_bytes=1024 * 1024))
    client = app.test_client()
    body = CountingStream(5 * 1024 * 1024)
    tracemalloc.start()
    try:
        r = client.post("/v1/jobs", input_stream=body, content_length=body.size, content_type="application/json")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert r.status_code == 413 and r.get_json()["code"] == "too_large"
    assert body.read_bytes == body.size and peak < 2 * 1024 * 1024
    huge = CountingStream(31 * 1024 * 1024)
    r = client.post("/v1/jobs", input_stream=huge, content_length=huge.size, content_type="application/json")
    assert r.status_code == 413 and r.headers["Connection"] == "close" and huge.read_bytes == 0


@pytest.mark.parametrize("path", ["/v1/jobs", "/v1/batches", "/v1/uploads"])
@pytest.mark.parametrize("text", ["[" * 3000 + "]" * 3000, '{"metadata": {"a": NaN}}', '{"count": Infinity}',
                                  '{"count": 1e999}', '{"items": [' + "[" * 40 + "]" * 40 + "]}"])
def test_json_bodies_that_python_would_parse_but_nothing_else_can_are_refused(client, path, text):
    r = client.post(path, data=text, content_type="application/json")
    assert r.status_code == 400 and r.get_json()["code"] == "invalid_json", r.get_json()


@pytest.mark.parametrize("metadata", ["[" * 1900 + "]" * 1900, '{"x": NaN}', '{"x": -Infinity}', '{"x": 1e400}',
                                      '{"x": ' + "[" * 40 + "]" * 40 + "}"])
def test_metadata_must_be_plain_json(client, metadata):
    r = post_job(client, *ok_pair(), metadata=metadata)
    assert r.status_code == 422 and r.get_json()["code"] == "invalid_metadata", r.get_json()


def test_a_batch_summary_reads_its_counts_not_its_jobs(app, client, monkeypatch):
    """Every job transition moves its batch's counts in the same script: the summary costs the same at
    ten items or a hundred thousand; a deleted job counts as ended, so the batch can finish."""
    s = services(app)
    image, mask = ok_pair()
    items = [{"image_key": upload(client, image)} for _ in range(3)]
    batch = client.post("/v1/batches", json={"items": items, "mask_key": upload(client, mask)}).get_json()
    first, second, third = batch["job_ids"]
    assert s.jobs.start(first).applied and s.jobs.succeed(first, {"width": 40}, "k", attempt=1).applied
    assert client.delete(f"/v1/jobs/{second}").status_code == 204

    def no_job_reads(*_, **__):
        raise AssertionError("the summary read the batch's jobs")

    monkeypatch.setattr(s.jobs, "get_many", no_job_reads)
    summary = client.get(f"/v1/batches/{batch['id']}").get_json()
    assert summary["counts"] == {"queued": 1, "running": 0, "succeeded": 1, "failed": 0, "canceled": 0,
                                 "deleted": 1}
    assert summary["progress"] == round(2 / 3, 4) and summary["status"] == "running"
    monkeypatch.undo()
    s.jobs.cancel(third)
    done = client.get(f"/v1/batches/{batch['id']}").get_json()
    assert done["status"] == "done" and done["progress"] == 1.0 and done["finished_at"]


def test_the_manifest_pages_and_its_csv_streams_every_item(app, client):
    image, mask = ok_pair()
    items = [{"image_key": upload(client, image)} for _ in range(5)]
    batch = client.post("/v1/batches", json={"items": items, "mask_key": upload(client, mask)}).get_json()
    seen, cursor, pages = [], 0, 0
    while cursor is not None:
        page = client.get(f"/v1/batches/{batch['id']}/results?limit=2&cursor={cursor}").get_json()
        seen += [item["index"] for item in page["items"]]
        cursor, pages = page["next_cursor"], pages + 1
    assert seen == [0, 1, 2, 3, 4] and pages == 3
    assert [i["job_id"] for i in client.get(f"/v1/batches/{batch['id']}/results").get_json()["items"]] == \
        batch["job_ids"]
    rows = client.get(f"/v1/batches/{batch['id']}/results", headers={"Accept": "text/csv"}).get_data(as_text=True)
    lines = rows.strip().splitlines()
    assert lines[0].startswith("index,job_id") and [line.split(",")[1] for line in lines[1:]] == batch["job_ids"]
    bad = client.get(f"/v1/batches/{batch['id']}/results?limit=0")
    assert bad.status_code == 422 and bad.get_json()["code"] == "invalid_field"


def test_the_api_browser_loads_nothing_from_elsewhere(client):
    import re

    page = client.get("/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert len(sources) >= 3 and not [s for s in sources if "//" in s], sources
    for source in sources:
        asset = client.get(source)
        assert asset.status_code == 200 and len(asset.get_data()) > 100, source
    assert "SwaggerUIBundle" in client.get("/docs/assets/swagger-ui-bundle.js").get_data(as_text=True)[:200_000]
    assert client.get("/docs/assets/../../etc/passwd").status_code == 404


@pytest.mark.parametrize("path", ["/v1/jobs//result", "/v1/jobs//", "/v1/batches//results", "/v1//jobs"])
def test_an_empty_id_is_a_problem_not_a_redirect(client, path):
    r = client.get(path)
    assert r.status_code == 404 and r.mimetype == "application/problem+json", (r.status_code, r.mimetype)
    assert r.get_json()["code"] == "not_found"
