"""Job leases against a real redis-server: expiry, one claim per expiry, attempt fencing, the reaper."""

import time

import pytest
import redis

from core.errors import SneakyError
from core.jobs import Job, JobStatus, JobStore
from core.leases import Leases
from tests.helpers import eventually
from worker.leases import Heartbeat, reap


@pytest.fixture
def client(redis_server):
    client = redis.Redis(port=redis_server.port, db=14)
    client.flushdb()
    return client


def new_job(store, priority="bulk"):
    job = Job.new("t1", "telea", priority, {"width": 1, "height": 1, "format": "PNG"})
    store.create(job)
    return job.id


def test_a_lease_runs_out_unless_renewed_and_is_claimed_once(client):
    leases = Leases(client, seconds=0.3)
    leases.hold(["a", "b"])
    assert leases.expired() == []
    time.sleep(0.4)
    leases.hold(["b"])  # b's worker is alive: renewed
    assert leases.expired() == ["a"]
    assert leases.claim("a") and not leases.claim("a")  # two reapers, one re-queue
    assert not leases.claim("b")  # not expired
    assert leases.expired(now=time.time() + 1) == ["b"]
    leases.release(["b"])
    assert leases.expired(now=time.time() + 1) == []


def test_a_newer_attempt_fences_the_older_one_out(client):
    store = JobStore(client, 3600)
    job_id = new_job(store)
    first = store.start(job_id)
    second = store.start(job_id)  # the reaper handed it on; another worker started it
    assert (first.attempt, second.attempt) == (1, 2)
    late = store.succeed(job_id, {"width": 1}, "t1/x/result-1.png", attempt=first.attempt)
    assert not late.applied and late.previous == JobStatus.RUNNING and late.attempt == 2
    assert not store.fail(job_id, SneakyError("late timeout", "timeout"), attempt=first.attempt).applied
    assert not store.cancel(job_id, (JobStatus.RUNNING,), attempt=first.attempt).applied
    assert store.succeed(job_id, {"width": 1}, "t1/x/result-2.png", attempt=second.attempt).applied
    job = store.get(job_id)
    assert job.status == JobStatus.SUCCEEDED and job.result_key == "t1/x/result-2.png" and job.attempts == 2


class FakeCelery:
    def __init__(self):
        self.sent = []

    def send_task(self, name, args, queue, **options):
        self.sent.append((name, args, queue))


class FakeServices:
    def __init__(self, client, seconds):
        from core.settings import Settings

        self.jobs = JobStore(client, 3600)
        self.leases = Leases(client, seconds)
        self.settings = Settings()


def test_the_reaper_requeues_jobs_whose_lease_ran_out(client):
    services = FakeServices(client, seconds=0.2)
    running, in_hand, finished = new_job(services.jobs, "interactive"), new_job(services.jobs), new_job(services.jobs)
    for job_id in (running, finished):
        services.jobs.start(job_id)
    services.leases.hold([running, in_hand, finished])  # in_hand: its worker died before it started it
    services.jobs.succeed(finished, {"width": 1}, "k", attempt=1)  # ended, but its lease was never released
    app = FakeCelery()
    assert reap(services, app) == []  # not yet expired
    time.sleep(0.3)
    assert sorted(reap(services, app)) == sorted([running, in_hand])
    assert sorted(app.sent) == sorted([("sneaky.run_jobs", [[running]], "interactive"),
                                       ("sneaky.run_jobs", [[in_hand]], "bulk")])
    assert reap(services, app) == [] and services.leases.expired(now=time.time() + 60) == []


def test_the_heartbeat_keeps_held_leases_alive_and_lets_go(client):
    leases = Leases(client, seconds=0.3)
    beat = Heartbeat(leases)
    try:
        beat.hold("job-a")
        time.sleep(0.8)  # more than twice the lease: only renewals keep it
        assert leases.expired() == []
        beat.release(["job-a"])
        assert client.zscore(leases.key, "job-a") is None
        leases.hold(["job-b"])  # nobody beats for b
        eventually(lambda: leases.expired() == ["job-b"], 2, what="b's lease to run out")
    finally:
        beat.thread.stop()
