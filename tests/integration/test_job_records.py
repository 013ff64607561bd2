"""Job records against a real redis-server: forward-only state, duplicates, listing, retention."""

import time

import pytest
import redis

from core.errors import SneakyError
from core.jobs import Job, JobStatus, JobStore, new_job_id


@pytest.fixture
def store(redis_server):
    client = redis.Redis(port=redis_server.port, db=5)
    client.flushdb()
    return JobStore(client, retention_seconds=3600)


def make(store, tenant="t1", **extra):
    job = Job.new(tenant, "telea", "interactive", {"width": 1, "height": 1, "format": "PNG"}, **extra)
    store.create(job)
    return job.id


def test_state_only_moves_forward(store):
    job_id = make(store)
    assert store.get(job_id).status == JobStatus.QUEUED
    assert store.start(job_id).applied
    assert store.succeed(job_id, {"width": 1, "height": 1, "format": "PNG"}, "t1/x/result.png").applied
    # late or duplicate messages: none of them may move it again
    assert not store.start(job_id).applied
    assert not store.fail(job_id, SneakyError("late failure")).applied
    assert not store.cancel(job_id, (JobStatus.QUEUED, JobStatus.RUNNING)).applied
    job = store.get(job_id)
    assert job.status == JobStatus.SUCCEEDED and job.error is None and job.attempts == 1
    # the success and its result are one write: never one without the other
    assert job.result == {"width": 1, "height": 1, "format": "PNG"} and job.result_key == "t1/x/result.png"


def test_redelivery_counts_attempts(store):
    job_id = make(store)
    assert store.start(job_id).applied and store.start(job_id).applied  # worker died, message redelivered
    assert store.get(job_id).attempts == 2
    assert store.attempts([job_id, "unknown"]) == [2, 0]


def test_canceled_job_never_starts(store):
    job_id = make(store)
    assert store.cancel(job_id).applied
    res = store.start(job_id)
    assert not res.applied and res.previous == JobStatus.CANCELED


def test_deleted_job_is_not_resurrected(store):
    job_id = make(store)
    store.start(job_id)
    store.delete(store.get(job_id))
    res = store.succeed(job_id, {"width": 1}, "t1/x/result.png")
    assert not res.applied and res.previous is None
    assert store.redis.exists(store.job_key(job_id)) == 0


def test_failed_records_error(store):
    job_id = make(store)
    store.start(job_id)
    store.fail(job_id, SneakyError("cannot decode", "invalid_image"))
    job = store.get(job_id)
    assert job.status == JobStatus.FAILED and job.error == {"code": "invalid_image", "message": "cannot decode"}


def test_tenants_see_only_their_jobs(store):
    mine, theirs = make(store, "t1"), make(store, "t2")
    assert store.get(theirs, tenant="t1") is None and store.get(mine, tenant="t1") is not None
    items, _ = store.list("t1", 10)
    assert [j.id for j in items] == [mine]


def test_records_expire_with_retention(store):
    short = JobStore(store.redis, retention_seconds=1)
    job_id = make(short)
    ttl = store.redis.ttl(store.job_key(job_id))
    assert 0 < ttl <= 1
    time.sleep(1.3)
    assert store.get(job_id) is None
    assert short.list("t1", 10) == ([], None)


def test_ids_sort_by_creation():
    a = new_job_id()
    time.sleep(0.002)
    assert new_job_id() > a


def test_a_job_reads_back_as_it_was_written(store):
    job = Job.new("t1", "pconv", "bulk", {"width": 3, "height": 2, "format": "JPEG"}, image_key="t1/u/a",
                  mask_key="t1/u/m", grow=4, metadata={"sku": "A-1", "n": [1, 2]},
                  webhook_url="https://example.com/hook", batch_id="b1")
    store.create(job)
    assert store.get(job.id) == job
    assert store.get(job.id).stored_keys == []  # uploads are the client's, not the job's to delete
    job.result_key = job.object_key("result.png")
    assert job.stored_keys == [job.object_key("result.png")]


def test_cancel_requested_is_read_through_the_store(store):
    job_id = make(store)
    assert store.cancel_requested(job_id) is False
    store.request_cancel(job_id)
    assert store.cancel_requested(job_id) is True and store.get(job_id).cancel_requested is True


def test_start_reads_the_job_back_in_the_same_script(store):
    job_id = make(store, webhook_url="https://example.com/hook")
    started = store.start(job_id)
    assert started.applied and started.job is not None
    assert started.job.id == job_id and started.job.status == JobStatus.RUNNING and started.job.attempts == 1
    assert started.job.webhook_url == "https://example.com/hook" and started.job.started_at
    assert store.cancel(job_id, (JobStatus.RUNNING,)).job is None  # only a start asks for the record


@pytest.mark.parametrize("end", ["succeed", "fail", "cancel"])
def test_every_end_wakes_its_waiters_and_nothing_else_does(store, end):
    job_id = make(store)
    done = store.done_key(job_id)
    store.start(job_id)
    assert store.redis.llen(done) == 0  # a start is not an end
    ending = {"succeed": lambda: store.succeed(job_id, {"width": 1}, "t1/x/r.png"),
              "fail": lambda: store.fail(job_id, SneakyError("no")),
              "cancel": lambda: store.cancel(job_id, (JobStatus.RUNNING,))}[end]
    assert ending().applied
    assert store.redis.llen(done) == 1 and 0 < store.redis.ttl(done) <= 60
    assert not ending().applied  # a duplicate that changes nothing wakes nobody again
    assert store.redis.llen(done) == 1


def test_a_success_is_refused_once_a_cancel_was_requested(store):
    job_id = make(store)
    store.start(job_id)
    store.request_cancel(job_id)
    done = store.succeed(job_id, {"width": 1, "height": 1, "format": "PNG"}, "t1/x/result.png")
    assert not done.applied and done.cancel_requested and done.previous == JobStatus.RUNNING
    job = store.get(job_id)
    assert job.status == JobStatus.RUNNING and job.result is None and job.result_key is None
    assert store.cancel(job_id, (JobStatus.RUNNING,)).applied  # the worker then ends it canceled
    # other transitions ignore the flag: a failure is still recorded as one
    other = make(store)
    store.start(other)
    store.request_cancel(other)
    assert store.fail(other, SneakyError("broke")).applied
