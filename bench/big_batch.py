"""Batches at scale: creating batches of 1,000 to 100,000 items through `sneaky up` (workers paused, so
only the API and Redis work), then the summary and a manifest page polled; time, API memory, and what
Redis holds and does per job and per poll. One run, one table.

    python bench/big_batch.py [--sizes 1000 10000 100000] [--polls 50] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.profile_service import children_by_name  # noqa: E402
from bench.service import process_tree  # noqa: E402
from client.sdk import SneakyClient  # noqa: E402
from client.up import free_port, wait_for_port  # noqa: E402
from pconv.report import machine_description, write_section  # noqa: E402
from tests.helpers import mask_for, photo, png_bytes  # noqa: E402


def peak_rss_mib(pids: list[int]) -> float:
    """The largest peak resident size (VmHWM) among the processes."""
    peaks = []
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peaks.append(int(line.split()[1]) / 1024)
    return max(peaks)


def timed(call, n: int) -> list[float]:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        call()
        times.append(1000 * (time.perf_counter() - start))
    return times


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000])
    p.add_argument("--polls", type=int, default=50)
    p.add_argument("--write")
    args = p.parse_args(argv)
    port, data = free_port(), tempfile.mkdtemp(prefix="sneaky-batches-")
    env = {**os.environ, "SNEAKY_RATE_LIMIT": "", "SNEAKY_LOG_LEVEL": "WARNING", "SNEAKY_MAX_QUEUED_BULK": "1000000"}
    up = subprocess.Popen([str(Path(sys.executable).parent / "sneaky"), "up", "--port", str(port), "--data-dir",
                           data, "--workers", "1"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rows = []
    paused: list[int] = []
    try:
        wait_for_port(port, up, 120)
        parts = children_by_name(up.pid)
        paused = process_tree(parts["worker"])
        for pid in paused:  # paused: the jobs stay queued, only the API and Redis are measured
            os.kill(pid, signal.SIGSTOP)
        r = redis.Redis(port=parts["redis_port"])
        client = SneakyClient(f"http://127.0.0.1:{port}", timeout=600)
        keys = client.upload([png_bytes(photo(64, 48, seed=i)) for i in range(20)])
        [mask] = client.upload([mask_for(64, 48)[0]])
        for size in args.sizes:
            items = [{"image_key": keys[i % len(keys)], "metadata": {"n": i}} for i in range(size)]
            memory_before = r.info("memory")["used_memory"]
            start = time.perf_counter()
            batch = client.batch(items, mask_key=mask)
            created = time.perf_counter() - start
            per_job = (r.info("memory")["used_memory"] - memory_before) / size
            r.config_resetstat()
            summary = timed(lambda batch=batch: client.get_batch(batch.id), args.polls)
            summary_calls = sum(v["calls"] for v in r.info("commandstats").values()) / args.polls
            page = timed(lambda batch=batch, size=size: client.request(
                "GET", f"/v1/batches/{batch.id}/results", params={"cursor": size // 2, "limit": 1000}),
                max(3, args.polls // 10))
            api_peak = peak_rss_mib(process_tree(parts["api"]))
            rows.append(f"| {size:,} | {created:.1f} | {size / created:,.0f} | {per_job:,.0f} | "
                        f"{np.percentile(summary, 50):.1f} | {np.percentile(summary, 95):.1f} | "
                        f"{summary_calls:.0f} | {np.percentile(page, 50):.0f} | {api_peak:.0f} |")
            print(rows[-1], flush=True)
    finally:
        for pid in paused:  # a stopped process cannot stop
            os.kill(pid, signal.SIGCONT)
        up.terminate()
        up.wait(60)
    head = ["| items | create s | items/s | Redis bytes per job | summary p50 ms | summary p95 ms | "
            "Redis commands per summary | manifest page (1,000) p50 ms | API peak RSS MiB |",
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    text = "\n".join(head + rows)
    print(text)
    if args.write:
        write_section(Path(args.write), "batches at scale", f"{machine_description()}; `sneaky up --workers 1` with "
                      "its worker paused (SIGSTOP), local storage; one shared mask, 20 uploaded 64×48 photos "
                      "named round-robin, small metadata per item; the SDK sends JSON up to 10,000 items and NDJSON "
                      "above. Summary: `GET /v1/batches/{id}` from one client over HTTP; API peak RSS: the largest "
                      "gunicorn process's high-water mark so far (it only grows).\n\n" + text,
                      "python bench/big_batch.py --write docs/benchmarks.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
