"""Interactive jobs that arrive together are filled together when a window is on (GPU workers)."""

import json
import threading
import time

import redis

from core.keyspace import QUEUES
from core.leases import Leases
from core.window import InteractiveWindow
from tests.helpers import eventually, frozen_workers, mask_for, photo, png_bytes, submit, wait_done
from tests.servers import ServiceStack


def test_a_window_takes_what_waits_and_what_arrives_within_it(redis_server):
    client = redis.Redis(port=redis_server.port, db=10)
    client.flushdb()
    window = InteractiveWindow(client, window_ms=300, most=4, lease_seconds=30)
    for job_id in ("a", "b"):
        window.put(job_id)
    threading.Timer(0.05, lambda: window.put("c")).start()
    assert window.take() == ["a", "b", "c"]  # c came 50 ms later, inside the 300 ms window
    assert sorted(Leases(client, 30).expired(now=time.time() + 60)) == ["a", "b", "c"]  # taken with leases
    for job_id in "defgh":
        window.put(job_id)
    assert window.take() == ["d", "e", "f", "g"]  # never more than `most`
    assert window.take() == ["h"]
    started = time.monotonic()
    assert window.take() == [] and time.monotonic() - started < 0.1  # nothing waiting: no wait either


def test_interactive_jobs_submitted_together_run_as_one_group(lone_env, log_dir):
    env = lone_env(10, SNEAKY_INTERACTIVE_WINDOW_MS="300")
    stack = ServiceStack(log_dir, env)
    stack.start_api()
    worker = stack.start_worker("window-worker")
    try:
        with frozen_workers(stack):
            ids = [submit(stack, png_bytes(photo(32, 32, seed=i)), mask_for(32, 32)[0]).json()["id"] for i in range(4)]
        assert [wait_done(stack, job_id)["status"] for job_id in ids] == ["succeeded"] * 4
        ended = [json.loads(line) for line in worker.log.read_text().splitlines()
                 if line.startswith("{") and '"job ' in line and "succeeded" in line]
        assert sorted(e["job_id"] for e in ended) == sorted(ids)
        assert [e["group"] for e in ended] == [4] * 4  # one task filled all four together
        # four tokens were sent, one per job: the three that came after find nothing and are gone too (the worker
        # takes them after the group it filled: on a busy machine a moment after the jobs have ended)
        queue = redis.Redis.from_url(env["SNEAKY_REDIS_URL"])
        eventually(lambda: queue.llen(QUEUES[0]) == 0, 20, what="the leftover tokens to be taken")
    finally:
        stack.stop()
