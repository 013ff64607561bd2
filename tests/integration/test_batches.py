"""Bulk: direct uploads, batches of 50 through two worker processes, manifests, priorities."""

import csv
import io
import json

import numpy as np
import pytest
import requests
from PIL import Image

from client.sdk import SneakyClient, SneakyError
from tests.helpers import eventually, mask_for, photo, png_bytes
from tests.servers import ServiceStack


@pytest.fixture(scope="module")
def client(stack):
    if not any(s.name == "worker2" for s in stack.servers):
        stack.start_worker("worker2")  # two worker processes share the batch
    return SneakyClient(stack.api_url)


def photos(n, w=48, h=40, seed=0):
    return [png_bytes(photo(w, h, seed=seed + i)) for i in range(n)]


def check_results(client, manifest, images, holes):
    assert len(manifest) == len(images)
    for item, image, hole in zip(manifest, images, holes):
        assert item["status"] == "succeeded", item
        result = np.asarray(Image.open(io.BytesIO(requests.get(item["result_url"], timeout=30).content)))
        before = np.asarray(Image.open(io.BytesIO(image)))
        assert result.shape == before.shape and (result[~hole] == before[~hole]).all()


def wait_batch(client, batch_id, timeout=180):
    return eventually(lambda: (batch := client.get_batch(batch_id)).done and batch, timeout, 0.2,
                      what=lambda: f"batch {batch_id} to finish: {client.get_batch(batch_id)}")


def test_batch_of_50_with_per_photo_masks(client):
    images = photos(50)
    masks = [mask_for(48, 40, (i % 20, 5, i % 20 + 15, 25)) for i in range(50)]
    image_keys = client.upload(images)
    mask_keys = client.upload(m for m, _ in masks)
    batch = client.batch([{"image_key": i, "mask_key": m, "metadata": {"n": n}}
                          for n, (i, m) in enumerate(zip(image_keys, mask_keys))])
    assert batch.total == 50 and len(batch.job_ids) == 50 and batch.status == "running"
    done = wait_batch(client, batch.id)
    assert done.counts["succeeded"] == 50 and done.progress == 1.0 and done.finished_at
    manifest = client.manifest(batch.id)
    assert [item["index"] for item in manifest] == list(range(50))
    assert [item["image_key"] for item in manifest] == image_keys
    check_results(client, manifest, images, [h for _, h in masks])
    jobs = list(client.jobs(batch_id=batch.id))
    assert len(jobs) == 50 and all(j.priority == "bulk" and j.batch_id == batch.id for j in jobs)


def test_batch_with_a_shared_mask_and_csv_manifest(client, stack):
    images = photos(50, seed=100)
    mask, hole = mask_for(48, 40, (30, 2, 44, 10))  # a watermark in the corner
    image_keys = client.upload(images)
    [mask_key] = client.upload([mask])
    batch = client.batch([{"image_key": k} for k in image_keys], mask_key=mask_key)
    wait_batch(client, batch.id)
    manifest = client.manifest(batch.id)
    check_results(client, manifest, images, [hole] * 50)
    r = requests.get(f"{stack.api_url}/v1/batches/{batch.id}/results", headers={"Accept": "text/csv"}, timeout=30)
    assert r.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == 50 and {row["status"] for row in rows} == {"succeeded"}
    # deleting one job keeps the mask the others share
    client.delete(batch.job_ids[0])
    assert client.get(batch.job_ids[1]).status == "succeeded"
    again = client.batch([{"image_key": image_keys[1]}], mask_key=mask_key)
    assert wait_batch(client, again.id).counts["succeeded"] == 1


def test_batch_with_grow_fills_the_margin_of_every_photo(client):
    images = photos(4, seed=200)
    mask, hole = mask_for(48, 40, (20, 15, 30, 25))
    image_keys = client.upload(images)
    [mask_key] = client.upload([mask])
    batch = client.batch([{"image_key": k} for k in image_keys], mask_key=mask_key, grow=2)
    assert batch.grow == 2
    wait_batch(client, batch.id)
    grown = np.zeros_like(hole)
    grown[13:27, 18:32] = True  # the 10×10 square and 2 px around it (corners included: a superset)
    check_results(client, client.manifest(batch.id), images, [grown] * 4)
    jobs = list(client.jobs(batch_id=batch.id))
    assert {j.grow for j in jobs} == {2} and all(j.input["hole_ratio"] > hole.mean() for j in jobs)


