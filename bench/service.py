"""Service overhead and throughput: 512×512 PNG jobs through the embedded stack (`sneaky up`),
telea engine, against the direct OpenCV call on the same inputs. One run, one table.

    python bench/service.py [--jobs 40] [--clients 1 4 8 16] [--write docs/benchmarks.md]
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

import cv2
import numpy as np
import requests
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from client.up import free_port, wait_for_port  # noqa: E402
from pconv.report import machine_description, write_section  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ROOT.parent / "shared" / "datasets" / "photos" / "eval"


def photos_512(n: int, rng: np.random.Generator) -> list[Image.Image]:
    """``n`` 512×512 RGB photos: evaluation photos resized when the shared data is there, noise otherwise."""
    files = sorted(PHOTOS.glob("*.jpg"))[:n] if PHOTOS.is_dir() else []
    out = []
    for i in range(n):
        if files:
            with Image.open(files[i % len(files)]) as im:
                out.append(im.convert("RGB").resize((512, 512)))
        else:
            out.append(Image.fromarray(rng.integers(0, 256, (512, 512, 3), dtype=np.uint8)))
    return out


def inputs(n: int) -> list[tuple[bytes, bytes, np.ndarray, np.ndarray]]:
    """512×512 PNG photos and stroke masks of ~5 %."""
    rng = np.random.default_rng(0)
    out = []
    for image in photos_512(n, rng):
        mask = Image.new("L", (512, 512), 0)
        x, y = rng.integers(80, 400, 2)
        ImageDraw.Draw(mask).line([(int(x), int(y)), (int(x) + 90, int(y) + 40)], fill=255, width=28)
        b1, b2 = io.BytesIO(), io.BytesIO()
        image.save(b1, "PNG")
        mask.save(b2, "PNG")
        out.append((b1.getvalue(), b2.getvalue(), np.asarray(image), np.asarray(mask)))
    return out


def process_tree(pid: int) -> list[int]:
    """``pid`` and every process under it (gone ones left out)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    return [pid] + [p for child in children for p in process_tree(int(child))]


