"""Sneaky beside IOPaint, where the engines match: OpenCV's Telea (radius 3) on the same 512×512 PNG photos
with a ~5 % stroke, 1 to 16 concurrent clients, in one run. Sneaky: `sneaky up` (defaults), each job submitted,
long-polled and downloaded; IOPaint: its server (`iopaint start --model cv2`), one synchronous request per
photo. Throughput as a ratio, and each server's CPU per photo.

IOPaint is not a dependency: install it into a separate environment (pip install iopaint; it runs offline
with the cv2 model) and name its command.

    python bench/iopaint_compare.py --iopaint /path/to/venv/bin/iopaint [--jobs 40] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import base64
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.service import inputs, one_job, process_tree  # noqa: E402
from client.up import free_port, wait_for_port  # noqa: E402
from pconv.report import machine_description, write_section  # noqa: E402


def process_cpu(pid: int) -> float:
    """User + system seconds of ``pid`` and everything under it."""
    ticks, total = os.sysconf("SC_CLK_TCK"), 0.0
    for current in process_tree(pid):
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
        except (OSError, ValueError, IndexError):  # gone meanwhile
            continue
    return total


def iopaint_job(session: requests.Session, url: str, image: bytes, mask: bytes) -> tuple[float, bool]:
    start = time.perf_counter()
    r = session.post(f"{url}/api/v1/inpaint", timeout=60, json={
        "image": base64.b64encode(image).decode(), "mask": base64.b64encode(mask).decode(),
        "cv2_flag": "INPAINT_TELEA", "cv2_radius": 3})
    return time.perf_counter() - start, r.ok and r.headers.get("content-type", "").startswith("image/")


def load(run_one, url: str, work: list, clients: int, per_client: int) -> tuple[float, int, int]:
    """jobs/s, jobs, errors for ``clients`` clients each running ``per_client`` jobs."""
    def client(_: int) -> list[tuple[float, bool]]:
        session = requests.Session()
        return [run_one(session, url, image, mask) for image, mask, _, _ in work[:per_client]]

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = [r for batch in pool.map(client, range(clients)) for r in batch]
    return len(results) / (time.perf_counter() - start), len(results), sum(not ok for _, ok in results)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--iopaint", default=shutil.which("iopaint"), help="IOPaint's command")
    p.add_argument("--jobs", type=int, default=40, help="jobs per client count (at least one per client)")
    p.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    p.add_argument("--write")
    args = p.parse_args(argv)
    if not args.iopaint:
        p.error("IOPaint is not installed: pip install iopaint in another environment and pass --iopaint")
    work = inputs(args.jobs)
    data = tempfile.mkdtemp(prefix="sneaky-vs-iopaint-")
    ours_port, theirs_port = free_port(), free_port()
    env = {**os.environ, "SNEAKY_LOG_LEVEL": "WARNING", "SNEAKY_RATE_LIMIT": ""}
    ours = subprocess.Popen([str(Path(sys.executable).parent / "sneaky"), "up", "--port", str(ours_port),
                             "--data-dir", data], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    theirs = subprocess.Popen([args.iopaint, "start", "--model", "cv2", "--device", "cpu", "--host", "127.0.0.1",
                               "--port", str(theirs_port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              cwd=data)
    rows = []
    try:
        wait_for_port(ours_port, ours, 120)
        wait_for_port(theirs_port, theirs, 120)
        servers = {"Sneaky": (one_job, f"http://127.0.0.1:{ours_port}", ours.pid),
                   "IOPaint": (iopaint_job, f"http://127.0.0.1:{theirs_port}", theirs.pid)}
        for run_one, url, _ in servers.values():  # warm-up
            load(run_one, url, work, 1, 3)
        for clients in args.clients:
            per_client = max(1, args.jobs * max(1, clients // 4) // clients)  # as bench/service.py
            measured = {}
            for name, (run_one, url, pid) in servers.items():
                before = process_cpu(pid)
                rate, jobs, errors = load(run_one, url, work, clients, per_client)
                measured[name] = (rate, jobs, errors, 1000 * (process_cpu(pid) - before) / jobs)
            (ours_rate, jobs, ours_errors, ours_cpu), (their_rate, _, their_errors, their_cpu) = measured.values()
            rows.append(f"| {clients} | {jobs} | {ours_rate:.1f} | {their_rate:.1f} | {ours_rate / their_rate:.2f} | "
                        f"{ours_errors} / {their_errors} | {ours_cpu:.0f} | {their_cpu:.0f} |")
            print(rows[-1], flush=True)
    finally:
        for server in (ours, theirs):
            server.terminate()
        for server in (ours, theirs):
            server.wait(60)
        shutil.rmtree(data, ignore_errors=True)
    head = ["| clients | photos | Sneaky photos/s | IOPaint photos/s | Sneaky ÷ IOPaint | errors (ours / theirs) "
            "| Sneaky CPU ms per photo (all parts) | IOPaint CPU ms per photo |",
            "| ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |"]
    text = "\n".join(head + rows)
    print(text)
    if args.write:
        write_section(Path(args.write), "beside IOPaint", f"{machine_description()}; 512×512 PNG photos with a ~5 % "
                      "stroke; OpenCV Telea, radius 3, on both. Sneaky: `sneaky up` at its defaults, each photo "
                      "submitted, long-polled (`?wait=`) and downloaded; IOPaint 1.6 (`iopaint start --model cv2 "
                      "--device cpu`), one synchronous `POST /api/v1/inpaint` per photo, base64 in JSON. CPU: every "
                      "process of each server (Sneaky: Redis, API, workers).\n\n" + text,
                      "python bench/iopaint_compare.py --iopaint PATH --write docs/benchmarks.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
