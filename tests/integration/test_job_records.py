"""Job records against a real redis-server: forward-only state, duplicates, listing, retention."""

import time

import pytest
import redis

from core.jobs import CANCELED, FAILED, QUEUED, RUNNING, SUCCEEDED, JobStore, new_job_id


@pytest.fixture
def store(redis_server):
    client = redis.Redis(port=redis_server.port, db=5)
    client.flushdb()
    return JobStore(client, retention_seconds=3600)


def make(store, tenant="t1", **extra):
    job_id = new_job_id()
    store.create({"id": job_id, "tenant": tenant, "engine": "telea", "priority": "interactive", "metadata": {},
                  "input": {"width": 1, "height": 1, "format": "PNG"}, **extra})
    return job_id


def test_state_only_moves_forward(store):
    job_id = make(store)
    assert store.get(job_id)["status"] == QUEUED
    assert store.start(job_id).applied
    assert store.succeed(job_id, {"width": 1, "height": 1, "format": "PNG"}).applied
    # late or duplicate messages: none of them may move it again
    assert not store.start(job_id).applied
    assert not store.fail(job_id, "internal", "late failure").applied
    assert not store.cancel(job_id, (QUEUED, RUNNING)).applied
    job = store.get(job_id)
    assert job["status"] == SUCCEEDED and job["error"] is None and job["attempts"] == 1


def test_redelivery_counts_attempts(store):
    job_id = make(store)
    assert store.start(job_id).applied and store.start(job_id).applied  # worker died, message redelivered
    assert store.get(job_id)["attempts"] == 2


def test_canceled_job_never_starts(store):
    job_id = make(store)
    assert store.cancel(job_id).applied
    res = store.start(job_id)
    assert not res.applied and res.previous == CANCELED


def test_deleted_job_is_not_resurrected(store):
    job_id = make(store)
    store.start(job_id)
    store.delete(store.get(job_id))
    res = store.succeed(job_id, {"width": 1})
    assert not res.applied and res.previous is None
    assert store.redis.exists(store.job_key(job_id)) == 0


def test_failed_records_error(store):
    job_id = make(store)
    store.start(job_id)
    store.fail(job_id, "invalid_image", "cannot decode")
    job = store.get(job_id)
    assert job["status"] == FAILED and job["error"] == {"code": "invalid_image", "message": "cannot decode"}


def test_tenants_see_only_their_jobs(store):
    mine, theirs = make(store, "t1"), make(store, "t2")
    assert store.get(theirs, tenant="t1") is None and store.get(mine, tenant="t1") is not None
    items, _ = store.list("t1", 10)
    assert [j["id"] for j in items] == [mine]


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