def test_batch_output_converts_every_result(client):
    images = photos(3, seed=300)
    mask, hole = mask_for(48, 40, (10, 10, 30, 30))
    image_keys = client.upload(images)
    [mask_key] = client.upload([mask])
    batch = client.batch([{"image_key": k} for k in image_keys], mask_key=mask_key, output="webp")
    assert batch.output == "webp" and batch.quality is None
    wait_batch(client, batch.id)
    for item, image in zip(client.manifest(batch.id), images):
        result = Image.open(io.BytesIO(requests.get(item["result_url"], timeout=30).content))
        assert result.format == "WEBP"  # lossless from a PNG: nothing outside the hole changes
        before = np.asarray(Image.open(io.BytesIO(image)))
        assert (np.asarray(result.convert("RGB"))[~hole] == before[~hole]).all()
    with pytest.raises(SneakyError) as refused:
        client.batch([{"image_key": image_keys[0]}], mask_key=mask_key, output="png", quality=50)
    assert refused.value.code == "invalid_field"


def test_batch_with_invalid_items_is_refused_whole(client, stack):
    good = client.upload(photos(3))
    masks = client.upload([mask_for(48, 40)[0], mask_for(48, 40)[0], mask_for(40, 48)[0]])
    [text] = client.upload([b"not an image at all"])
    before = set(stack.redis().keys("sneaky:job:*"))
    items = [{"image_key": good[0], "mask_key": masks[0]},
             {"image_key": text, "mask_key": masks[1]},                  # not an image
             {"image_key": good[2], "mask_key": masks[2]},               # mask of the wrong size
             {"image_key": "upl_" + "0" * 32, "mask_key": masks[0]},     # never uploaded
             {"image_key": "../../etc/passwd", "mask_key": masks[0]}]    # not a key at all
    with pytest.raises(SneakyError) as err:
        client.batch(items)
    assert err.value.status == 422 and err.value.code == "invalid_items"
    reported = {e["index"]: e["code"] for e in err.value.body["items"]}
    assert reported == {1: "invalid_image", 2: "mask_size_mismatch", 3: "upload_missing", 4: "invalid_key"}
    assert set(stack.redis().keys("sneaky:job:*")) == before  # nothing was created


