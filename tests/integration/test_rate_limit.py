"""Per-tenant rate limit, counted in a real Redis."""

import redis

from api import create_app
from core.keys import KeyStore
from core.settings import Settings


def test_each_tenant_has_its_own_budget(redis_server, tmp_path):
    url = f"redis://127.0.0.1:{redis_server.port}/8"
    redis.Redis.from_url(url).flushdb()
    app = create_app(Settings(redis_url=url, storage_url=str(tmp_path), auth="keys", rate_limit="3 per minute"))
    keys = KeyStore(redis.Redis.from_url(url))
    (a, _), (b, _) = keys.create("a"), keys.create("b")
    client = app.test_client()
    codes = [client.get("/v1/jobs", headers={"Authorization": f"Bearer {a}"}).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    limited = client.get("/v1/jobs", headers={"Authorization": f"Bearer {a}"})
    assert limited.json["code"] == "rate_limited" and limited.headers["Retry-After"]
    assert limited.mimetype == "application/problem+json"
    assert client.get("/v1/jobs", headers={"Authorization": f"Bearer {b}"}).status_code == 200  # b is untouched
    assert all(client.get("/healthz").status_code == 200 for _ in range(5))  # probes are never limited


def test_a_burst_of_uploads_gets_answers_not_resets(redis_server, log_dir, tmp_path):
    """16 clients sending 15 uploads of 1 MB each as fast as they can, against a low rate limit: every
    refusal arrives as a 429 (the body is read to its end first), none as a torn connection; curl too."""
    import collections
    import os
    import shutil
    import subprocess
    from concurrent.futures import ThreadPoolExecutor

    from tests.helpers import mask_for, photo, png_bytes, upload_burst
    from tests.servers import LIMITS, ServiceStack

    url = f"redis://127.0.0.1:{redis_server.port}/12"
    redis.Redis.from_url(url).flushdb()
    stack = ServiceStack(log_dir, {**os.environ, **LIMITS, "SNEAKY_REDIS_URL": url,
                                   "SNEAKY_RATE_LIMIT": "20 per second", "SNEAKY_STORAGE_URL": str(tmp_path / "s")})
    stack.start_api()
    image, mask = png_bytes(photo(600, 600)), mask_for(600, 600)[0]
    (tmp_path / "p.png").write_bytes(image)
    (tmp_path / "m.png").write_bytes(mask)

    def curl(_):
        done = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-F", f"image=@{tmp_path}/p.png",
                               "-F", f"mask=@{tmp_path}/m.png", f"{stack.api_url}/v1/jobs"],
                              capture_output=True, text=True, timeout=60)
        return int(done.stdout) if done.returncode == 0 else f"curl exit {done.returncode}: {done.stderr}"

    try:
        answers = upload_burst(stack.api_url, image, mask)
        with ThreadPoolExecutor(16) as pool:
            curled = collections.Counter(pool.map(curl, range(32))) if shutil.which("curl") else None
    finally:
        stack.stop()
    assert set(answers) == {202, 429} and sum(answers.values()) == 240, answers
    assert curled is None or set(curled) <= {202, 429}, curled
