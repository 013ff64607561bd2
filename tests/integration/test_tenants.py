"""API keys and tenants on a stack that requires keys: nobody sees another tenant's anything."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis
import requests

from client.sdk import SneakyClient, SneakyError
from core.keys import KeyStore
from tests.helpers import mask_for, photo, png_bytes
from tests.servers import LIMITS, ServiceStack


@pytest.fixture(scope="module")
def keyed(log_dir, redis_server, tmp_path_factory):
    env = {**os.environ, **LIMITS, "SNEAKY_AUTH": "keys", "SNEAKY_WEBHOOK_ALLOW_PRIVATE": "",
           "SNEAKY_REDIS_URL": f"redis://127.0.0.1:{redis_server.port}/3",
           "SNEAKY_STORAGE_URL": str(tmp_path_factory.mktemp("keyed-storage"))}
    redis.Redis.from_url(env["SNEAKY_REDIS_URL"]).flushdb()
    stack = ServiceStack(log_dir, env)
    stack.start_worker("keyed-worker")
    stack.start_api()
    keys = KeyStore(redis.Redis.from_url(env["SNEAKY_REDIS_URL"]))
    alice, _ = keys.create("alice")
    bob, _ = keys.create("bob")
    yield stack, SneakyClient(stack.api_url, alice), SneakyClient(stack.api_url, bob), keys
    stack.stop()


def test_requests_without_a_valid_key_are_refused(keyed):
    stack, _, _, keys = keyed
    for headers in ({}, {"Authorization": "Bearer sk_wrong"}, {"Authorization": "Basic abc"}):
        r = requests.get(f"{stack.api_url}/v1/jobs", headers=headers, timeout=10)
        assert r.status_code == 401 and r.json()["code"] == "unauthorized"
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert requests.get(f"{stack.api_url}/healthz", timeout=10).status_code == 200  # probes need no key
    secret, key = keys.create("carol")
    carol = SneakyClient(stack.api_url, secret)
    assert list(carol.jobs()) == []
    assert keys.revoke(key.id)
    with pytest.raises(SneakyError) as err:
        list(carol.jobs())
    assert err.value.status == 401


def test_tenants_never_see_each_others_jobs(keyed):
    stack, alice, bob, _ = keyed
    job = alice.submit(png_bytes(photo(30, 20)), mask_for(30, 20)[0], engine="telea")
    assert alice.wait(job.id).status == "succeeded"
    for call in (lambda: bob.get(job.id), lambda: bob.result(job.id), lambda: bob.cancel(job.id),
                 lambda: bob.delete(job.id)):
        with pytest.raises(SneakyError) as err:
            call()
        assert err.value.status == 404 and err.value.code == "not_found"
    assert job.id not in [j.id for j in bob.jobs()] and job.id in [j.id for j in alice.jobs()]
    assert alice.get(job.id).status == "succeeded"  # bob's delete did nothing


def test_uploads_and_batches_are_scoped(keyed):
    stack, alice, bob, _ = keyed
    [image, mask] = alice.upload([png_bytes(photo(30, 20)), mask_for(30, 20)[0]])
    with pytest.raises(SneakyError) as err:  # bob names alice's upload keys
        bob.batch([{"image_key": image, "mask_key": mask}])
    assert err.value.code == "invalid_items" and {e["code"] for e in err.value.body["items"]} == {"upload_missing"}
    slot = alice.upload_urls(1)[0]
    with pytest.raises(SneakyError) as err:  # bob cannot write into alice's upload slot
        bob.put_upload(slot, png_bytes(photo(10, 10)))
    assert err.value.status == 404
    batch = alice.batch([{"image_key": image, "mask_key": mask}])
    for call in (lambda: bob.get_batch(batch.id), lambda: bob.manifest(batch.id), lambda: bob.cancel_batch(batch.id)):
        with pytest.raises(SneakyError) as err:
            call()
        assert err.value.status == 404


@pytest.mark.parametrize("hook", ["http://127.0.0.1:9/hook", "http://169.254.169.254/latest/meta-data",
                                  "http://localhost/x", "http://10.0.0.1/x"])
def test_webhooks_to_private_addresses_are_refused(keyed, hook):
    stack, alice, _, _ = keyed
    with pytest.raises(SneakyError) as err:
        alice.submit(png_bytes(photo(20, 20)), mask_for(20, 20)[0], webhook_url=hook)
    assert err.value.status == 422 and err.value.code == "invalid_webhook"


def test_each_tenant_signs_its_webhooks_with_its_own_secret(keyed):
    stack, alice, bob, keys = keyed
    a, b = alice.webhook_secret(), bob.webhook_secret()
    assert a != b and alice.webhook_secret() == a  # stable until rotated
    rotated = alice.webhook_secret(rotate=True)
    assert rotated not in (a, b) and bob.webhook_secret() == b
    secret, _ = keys.create("carol")
    cli = [str(Path(sys.executable).parent / "sneaky"), "webhooks", "secret", "--url", stack.api_url]
    env = {**os.environ, "SNEAKY_API_KEY": secret}
    shown = subprocess.run(cli, capture_output=True, text=True, timeout=30, env=env)
    assert shown.returncode == 0 and shown.stdout.strip().startswith("whsec_"), shown.stderr
    again = subprocess.run([*cli[:2], "rotate", *cli[3:]], capture_output=True, text=True, timeout=30, env=env)
    assert again.returncode == 0 and again.stdout.strip() not in (shown.stdout.strip(), a, b, rotated)
    unauthorized = requests.get(f"{stack.api_url}/v1/webhooks/secret", timeout=10)
    assert unauthorized.status_code == 401


def test_keys_cli(redis_server):
    url = f"redis://127.0.0.1:{redis_server.port}/4"
    sneaky = [str(Path(sys.executable).parent / "sneaky"), "keys", "--redis-url", url]
    created = subprocess.run([*sneaky, "create", "--tenant", "acme", "--name", "ci"], capture_output=True,
                             text=True, timeout=30)
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip().splitlines()[-1]
    assert secret.startswith("sk_")
    store = KeyStore(redis.Redis.from_url(url))
    assert store.tenant_of(secret) == "acme"
    assert secret.encode() not in b"".join(redis.Redis.from_url(url).dump(k) or b"" for k in
                                           redis.Redis.from_url(url).keys("*"))  # stored hashed only
    listed = subprocess.run([*sneaky, "list"], capture_output=True, text=True, timeout=30).stdout
    key_id = listed.split()[0]
    assert "acme" in listed and "active" in listed and secret not in listed
    assert subprocess.run([*sneaky, "revoke", key_id], capture_output=True, timeout=30).returncode == 0
    assert store.tenant_of(secret) is None
    bad = subprocess.run([*sneaky, "create", "--tenant", "Bad Name"], capture_output=True, text=True, timeout=30)
    assert bad.returncode != 0 and "tenant names" in bad.stderr
