"""Both storage drivers against real backends (a folder, moto_server over HTTP)."""

import os
import time

import pytest

from core.storage import LocalStorage, ObjectMissing, S3Storage, StorageUnavailable, open_storage, ping
from tests.servers import S3_ENV, make_bucket


@pytest.fixture(params=["local", "s3"])
def storage(request, tmp_path, monkeypatch):
    if request.param == "local":
        return open_storage(str(tmp_path / "objects"))
    endpoint = request.getfixturevalue("moto")
    for k, v in S3_ENV.items():
        monkeypatch.setenv(k, v)
    bucket = f"b{time.time_ns()}"
    make_bucket(endpoint, bucket)
    return open_storage(f"s3://{bucket}/pre/fix?endpoint={endpoint}")


def test_put_get_delete(storage):
    storage.put("t/j/image", b"abc", "image/png")
    assert storage.get("t/j/image") == b"abc" and storage.exists("t/j/image")
    storage.delete("t/j/image")
    assert not storage.exists("t/j/image")
    with pytest.raises(ObjectMissing):
        storage.get("t/j/image")
    storage.delete("never/was/there")  # deleting nothing is fine
    ping(storage)


def test_retention_sweep_removes_only_old_objects(storage):
    storage.put("t/old/image", b"1", "image/png")
    if isinstance(storage, LocalStorage):
        past = time.time() - 7200
        os.utime(storage.root / "t/old/image", (past, past))
        storage.put("t/new/image", b"2", "image/png")
        assert storage.delete_older_than(3600) == 1
        assert storage.exists("t/new/image") and not storage.exists("t/old/image")
    else:
        time.sleep(1.1)
        storage.put("t/new/image", b"2", "image/png")
        assert storage.delete_older_than(1) == 1
        assert storage.exists("t/new/image") and not storage.exists("t/old/image")


def test_a_failing_local_folder_is_storage_unavailable_and_the_probe_leaves_nothing(tmp_path):
    root = tmp_path / "store"
    storage = LocalStorage(root)
    ping(storage)
    assert list(root.iterdir()) == []  # the readiness probe cleans up after itself
    root.rmdir()
    root.write_bytes(b"a file where the folder was")
    for call in (lambda: storage.put("t/j/image", b"x"), lambda: storage.get("t/j/image"), lambda: ping(storage)):
        with pytest.raises(StorageUnavailable):
            call()


def test_local_keys_cannot_leave_the_folder(tmp_path):
    storage = LocalStorage(tmp_path / "objects")
    with pytest.raises(ValueError):
        storage.put("../escape", b"x", "text/plain")


def test_s3_presigned_url_expires_and_prefix_is_used(moto, monkeypatch):
    for k, v in S3_ENV.items():
        monkeypatch.setenv(k, v)
    make_bucket(moto, "presign")
    storage = open_storage(f"s3://presign/p?endpoint={moto}")
    assert isinstance(storage, S3Storage) and storage.prefix == "p"
    storage.put("t/j/result.png", b"png", "image/png")
    url = storage.result_url("t/j/result.png", 60, "j.png")
    assert "/presign/p/t/j/result.png" in url and "X-Amz-Expires=60" in url
    import requests

    assert requests.get(url, timeout=10).content == b"png"


def test_s3_unreachable_is_storage_unavailable(monkeypatch):
    for k, v in S3_ENV.items():
        monkeypatch.setenv(k, v)
    from client.up import free_port

    storage = open_storage(f"s3://nobucket?endpoint=http://127.0.0.1:{free_port()}")
    storage.client.meta.config.retries = {"max_attempts": 1}
    with pytest.raises(StorageUnavailable):
        ping(storage)


def test_a_local_folder_that_comes_back_is_retried_like_s3(tmp_path):
    """The worker's reads and writes go through core.retry: a folder that is away for a moment (an
    NFS mount coming back) costs a retry, not the job."""
    import shutil
    import threading

    from core.retry import retrying

    root = tmp_path / "store"
    storage = LocalStorage(root)
    storage.put("t/j/image", b"photo")
    shutil.move(root, tmp_path / "away")
    root.write_bytes(b"not a folder")

    def come_back():
        time.sleep(0.3)
        root.unlink()
        shutil.move(tmp_path / "away", root)

    threading.Thread(target=come_back).start()
    assert retrying(lambda: storage.get("t/j/image"), "read", budget=5, base=0.1, cap=0.2) == b"photo"


def test_put_stream_stores_a_stream_and_refuses_past_its_limit(storage):
    import io

    from core.errors import SneakyError

    data = os.urandom(3 * 1024 * 1024 + 17)
    assert storage.put_stream("t/u/big", io.BytesIO(data), "image/png", limit=len(data)) == len(data)
    assert storage.get("t/u/big") == data
    with pytest.raises(SneakyError) as refused:
        storage.put_stream("t/u/over", io.BytesIO(data), "image/png", limit=len(data) - 1)
    assert refused.value.code == "too_large" and not storage.exists("t/u/over")
