"""End to end over HTTP: API (gunicorn) → Redis → Celery worker → storage, for both drivers.

Refusals and validation, which need no worker, are in test_api_edge.py (Flask's test client)."""

import io
import time

import numpy as np
import pytest
import requests
from PIL import Image, ImageOps

from tests.helpers import (
    HookReceiver,
    assert_only_the_patch_changed,
    eventually,
    fetch_result,
    jpeg_bytes,
    mask_for,
    photo,
    png_bytes,
    run_job,
    stored_objects,
    submit,
    wait_done,
    wait_job,
)


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L"])
def test_png_round_trip_keeps_mode_and_outside_pixels(stack, mode):
    image = photo(96, 64, mode)
    mask, hole = mask_for(96, 64)
    job, result = run_job(stack, png_bytes(image), mask, metadata='{"album": "rome"}')
    assert result.format == "PNG" and result.size == (96, 64) and result.mode == mode
    assert job["result"]["width"] == 96 and job["result"]["format"] == "PNG"
    assert job["input"] == {"width": 96, "height": 64, "format": "PNG",
                            "hole_ratio": pytest.approx(hole.mean(), abs=1e-5)}
    assert job["metadata"] == {"album": "rome"} and job["attempts"] == 1 and job["engine"] == "telea"
    for stamp in ("created_at", "started_at", "finished_at"):
        assert job[stamp].endswith("Z")
    before, after = np.asarray(image), np.asarray(result)
    assert (before[~hole] == after[~hole]).all()
    assert (before[hole] != after[hole]).any()
    if mode == "RGBA":
        assert np.array_equal(before[..., 3], after[..., 3])


def test_a_jpeg_comes_back_patched_in_its_stored_layout(stack):
    stored = photo(120, 80)
    exif = Image.Exif()
    exif[0x0112] = 6  # displayed rotated: portrait 80×120
    buf = io.BytesIO()
    stored.save(buf, "JPEG", exif=exif, quality=85, progressive=True)
    mask, hole = mask_for(80, 120, (10, 60, 40, 100))  # painted on the photo as displayed
    job, result = run_job(stack, buf.getvalue(), mask)
    assert job["input"]["width"] == 80 and job["input"]["height"] == 120
    assert job["result"] == {"width": 80, "height": 120, "format": "JPEG", "patched": True, "url": job["result"]["url"]}
    # the file as it was stored, tag and progressive mode kept; upright in every viewer that reads the tag
    assert result.format == "JPEG" and result.size == (120, 80) and result.getexif()[0x0112] == 6
    assert result.info.get("progressive") and result.quantization == Image.open(buf).quantization
    hole_stored = np.asarray(Image.fromarray(hole.view(np.uint8)).transpose(Image.Transpose.ROTATE_90)).astype(bool)
    assert_only_the_patch_changed(buf.getvalue(), fetch_result(stack, job["id"]).content, hole_stored)
    assert ImageOps.exif_transpose(result).size == (80, 120)


def test_output_converts_and_quality_applies(stack):
    image, mask = photo(96, 64), mask_for(96, 64)[0]
    job, result = run_job(stack, jpeg_bytes(image), mask, output="png")
    assert result.format == "PNG" and job["output"] == "png" and job["result"]["format"] == "PNG"
    assert "patched" not in job["result"]
    low, small = run_job(stack, png_bytes(image), mask, output="jpeg", quality="40")
    high, large = run_job(stack, png_bytes(image), mask, output="jpeg", quality="95")
    assert small.format == large.format == "JPEG" and low["quality"] == 40
    assert len(fetch_result(stack, low["id"]).content) < len(fetch_result(stack, high["id"]).content)


def test_lossless_webp_stays_lossless_and_identical_outside_the_hole(stack):
    image = photo(64, 64)
    buf = io.BytesIO()
    image.save(buf, "WEBP", lossless=True)
    mask, hole = mask_for(64, 64)
    job, result = run_job(stack, buf.getvalue(), mask, engine="ns")
    assert job["engine"] == "ns" and result.format == "WEBP"
    before, after = np.asarray(image), np.asarray(result.convert("RGB"))
    assert (before[~hole] == after[~hole]).all() and (before[hole] != after[hole]).any()


