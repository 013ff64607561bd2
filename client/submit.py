"""``sneaky submit``: one photo through a running API."""

from __future__ import annotations

import time
from pathlib import Path

import requests

TERMINAL = ("succeeded", "failed", "canceled")


class ApiError(RuntimeError):
    def __init__(self, response: requests.Response) -> None:
        try:
            body = response.json()
            message = f"{body.get('code')}: {body.get('detail')}"
        except ValueError:
            message = response.text[:200]
        super().__init__(f"HTTP {response.status_code} {message}")
        self.status = response.status_code


def submit(url: str, photo: str, mask: str, engine: str | None = None, priority: str = "interactive",
           timeout: float = 60) -> dict:
    data = {"priority": priority}
    if engine:
        data["engine"] = engine
    with open(photo, "rb") as image_file, open(mask, "rb") as mask_file:
        response = requests.post(
            f"{url.rstrip('/')}/v1/jobs",
            files={"image": (Path(photo).name, image_file), "mask": (Path(mask).name, mask_file)},
            data=data,
            timeout=timeout,
        )
    if response.status_code != 202:
        raise ApiError(response)
    return response.json()


def wait(url: str, job_id: str, timeout: float = 3600) -> dict:
    """Poll until the job ends, at the pace the API's Retry-After asks for (at most 2 s)."""
    deadline = time.monotonic() + timeout
    while True:
        response = requests.get(f"{url.rstrip('/')}/v1/jobs/{job_id}", timeout=30)
        if response.status_code != 200:
            raise ApiError(response)
        job = response.json()
        if job["status"] in TERMINAL:
            return job
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} still {job['status']} after {timeout}s")
        time.sleep(min(2.0, float(response.headers.get("Retry-After", 1))) / 4)


def download(url: str, job_id: str, out: str) -> int:
    response = requests.get(f"{url.rstrip('/')}/v1/jobs/{job_id}/result", timeout=120)  # follows S3 redirects
    if response.status_code != 200:
        raise ApiError(response)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_bytes(response.content)
    return len(response.content)
