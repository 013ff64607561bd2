"""One error family: the README's table is core/errors.py's, and foreign errors translate at the edge."""

import re
from pathlib import Path

import redis
from kombu.exceptions import OperationalError

from core.errors import ERRORS, ObjectMissing, SneakyError, StorageUnavailable, translate
from pconv.images import InpaintError, MaskSizeMismatch


def test_the_readme_lists_every_code_with_its_status():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    rows = dict((code, int(status)) for status, code in re.findall(r"^\| (\d{3}) \| `([a-z_]+)` \|", readme, re.M))
    assert rows == {code: status for code, (status, _) in ERRORS.items()}


def test_foreign_errors_become_the_code_they_stand_for():
    assert translate(MaskSizeMismatch("sizes differ")).code == "mask_size_mismatch"
    assert translate(InpaintError("bad", "unsupported_format")).code == "unsupported_format"
    assert translate(InpaintError("bad")).code == "invalid_image"  # pconv's generic code is not ours
    assert translate(redis.ConnectionError("down")).code == "queue_unavailable"
    assert translate(OperationalError("amqp refused")).code == "queue_unavailable"  # RabbitMQ away
    assert translate(ZeroDivisionError()).code == "internal"
    ours = StorageUnavailable("S3 503")
    assert translate(ours) is ours and ours.status == 503 and ours.headers["Retry-After"]
    missing = ObjectMissing("no object under t/x")
    assert isinstance(missing, KeyError) and str(missing) == "no object under t/x" and missing.code == "not_found"
    assert isinstance(ours, SneakyError)
