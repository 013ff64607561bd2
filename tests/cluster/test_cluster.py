"""The service as a fleet on one machine, then broken: `make cluster-test` (root; about five minutes).

Hosts are network namespaces on one bridge (tests/cluster/netns.py): `core` runs Redis (the records,
append-only; and the queue, or RabbitMQ does: every scenario runs on both brokers), the S3 endpoint
(moto_server) and the API; `w1`–`w3` run a worker each. Every
scenario puts a bulk batch of 200 photos and 10 interactive jobs in flight, breaks something, and then
checks that every accepted job ended exactly once: succeeded, one stored result each, none left running,
the manifest accounting for every item. A table per scenario is printed (and written into
docs/deploy.md with SNEAKY_CLUSTER_REPORT=docs/deploy.md).
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time
from pathlib import Path

import boto3
import numpy as np
import pytest
import requests
from PIL import Image

from client.sdk import SneakyClient
from tests.cluster.netns import Network
from tests.helpers import png_bytes
from tests.servers import BIN, S3_ENV, find_redis_server, kill_by_env, rabbitmq_env

pytestmark = pytest.mark.skipif(os.environ.get("SNEAKY_CLUSTER_TEST") != "1" or os.geteuid() != 0
                                or not shutil.which("ip"), reason="the cluster test: make cluster-test (root)")

CORE = "10.77.0.10"
API, S3 = f"http://{CORE}:8000", f"http://{CORE}:5000"
BATCH, INTERACTIVE = 200, 10
ROWS: list[str] = []


def environment() -> dict:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("SNEAKY_")}, **S3_ENV,
            "SNEAKY_REDIS_URL": f"redis://{CORE}:6379/0", "SNEAKY_STORAGE_URL": f"s3://cluster/jobs?endpoint={S3}",
            "SNEAKY_AUTH": "open", "SNEAKY_DEFAULT_ENGINE": "telea", "SNEAKY_RATE_LIMIT": "",
            "SNEAKY_LEASE_SECONDS": "10", "SNEAKY_STOP_GRACE_SECONDS": "2", "SNEAKY_LOG_FORMAT": "json"}


class Fleet:
    def __init__(self, network: Network, log_dir: Path, broker: str) -> None:
        self.net, self.logs, self.env, self.broker = network, log_dir, environment(), broker
        if broker == "rabbitmq":
            self.env["SNEAKY_BROKER_URL"] = f"amqp://guest:guest@{CORE}:5672//"
        self.core = network.hosts["core"]
        self.redis_dir = log_dir / "redis"
        self.redis_dir.mkdir(exist_ok=True)

    def start_redis(self) -> None:
        self.redis = self.core.start("redis", [find_redis_server(), "--port", "6379", "--bind", "0.0.0.0",
                                               "--protected-mode", "no", "--dir", str(self.redis_dir),
                                               "--appendonly", "yes", "--save", ""], self.logs, self.env, 6379)

    def start(self) -> None:
        self.start_redis()
        if self.broker == "rabbitmq":
            env = {**rabbitmq_env(5672, 25672), "RABBITMQ_NODE_IP_ADDRESS": "0.0.0.0"}
            node = self.core.start("rabbitmq", ["rabbitmq-server"], self.logs, env, 5672, timeout=120)
            node.also = lambda: kill_by_env("RABBITMQ_NODENAME", env["RABBITMQ_NODENAME"])
        moto = shutil.which("moto_server", path=str(BIN)) or "moto_server"
        self.core.start("s3", [moto, "-H", "0.0.0.0", "-p", "5000"], self.logs, self.env, 5000)
        boto3.client("s3", endpoint_url=S3, region_name="us-east-1", aws_access_key_id="testing",
                     aws_secret_access_key="testing").create_bucket(Bucket="cluster")
        self.core.start("api", [str(BIN / "gunicorn"), "-b", "0.0.0.0:8000", "-w", "2", "--threads", "16",
                                "api.wsgi:app"], self.logs, self.env, 8000)
        for name in ("w1", "w2", "w3"):
            self.start_worker(name)

    def start_worker(self, name: str) -> None:
        self.net.hosts[name].start("worker", [str(BIN / "celery"), "-A", "worker.app", "worker", "-Q",
                                              "interactive,bulk", "-c", "1", "-n", f"{name}@%h", "--without-gossip",
                                              "--without-mingle", "--loglevel", "INFO"], self.logs, self.env)

    def worker_logs(self) -> str:
        return "".join(p.read_text(errors="replace") for p in self.logs.glob("w*-worker.log"))


@pytest.fixture(scope="module", params=["redis", "rabbitmq"])
def fleet(request, tmp_path_factory):
    log_dir = tmp_path_factory.mktemp(f"cluster-{request.param}")
    with Network(["core", "w1", "w2", "w3"]) as network:
        fleet = Fleet(network, log_dir, request.param)
        fleet.start()
        yield fleet
    if request.param == "rabbitmq" and os.environ.get("SNEAKY_CLUSTER_REPORT"):
        from pconv.report import write_section

        body = "\n".join(["Core (Redis, S3, API) and three worker hosts in network namespaces on one bridge; each "
                          "scenario with 200 bulk and 10 interactive jobs in flight (telea, 48×48 photos), lease "
                          "10 s, stop grace 2 s. *Recovered*: jobs re-queued by a reaper, handed back, or run "
                          "again; *time to recover*: from the fault until every job had ended; *duplicates*: "
                          "stored results beyond one per job; *lost*: jobs that did not succeed.", "",
                          "| broker | scenario | jobs | recovered | time to recover, s | duplicates | lost |",
                          "| --- | --- | --- | --- | --- | --- | --- |", *ROWS])
        write_section(Path(os.environ["SNEAKY_CLUSTER_REPORT"]), "The cluster test", body, "make cluster-test",
                      document="Deploying Sneaky")
    print("\n" + "\n".join(ROWS), file=sys.stderr)


def put_work(client: SneakyClient, seed: int) -> tuple[str, list[str]]:
    rng = np.random.default_rng(seed)
    photos = [png_bytes(Image.fromarray(rng.integers(0, 256, (48, 48, 3), dtype=np.uint8))) for _ in range(BATCH)]
    mask = np.zeros((48, 48), np.uint8)
    mask[12:30, 10:34] = 255
    keys = client.upload([*photos, png_bytes(Image.fromarray(mask))])
    batch = client.batch([{"image_key": k} for k in keys[:-1]], mask_key=keys[-1])
    interactive = [client.submit(photos[i], png_bytes(Image.fromarray(mask))).id for i in range(INTERACTIVE)]
    return batch.id, [*batch.job_ids, *interactive]


def wait_until_done(client: SneakyClient, job_ids: list[str], timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    pending = set(job_ids)
    while pending and time.monotonic() < deadline:
        pending = {j for j in pending if client.get(j).status not in ("succeeded", "failed", "canceled")}
        time.sleep(1)
    assert not pending, f"{len(pending)} jobs never ended"


def some_done(client: SneakyClient, batch_id: str, fraction: float) -> None:
    deadline = time.monotonic() + 120
    while client.get_batch(batch_id).progress < fraction and time.monotonic() < deadline:
        time.sleep(0.2)


def check(fleet: Fleet, client: SneakyClient, scenario: str, batch_id: str, job_ids: list[str],
          broken_at: float) -> None:
    wait_until_done(client, job_ids)
    recovered_in = time.monotonic() - broken_at
    jobs = [client.get(j) for j in job_ids]
    s3 = boto3.client("s3", endpoint_url=S3, region_name="us-east-1", aws_access_key_id="testing",
                      aws_secret_access_key="testing")
    objects = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket="cluster")
               for o in page.get("Contents", [])]
    results = {j.id: [k for k in objects if f"/{j.id}/result" in k] for j in jobs}
    duplicates = sum(max(0, len(found) - 1) for found in results.values())
    lost = sum(j.status != "succeeded" or not results[j.id] for j in jobs)
    logs = fleet.worker_logs()
    recovered = sum(f"job {j.id} handed back" in logs or f"job {j.id}: its worker stopped renewing" in logs
                    or j.attempts > 1 for j in jobs)
    manifest = client.manifest(batch_id)
    ROWS.append(f"| {fleet.broker} | {scenario} | {len(jobs)} | {recovered} | {recovered_in:.0f} | {duplicates} "
                f"| {lost} |")
    assert duplicates == 0 and lost == 0, ROWS[-1]
    assert len(manifest) == BATCH and {item["status"] for item in manifest} == {"succeeded"}


def test_a_worker_host_killed_mid_batch(fleet):
    client = SneakyClient(API, retries=8)
    batch_id, job_ids = put_work(client, 1)
    some_done(client, batch_id, 0.25)
    broken_at = time.monotonic()
    fleet.net.hosts["w1"].kill_all()
    check(fleet, client, "a worker host killed (SIGKILL, every process)", batch_id, job_ids, broken_at)
    fleet.start_worker("w1")


def test_a_worker_host_cut_off_for_30_seconds(fleet):
    client = SneakyClient(API, retries=8)
    batch_id, job_ids = put_work(client, 2)
    some_done(client, batch_id, 0.25)
    broken_at = time.monotonic()
    host = fleet.net.hosts["w2"]
    host.cut()
    time.sleep(30)
    host.heal()
    check(fleet, client, "a worker host cut off from Redis and S3 for 30 s", batch_id, job_ids, broken_at)


def test_redis_stopped_and_restarted_mid_batch(fleet):
    client = SneakyClient(API, retries=8)
    batch_id, job_ids = put_work(client, 3)
    some_done(client, batch_id, 0.25)
    broken_at = time.monotonic()
    fleet.redis.stop()  # SIGTERM: Redis writes its append-only file
    during = [requests.get(f"{API}/v1/jobs/{job_ids[0]}", timeout=30).status_code for _ in range(5)]
    time.sleep(5)
    fleet.core.servers.remove(fleet.redis)
    fleet.start_redis()
    assert set(during) == {503}, during  # never a 500 while Redis is away
    check(fleet, client, "Redis stopped and restarted (append-only file)", batch_id, job_ids, broken_at)


def test_a_worker_drained_mid_job(fleet):
    client = SneakyClient(API, retries=8)
    batch_id, job_ids = put_work(client, 4)
    some_done(client, batch_id, 0.25)
    broken_at = time.monotonic()
    worker = next(s for s in fleet.net.hosts["w3"].servers if s.name == "w3-worker")
    worker.proc.send_signal(signal.SIGTERM)  # `ip netns exec` execs: this is Celery's main process
    worker.proc.wait(60)
    fleet.net.hosts["w3"].servers.remove(worker)
    check(fleet, client, "a worker drained (SIGTERM) mid-job", batch_id, job_ids, broken_at)
    fleet.start_worker("w3")
