"""20 concurrent clients, 1,000 small jobs, gunicorn with 2 workers: no 5xx, every accepted
job succeeds, and the counts match exactly."""

import os
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from tests.integration.conftest import LIMITS
from tests.integration.test_jobs_api import mask_for, photo, png_bytes
from tests.servers import ServiceStack

CLIENTS, JOBS = 20, 1000


def test_load(log_dir, redis_server, tmp_path):
    env = {**os.environ, **LIMITS, "SNEAKY_REDIS_URL": f"redis://127.0.0.1:{redis_server.port}/9",
           "SNEAKY_STORAGE_URL": str(tmp_path / "storage")}
    stack = ServiceStack(log_dir, env)
    stack.redis().flushdb()
    stack.start_worker("load-worker", concurrency=2)
    stack.start_api(workers=2)
    image, (mask, _) = png_bytes(photo(16, 16)), mask_for(16, 16)
    try:
        def client(n):
            session = requests.Session()
            accepted, statuses = [], []
            for _ in range(JOBS // CLIENTS):
                r = session.post(f"{stack.api_url}/v1/jobs", files={"image": ("p", image), "mask": ("m", mask)},
                                 timeout=60)
                statuses.append(r.status_code)
                if r.status_code == 202:
                    accepted.append(r.json()["id"])
            return accepted, statuses

        with ThreadPoolExecutor(CLIENTS) as pool:
            results = list(pool.map(client, range(CLIENTS)))
        statuses = [s for _, st in results for s in st]
        accepted = [j for acc, _ in results for j in acc]
        assert not [s for s in statuses if s >= 500]
        assert len(accepted) >= 0.9 * JOBS  # the limits in force here leave room for nearly all of them
        assert len(statuses) == JOBS and len(accepted) == statuses.count(202) and len(set(accepted)) == len(accepted)
        deadline = time.monotonic() + 600
        session = requests.Session()
        pending = set(accepted)
        while pending and time.monotonic() < deadline:
            page, cursor = [], None
            while True:  # list every job of the tenant, page by page
                params = {"limit": 100, **({"cursor": cursor} if cursor else {})}
                body = session.get(f"{stack.api_url}/v1/jobs", params=params, timeout=60).json()
                page += body["items"]
                cursor = body["next_cursor"]
                if not cursor:
                    break
            by_status = {}
            for job in page:
                by_status.setdefault(job["status"], set()).add(job["id"])
            pending = set(accepted) - by_status.get("succeeded", set())
            assert not by_status.get("failed"), by_status.get("failed")
            time.sleep(1)
        assert not pending, f"{len(pending)} jobs never succeeded"
        assert len(page) == len(accepted)  # nothing more, nothing less than what was accepted
    finally:
        stack.stop()