def cpu_seconds_by_part(root: int) -> dict[str, float]:
    """CPU time (user + system) of each part of the stack `sneaky up` started: its children are Redis,
    the worker, the webhook worker and the API, each with its own processes under it."""
    ticks = os.sysconf("SC_CLK_TCK")
    stats = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            stats[int(stat.parent.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / ticks,
                                            Path(stat.parent, "cmdline").read_bytes())
        except (OSError, ValueError, IndexError):
            continue
    children: dict[int, list[int]] = {}
    for pid, (parent, _, _) in stats.items():
        children.setdefault(parent, []).append(pid)

    def tree(pid: int) -> float:
        return stats[pid][1] + sum(tree(child) for child in children.get(pid, []))

    parts: dict[str, float] = {}
    for top in children.get(root, []):
        cmd = stats[top][2]
        name = ("redis" if b"redis" in cmd else "webhooks" if b"webhooks" in cmd else "worker" if b"celery" in cmd
                else "api" if b"gunicorn" in cmd else "other")
        parts[name] = parts.get(name, 0.0) + tree(top)
    return parts


def one_job(session: requests.Session, url: str, image: bytes, mask: bytes) -> tuple[float, bool]:
    """submit → wait until it ends → download the result; seconds, and whether it all worked."""
    start = time.perf_counter()
    r = session.post(f"{url}/v1/jobs", files={"image": ("p.png", image), "mask": ("m.png", mask)},
                     data={"engine": "telea"}, timeout=60)
    if r.status_code != 202:
        return time.perf_counter() - start, False
    job_id = r.json()["id"]
    while True:
        asked = time.perf_counter()
        answer = session.get(f"{url}/v1/jobs/{job_id}", params={"wait": 10}, timeout=60)
        job = answer.json()
        if job["status"] in ("succeeded", "failed", "canceled"):
            break
        if time.perf_counter() - asked < 5:  # no wait to spare: poll as the SDK does, after Retry-After
            time.sleep(float(answer.headers.get("Retry-After") or 1))
    ok = job["status"] == "succeeded" and session.get(f"{url}/v1/jobs/{job_id}/result", timeout=60).ok
    return time.perf_counter() - start, ok


def engine_cpu_ms(work: list[tuple[bytes, bytes, np.ndarray, np.ndarray]], repeats: int = 5) -> float:
    """CPU per job of what the worker's engine does with a decoded photo and mask (the hole, its crops, Telea,
    the paste), at one OpenCV thread as each of the stack's worker processes runs it on this machine."""
    from pconv.inpaint import Inpainter

    inpainter, threads = Inpainter.load("telea"), cv2.getNumThreads()
    pairs = [(Image.fromarray(image), Image.fromarray(mask)) for _, _, image, mask in work]
    cv2.setNumThreads(1)
    try:
        start = time.process_time()
        for _ in range(repeats):
            for image, mask in pairs:
                inpainter.inpaint(image, mask)
        return 1000 * (time.process_time() - start) / (repeats * len(pairs))
    finally:
        cv2.setNumThreads(threads)


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) * 1000


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--jobs", type=int, default=40, help="sequential jobs, and jobs per load level")
    p.add_argument("--clients", type=int, nargs="+", default=[1, 4, 8, 16])
    p.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="worker processes of the stack")
    p.add_argument("--write")
    args = p.parse_args(argv)
    work = inputs(args.jobs)

    direct = []
    for _, _, image, mask in work:
        start = time.perf_counter()
        cv2.inpaint(image, (mask >= 128).astype(np.uint8), 3, cv2.INPAINT_TELEA)
        direct.append(time.perf_counter() - start)
    engine_ms = engine_cpu_ms(work)

    port = free_port()
    data = tempfile.mkdtemp(prefix="sneaky-bench-")
    env = {**os.environ, "SNEAKY_LOG_FORMAT": "text", "SNEAKY_LOG_LEVEL": "WARNING", "SNEAKY_RATE_LIMIT": ""}
    up = subprocess.Popen([str(Path(sys.executable).parent / "sneaky"), "up", "--port", str(port), "--data-dir",
                           data, "--workers", str(args.workers)], env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    rows = []
    try:
        wait_for_port(port, up, 120)
        session = requests.Session()
        for image, mask, _, _ in work[:3]:  # warm-up
            one_job(session, url, image, mask)
        cpu_before, jobs_measured = cpu_seconds_by_part(up.pid), 0
        sequential = [one_job(session, url, image, mask) for image, mask, _, _ in work]
        jobs_measured += len(sequential)
        seq_times = [t for t, _ in sequential]
        rows.append(f"| sequential, 1 client | {len(seq_times)} | {sum(not ok for _, ok in sequential)} | "
                    f"{len(seq_times) / sum(seq_times):.1f} | {pct(seq_times, 50):.0f} | {pct(seq_times, 95):.0f} |")
        print(rows[-1], flush=True)
        for clients in args.clients:
            per_client = max(1, args.jobs * max(1, clients // 4) // clients)

            def client(_, per_client=per_client):
                s = requests.Session()
                return [one_job(s, url, image, mask) for image, mask, _, _ in work[:per_client]]

            start = time.perf_counter()
            with ThreadPoolExecutor(clients) as pool:
                results = [r for batch in pool.map(client, range(clients)) for r in batch]
            elapsed = time.perf_counter() - start
            times = [t for t, _ in results]
            jobs_measured += len(results)
            rows.append(f"| {clients} concurrent clients | {len(results)} | {sum(not ok for _, ok in results)} | "
                        f"{len(results) / elapsed:.1f} | {pct(times, 50):.0f} | {pct(times, 95):.0f} |")
            print(rows[-1], flush=True)
        cpu_after = cpu_seconds_by_part(up.pid)
    finally:
        up.terminate()
        up.wait(60)
    per_job = {part: 1000 * (cpu_after[part] - cpu_before.get(part, 0.0)) / jobs_measured
               for part in ("worker", "api", "redis", "webhooks") if part in cpu_after}
    cpu_rows = [f"| {part} | {ms:.1f} |" for part, ms in per_job.items()]
    cpu_rows.insert(1, f"| worker, engine excluded (less {engine_ms:.1f} ms: the engine's own CPU, measured "
                       f"apart) | {per_job['worker'] - engine_ms:.1f} |")
    head = ["| load | jobs | errors | jobs/s | p50 ms | p95 ms |", "| --- | --- | --- | --- | --- | --- |"]
    direct_row = (f"Direct OpenCV Telea call on the same inputs: p50 {pct(direct, 50):.0f} ms, "
                  f"p95 {pct(direct, 95):.0f} ms.")
    cpu_table = "\n".join([f"CPU time per job over all {jobs_measured} jobs above (user + system, every process of "
                           "the part):", "",
                           "| part | CPU ms per job |", "| --- | --- |", *cpu_rows])
    text = "\n".join(head + rows) + "\n\n" + direct_row + "\n\n" + cpu_table
    print("\n" + text)
    if args.write:
        body = (f"{machine_description()}; `sneaky up` with {args.workers} worker processes, gunicorn 2×16 threads; "
                "512×512 PNG photos with a ~5 % stroke, engine telea; each job: submit, long-poll until it ends "
                f"(`?wait=`), download the result.\n\n{text}\n\n"
                "Goals (issue 9): sequential p50 ≤ 150 ms; ≥ 12 jobs/s at 16 clients; zero errors. Issue 18: "
                "≥ 40 jobs/s at 16 clients; worker ≤ 15 ms and API ≤ 5 ms of CPU per job, the engine excluded.")
        write_section(Path(args.write), "service overhead and throughput", body,
                      "python bench/service.py --write docs/benchmarks.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