def test_truncated_upload_fails_as_its_job_and_is_accounted_for(client):
    whole = png_bytes(photo(48, 40, seed=7))
    keys = client.upload([whole, whole[: len(whole) // 2]])
    [mask] = client.upload([mask_for(48, 40)[0]])
    batch = client.batch([{"image_key": k} for k in keys], mask_key=mask)
    done = wait_batch(client, batch.id)
    assert done.counts == {"queued": 0, "running": 0, "succeeded": 1, "failed": 1, "canceled": 0}
    manifest = client.manifest(batch.id)
    assert manifest[1]["status"] == "failed" and manifest[1]["error"]["code"] == "invalid_image"
    assert manifest[1]["result_url"] is None


def test_job_from_uploaded_keys(client):
    [image, mask] = client.upload([png_bytes(photo(30, 20)), mask_for(30, 20)[0]])
    r = client.request("POST", "/v1/jobs", (202,), json={"image_key": image, "mask_key": mask, "engine": "ns"})
    job = client.wait(r.json()["id"])
    assert job.status == "succeeded" and job.engine == "ns"
    with pytest.raises(SneakyError) as err:
        client.request("POST", "/v1/jobs", (202,), json={"image_key": image})
    assert err.value.code == "missing_field"


def test_interactive_job_overtakes_a_bulk_backlog(client):
    images = photos(200, 32, 24, seed=500)
    image_keys = client.upload(images)
    [mask] = client.upload([mask_for(32, 24)[0]])
    batch = client.batch([{"image_key": k} for k in image_keys], mask_key=mask)
    interactive = client.submit(png_bytes(photo(32, 24)), mask_for(32, 24)[0])
    finished = client.wait(interactive.id, timeout=120)
    assert finished.status == "succeeded"
    at_that_time = client.get_batch(batch.id)
    assert at_that_time.counts["queued"] > 0, at_that_time  # the backlog was still waiting
    wait_batch(client, batch.id, timeout=300)


def test_cancel_a_batch(client, stack):
    images = photos(120, 32, 24, seed=900)
    keys = client.upload(images)
    [mask] = client.upload([mask_for(32, 24)[0]])
    batch = client.batch([{"image_key": k} for k in keys], mask_key=mask)
    canceled = client.cancel_batch(batch.id)
    at_cancel = {i["job_id"] for i in client.manifest(batch.id) if i["status"] == "canceled"}
    done = wait_batch(client, batch.id)
    assert canceled.counts["canceled"] > 0  # the backlog was still queued when the cancel came
    # jobs running then may also stop (at their safe point); none canceled then ever ran after
    assert done.counts["canceled"] >= len(at_cancel) >= canceled.counts["canceled"]
    assert sum(done.counts.values()) == 120 and done.counts["queued"] == 0 and done.counts["running"] == 0
    manifest = client.manifest(batch.id)
    assert all(i["status"] == "canceled" for i in manifest if i["job_id"] in at_cancel)
    for item in manifest:
        assert (item["result_url"] is not None) == (item["status"] == "succeeded")


def test_batches_are_not_found_for_unknown_ids(client):
    with pytest.raises(SneakyError) as err:
        client.get_batch("0123456789abcdef")
    assert err.value.status == 404 and err.value.code == "not_found"


def test_a_batch_larger_than_a_json_body_goes_as_ndjson_and_is_read_in_parts(client, stack):
    if stack.kind != "local":
        pytest.skip("the storage backend plays no part in reading a batch in parts (local storage is quicker)")
    keys = client.upload(photos(3, seed=40))
    [mask] = client.upload([mask_for(48, 40)[0]])
    items = [{"image_key": keys[i % 3], "metadata": {"n": i}} for i in range(12_000)]
    batch = client.batch(items, mask_key=mask, priority="bulk")  # above 10,000: the SDK sends NDJSON
    try:
        assert batch.total == 12_000 and batch.job_ids == []  # a batch this large lists its jobs in the manifest
        summary = client.get_batch(batch.id)
        assert summary.total == 12_000 and sum(summary.counts.values()) == 12_000
        page = client.request("GET", f"/v1/batches/{batch.id}/results", params={"cursor": 11_990, "limit": 10}).json()
        assert [item["index"] for item in page["items"]] == list(range(11_990, 12_000))
        assert page["next_cursor"] is None
        job = client.get(page["items"][-1]["job_id"])
        assert job.metadata == {"n": 11_999}  # item order kept across the parts
    finally:
        client.cancel_batch(batch.id)
    wait_batch(client, batch.id)


def ndjson(client, lines, **headers):
    body = b"".join((line if isinstance(line, bytes) else json.dumps(line).encode()) + b"\n" for line in lines)
    return client.session.post(f"{client.url}/v1/batches", data=body, timeout=60,
                               headers={"Content-Type": "application/x-ndjson", **headers})


def test_ndjson_batches_are_refused_whole_with_the_line_or_item_at_fault(client, stack):
    keys = client.upload(photos(2, seed=50))
    [mask] = client.upload([mask_for(48, 40)[0]])
    before = set(stack.redis().keys("sneaky:*"))
    good = [{"image_key": keys[i % 2]} for i in range(1500)]  # more than one part (1,000 items)
    not_json = ndjson(client, [{"mask_key": mask}, *good[:1200], b"{not json", *good[1200:]])
    assert not_json.status_code == 400 and not_json.json()["code"] == "invalid_json"
    assert "line 1202" in not_json.json()["detail"]
    bad_items = ndjson(client, [{"mask_key": mask}, *good[:1100], {"image_key": "../x"}, {"colour": "red"},
                                *good[1100:]])
    assert bad_items.status_code == 422 and bad_items.json()["code"] == "invalid_items"
    assert {e["index"]: e["code"] for e in bad_items.json()["items"]} == {1100: "invalid_key", 1101: "invalid_field"}
    bad_options = ndjson(client, [{"mask_key": mask, "priority": "urgent"}, *good[:3]])
    assert bad_options.status_code == 422
    empty = ndjson(client, [{"mask_key": mask}])
    assert empty.status_code == 422 and empty.json()["code"] == "invalid_field"
    too_many_for_json = client.session.post(f"{client.url}/v1/batches", timeout=60, json={
        "mask_key": mask, "items": [{"image_key": keys[0]}] * 10_001})
    assert too_many_for_json.status_code == 422 and too_many_for_json.json()["code"] == "too_many_items"
    assert set(stack.redis().keys("sneaky:*")) - before <= {k for k in stack.redis().keys("sneaky:ratelimit*")}


def test_an_ndjson_batch_above_the_limit_is_refused_and_leaves_nothing(lone_env, log_dir):
    env = lone_env(11, SNEAKY_MAX_BATCH_ITEMS="1500")
    stack = ServiceStack(log_dir, env)
    stack.start_api()
    try:
        client = SneakyClient(stack.api_url)
        keys = client.upload(photos(1, seed=60))
        [mask] = client.upload([mask_for(48, 40)[0]])
        before = set(stack.redis().keys("sneaky:*"))
        refused = ndjson(client, [{"mask_key": mask}, *[{"image_key": keys[0]}] * 1501])
        assert refused.status_code == 422 and refused.json()["code"] == "too_many_items"
        assert set(stack.redis().keys("sneaky:*")) == before  # the first part's 1,000 jobs are gone again
        replayed = [ndjson(client, [{"mask_key": mask}, *[{"image_key": keys[0]}] * 1500], **{"Idempotency-Key": "k1"})
                    for _ in range(2)]
        assert [r.status_code for r in replayed] == [202, 202] and replayed[1].headers["Idempotent-Replayed"] == "true"
        assert replayed[0].json()["id"] == replayed[1].json()["id"] and replayed[0].json()["total"] == 1500
        other = ndjson(client, [{"mask_key": mask}, *[{"image_key": keys[0]}] * 1499], **{"Idempotency-Key": "k1"})
        assert other.status_code == 422 and other.json()["code"] == "idempotency_mismatch"
    finally:
        stack.stop()
