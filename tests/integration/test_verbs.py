"""`sneaky api` and `sneaky worker`: one part each against the configured Redis and storage, as containers run
them (no `sneaky up` around them)."""

import signal
import subprocess
import sys
from pathlib import Path

import requests

from client.up import free_port, wait_for_port
from tests.helpers import eventually, mask_for, photo, png_bytes

SNEAKY = str(Path(sys.executable).parent / "sneaky")


def test_an_api_and_a_worker_started_apart_fill_a_job(lone_env, log_dir):
    env = lone_env(15)
    port = free_port()
    with open(log_dir / "verbs-api.log", "wb") as api_log, open(log_dir / "verbs-worker.log", "wb") as worker_log:
        api = subprocess.Popen([SNEAKY, "api", "--port", str(port), "--processes", "1", "--threads", "4"], env=env,
                               stdout=api_log, stderr=subprocess.STDOUT)
        worker = subprocess.Popen([SNEAKY, "worker", "--concurrency", "1"], env=env, stdout=worker_log,
                                  stderr=subprocess.STDOUT)
        try:
            wait_for_port(port, api, 60)
            url = f"http://127.0.0.1:{port}"
            assert requests.get(f"{url}/healthz", timeout=10).status_code == 200
            mask, _ = mask_for(48, 40)
            r = requests.post(f"{url}/v1/jobs", files={"image": ("p.png", png_bytes(photo(48, 40))),
                                                       "mask": ("m.png", mask)}, timeout=30)
            assert r.status_code == 202, r.text
            job_id = r.json()["id"]
            done = eventually(lambda: (job := requests.get(f"{url}/v1/jobs/{job_id}", timeout=10).json())["status"]
                              in ("succeeded", "failed") and job, 120, 0.2, what="the job to end")
            assert done["status"] == "succeeded", done
            # each is the process it runs (exec), so a container's stop signal reaches it directly
            assert "gunicorn" in Path(f"/proc/{api.pid}/cmdline").read_text()
            assert "celery" in Path(f"/proc/{worker.pid}/cmdline").read_text()
        finally:
            for proc in (api, worker):
                proc.send_signal(signal.SIGTERM)
            assert api.wait(60) == 0 and worker.wait(60) == 0
