"""20 concurrent clients, 1,000 small jobs, gunicorn with 2 workers: no 5xx, every accepted
job succeeds, and the counts match exactly."""

import os
from concurrent.futures import ThreadPoolExecutor

import requests

from tests.helpers import eventually, mask_for, photo, png_bytes
from tests.servers import LIMITS, ServiceStack

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
        session = requests.Session()

        def every_job():  # the tenant's whole list, page by page
            page, cursor = [], None
            while True:
                params = {"limit": 100, **({"cursor": cursor} if cursor else {})}
                body = session.get(f"{stack.api_url}/v1/jobs", params=params, timeout=60).json()
                page += body["items"]
                cursor = body["next_cursor"]
                if not cursor:
                    return page

        def all_succeeded():
            page = every_job()
            assert not [j for j in page if j["status"] == "failed"]
            return page if {j["id"] for j in page if j["status"] == "succeeded"} >= set(accepted) else None

        page = eventually(all_succeeded, 600, 1, what="every accepted job to succeed")
        assert len(page) == len(accepted)  # nothing more, nothing less than what was accepted
    finally:
        stack.stop()
