"""Faults and abuse on real processes: a worker child killed mid-job, poisoned jobs,
idempotent submissions, back-pressure."""

import os
import signal
import time

import requests

from client.sdk import SneakyClient
from core.jobs import Job, JobStore
from core.queue import enqueue, make_celery
from core.settings import Settings
from tests.helpers import (
    bomb_png,
    descendants,
    eventually,
    frozen_workers,
    kill_host,
    many_holes,
    mask_for,
    photo,
    png_bytes,
    slow_inputs,
    stored_objects,
    submit,
    wait_done,
    wait_job,
)


def test_worker_child_killed_mid_job_runs_it_again_once(stack):
    image, mask = slow_inputs()
    r = submit(stack, image, mask, engine="ns")
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    wait_job(stack, job_id, lambda job: job["status"] == "running")
    time.sleep(0.5)
    workers = [s for s in stack.servers if s.name.startswith("worker")]
    children = [pid for w in workers for pid in descendants(w.proc.pid)]
    for pid in children:  # every pool process: whichever holds the job dies mid-way
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    done = wait_done(stack, job_id, timeout=180)
    assert done["status"] == "succeeded" and done["attempts"] == 2, done
    results = [k for k in stored_objects(stack) if job_id in k and "result" in k]
    assert len(results) == 1


def test_a_job_started_too_often_ends_poisoned_and_others_flow(stack):
    settings = Settings.from_env(stack.env)
    jobs = JobStore(stack.redis(), settings.retention_seconds)
    ok = submit(stack, png_bytes(photo(20, 20)), mask_for(20, 20)[0]).json()
    # a job whose earlier deliveries all died with their worker: attempts already at the limit
    poison = Job.new("default", "telea", "interactive", {"width": 1, "height": 1, "format": "PNG"},
                     image_key="default/x/image", mask_key="default/x/mask")
    jobs.create(poison)
    for _ in range(settings.max_attempts):
        jobs.start(poison.id)
    enqueue(make_celery(settings), [poison.id], "interactive", 60)
    after = submit(stack, png_bytes(photo(20, 20)), mask_for(20, 20)[0]).json()
    poisoned = wait_done(stack, poison.id)
    assert poisoned["status"] == "failed" and poisoned["error"]["code"] == "poisoned"
    assert wait_done(stack, ok["id"])["status"] == "succeeded"
    assert wait_done(stack, after["id"])["status"] == "succeeded"


def test_idempotency_key_replays_and_refuses_a_different_body(stack):
    image, (mask, _) = png_bytes(photo(24, 24, seed=3)), mask_for(24, 24)
    key = {"Idempotency-Key": f"order-{time.time_ns()}"}
    files = {"image": ("p.png", image), "mask": ("m.png", mask)}
    first = requests.post(f"{stack.api_url}/v1/jobs", files=files, headers=key, timeout=30)
    again = requests.post(f"{stack.api_url}/v1/jobs", files=files, headers=key, timeout=30)
    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"] and again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["Location"] == first.headers["Location"]
    other = requests.post(f"{stack.api_url}/v1/jobs", headers=key, timeout=30,
                          files={"image": ("p.png", png_bytes(photo(24, 24, seed=4))), "mask": ("m.png", mask)})
    assert other.status_code == 422 and other.json()["code"] == "idempotency_mismatch"
    # a failed request keeps nothing: the same key may be used again once fixed
    bad_key = {"Idempotency-Key": f"bad-{time.time_ns()}"}
    bad = requests.post(f"{stack.api_url}/v1/jobs", headers=bad_key, timeout=30,
                        files={"image": ("p.png", b"not an image"), "mask": ("m.png", mask)})
    assert bad.status_code == 400
    fixed = requests.post(f"{stack.api_url}/v1/jobs", files=files, headers=bad_key, timeout=30)
    assert fixed.status_code == 202 and fixed.json()["id"] != first.json()["id"]


