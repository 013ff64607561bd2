"""Object storage behind one small interface: a local folder or any S3 endpoint.

Keys are built by the service from tenant and job ids (``keys.py``), never from
names a user sent.
"""

from __future__ import annotations

import io
import os
import secrets
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Protocol
from urllib.parse import parse_qs, urlparse

from .errors import ObjectMissing, SneakyError, StorageUnavailable

__all__ = ["ObjectMissing", "Storage", "StorageUnavailable", "open_storage", "ping"]


class Storage(Protocol):
    def put(self, key: str, data: bytes, content_type: str) -> None: ...
    def put_stream(self, key: str, stream: IO[bytes], content_type: str, limit: int) -> int:
        """Store what ``stream`` holds, a chunk at a time (bounded memory), and return its size;
        ``too_large`` (nothing stored) once it passes ``limit`` bytes."""
        ...
    def get(self, key: str, max_bytes: int | None = None) -> bytes: ...
    def delete(self, *keys: str) -> None: ...
    def exists(self, key: str) -> bool: ...
    def result_url(self, key: str, seconds: int, filename: str) -> str | None:
        """A short-lived URL the client can download from, or None if the API must serve the bytes."""
        ...
    def upload_url(self, key: str, seconds: int, content_type: str) -> str | None:
        """A presigned PUT URL, or None if uploads go through the API."""
        ...
    def delete_older_than(self, seconds: int) -> int: ...


CHUNK_BYTES = 1024 * 1024


class LimitedReader(io.RawIOBase):
    """A stream read through to its end, refusing more than ``limit`` bytes."""

    def __init__(self, stream: IO[bytes], limit: int) -> None:
        self.stream, self.limit, self.size = stream, limit, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.stream.read(min(len(buffer), CHUNK_BYTES))
        self.size += len(data)
        if self.size > self.limit:
            raise SneakyError(f"an upload may hold at most {self.limit:,} bytes", "too_large")
        buffer[: len(data)] = data
        return len(data)


def ping(storage: Storage) -> None:
    """Readiness: write a small object, read it back, delete it. A folder that is read-only, full or
    gone, or a bucket that refuses writes, raises StorageUnavailable."""
    key = f".probe/{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"
    payload = secrets.token_bytes(16)
    storage.put(key, payload, "application/octet-stream")
    try:
        if storage.get(key) != payload:
            raise StorageUnavailable("storage returned other bytes than were written")
    finally:
        storage.delete(key)


@contextmanager
def _local_errors(key: str) -> Iterator[None]:
    """The folder's own failures (read-only, full, a file where a folder should be) as the service's."""
    try:
        yield
    except FileNotFoundError:
        raise ObjectMissing(f"no object under {key}") from None
    except OSError as exc:
        raise StorageUnavailable(f"storage folder: {type(exc).__name__}: {exc.strerror}") from None


