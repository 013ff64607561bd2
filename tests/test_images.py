"""Writing results (pconv/images.py, ``encode``): 8-bit L, RGB and RGBA PNG by our own writer, other modes
through Pillow; the pixels, the ICC profile and EXIF survive either way."""

import io
import zlib

import numpy as np
import pytest
from PIL import Image, ImageCms

from pconv import images
from pconv.images import encode

SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def picture(mode, seed=0):
    rng = np.random.default_rng(seed)
    if mode in ("L", "RGB", "RGBA", "LA"):
        bands = len(mode)
        data = rng.integers(0, 256, (30, 44, bands), dtype=np.uint8)
        return Image.fromarray(data[..., 0] if bands == 1 else data, mode)
    if mode == "I;16":
        return Image.fromarray(rng.integers(0, 65536, (30, 44), dtype=np.uint16))
    return Image.fromarray(rng.integers(0, 256, (30, 44, 3), dtype=np.uint8)).convert(mode)


def written(image):
    out = io.BytesIO()
    encode(image, out, "PNG")
    back = Image.open(io.BytesIO(out.getvalue()))
    back.load()
    return out.getvalue(), back


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "LA", "P", "I;16"])
def test_png_keeps_every_pixel_the_mode_the_profile_and_exif(mode):
    image = picture(mode)
    exif = Image.Exif()
    exif[0x0131] = "sneaky"
    image.info.update(icc_profile=SRGB, exif=exif.tobytes())
    data, back = written(image)
    assert back.mode == image.mode and np.array_equal(np.asarray(back), np.asarray(image))
    assert back.info.get("icc_profile") == SRGB
    assert back.getexif().get(0x0131) == "sneaky"


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA"])
def test_our_png_writer_is_read_alike_by_libpng_and_pillow(mode):
    cv2 = pytest.importorskip("cv2")
    image = picture(mode, seed=3).resize((300, 211))  # rows of every length parity, smooth and noisy parts
    data, back = written(image)
    assert data.startswith(images.PNG_SIGNATURE) and b"IDAT" in data
    assert np.array_equal(np.asarray(back), np.asarray(image))  # Pillow, which checks every chunk's CRC
    by_libpng = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    expected = np.asarray(image)
    if mode in ("RGB", "RGBA"):
        by_libpng = by_libpng[..., [2, 1, 0, 3][: len(mode)]]  # OpenCV hands back BGR(A)
    assert np.array_equal(by_libpng, expected)


def test_our_png_writer_goes_through_a_large_image_in_strips(monkeypatch):
    image = picture("RGB", seed=6).resize((700, 90))
    whole = images._png(image, None, None)
    original_compressobj = images.isal_zlib.compressobj
    strips = []

    class Counting:
        def __init__(self, level):
            self.inner = original_compressobj(level)

        def compress(self, data):
            strips.append(len(data))
            return self.inner.compress(data)

        def flush(self):
            return self.inner.flush()

    monkeypatch.setattr(images.isal_zlib, "compressobj", Counting)
    big = Image.fromarray(np.tile(np.asarray(image), (70, 12, 1)))  # 8400×6300: several strips of 16 MB
    data = images._png(big, None, None)
    assert len(strips) > 1
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(data))), np.asarray(big))
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(whole))), np.asarray(image))


def test_our_png_writer_filters_every_row_with_up():
    image = picture("RGB", seed=5)
    data = images._png(image, None, None)
    start = data.index(b"IDAT") + 4
    length = int.from_bytes(data[start - 8 : start - 4], "big")
    rows = zlib.decompress(data[start : start + length])
    stride = 1 + 3 * image.width
    assert len(rows) == stride * image.height
    assert {rows[i] for i in range(0, len(rows), stride)} == {2}


def test_png_with_transparency_keeps_it_through_pillow():
    image = picture("RGB", seed=4)
    image.info["transparency"] = (1, 2, 3)
    _, back = written(image)
    assert back.info.get("transparency") == (1, 2, 3)


def _mask_files() -> dict[str, bytes]:
    rng = np.random.default_rng(9)
    grey = Image.fromarray(rng.integers(0, 256, (37, 53), dtype=np.uint8))
    files = {}
    for name, image, params in [
        ("grey png", grey, {}),
        ("grey png, rotated by EXIF", grey, {"exif": _orientation(6)}),
        ("grey jpeg", grey, {}),
        ("painted layer", Image.merge("RGBA", [Image.new("L", grey.size, 255)] * 3 + [grey]), {}),
        ("rgb png", Image.merge("RGB", [grey, grey.transpose(Image.Transpose.FLIP_LEFT_RIGHT), grey]), {}),
        ("16-bit png", Image.fromarray(np.asarray(grey).astype(np.uint16) * 257), {}),
    ]:
        out = io.BytesIO()
        image.save(out, "JPEG" if "jpeg" in name else "PNG", **params)
        files[name] = out.getvalue()
    return files


def _orientation(tag: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = tag
    return exif.tobytes()


@pytest.mark.parametrize("name", sorted(_mask_files()))
def test_decode_hole_reads_every_mask_as_the_mask_convention_does(name):
    data = _mask_files()[name]
    hole, size = images.decode_hole(data)
    expected = images.mask_to_hole(images.upright(Image.open(io.BytesIO(data))))
    assert hole.dtype == bool and np.array_equal(hole, expected) and size == expected.shape[::-1]


def test_a_plain_grey_png_mask_is_decoded_into_the_hole_itself(monkeypatch):
    cv2 = pytest.importorskip("cv2")
    decoded = []
    real = cv2.imdecode
    monkeypatch.setattr(cv2, "imdecode", lambda *a: decoded.append(real(*a)) or decoded[-1])
    hole, _ = images.decode_hole(_mask_files()["grey png"])
    assert len(decoded) == 1 and np.shares_memory(hole, decoded[0])  # one full-size buffer, not two
