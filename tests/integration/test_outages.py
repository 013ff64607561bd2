"""Dependencies going away: Redis restarting under a backlog, S3 disappearing mid-run."""

import os
import time

import requests

from tests.helpers import mask_for, photo, png_bytes, submit, wait_done
from tests.servers import LIMITS, S3_ENV, ServiceStack, make_bucket, spawn, start_moto, start_redis


def test_redis_restart_keeps_a_queued_backlog(log_dir, tmp_path):
    server = start_redis(log_dir)
    env = {**os.environ, **LIMITS, "SNEAKY_REDIS_URL": f"redis://127.0.0.1:{server.port}/0",
           "SNEAKY_STORAGE_URL": str(tmp_path / "storage")}
    stack = ServiceStack(log_dir, env)
    stack.start_api()
    restarted = None
    try:
        ids = [submit(stack, png_bytes(photo(16, 16, seed=i)), mask_for(16, 16)[0]).json()["id"] for i in range(100)]
        assert len(set(ids)) == 100
        server.stop()  # SIGTERM: Redis writes its append-only file and exits
        r = requests.get(f"{stack.api_url}/v1/jobs/{ids[0]}", timeout=30)
        assert r.status_code == 503 and r.json()["code"] == "queue_unavailable"
        restarted = start_redis(log_dir, port=server.port)
        stack.start_worker()
        statuses = [wait_done(stack, job_id, timeout=120)["status"] for job_id in ids]
        assert statuses == ["succeeded"] * 100
    finally:
        stack.stop()
        if restarted:
            restarted.stop()


def s3_stack(log_dir, redis_server, bucket: str, db: int):
    """A stack on its own moto_server, which the test may stop and start."""
    moto = start_moto(log_dir)
    endpoint = f"http://127.0.0.1:{moto.port}"
    make_bucket(endpoint, bucket)
    env = {**os.environ, **LIMITS, **S3_ENV, "SNEAKY_REDIS_URL": f"redis://127.0.0.1:{redis_server.port}/{db}",
           "SNEAKY_STORAGE_URL": f"s3://{bucket}/x?endpoint={endpoint}"}
    stack = ServiceStack(log_dir, env)
    stack.redis().flushdb()
    return stack, moto, endpoint


def test_storage_outage_ends_every_job_and_never_500s(log_dir, redis_server):
    stack, moto, endpoint = s3_stack(log_dir, redis_server, "outage", 7)
    stack.start_worker()
    stack.start_api()
    try:
        ids = [submit(stack, png_bytes(photo(40, 40, seed=i)), mask_for(40, 40)[0]).json()["id"] for i in range(10)]
        moto.stop()
        during = [submit(stack, png_bytes(photo(40, 40)), mask_for(40, 40)[0]) for _ in range(3)]
        ready = requests.get(f"{stack.api_url}/readyz", timeout=60)
        assert {r.status_code for r in during} == {503}
        assert {r.json()["code"] for r in during} == {"storage_unavailable"}
        assert ready.status_code == 503 and ready.json()["checks"]["storage"].startswith("error")
        time.sleep(10)
        moto = spawn("moto-again", [moto.proc.args[0], "-H", "127.0.0.1", "-p", str(moto.port)], log_dir,
                     port=moto.port)
        make_bucket(endpoint, "outage")  # moto keeps nothing: the bucket comes back empty
        ends = [wait_done(stack, job_id, timeout=180) for job_id in ids]
        for job in ends:
            assert job["status"] == "succeeded" or (
                job["status"] == "failed" and job["error"]["code"] in ("storage_unavailable", "input_missing")), job
        after = submit(stack, png_bytes(photo(40, 40)), mask_for(40, 40)[0])
        assert after.status_code == 202 and wait_done(stack, after.json()["id"])["status"] == "succeeded"
    finally:
        stack.stop()
        moto.stop()


def test_storage_errors_are_counted(log_dir, redis_server):
    """The outage shows in /metrics: storage errors counted by the API that answered 503."""
    stack, moto, _ = s3_stack(log_dir, redis_server, "count", 10)
    stack.start_api()
    try:
        moto.stop()
        assert submit(stack, png_bytes(photo(20, 20)), mask_for(20, 20)[0]).status_code == 503
        text = requests.get(f"{stack.api_url}/metrics", timeout=30).text
        assert 'sneaky_storage_errors_total{op="api"} 1.0' in text
    finally:
        stack.stop()