def test_grow_fills_a_margin_around_the_mask_and_nothing_beyond(stack):
    image = photo(96, 64)
    mask, hole = mask_for(96, 64, (30, 20, 50, 40))
    job, result = run_job(stack, png_bytes(image), mask, grow="3")
    assert job["grow"] == 3
    # 20×20 grown by a disc of 3: four 20×3 sides and a disc's worth of rounded corners
    assert job["input"]["hole_ratio"] == pytest.approx((20 * 20 + 4 * 20 * 3 + 3.14 * 9) / (96 * 64), abs=0.002)
    before, after = np.asarray(image), np.asarray(result)
    changed = (before != after).any(-1)
    ring = np.zeros_like(hole)
    ring[17:43, 27:53] = True
    ring &= ~hole
    assert changed[ring].mean() > 0.8  # the margin is filled, not kept
    outside = np.ones_like(hole)
    outside[16:44, 26:54] = False
    assert not changed[outside].any()


def test_empty_mask_returns_photo_unchanged(stack):
    image = photo(50, 40)
    job, result = run_job(stack, png_bytes(image), png_bytes(Image.new("L", (50, 40), 0)))
    assert np.array_equal(np.asarray(result), np.asarray(image)) and job["input"]["hole_ratio"] == 0


def test_list_newest_first_with_cursor(stack):
    ids = []
    for i in range(5):
        r = submit(stack, png_bytes(photo(20, 20, seed=i)), mask_for(20, 20)[0], metadata=f'{{"i": {i}}}')
        ids.append(r.json()["id"])
    for job_id in ids:
        wait_done(stack, job_id)
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = requests.get(f"{stack.api_url}/v1/jobs", params=params, timeout=10).json()
        assert len(page["items"]) <= 2
        seen += [j["id"] for j in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == sorted(seen, reverse=True) and len(seen) == len(set(seen))
    assert seen[:5] == ids[::-1]
    succeeded = requests.get(f"{stack.api_url}/v1/jobs", params={"status": "succeeded", "limit": 100}, timeout=10)
    assert all(j["status"] == "succeeded" for j in succeeded.json()["items"])
    bad = requests.get(f"{stack.api_url}/v1/jobs", params={"limit": 1000}, timeout=10)
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_field"


def test_result_before_done_and_cancel_after_done(stack):
    job, _ = run_job(stack, png_bytes(photo(30, 30)), mask_for(30, 30)[0])
    r = requests.post(f"{stack.api_url}/v1/jobs/{job['id']}/cancel", timeout=10)
    assert r.status_code == 409 and r.json()["code"] == "not_cancelable"


def test_delete_removes_record_and_objects(stack):
    job, _ = run_job(stack, png_bytes(photo(30, 30)), mask_for(30, 30)[0])
    assert any(job["id"] in key for key in stored_objects(stack))
    r = requests.delete(f"{stack.api_url}/v1/jobs/{job['id']}", timeout=10)
    assert r.status_code == 204
    assert requests.get(f"{stack.api_url}/v1/jobs/{job['id']}", timeout=10).status_code == 404
    assert not any(job["id"] in key for key in stored_objects(stack))


def test_health_readiness_and_openapi(stack):
    assert requests.get(f"{stack.api_url}/healthz", timeout=10).json()["status"] == "ok"
    ready = requests.get(f"{stack.api_url}/readyz", timeout=10)
    assert ready.status_code == 200 and ready.json()["checks"] == {"redis": "ok", "storage": "ok"}
    spec = requests.get(f"{stack.api_url}/openapi.json", timeout=10).json()
    assert spec["openapi"].startswith("3.")
    for path in ("/v1/jobs", "/v1/jobs/{job_id}", "/v1/jobs/{job_id}/result", "/v1/jobs/{job_id}/cancel"):
        assert path in spec["paths"]
    assert "multipart/form-data" in spec["paths"]["/v1/jobs"]["post"]["requestBody"]["content"]


def test_duplicate_delivery_produces_one_result(stack):
    from core.queue import enqueue, make_celery
    from core.settings import Settings

    job, _ = run_job(stack, png_bytes(photo(30, 30)), mask_for(30, 30)[0])
    objects = stored_objects(stack)
    settings = Settings.from_env(stack.env)
    enqueue(make_celery(settings), [job["id"]], "interactive", 60)  # the same job id delivered again, late
    def worker_logs():  # any worker of the stack may take it
        return "".join(s.log.read_text() for s in stack.servers if s.name.startswith("worker"))

    eventually(lambda: f"job {job['id']} skipped" in worker_logs(), 30, what="the late delivery to be skipped")
    assert f"job {job['id']} skipped: succeeded" in worker_logs()
    again = requests.get(f"{stack.api_url}/v1/jobs/{job['id']}", timeout=10).json()
    assert again["status"] == "succeeded" and again["attempts"] == 1 and again["finished_at"] == job["finished_at"]
    assert stored_objects(stack) == objects


def test_webhooks_are_signed_retried_and_recorded(stack):
    """The receiver fails the first delivery (503) and takes the second; both carry the Standard
    Webhooks headers, signed with the tenant's secret; the job records the attempts."""
    import json

    from core.webhooks import signature

    secret = requests.get(f"{stack.api_url}/v1/webhooks/secret", timeout=10).json()["secret"]
    assert secret.startswith("whsec_")
    with HookReceiver(statuses=[503]) as hook:
        job, _ = run_job(stack, png_bytes(photo(30, 30)), mask_for(30, 30)[0], webhook_url=hook.url)
        recorded = wait_job(stack, job["id"], lambda j: (j.get("webhook") or {}).get("delivered"), timeout=30)
    assert len(hook.received) == 2 and recorded["webhook"]["attempts"] == 2 and recorded["webhook"]["status"] == 204
    ids = set()
    for headers, body in hook.received:
        ids.add(headers["webhook-id"])
        expected = signature(secret, headers["webhook-id"], int(headers["webhook-timestamp"]), body)
        assert headers["webhook-signature"] == expected
        assert abs(int(headers["webhook-timestamp"]) - time.time()) < 300
        payload = json.loads(body)
        assert payload["id"] == job["id"] and payload["status"] == "succeeded"
        assert headers["X-Sneaky-Event"] == "job.finished"
        assert "tenant" not in payload and "image_key" not in payload
    assert ids == {f"msg_{job['id']}"}  # one event, the same id on every try


def test_a_rotated_secret_signs_the_next_delivery(stack):
    from core.webhooks import signature

    old = requests.get(f"{stack.api_url}/v1/webhooks/secret", timeout=10).json()["secret"]
    new = requests.post(f"{stack.api_url}/v1/webhooks/secret/rotate", timeout=10).json()["secret"]
    assert new != old and requests.get(f"{stack.api_url}/v1/webhooks/secret", timeout=10).json()["secret"] == new
    with HookReceiver() as hook:
        run_job(stack, png_bytes(photo(30, 30)), mask_for(30, 30)[0], webhook_url=hook.url)
        headers, body = eventually(lambda: hook.received and hook.received[0], 20, what="the webhook")
    assert headers["webhook-signature"] == signature(new, headers["webhook-id"], int(headers["webhook-timestamp"]),
                                                      body)


def test_oversized_body_is_refused_unread(stack):
    big = b"x" * (2 * 3 * 1024 * 1024 + 128 * 1024)  # past two uploads' worth
    r = requests.post(f"{stack.api_url}/v1/jobs", files={"image": ("p", big), "mask": ("m", b"y")}, timeout=30)
    assert r.status_code == 413 and r.json()["code"] == "too_large"


def test_long_poll_answers_as_soon_as_the_job_ends(stack):
    r = submit(stack, png_bytes(photo(64, 64)), mask_for(64, 64)[0])
    started = time.monotonic()
    job = requests.get(f"{stack.api_url}/v1/jobs/{r.json()['id']}", params={"wait": 15}, timeout=30).json()
    assert job["status"] == "succeeded" and time.monotonic() - started < 10
    bad = requests.get(f"{stack.api_url}/v1/jobs/{job['id']}", params={"wait": 99}, timeout=30)
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_field"


def test_pconv_engine_through_the_service(stack):
    image = photo(300, 200, seed=5)
    mask, hole = mask_for(300, 200, (100, 60, 180, 120))
    job, result = run_job(stack, png_bytes(image), mask, engine="pconv")
    assert job["engine"] == "pconv" and result.size == (300, 200)
    before, after = np.asarray(image), np.asarray(result)
    assert (before[~hole] == after[~hole]).all() and (before[hole] != after[hole]).any()


def test_a_truncated_jpeg_with_a_forged_end_marker_fails_invalid_image(stack):
    """First half of a JPEG and FF D9: the header check passes it, Pillow would decode grey rows in
    silence; the worker's strict decoder check fails the job instead of storing a damaged result."""
    y, x = np.mgrid[0:150, 0:200]
    whole = jpeg_bytes(Image.fromarray(np.stack([x % 256, y % 256, (x * y) % 256], -1).astype(np.uint8)))
    r = submit(stack, whole[: len(whole) // 2] + b"\xff\xd9", mask_for(200, 150)[0])
    assert r.status_code == 202, r.text
    done = wait_done(stack, r.json()["id"])
    assert done["status"] == "failed" and done["error"]["code"] == "invalid_image", done
    assert "damaged" in done["error"]["message"]