def test_back_pressure_answers_429_with_retry_after(stack, log_dir):
    from tests.servers import ServiceStack

    # an API whose interactive queue may hold one message, in front of no worker
    env = {**stack.env, "SNEAKY_MAX_QUEUED_INTERACTIVE": "1",
           "SNEAKY_REDIS_URL": stack.env["SNEAKY_REDIS_URL"].rsplit("/", 1)[0] + "/6"}
    lone = ServiceStack(log_dir, env)
    lone.start_api()
    try:
        lone.redis().flushdb()
        first = submit(lone, png_bytes(photo(20, 20)), mask_for(20, 20)[0])
        second = submit(lone, png_bytes(photo(20, 20)), mask_for(20, 20)[0])
        assert first.status_code == 202
        assert second.status_code == 429 and second.json()["code"] == "queue_full"
        assert int(second.headers["Retry-After"]) > 0
        bulk = submit(lone, png_bytes(photo(20, 20)), mask_for(20, 20)[0], priority="bulk")
        assert bulk.status_code == 202  # each priority has its own limit
        started = time.monotonic()  # no worker: a long poll ends with its wait, the job still queued
        waited = requests.get(f"{lone.api_url}/v1/jobs/{first.json()['id']}", params={"wait": 1}, timeout=30)
        assert waited.json()["status"] == "queued" and 0.9 < time.monotonic() - started < 5
    finally:
        lone.stop()


def test_cancel_stops_a_running_job_and_leaves_no_result(stack):
    image, mask = slow_inputs(4000)
    # the Navier-Stokes fill takes seconds: the cancel lands while it runs, before any result is stored
    r = submit(stack, image, mask, engine="ns")
    job_id = r.json()["id"]
    wait_job(stack, job_id, lambda job: job["status"] == "running", interval=0.02)
    c = requests.post(f"{stack.api_url}/v1/jobs/{job_id}/cancel", timeout=10)
    assert c.status_code == 200
    done = wait_done(stack, job_id, timeout=120)
    assert done["status"] == "canceled" and done["result"] is None
    assert not [k for k in stored_objects(stack) if job_id in k and "result" in k]


def test_a_photo_that_keeps_killing_workers_ends_poisoned(stack):
    """The worker child dies under this job every time (killed here, as a crash would): after
    max_attempts starts it ends `poisoned`, and jobs around it keep flowing."""
    settings = Settings.from_env(stack.env)
    image, mask = slow_inputs(4000)
    job_id = submit(stack, image, mask, engine="ns").json()["id"]
    workers = [s for s in stack.servers if s.name.startswith("worker")]
    for attempt in range(1, settings.max_attempts + 1):
        wait_job(stack, job_id, lambda job, n=attempt: job["status"] == "running" and job["attempts"] == n,
                 timeout=120, interval=0.02)
        for pid in [p for w in workers for p in descendants(w.proc.pid)]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    bystander = submit(stack, png_bytes(photo(20, 20)), mask_for(20, 20)[0]).json()
    done = wait_done(stack, job_id, timeout=120)
    assert done["status"] == "failed" and done["error"]["code"] == "poisoned", done
    assert wait_done(stack, bystander["id"])["status"] == "succeeded"


def test_an_upload_replaced_after_the_job_was_accepted_is_caught(stack):
    """S3: a presigned URL stays valid, so the photo can be swapped before a worker reads it; the
    worker checks the limits and the header again. Local storage: the slot refuses a second file."""
    client = SneakyClient(stack.api_url)
    image, mask = png_bytes(photo(50, 40)), mask_for(50, 40)[0]
    with frozen_workers(stack):
        slots = client.upload_urls(2)
        for slot, data in zip(slots, (image, mask)):
            client.put_upload(slot, data)
        r = requests.post(f"{stack.api_url}/v1/jobs", json={"image_key": slots[0]["key"],
                                                             "mask_key": slots[1]["key"]}, timeout=30)
        assert r.status_code == 202, r.text
        swap = requests.put(slots[0]["url"], data=bomb_png(), headers=slots[0]["headers"], timeout=30)
    done = wait_done(stack, r.json()["id"])
    if stack.kind == "s3":
        assert swap.status_code == 200
        assert done["status"] == "failed" and done["error"]["code"] == "too_many_pixels", done
    else:
        assert swap.status_code == 409 and swap.json()["code"] == "upload_used"
        assert done["status"] == "succeeded", done


