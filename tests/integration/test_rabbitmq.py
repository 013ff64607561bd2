"""RabbitMQ as the broker (SNEAKY_BROKER_URL=amqp://…, quorum queues): jobs, batches and webhooks flow
as on Redis, and a worker host that vanishes hands its message back the moment its connection drops,
without waiting for a lease."""

import os
import time

import pytest
import requests

from client.sdk import SneakyClient
from tests.helpers import (
    kill_host,
    mask_for,
    photo,
    png_bytes,
    slow_inputs,
    stored_objects,
    submit,
    wait_done,
    wait_job,
)
from tests.servers import LIMITS, ServiceStack, start_rabbitmq


@pytest.fixture(scope="module")
def rabbit(log_dir, redis_server, tmp_path_factory):
    broker = start_rabbitmq(log_dir)
    url = f"redis://127.0.0.1:{redis_server.port}/2"
    env = {**os.environ, **LIMITS, "SNEAKY_REDIS_URL": url, "SNEAKY_BROKER_URL": broker.url,
           "SNEAKY_LEASE_SECONDS": "60",  # recovery below must come from the broker, not from a lease
           "SNEAKY_STORAGE_URL": str(tmp_path_factory.mktemp("rabbit-storage"))}
    stack = ServiceStack(log_dir, env)
    stack.redis().flushdb()
    stack.start_worker()
    stack.start_api()
    stack.kind = "local"
    yield stack
    stack.stop()
    broker.stop()


def test_jobs_and_batches_flow_through_quorum_queues(rabbit):
    r = submit(rabbit, png_bytes(photo(40, 30)), mask_for(40, 30)[0])
    assert r.status_code == 202, r.text
    assert wait_done(rabbit, r.json()["id"])["status"] == "succeeded"
    client = SneakyClient(rabbit.api_url)
    keys = client.upload([png_bytes(photo(40, 30, seed=i)) for i in range(10)] + [mask_for(40, 30)[0]])
    batch = client.batch([{"image_key": k} for k in keys[:-1]], mask_key=keys[-1])
    finished = [item for item in client.iter_results(batch.id, interval=0.2, timeout=120)]
    assert len(finished) == 10 and {item["status"] for item in finished} == {"succeeded"}
    metrics = requests.get(f"{rabbit.api_url}/metrics", timeout=10).text
    assert 'sneaky_queue_depth{queue="interactive"} 0.0' in metrics  # counted in RabbitMQ


def test_a_lost_worker_host_hands_its_message_back_at_once(rabbit):
    image, mask = slow_inputs(4000)
    job_id = submit(rabbit, image, mask, engine="ns").json()["id"]
    wait_job(rabbit, job_id, lambda job: job["status"] == "running", timeout=120, interval=0.02)
    doomed = next(s for s in rabbit.servers if s.name == "worker")
    rabbit.start_worker("worker-survivor")
    time.sleep(1)
    lost_at = time.monotonic()
    kill_host(doomed)
    done = wait_done(rabbit, job_id, timeout=120)
    recovered_in = time.monotonic() - lost_at
    assert done["status"] == "succeeded" and done["attempts"] == 2, (done, rabbit.logs())
    assert recovered_in < 55, recovered_in  # well inside the 60 s lease: the broker gave it back
    assert len([k for k in stored_objects(rabbit) if job_id in k and "result" in k]) == 1
