"""PConv through the whole stack on CPU: `sneaky up --workers 2`, a bulk burst of 512×512 PNG photos with
object holes of 10–20 % (flip averaging on, as shipped), once per CPU runtime, in one run: photos/s, worker
CPU per photo, and how far the runtimes' results are from each other.

    python bench/pconv_stack.py [--photos 40] [--runtimes torch auto] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.service import cpu_seconds_by_part, photos_512  # noqa: E402
from client.sdk import SneakyClient  # noqa: E402
from client.up import free_port, wait_for_port  # noqa: E402
from pconv.masks import object_shape  # noqa: E402
from pconv.report import machine_description, write_section  # noqa: E402


def inputs(n: int) -> list[tuple[bytes, bytes, np.ndarray]]:
    """512×512 PNG photos, each with one object hole of 10–20 %."""
    rng = np.random.default_rng(1)
    out = []
    for image in photos_512(n, rng):
        hole = object_shape(512, 512, rng, area=float(rng.uniform(0.10, 0.20)))
        photo, mask = io.BytesIO(), io.BytesIO()
        image.save(photo, "PNG", compress_level=1)
        Image.fromarray(hole.astype(np.uint8) * 255).save(mask, "PNG")
        out.append((photo.getvalue(), mask.getvalue(), hole))
    return out


def burst(url: str, work: list[tuple[bytes, bytes, np.ndarray]]) -> tuple[float, list[np.ndarray | None]]:
    """Submit every photo as a bulk job (4 clients, the SDK), then wait for each as the SDK does (long
    polls, Retry-After when turned away); seconds from the first submission to the last result, and the results."""
    client = SneakyClient(url, timeout=120)

    def finish(job_id: str) -> np.ndarray | None:
        if client.wait(job_id).status != "succeeded":
            return None
        return np.asarray(Image.open(io.BytesIO(client.result(job_id))))

    start = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:
        ids = list(pool.map(lambda item: client.submit(item[0], item[1], engine="pconv", priority="bulk").id, work))
        results = list(pool.map(finish, ids))
    return time.perf_counter() - start, results


def run_stack(runtime: str, work: list, workers: int) -> tuple[float, float, list[np.ndarray | None]]:
    port, data = free_port(), tempfile.mkdtemp(prefix="sneaky-pconv-")
    env = {**os.environ, "SNEAKY_CPU_RUNTIME": runtime, "SNEAKY_RATE_LIMIT": "", "SNEAKY_LOG_LEVEL": "WARNING"}
    up = subprocess.Popen([str(Path(sys.executable).parent / "sneaky"), "up", "--port", str(port), "--data-dir",
                           data, "--workers", str(workers)], env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, up, 300)
        url = f"http://127.0.0.1:{port}"
        burst(url, work[:4])  # warm-up: both pool processes loaded, first shapes compiled
        before = cpu_seconds_by_part(up.pid)
        seconds, results = burst(url, work)
        after = cpu_seconds_by_part(up.pid)
    finally:
        up.terminate()
        up.wait(60)
    return seconds, after["worker"] - before.get("worker", 0.0), results


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--photos", type=int, default=40)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--runtimes", nargs="+", default=["torch", "auto"])
    p.add_argument("--write")
    args = p.parse_args(argv)
    work = inputs(args.photos)
    rows = ["| CPU runtime | photos | failed | photos/s | worker CPU s per photo | speed-up | max levels from the "
            "first runtime, in the hole | outside the hole |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    first: list[np.ndarray | None] | None = None
    base = 0.0
    for runtime in args.runtimes:
        seconds, cpu, results = run_stack(runtime, work, args.workers)
        rate = len(work) / seconds
        base = base or rate
        failed = sum(r is None for r in results)
        if first is None:
            first, diff, outside = results, "–", "–"
        else:
            pairs = [(a.astype(int), b.astype(int), hole) for a, b, (_, _, hole) in zip(first, results, work)
                     if a is not None and b is not None]
            diff = str(max(int(np.abs(a - b)[hole].max()) for a, b, hole in pairs))
            outside = "identical" if all(np.array_equal(a[~hole], b[~hole]) for a, b, hole in pairs) else "DIFFER"
        rows.append(f"| {runtime} | {len(work)} | {failed} | {rate:.2f} | {cpu / len(work):.3f} | "
                    f"{rate / base:.2f} | {diff} | {outside} |")
        print(rows[-1], flush=True)
    text = "\n".join(rows)
    print(text)
    if args.write:
        write_section(Path(args.write), "PConv through the stack", f"{machine_description()}; `sneaky up --workers "
                      f"{args.workers}`, {args.photos} photos of 512×512 (PNG) with one object hole of 10–20 % each, "
                      "submitted as bulk jobs by 4 clients and waited for; flip averaging on; seconds from the "
                      "first submission to the last result. `auto` is the default (OpenVINO here).\n\n" + text,
                      "python bench/pconv_stack.py --write docs/benchmarks.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
