"""Bulk: direct uploads, batches of 50 through two worker processes, manifests, priorities."""

import csv
import io

import numpy as np
import pytest
import requests
from PIL import Image

from client.sdk import SneakyClient, SneakyError
from tests.helpers import eventually, mask_for, photo, png_bytes


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
