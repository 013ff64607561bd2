"""SneakyClient's retries against a scripted HTTP server."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from client.sdk import Job, SneakyClient, SneakyError


class Scripted(BaseHTTPRequestHandler):
    script: list = []
    seen: list = []

    def do_GET(self):
        Scripted.seen.append((time.monotonic(), self.path, self.headers.get("Authorization")))
        status, headers, body = Scripted.script.pop(0)
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps(body).encode())

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    Scripted.seen = []
    srv = HTTPServer(("127.0.0.1", 0), Scripted)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


def test_retries_429_and_503_honouring_retry_after(server):
    Scripted.script = [
        (503, {"Retry-After": "0.3"}, {"code": "queue_unavailable"}),
        (429, {"Retry-After": "0.2"}, {"code": "rate_limited"}),
        (200, {}, {"id": "j1", "status": "queued", "attempts": 0, "extra": "ignored"}),
    ]
    job = SneakyClient(server, api_key="k-123").get("j1")
    assert isinstance(job, Job) and job.id == "j1" and not job.done
    (t0, _, auth), (t1, _, _), (t2, _, _) = Scripted.seen
    assert auth == "Bearer k-123"
    assert t1 - t0 >= 0.29 and t2 - t1 >= 0.19


def test_other_errors_raise_with_the_stable_code(server):
    Scripted.script = [(404, {}, {"code": "not_found", "detail": "no job x", "status": 404})]
    with pytest.raises(SneakyError) as err:
        SneakyClient(server).get("x")
    assert err.value.status == 404 and err.value.code == "not_found" and "no job x" in str(err.value)


def test_gives_up_after_its_retries(server):
    Scripted.script = [(503, {"Retry-After": "0"}, {"code": "queue_unavailable"})] * 3
    with pytest.raises(SneakyError) as err:
        SneakyClient(server, retries=2).get("x")
    assert err.value.code == "queue_unavailable" and len(Scripted.seen) == 3


def test_connection_errors_are_retried_then_raised():
    import requests

    from client.up import free_port

    client = SneakyClient(f"http://127.0.0.1:{free_port()}", retries=1)
    with pytest.raises(requests.ConnectionError):
        client.get("x")