def test_many_long_polls_do_not_starve_the_api(lone_env, log_dir):
    """40 `?wait=20` polls on a job that never runs, against one API process of 8 threads: only
    SNEAKY_MAX_WAITS of them hold a thread (half of those for one tenant); the rest answer at once as
    ordinary polls, and /healthz and other requests keep answering meanwhile."""
    from concurrent.futures import ThreadPoolExecutor

    from tests.servers import ServiceStack

    env = lone_env(11, SNEAKY_MAX_WAITS="4")
    lone = ServiceStack(log_dir, env)  # no worker: the job stays queued
    lone.start_api()
    try:
        lone.redis().flushdb()
        job_id = submit(lone, png_bytes(photo(20, 20)), mask_for(20, 20)[0]).json()["id"]

        def poll(_):
            started = time.monotonic()
            r = requests.get(f"{lone.api_url}/v1/jobs/{job_id}", params={"wait": 20}, timeout=30)
            return r.status_code, r.headers.get("Retry-After"), time.monotonic() - started

        with ThreadPoolExecutor(40) as pool:
            polls = [pool.submit(poll, i) for i in range(40)]
            quick = eventually(lambda: sum(p.done() for p in polls) >= 38 and [p.result() for p in polls if p.done()],
                               15, what="all but the held polls to answer")
            assert requests.get(f"{lone.api_url}/healthz", timeout=5).status_code == 200
            assert requests.get(f"{lone.api_url}/v1/jobs", timeout=5).status_code == 200
            held = [p for p in polls if not p.done()]
            assert len(held) == 2  # one tenant: half of SNEAKY_MAX_WAITS
            assert all(status == 200 and retry for status, retry, _ in quick)
            requests.post(f"{lone.api_url}/v1/jobs/{job_id}/cancel", timeout=5)  # ends the held waits now
            assert all(p.result()[0] == 200 and p.result()[2] < 15 for p in held)
    finally:
        lone.stop()


def test_a_worker_host_lost_mid_job_hands_the_job_on_within_its_lease(lone_env, log_dir):
    """Every process of the worker running the job SIGKILLed at once (a preempted node): the broker
    would redeliver only after its visibility timeout (81 minutes); the lease runs out in 5 s and the
    other worker's reaper queues the job again. It succeeds once, attempt 2, with one result."""
    from tests.servers import ServiceStack

    env = lone_env(15, SNEAKY_LEASE_SECONDS="5")
    lone = ServiceStack(log_dir, env)
    lone.start_api()
    doomed = lone.start_worker("worker-doomed")
    try:
        lone.redis().flushdb()
        image, mask = slow_inputs(4000)
        job_id = submit(lone, image, mask, engine="ns").json()["id"]
        wait_job(lone, job_id, lambda job: job["status"] == "running", timeout=120, interval=0.02)
        lone.start_worker("worker-survivor")
        time.sleep(1)  # the survivor is up; the doomed one is mid-fill
        lost_at = time.monotonic()
        kill_host(doomed)
        done = wait_done(lone, job_id, timeout=180)
        recovered_in = time.monotonic() - lost_at
        assert done["status"] == "succeeded" and done["attempts"] == 2, (done, lone.logs())
        results = [k for k in stored_objects(lone) if job_id in k and "result" in k]
        assert len(results) == 1, results  # the lost attempt stored nothing that stayed
        print(f"recovered in {recovered_in:.1f} s (lease 5 s + the fill)")
        logs = "".join(s.log.read_text() for s in lone.servers if s.name == "worker-survivor")
        assert f"job {job_id}: its worker stopped renewing the lease" in logs
    finally:
        lone.stop()


def test_a_stopping_worker_hands_its_job_back_when_the_grace_period_is_over(lone_env, log_dir):
    """SIGTERM (a drain) to a worker mid-fill with SNEAKY_STOP_GRACE_SECONDS=1: at the next safe point
    the job goes back to `queued` (the attempt uncounted) and the worker exits; another worker then
    runs it to the end, attempt 1."""
    from tests.servers import ServiceStack

    env = lone_env(15, SNEAKY_STOP_GRACE_SECONDS="1")
    lone = ServiceStack(log_dir, env)
    lone.start_api()
    stopping = lone.start_worker("worker-drained")
    try:
        lone.redis().flushdb()
        image, mask = many_holes()  # pconv on a CPU: a forward pass per two holes, safe points between
        job_id = submit(lone, image, mask, engine="pconv").json()["id"]
        wait_job(lone, job_id, lambda job: job["status"] == "running", timeout=120, interval=0.02)
        stopping.proc.send_signal(signal.SIGTERM)  # the main process only, as a container stop does
        assert stopping.proc.wait(120) == 0
        job = requests.get(f"{lone.api_url}/v1/jobs/{job_id}", timeout=10).json()
        assert job["status"] == "queued" and job["attempts"] == 0, job
        assert f"job {job_id} handed back" in stopping.log.read_text()
        lone.start_worker("worker-next")
        done = wait_done(lone, job_id, timeout=300)
        assert done["status"] == "succeeded" and done["attempts"] == 1, done
        assert len([k for k in stored_objects(lone) if job_id in k and "result" in k]) == 1
    finally:
        lone.stop()
