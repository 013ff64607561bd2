"""Writing results (pconv/images.py, ``encode``): PNG through OpenCV where it can, Pillow otherwise; the
pixels, the ICC profile and EXIF survive either way."""

import io
import sys

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


def test_png_by_opencv_writes_the_same_image_pillow_would_read(monkeypatch):
    image = picture("RGB", seed=3)
    by_opencv, back = written(image)
    monkeypatch.setitem(sys.modules, "cv2", None)  # as on the API image: no OpenCV
    by_pillow, back_pillow = written(image)
    assert by_opencv != by_pillow  # two encoders ...
    assert np.array_equal(np.asarray(back), np.asarray(back_pillow))  # ... one image
    assert images._png_by_opencv(image, None, None) is None


def test_png_with_transparency_keeps_it_through_pillow():
    image = picture("RGB", seed=4)
    image.info["transparency"] = (1, 2, 3)
    _, back = written(image)
    assert back.info.get("transparency") == (1, 2, 3)
