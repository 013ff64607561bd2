"""What the tests share: small images, one polling helper, the job helpers over HTTP, process trees.

Fixtures live in the conftest files; plain functions live here, so no test module imports another.
"""

from __future__ import annotations

import io
import os
import signal
import struct
import time
import zlib
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import numpy as np
import requests
from PIL import Image

T = TypeVar("T")
FINISHED = ("succeeded", "failed", "canceled")


def eventually(probe: Callable[[], T], timeout: float = 60, interval: float = 0.05,
               what: str | Callable[[], str] = "the condition") -> T:
    """Call ``probe`` until it returns something truthy, and return that; fail after ``timeout``
    seconds saying what was awaited (a callable ``what`` is asked only then: logs, last state)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what() if callable(what) else what}")
        time.sleep(interval)


# -- images ------------------------------------------------------------------------------

def png_bytes(image: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG", **kw)
    return buf.getvalue()


def jpeg_bytes(image: Image.Image, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def photo(w, h, mode="RGB", seed=0) -> Image.Image:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    image = Image.fromarray(arr)
    if mode == "RGBA":
        image.putalpha(Image.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8)))
    elif mode != "RGB":
        image = image.convert(mode)
    return image


def assert_only_the_patch_changed(original: bytes, result: bytes, hole_stored: np.ndarray) -> None:
    """Decoded as the files store them, a patched JPEG differs from its input only inside the MCUs that
    touch the hole, and (where chroma is subsampled) on the one-pixel ring a decoder smooths around them."""
    import cv2

    from pconv.jpegpatch import read_layout, touched_mcus

    before = np.asarray(Image.open(io.BytesIO(original)))
    after = np.asarray(Image.open(io.BytesIO(result)))
    assert after.shape == before.shape
    layout = read_layout(original)
    mcu_w, mcu_h = layout.mcu
    touched = touched_mcus(hole_stored, layout.mcu)
    allowed = np.repeat(np.repeat(touched, mcu_h, 0), mcu_w, 1)[: before.shape[0], : before.shape[1]]
    ring = cv2.dilate(allowed.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    changed = before != after if before.ndim == 2 else np.any(before != after, axis=-1)
    assert not (changed & ~ring).any(), f"{int((changed & ~ring).sum())} pixels changed outside the patch"
    if len(layout.sampling) == 1 or layout.sampling[0] == layout.sampling[1]:  # no chroma smoothing: no ring
        assert not (changed & ~allowed).any()


def mask_for(w, h, box=None) -> tuple[bytes, np.ndarray]:
    m = np.zeros((h, w), np.uint8)
    x0, y0, x1, y1 = box or (w // 4, h // 4, w // 2, h // 2)
    m[y0:y1, x0:x1] = 255
    return png_bytes(Image.fromarray(m)), m >= 128


def bomb_png(width=50_000, height=50_000) -> bytes:
    """A valid PNG header claiming a huge image, with almost no data: a decompression bomb's shape."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def slow_inputs(side=6000):
    """A big smooth photo (small as a PNG) with a big hole: Navier-Stokes takes seconds on it."""
    y, x = np.mgrid[0:side, 0:side]
    image = Image.fromarray(np.stack([x % 256, y % 256, (x // 24) % 256], -1).astype(np.uint8))
    mask = np.zeros((side, side), np.uint8)
    mask[side // 6 : 5 * side // 6, side // 6 : 5 * side // 6] = 255
    return png_bytes(image, compress_level=9), png_bytes(Image.fromarray(mask), compress_level=9)


def many_holes(side=3000, grid=4):
    """A smooth photo with grid² separate square holes: as many crops, filled a few per forward pass."""
    y, x = np.mgrid[0:side, 0:side]
    image = Image.fromarray(np.stack([x % 256, y % 256, (x // 24) % 256], -1).astype(np.uint8))
    mask = np.zeros((side, side), np.uint8)
    step = side // grid
    for i in range(grid):
        for j in range(grid):
            mask[i * step + 100 : i * step + 300, j * step + 100 : j * step + 300] = 255
    return png_bytes(image, compress_level=1), png_bytes(Image.fromarray(mask), compress_level=1)


# -- jobs over HTTP ----------------------------------------------------------------------

class Endpoint:
    """An API reached by URL alone (``sneaky up``), where the job helpers take a stack."""

    def __init__(self, api_url: str) -> None:
        self.api_url = api_url

    def logs(self) -> str:
        return ""


def submit(stack, image: bytes, mask: bytes, **data):
    return requests.post(f"{stack.api_url}/v1/jobs", files={"image": ("p", image), "mask": ("m", mask)},
                         data=data, timeout=30)


def get_job(stack, job_id) -> dict:
    return requests.get(f"{stack.api_url}/v1/jobs/{job_id}", timeout=10).json()


def wait_job(stack, job_id, until: Callable[[dict], bool], timeout: float = 60, interval: float = 0.05) -> dict:
    """The job once ``until(job)`` holds."""
    last: dict = {}

    def probe():
        last.update(get_job(stack, job_id))
        return dict(last) if until(last) else None

    return eventually(probe, timeout, interval, what=lambda: f"job {job_id}: {last}\n{stack.logs()}")


def wait_done(stack, job_id, timeout: float = 60) -> dict:
    return wait_job(stack, job_id, lambda job: job["status"] in FINISHED, timeout)


def fetch_result(stack, job_id) -> requests.Response:
    response = requests.get(f"{stack.api_url}/v1/jobs/{job_id}/result", allow_redirects=False, timeout=30)
    if stack.kind == "s3":
        assert response.status_code == 302
        location = response.headers["Location"]
        assert "X-Amz-Expires=" in location and "X-Amz-Signature=" in location  # presigned, short-lived
        response = requests.get(location, timeout=30)
    assert response.status_code == 200
    return response


def run_job(stack, image_bytes, mask_bytes, **data):
    r = submit(stack, image_bytes, mask_bytes, **data)
    assert r.status_code == 202, r.text
    job = r.json()
    assert r.headers["Location"] == f"/v1/jobs/{job['id']}"
    assert int(r.headers["Retry-After"]) >= 1
    assert job["status"] == "queued" and job["attempts"] == 0
    done = wait_done(stack, job["id"])
    assert done["status"] == "succeeded", (done, stack.logs())
    return done, Image.open(io.BytesIO(fetch_result(stack, job["id"]).content))


# -- webhooks ----------------------------------------------------------------------------

class HookReceiver:
    """A webhook receiver on 127.0.0.1: records every delivery (headers, raw body) and answers with
    ``statuses`` in turn (then 204)."""

    def __init__(self, statuses=()) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.received: list[tuple[dict, bytes]] = []
        self.statuses = list(statuses)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((dict(self.headers), body))
                self.send_response(receiver.statuses.pop(0) if receiver.statuses else 204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def __enter__(self) -> HookReceiver:
        return self

    def __exit__(self, *_) -> None:
        self.server.shutdown()
        self.server.server_close()


# -- storage ---------------------------------------------------------------------------

def stored_objects(where) -> set[str]:
    """Every object a stack's storage (or the storage at this SNEAKY_STORAGE_URL) holds, local or S3."""
    url = where if isinstance(where, str) else where.env["SNEAKY_STORAGE_URL"]
    if url.startswith("s3://"):
        import boto3

        endpoint = url.split("endpoint=")[1]
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket="sneaky-test")
        return {o["Key"] for page in pages for o in page.get("Contents", [])}
    from pathlib import Path

    root = Path(url)
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


# -- processes ---------------------------------------------------------------------------

def descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def kill_host(server) -> None:
    """A server and every process under it, SIGKILLed at once: a preempted node."""
    _signal_all([server.proc.pid, *descendants(server.proc.pid)], signal.SIGKILL)


def upload_burst(api_url: str, image: bytes, mask: bytes, clients: int = 16, each: int = 15):
    """``clients`` threads submitting ``each`` jobs as fast as they can; every answer's status, or the
    name of the error that took its place (a torn connection)."""
    import collections
    from concurrent.futures import ThreadPoolExecutor

    def client(_):
        session, answers = requests.Session(), []
        for _ in range(each):
            try:
                answers.append(session.post(f"{api_url}/v1/jobs", timeout=60,
                                            files={"image": ("p", image), "mask": ("m", mask)}).status_code)
            except requests.RequestException as exc:
                answers.append(type(exc).__name__)
        return answers

    with ThreadPoolExecutor(clients) as pool:
        return collections.Counter(a for batch in pool.map(client, range(clients)) for a in batch)


@contextmanager
def frozen_workers(stack):
    """The stack's worker processes stopped (SIGSTOP) inside the block, so nothing runs meanwhile."""
    pids = [pid for server in stack.servers if server.name.startswith("worker")
            for pid in {server.proc.pid, *descendants(server.proc.pid)}]
    _signal_all(pids, signal.SIGSTOP)
    try:
        yield
    finally:
        _signal_all(pids, signal.SIGCONT)


def _signal_all(pids, signum):
    for pid in pids:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass
