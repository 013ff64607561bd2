"""The API under abuse, measured on a real gunicorn API (one process, 16 threads, no worker):

- /healthz and another tenant's GET /v1/jobs while N long polls (`?wait=20`) are open;
- a 31 MB JSON body: how long its refusal takes and how much the API process grows;
- a burst of uploads from 16 clients against the rate limit: answers by kind.

    python bench/hostile.py [--polls 100] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pconv.report import machine_description, write_section  # noqa: E402
from tests.helpers import descendants, mask_for, photo, png_bytes, upload_burst  # noqa: E402
from tests.servers import LIMITS, ServiceStack, start_redis  # noqa: E402


def rss_mib(pid: int) -> float:
    """Resident memory of gunicorn's worker process (the child of the master)."""
    worker = min(descendants(pid) or {pid})
    for line in Path(f"/proc/{worker}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def timed_get(url: str) -> float:
    start = time.perf_counter()
    requests.get(url, timeout=60).raise_for_status()
    return time.perf_counter() - start


def long_polls(stack: ServiceStack, polls: int) -> list[str]:
    job_id = requests.post(f"{stack.api_url}/v1/jobs", timeout=30, files={
        "image": ("p", png_bytes(photo(20, 20))), "mask": ("m", mask_for(20, 20)[0])}).json()["id"]
    rows = []
    with ThreadPoolExecutor(polls + 4) as pool:
        for open_polls in (0, polls):
            waits = [pool.submit(requests.get, f"{stack.api_url}/v1/jobs/{job_id}", params={"wait": 20}, timeout=60)
                     for _ in range(open_polls)]
            time.sleep(1.0)  # let them arrive
            health = [timed_get(f"{stack.api_url}/healthz") for _ in range(20)]
            listing = [timed_get(f"{stack.api_url}/v1/jobs?limit=5") for _ in range(20)]
            answered_at_once = sum(w.done() for w in waits)
            rows.append(f"| {open_polls} | {statistics.median(health) * 1000:.1f} | {max(health) * 1000:.1f} | "
                        f"{statistics.median(listing) * 1000:.1f} | {answered_at_once} of {open_polls} |")
            requests.post(f"{stack.api_url}/v1/jobs/{job_id}/cancel", timeout=30)  # releases the held ones
            for w in waits:
                w.result()
            job_id = requests.post(f"{stack.api_url}/v1/jobs", timeout=30, files={
                "image": ("p", png_bytes(photo(20, 20))), "mask": ("m", mask_for(20, 20)[0])}).json()["id"]
    return rows


def big_json(stack: ServiceStack, pid: int) -> str:
    body = b'{"metadata": {' + b",".join(b'"k%d": 1' % i for i in range(2_500_000)) + b"}}"
    before = rss_mib(pid)
    start = time.perf_counter()
    r = requests.post(f"{stack.api_url}/v1/jobs", data=body, headers={"Content-Type": "application/json"},
                      timeout=120)
    seconds = time.perf_counter() - start
    return (f"| {len(body) / 1e6:.1f} MB, 2.5 M keys | {r.status_code} `{r.json()['code']}` | {seconds:.2f} | "
            f"{rss_mib(pid) - before:+.1f} |")


def burst(stack: ServiceStack) -> str:
    image, mask = png_bytes(photo(600, 600)), mask_for(600, 600)[0]
    answers = upload_burst(stack.api_url, image, mask)
    return f"| 16 × 15 uploads of {(len(image) + len(mask)) / 1e6:.1f} MB | " + ", ".join(
        f"{k}: {v}" for k, v in sorted(answers.items(), key=str)) + " |"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--polls", type=int, default=100)
    p.add_argument("--write")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        logs = Path(tmp)
        redis_server = start_redis(logs)
        env = {**os.environ, **LIMITS, "SNEAKY_REDIS_URL": f"redis://127.0.0.1:{redis_server.port}/0",
               "SNEAKY_STORAGE_URL": str(logs / "storage"), "SNEAKY_MAX_UPLOAD_BYTES": str(100 * 1024 * 1024)}
        try:
            stack = ServiceStack(logs, {**env, "SNEAKY_RATE_LIMIT": "100000 per second"})
            api = stack.start_api()
            polls = long_polls(stack, args.polls)
            json_row = big_json(stack, api.proc.pid)
            stack.stop()
            stack = ServiceStack(logs, {**env, "SNEAKY_RATE_LIMIT": "20 per second"})
            stack.start_api()
            burst_row = burst(stack)
        finally:
            stack.stop()
            redis_server.stop()
    body = "\n".join([
        f"One gunicorn API process (16 threads), no worker, Redis on the same machine ({machine_description()}).",
        "",
        "| long polls open | /healthz median ms | /healthz max ms | GET /v1/jobs median ms | polls answered at once |",
        "| --- | --- | --- | --- | --- |",
        *polls,
        "",
        "| JSON body | answer | seconds | API process RSS change, MiB |",
        "| --- | --- | --- | --- |",
        json_row,
        "",
        "| burst (rate limit 20/s) | answers |",
        "| --- | --- |",
        burst_row,
    ])
    print(body)
    if args.write:
        write_section(Path(args.write), "the API under abuse", body,
                      "python bench/hostile.py --write docs/benchmarks.md")


if __name__ == "__main__":
    main()