class LocalStorage:
    """Objects as files under one folder; writes are atomic (temporary file, then rename)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root not in path.parents:
            raise ValueError(f"key {key!r} leaves the storage folder")
        return path

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        path = self._path(key)
        with _local_errors(key):
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise

    def put_stream(self, key: str, stream: IO[bytes], content_type: str, limit: int) -> int:
        path = self._path(key)
        reader = LimitedReader(stream, limit)
        with _local_errors(key):
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as f:
                    shutil.copyfileobj(reader, f, CHUNK_BYTES)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        return reader.size

    def get(self, key: str, max_bytes: int | None = None) -> bytes:
        with _local_errors(key), self._path(key).open("rb") as f:
            return f.read(max_bytes if max_bytes is not None else -1)

    def delete(self, *keys: str) -> None:
        for key in keys:
            path = self._path(key)
            with _local_errors(key):
                path.unlink(missing_ok=True)
            # drop the now empty job folder, if it is one
            for parent in path.parents:
                if parent == self.root:
                    break
                try:
                    parent.rmdir()
                except OSError:
                    break

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def result_url(self, key: str, seconds: int, filename: str) -> str | None:
        return None

    def upload_url(self, key: str, seconds: int, content_type: str) -> str | None:
        return None

    def delete_older_than(self, seconds: int) -> int:
        cutoff = time.time() - seconds
        removed = 0
        for path in sorted(self.root.rglob("*"), reverse=True):
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink(missing_ok=True)
                removed += 1
            elif path.is_dir() and path != self.root:
                try:
                    path.rmdir()
                except OSError:
                    pass
        return removed


class S3Storage:
    """S3 or any S3-compatible endpoint through boto3. Credentials and region come from the
    standard AWS variables unless the URL names a region."""

    def __init__(self, bucket: str, prefix: str = "", endpoint: str | None = None, region: str | None = None) -> None:
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint = endpoint
        self.client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name=region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
            config=Config(signature_version="s3v4", retries={"max_attempts": 3, "mode": "standard"},
                          connect_timeout=5, read_timeout=60),
        )

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    @property
    def download_origins(self) -> str:
        """Where presigned URLs point, for a web page's connect-src."""
        if self.endpoint:
            parsed = urlparse(self.endpoint)
            return f"{parsed.scheme}://{parsed.netloc}"
        return "https://*.amazonaws.com"

    def _call(self, fn: Callable[..., Any], **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return fn(Bucket=self.bucket, **kwargs)
        except ClientError as exc:
            err = exc.response.get("Error", {})
            if err.get("Code") in ("NoSuchKey", "404", "NotFound"):
                raise ObjectMissing(f"no object under {kwargs.get('Key', '')}") from None
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            if status >= 500 or err.get("Code") in ("NoSuchBucket", "SlowDown"):
                raise StorageUnavailable(f"S3 {err.get('Code')}: {err.get('Message')}") from None
            raise
        except BotoCoreError as exc:
            raise StorageUnavailable(f"S3 unreachable: {exc}") from None

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        self._call(self.client.put_object, Key=self._key(key), Body=data, ContentType=content_type)

    def put_stream(self, key: str, stream: IO[bytes], content_type: str, limit: int) -> int:
        from boto3.s3.transfer import TransferConfig

        reader = LimitedReader(stream, limit)
        # one part in flight: memory stays at a part's size whatever the upload's
        config = TransferConfig(multipart_chunksize=8 * 1024 * 1024, max_concurrency=1)
        self._call(self.client.upload_fileobj, Fileobj=reader, Key=self._key(key),
                   ExtraArgs={"ContentType": content_type}, Config=config)
        return reader.size

    def get(self, key: str, max_bytes: int | None = None) -> bytes:
        extra = {"Range": f"bytes=0-{max_bytes - 1}"} if max_bytes else {}
        return self._call(self.client.get_object, Key=self._key(key), **extra)["Body"].read()

    def delete(self, *keys: str) -> None:
        if keys:
            objects = [{"Key": self._key(k)} for k in keys]
            self._call(self.client.delete_objects, Delete={"Objects": objects, "Quiet": True})

    def exists(self, key: str) -> bool:
        try:
            self._call(self.client.head_object, Key=self._key(key))
            return True
        except ObjectMissing:
            return False

    def result_url(self, key: str, seconds: int, filename: str) -> str | None:
        return self.client.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self.bucket,
                "Key": self._key(key),
                "ResponseContentDisposition": f'attachment; filename="{filename}"',
            },
            ExpiresIn=seconds,
        )

    def upload_url(self, key: str, seconds: int, content_type: str) -> str | None:
        return self.client.generate_presigned_url(
            "put_object",
            Params={"Bucket": self.bucket, "Key": self._key(key), "ContentType": content_type},
            ExpiresIn=seconds,
        )

    def delete_older_than(self, seconds: int) -> int:
        cutoff = time.time() - seconds
        removed = 0
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=f"{self.prefix}/" if self.prefix else ""):
            old = [o["Key"] for o in page.get("Contents", []) if o["LastModified"].timestamp() < cutoff]
            if old:
                self._call(self.client.delete_objects, Delete={"Objects": [{"Key": k} for k in old], "Quiet": True})
                removed += len(old)
        return removed


def open_storage(url: str) -> Storage:
    """``s3://bucket/prefix?endpoint=http://host:9000&region=eu-west-1`` or a folder path
    (``file:///srv/sneaky`` or ``./data``)."""
    if url.startswith("s3://"):
        parsed = urlparse(url)
        query = parse_qs(parsed.query)
        if not parsed.netloc:
            raise ValueError(f"storage URL {url!r} names no bucket")
        return S3Storage(
            parsed.netloc,
            parsed.path,
            endpoint=query.get("endpoint", [None])[0],
            region=query.get("region", [None])[0],
        )
    return LocalStorage(url.removeprefix("file://"))
