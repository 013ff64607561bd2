"""Hostile and broken requests, as an attacker and as an unlucky client would send them: each one gets a
4xx problem+json with its stable code, leaves nothing behind (no job record, no stored object), and the
service answers /healthz and /readyz afterwards. Flask's test client against the suite's real Redis,
with API keys on; what needs a real socket (bursts, long polls, torn connections) is in
test_rate_limit.py and test_faults.py.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis

from api import create_app
from core.errors import ERRORS
from core.keys import KeyStore
from core.settings import Settings
from tests.helpers import bomb_png, jpeg_bytes, mask_for, photo, png_bytes, stored_objects
from tests.test_webhooks import REFUSED as PRIVATE_WEBHOOKS

LIMIT = 2 * 1024 * 1024
GOOD_KEY = "upl_" + "0" * 32


@dataclass
class Case:
    method: str
    path: str
    status: int
    code: str
    body: Callable[[], dict[str, Any]] = field(default=lambda: {})  # keyword arguments for the test client
    auth: bool = True


def form(image: bytes | None = None, mask: bytes | None = None, **fields: Any) -> Callable[[], dict[str, Any]]:
    def make() -> dict[str, Any]:
        data: dict[str, Any] = dict(fields)
        if image is not None:
            data["image"] = (io.BytesIO(image), "p.png")
        if mask is not None:
            data["mask"] = (io.BytesIO(mask), "m.png")
        return {"data": data, "content_type": "multipart/form-data"}
    return make


def raw(data: bytes, content_type: str = "application/json", **headers: str) -> Callable[[], dict[str, Any]]:
    return lambda: {"data": data, "content_type": content_type, "headers": headers}


def as_json(value: Any) -> Callable[[], dict[str, Any]]:
    return lambda: {"json": value}


PHOTO, MASK = png_bytes(photo(40, 30)), mask_for(40, 30)[0]
GIF = io.BytesIO()
photo(40, 30).save(GIF, "GIF")
TIFF = io.BytesIO()
photo(40, 30).save(TIFF, "TIFF")
DEEP = "[" * 3000 + "]" * 3000

CASES: dict[str, Case] = {
    # -- multipart submissions ------------------------------------------------------------
    "no fields": Case("POST", "/v1/jobs", 400, "missing_field", form()),
    "no mask": Case("POST", "/v1/jobs", 400, "missing_field", form(PHOTO)),
    "no image": Case("POST", "/v1/jobs", 400, "missing_field", form(None, MASK)),
    "text as image": Case("POST", "/v1/jobs", 400, "invalid_image", form(b"hello", MASK)),
    "empty image": Case("POST", "/v1/jobs", 400, "invalid_image", form(b"", MASK)),
    "empty mask": Case("POST", "/v1/jobs", 400, "invalid_image", form(PHOTO, b"")),
    "html as image": Case("POST", "/v1/jobs", 400, "invalid_image", form(b"<html><script>x</script>", MASK)),
    "truncated png": Case("POST", "/v1/jobs", 400, "invalid_image", form(PHOTO[:300], MASK)),
    "truncated jpeg": Case("POST", "/v1/jobs", 400, "invalid_image",
                           form(jpeg_bytes(photo(200, 150))[:2000], mask_for(200, 150)[0])),
    "png signature only": Case("POST", "/v1/jobs", 400, "invalid_image", form(b"\x89PNG\r\n\x1a\n", MASK)),
    "gif": Case("POST", "/v1/jobs", 415, "unsupported_format", form(GIF.getvalue(), MASK)),
    "tiff": Case("POST", "/v1/jobs", 415, "unsupported_format", form(TIFF.getvalue(), MASK)),
    "gif mask": Case("POST", "/v1/jobs", 415, "unsupported_format", form(PHOTO, GIF.getvalue())),
    "mask rotated": Case("POST", "/v1/jobs", 422, "mask_size_mismatch", form(PHOTO, mask_for(30, 40)[0])),
    "mask one pixel short": Case("POST", "/v1/jobs", 422, "mask_size_mismatch", form(PHOTO, mask_for(40, 29)[0])),
    "decompression bomb": Case("POST", "/v1/jobs", 422, "too_many_pixels", form(bomb_png(), MASK)),
    "bomb as mask": Case("POST", "/v1/jobs", 422, "too_many_pixels", form(PHOTO, bomb_png())),
    "wide bomb": Case("POST", "/v1/jobs", 422, "too_many_pixels", form(bomb_png(1_000_000, 50), MASK)),
    "oversize image": Case("POST", "/v1/jobs", 413, "too_large", form(b"\x89PNG" + b"\0" * (LIMIT + 1), MASK)),
    "oversize mask": Case("POST", "/v1/jobs", 413, "too_large", form(PHOTO, b"\x89PNG" + b"\0" * (LIMIT + 1))),
    "body past every limit": Case("POST", "/v1/jobs", 413, "too_large",
                                  form(b"\0" * (3 * LIMIT), b"\0" * LIMIT)),
    **{f"engine {e!r}": Case("POST", "/v1/jobs", 422, "invalid_field", form(PHOTO, MASK, engine=e))
       for e in ("magic", "PCONV", "../pconv", "")},
    **{f"priority {p!r}": Case("POST", "/v1/jobs", 422, "invalid_field", form(PHOTO, MASK, priority=p))
       for p in ("urgent", "INTERACTIVE", "1")},
    **{f"grow {g!r}": Case("POST", "/v1/jobs", 422, "invalid_field", form(PHOTO, MASK, grow=g))
       for g in ("-1", "65", "lots", "1e3", "3.5", "9" * 40)},
    "metadata over 4 KiB": Case("POST", "/v1/jobs", 422, "metadata_too_large",
                                form(PHOTO, MASK, metadata='{"x": "' + "a" * 4100 + '"}')),
    **{f"metadata {m[:20]!r}": Case("POST", "/v1/jobs", 422, "invalid_metadata", form(PHOTO, MASK, metadata=m))
       for m in ("[1]", '"text"', "42", "null", "{oops", '{"x": NaN}', '{"x": Infinity}', '{"x": -Infinity}',
                 '{"x": 1e999}', '{"x": "\\udfff"}', '{"\\ud800": 1}', "[" * 1900 + "]" * 1900,
                 '{"a": ' + "[" * 40 + "]" * 40 + "}")},
    **{f"webhook {u[:32]!r}": Case("POST", "/v1/jobs", 422, "invalid_field", form(PHOTO, MASK, webhook_url=u))
       for u in ("ftp://example.com/x", "javascript:alert(1)", "not a url", "http://" + "a" * 2100 + ".com/")},
    **{f"webhook to {u[7:40]!r}": Case("POST", "/v1/jobs", 422, "invalid_webhook", form(PHOTO, MASK, webhook_url=u))
       for u in PRIVATE_WEBHOOKS if u.startswith("http://") and "///" not in u and "." not in u.split("]")[0][8:]},
    # an IPv4-mapped address in dotted form is not a URL marshmallow accepts: refused one step earlier
    "webhook to '[::ffff:127.0.0.1]'": Case("POST", "/v1/jobs", 422, "invalid_field",
                                            form(PHOTO, MASK, webhook_url="http://[::ffff:127.0.0.1]/x")),
    # -- JSON submissions -----------------------------------------------------------------
    "json: not json": Case("POST", "/v1/jobs", 400, "invalid_json", raw(b"{not json")),
    "json: nested 3000": Case("POST", "/v1/jobs", 400, "invalid_json", raw(DEEP.encode())),
    "json: NaN": Case("POST", "/v1/jobs", 400, "invalid_json", raw(b'{"image_key": NaN}')),
    "json: bare Infinity": Case("POST", "/v1/jobs", 400, "invalid_json", raw(b"Infinity")),
    "json: utf-16": Case("POST", "/v1/jobs", 400, "invalid_json", raw('{"a": 1}'.encode("utf-16"))),
    "json: lone surrogate": Case("POST", "/v1/jobs", 400, "invalid_json", raw(b'{"a": "\xed\xa0\x80"}')),
    "json: escaped lone surrogate": Case("POST", "/v1/jobs", 400, "invalid_json",
                                         raw(b'{"image_key": "\\ud800", "mask_key": "x"}')),
    "json: empty": Case("POST", "/v1/jobs", 400, "invalid_json", raw(b"")),
    "json: list body": Case("POST", "/v1/jobs", 422, "invalid_field", as_json([1, 2])),
    "json: no keys": Case("POST", "/v1/jobs", 400, "missing_field", as_json({})),
    "json: key a number": Case("POST", "/v1/jobs", 422, "invalid_field",
                               as_json({"image_key": 5, "mask_key": GOOD_KEY})),
    "json: key too long": Case("POST", "/v1/jobs", 422, "invalid_field",
                               as_json({"image_key": "upl_" + "0" * 500, "mask_key": GOOD_KEY})),
    "json: path as key": Case("POST", "/v1/jobs", 422, "invalid_key",
                              as_json({"image_key": "../../etc/passwd", "mask_key": GOOD_KEY})),
    "json: another tenant's object": Case("POST", "/v1/jobs", 422, "invalid_key",
                                          as_json({"image_key": "other/uploads/" + GOOD_KEY, "mask_key": GOOD_KEY})),
    "json: nothing uploaded": Case("POST", "/v1/jobs", 422, "upload_missing",
                                   as_json({"image_key": GOOD_KEY, "mask_key": GOOD_KEY})),
    "json: unknown field": Case("POST", "/v1/jobs", 422, "invalid_field",
                                as_json({"image_key": GOOD_KEY, "mask_key": GOOD_KEY, "tenant": "other"})),
    "json: metadata a list": Case("POST", "/v1/jobs", 422, "invalid_field",
                                  as_json({"image_key": GOOD_KEY, "mask_key": GOOD_KEY, "metadata": [1]})),
    "json: metadata too deep": Case("POST", "/v1/jobs", 400, "invalid_json",
                                    as_json({"image_key": GOOD_KEY, "mask_key": GOOD_KEY,
                                             "metadata": json.loads("[" * 40 + "]" * 40)})),
    "json: grow a string": Case("POST", "/v1/jobs", 422, "invalid_field",
                                as_json({"image_key": GOOD_KEY, "mask_key": GOOD_KEY, "grow": "lots"})),
    "json: private webhook": Case("POST", "/v1/jobs", 422, "invalid_webhook",
                                  as_json({"image_key": GOOD_KEY, "mask_key": GOOD_KEY,
                                           "webhook_url": "http://[64:ff9b::7f00:1]/x"})),
    "json: over the JSON limit": Case("POST", "/v1/jobs", 413, "too_large",
                                      raw(b'{"metadata": "' + b"a" * (LIMIT // 2 + 10) + b'"}')),
    # -- batches --------------------------------------------------------------------------
    "batch: no items": Case("POST", "/v1/batches", 400, "missing_field", as_json({})),
    "batch: empty items": Case("POST", "/v1/batches", 422, "invalid_field", as_json({"items": []})),
    "batch: items not a list": Case("POST", "/v1/batches", 422, "invalid_field", as_json({"items": "x"})),
    "batch: 10,001 items": Case("POST", "/v1/batches", 422, "too_many_items",
                                as_json({"items": [{"image_key": GOOD_KEY}] * 10_001, "mask_key": GOOD_KEY})),
    "batch: masks both ways": Case("POST", "/v1/batches", 422, "invalid_field",
                                   as_json({"items": [{"image_key": GOOD_KEY, "mask_key": GOOD_KEY}],
                                            "mask_key": GOOD_KEY})),
    "batch: a mask missing": Case("POST", "/v1/batches", 422, "invalid_field",
                                  as_json({"items": [{"image_key": GOOD_KEY, "mask_key": GOOD_KEY},
                                                     {"image_key": GOOD_KEY}]})),
    "batch ndjson: a line not JSON": Case("POST", "/v1/batches", 400, "invalid_json",
                                          raw(b'{}\n{"image_key": "x"}\n{oops\n', "application/x-ndjson")),
    "batch ndjson: a line of 1 MB": Case("POST", "/v1/batches", 413, "too_large",
                                         raw(b'{}\n{"image_key": "' + b"a" * (1 << 20) + b'"}\n',
                                             "application/x-ndjson")),
    "batch ndjson: settings not an object": Case("POST", "/v1/batches", 422, "invalid_field",
                                                 raw(b'[1, 2]\n{"image_key": "x"}\n', "application/x-ndjson")),
    "batch ndjson: no items": Case("POST", "/v1/batches", 422, "invalid_field", raw(b'{}\n', "application/x-ndjson")),
    "batch ndjson: an item not an object": Case("POST", "/v1/batches", 422, "invalid_items",
                                                raw(b'{}\n"just a string"\n', "application/x-ndjson")),
    "batch ndjson: nested 3000": Case("POST", "/v1/batches", 400, "invalid_json",
                                      raw(b"{}\n" + DEEP.encode() + b"\n", "application/x-ndjson")),
    "batch: nothing uploaded": Case("POST", "/v1/batches", 422, "invalid_items",
                                    as_json({"items": [{"image_key": GOOD_KEY, "mask_key": GOOD_KEY}]})),
    "batch: path keys": Case("POST", "/v1/batches", 422, "invalid_items",
                             as_json({"items": [{"image_key": "../x", "mask_key": "/etc/passwd"}]})),
    "batch: shared mask missing": Case("POST", "/v1/batches", 422, "upload_missing",
                                       as_json({"items": [{"image_key": GOOD_KEY}], "mask_key": GOOD_KEY})),
    "batch: nested 3000": Case("POST", "/v1/batches", 400, "invalid_json", raw(DEEP.encode())),
    "batch: NaN": Case("POST", "/v1/batches", 400, "invalid_json", raw(b'{"items": [NaN]}')),
    "batch: bad priority": Case("POST", "/v1/batches", 422, "invalid_field",
                                as_json({"items": [{"image_key": GOOD_KEY}], "mask_key": GOOD_KEY, "priority": "x"})),
    # -- uploads --------------------------------------------------------------------------
    "uploads: count 0": Case("POST", "/v1/uploads", 422, "invalid_field", as_json({"count": 0})),
    "uploads: count 1001": Case("POST", "/v1/uploads", 422, "invalid_field", as_json({"count": 1001})),
    "uploads: count -5": Case("POST", "/v1/uploads", 422, "invalid_field", as_json({"count": -5})),
    "uploads: count text": Case("POST", "/v1/uploads", 422, "invalid_field", as_json({"count": "many"})),
    "uploads: long content type": Case("POST", "/v1/uploads", 422, "invalid_field",
                                       as_json({"content_type": "x" * 200})),
    "uploads: nested 3000": Case("POST", "/v1/uploads", 400, "invalid_json", raw(DEEP.encode())),
    "uploads: Infinity": Case("POST", "/v1/uploads", 400, "invalid_json", raw(b'{"count": Infinity}')),
    "put: unknown slot": Case("PUT", "/v1/uploads/" + GOOD_KEY, 404, "not_found", raw(PHOTO, "image/png")),
    "put: not a slot name": Case("PUT", "/v1/uploads/upl_zz", 404, "not_found", raw(PHOTO, "image/png")),
    "put: traversal": Case("PUT", "/v1/uploads/..%2F..%2Fetc%2Fpasswd", 404, "not_found", raw(b"x", "text/plain")),
    # -- reads, ids and paths -------------------------------------------------------------
    **{f"job id {i[:24]!r}": Case("GET", f"/v1/jobs/{i}", 404, "not_found")
       for i in ("0123456789abcdef", "..", "..%2F..%2Fetc", "%00", "a" * 500, "%E2%80%AE", "null", "*")},
    **{f"job action on {i!r}": Case(m, f"/v1/jobs/{i}{p}", 404, "not_found")
       for i in ("nope", "a" * 65) for m, p in (("GET", "/result"), ("POST", "/cancel"), ("DELETE", ""))},
    **{f"batch id {i[:24]!r}": Case("GET", f"/v1/batches/{i}{p}", 404, "not_found")
       for i in ("nope", "..") for p in ("", "/results")},
    "batch cancel unknown": Case("POST", "/v1/batches/nope/cancel", 404, "not_found"),
    **{f"list {q}": Case("GET", f"/v1/jobs?{q}", 422, "invalid_field")
       for q in ("limit=0", "limit=101", "limit=-1", "limit=abc", "status=lost", "cursor=" + "a" * 65,
                 "batch_id=" + "b" * 65)},
    **{f"wait {w}": Case("GET", f"/v1/jobs/0123456789abcdef?wait={w}", 422, "invalid_field")
       for w in ("-1", "21", "1e9", "nan", "soon")},
    # -- methods, routes, headers ---------------------------------------------------------
    **{f"{m} {p}": Case(m, p, 405, "method_not_allowed")
       for m, p in (("PUT", "/v1/jobs"), ("PATCH", "/v1/jobs"), ("DELETE", "/v1/jobs"), ("GET", "/v1/uploads"),
                    ("GET", "/v1/batches"), ("PUT", "/v1/webhooks/secret"), ("GET", "/v1/webhooks/secret/rotate"))},
    "unknown route": Case("GET", "/v1/nothing", 404, "not_found"),
    "unknown version": Case("GET", "/v2/jobs", 404, "not_found"),
    "idempotency key too long": Case("POST", "/v1/jobs", 422, "invalid_field",
                                     lambda: {**form(PHOTO, MASK)(), "headers": {"Idempotency-Key": "k" * 256}}),
    # -- keys -----------------------------------------------------------------------------
    **{f"auth {h[:24]!r}": Case("GET", "/v1/jobs", 401, "unauthorized",
                                 (lambda h=h: {"headers": {"Authorization": h}} if h else {}), auth=False)
       for h in ("", "Bearer", "Bearer sk_wrong", "Basic dXNlcjpwYXNz", "bearer  ", "Bearer " + "x" * 5000,
                 "Token sk_x")},
    "auth on a submission": Case("POST", "/v1/jobs", 401, "unauthorized", form(PHOTO, MASK), auth=False),
    "auth on the secret": Case("GET", "/v1/webhooks/secret", 401, "unauthorized", auth=False),
}


@pytest.fixture(scope="module")
def service(redis_server, tmp_path_factory):
    url = f"redis://127.0.0.1:{redis_server.port}/13"
    redis.Redis.from_url(url).flushdb()
    settings = Settings(redis_url=url, auth="keys", storage_url=str(tmp_path_factory.mktemp("hostile")),
                        max_upload_bytes=LIMIT, max_json_bytes=LIMIT // 2, max_pixels=40_000_000,
                        default_engine="telea", rate_limit="")
    app = create_app(settings)
    secret, _ = KeyStore(redis.Redis.from_url(url)).create("acme")
    return app, {"Authorization": f"Bearer {secret}"}


def test_the_table_is_large_and_every_code_is_a_known_one():
    assert len(CASES) >= 100
    assert all(ERRORS[case.code][0] == case.status for case in CASES.values())


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_request_is_refused_cleanly(service, name):
    app, auth = service
    case = CASES[name]
    client = app.test_client()
    r_ = app.extensions["sneaky"].redis
    before = (set(r_.keys("sneaky:job:*")), set(r_.keys("sneaky:batch:*")), stored_objects(app.extensions["sneaky"]
                                                                                          .settings.storage_url))
    kwargs = case.body()
    headers = {**(auth if case.auth else {}), **kwargs.pop("headers", {})}
    response = client.open(case.path, method=case.method, headers=headers, **kwargs)
    assert response.status_code == case.status, response.get_data(as_text=True)[:500]
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["code"] == case.code and body["status"] == case.status and body["detail"], body
    assert "Traceback" not in response.get_data(as_text=True)
    after = (set(r_.keys("sneaky:job:*")), set(r_.keys("sneaky:batch:*")), stored_objects(app.extensions["sneaky"]
                                                                                         .settings.storage_url))
    assert after == before  # nothing stored, no record, no batch
    assert client.get("/healthz").status_code == 200 and client.get("/readyz").status_code == 200
