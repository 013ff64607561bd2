"""JPEG results patched in the DCT domain (pconv/jpegpatch.py): outside the MCUs that touch the hole (and
the one-pixel ring where chroma is smoothed across a changed block's edge) every decoded pixel is the
input's; tables, sampling, progressive mode, restart interval, orientation and metadata survive."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageCms, ImageDraw, ImageOps, JpegImagePlugin

from pconv import jpegpatch
from pconv.jpegpatch import read_layout, write_jpeg
from tests.helpers import assert_only_the_patch_changed

pytestmark = pytest.mark.skipif(jpegpatch.jpegtran() is None, reason="jpegtran (libjpeg-turbo-progs) missing")

SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF/></x:xmpmeta>'
GREEN = (40, 220, 60)


def scene(width: int, height: int, seed: int = 0) -> Image.Image:
    """Something that codes like a photo: gradients, edges and a little grain."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 // max(1, width - 1), y * 255 // max(1, height - 1),
                     (x + y) * 127 // max(1, width + height)], axis=-1).astype(np.int16)
    base += rng.integers(-12, 13, base.shape, dtype=np.int16)
    image = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    draw.ellipse((width // 5, height // 6, width // 2, height // 2), fill=(200, 40, 50))
    draw.rectangle((width // 2, height // 2, width - 10, height - 8), fill=(30, 30, 90))
    return image


def encoded(image: Image.Image, orientation: int = 1, **options) -> bytes:
    exif = Image.Exif()
    exif[0x0131] = "sneaky test"
    exif[0x0112] = orientation
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif.tobytes(), icc_profile=SRGB, xmp=XMP, comment=b"kept", dpi=(240, 240),
               **options)
    return out.getvalue()


def fill(original: bytes, hole_upright: np.ndarray) -> Image.Image:
    """What the worker hands over: the upright input, its hole painted one colour."""
    upright = ImageOps.exif_transpose(Image.open(io.BytesIO(original)))
    pixels = np.array(upright)
    pixels[hole_upright] = GREEN if pixels.ndim == 3 else 140
    return Image.fromarray(pixels)


def check_patched(original: bytes, result: bytes, hole_stored: np.ndarray) -> None:
    """Only the patch changed (tests/helpers.py), and inside a hole of some size the result carries the fill."""
    assert_only_the_patch_changed(original, result, hole_stored)
    # the hole's inside, away from its edge: a thin stroke's colour is blurred by chroma subsampling
    core = cv2.erode(hole_stored.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    if core.sum() < 50:
        return
    before = np.asarray(Image.open(io.BytesIO(original)))
    after = np.asarray(Image.open(io.BytesIO(result)))
    target = np.array(GREEN if after.ndim == 3 else 140)
    distance_after = np.abs(after[core].astype(int) - target).mean()
    distance_before = np.abs(before[core].astype(int) - target).mean()
    assert distance_after < distance_before / 3, (distance_after, distance_before)


def box_hole(shape: tuple[int, int], box: tuple[int, int, int, int]) -> np.ndarray:
    hole = np.zeros(shape, bool)
    x0, y0, x1, y1 = box
    hole[y0:y1, x0:x1] = True
    return hole


ENCODINGS = {
    "baseline 4:2:0 q85": dict(quality=85, subsampling=2),
    "progressive 4:2:0 q85": dict(quality=85, subsampling=2, progressive=True),
    "baseline 4:2:2 q80": dict(quality=80, subsampling=1),
    "progressive 4:4:4 q92 optimized": dict(quality=92, subsampling=0, progressive=True, optimize=True),
    "restart markers every 2 MCU rows": dict(quality=88, restart_marker_rows=2),
}


@pytest.mark.parametrize("name", ENCODINGS)
@pytest.mark.parametrize("size", [(320, 240), (203, 151)])  # on the block grid, and off it
def test_only_the_blocks_touching_the_hole_change(name, size):
    width, height = size
    original = encoded(scene(width, height), **ENCODINGS[name])
    assert (read_layout(original).restart_interval > 0) == ("restart" in name)
    hole = box_hole((height, width), (width // 3, height // 3, width // 3 + 37, height // 3 + 21))
    result, patched = write_jpeg(original, fill(original, hole), hole)
    assert patched
    check_patched(original, result, hole)
    before, after = Image.open(io.BytesIO(original)), Image.open(io.BytesIO(result))
    assert after.quantization == before.quantization
    assert JpegImagePlugin.get_sampling(after) == JpegImagePlugin.get_sampling(before)
    assert bool(after.info.get("progressive")) == bool(before.info.get("progressive"))
    assert read_layout(result).restart_interval == read_layout(original).restart_interval
    for key in ("exif", "icc_profile", "xmp", "comment", "dpi"):
        assert after.info.get(key) == before.info.get(key), key
    assert 0.9 <= len(result) / len(original) <= 1.1


def test_a_hole_at_the_far_corner_of_an_odd_sized_photo():
    original = encoded(scene(203, 151, seed=2), quality=85)
    hole = box_hole((151, 203), (190, 140, 203, 151))  # the partial MCUs at the right and bottom edges
    result, patched = write_jpeg(original, fill(original, hole), hole)
    assert patched
    check_patched(original, result, hole)


def test_greyscale():
    original = encoded(scene(160, 120).convert("L"), quality=90)
    hole = box_hole((120, 160), (50, 40, 90, 70))
    result, patched = write_jpeg(original, fill(original, hole), hole)
    assert patched and Image.open(io.BytesIO(result)).mode == "L"
    check_patched(original, result, hole)


@pytest.mark.parametrize("tag", range(1, 9))
def test_a_rotated_file_keeps_its_stored_layout_and_tag(tag):
    stored = scene(240, 160, seed=tag)
    original = encoded(stored, orientation=tag, quality=85)
    upright = ImageOps.exif_transpose(Image.open(io.BytesIO(original)))
    hole_upright = box_hole((upright.height, upright.width), (30, 20, 75, 50))  # the mask is given upright
    result, patched = write_jpeg(original, fill(original, hole_upright), hole_upright)
    assert patched
    out = Image.open(io.BytesIO(result))
    assert out.size == stored.size and out.getexif()[0x0112] == tag
    turn = jpegpatch.TO_STORED.get(tag)
    hole_stored = hole_upright if turn is None else np.asarray(
        Image.fromarray(hole_upright.view(np.uint8)).transpose(turn)).astype(bool)
    check_patched(original, result, hole_stored)
    # seen upright, the fill is where the mask was painted
    seen = np.asarray(ImageOps.exif_transpose(out))
    assert np.abs(seen[hole_upright].astype(int) - GREEN).mean() < 20


def test_no_hole_gives_the_input_back_byte_for_byte():
    original = encoded(scene(64, 64), quality=85)
    hole = np.zeros((64, 64), bool)
    assert write_jpeg(original, fill(original, hole), hole) == (original, True)


def test_without_jpegtran_the_photo_is_encoded_whole_like_the_input(monkeypatch):
    monkeypatch.setattr(jpegpatch, "jpegtran", lambda: None)
    original = encoded(scene(200, 120), orientation=6, quality=80, subsampling=1, progressive=True)
    upright = ImageOps.exif_transpose(Image.open(io.BytesIO(original)))
    hole = box_hole((upright.height, upright.width), (10, 10, 40, 40))
    result, patched = write_jpeg(original, fill(original, hole), hole)
    assert not patched
    before, after = Image.open(io.BytesIO(original)), Image.open(io.BytesIO(result))
    assert after.quantization == before.quantization and after.size == before.size
    assert JpegImagePlugin.get_sampling(after) == JpegImagePlugin.get_sampling(before)
    assert after.info.get("progressive") and after.getexif()[0x0112] == 6
    for key in ("icc_profile", "xmp", "comment", "dpi"):
        assert after.info.get(key) == before.info.get(key), key


def test_cmyk_is_encoded_whole_with_its_own_tables():
    original = encoded(scene(96, 64).convert("CMYK"), quality=85)
    hole = box_hole((64, 96), (10, 10, 30, 30))
    filled = Image.open(io.BytesIO(original))
    filled.load()
    result, patched = write_jpeg(original, filled, hole)
    assert not patched
    after = Image.open(io.BytesIO(result))
    assert after.mode == "CMYK" and after.quantization == Image.open(io.BytesIO(original)).quantization


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(x=st.integers(0, 150), y=st.integers(0, 100), w=st.integers(1, 60), h=st.integers(1, 60),
       progressive=st.booleans(), subsampling=st.sampled_from([0, 1, 2]))
def test_any_hole_changes_nothing_outside_its_blocks(x, y, w, h, progressive, subsampling):
    original = encoded(scene(181, 131, seed=7), quality=85, subsampling=subsampling, progressive=progressive)
    hole = box_hole((131, 181), (x, y, min(181, x + w), min(131, y + h)))
    result, patched = write_jpeg(original, fill(original, hole), hole)
    assert patched
    check_patched(original, result, hole)


@pytest.mark.parametrize("tag", range(1, 9))
def test_a_window_decoded_alone_gives_the_same_file_as_the_whole_photo(tag):
    """The worker decodes only the MCUs around a large photo's hole (``decode_window``): the fill reads the
    same pixels, and the patched file is byte for byte the one a whole decode gives."""
    from pconv.inpaint import Inpainter

    original = encoded(scene(400, 304, seed=tag), orientation=tag, quality=85)
    upright = ImageOps.exif_transpose(Image.open(io.BytesIO(original)))
    hole = box_hole((upright.height, upright.width), (150, 100, 190, 130))
    telea = Inpainter.load("telea")
    plan = telea.plan(hole)
    [whole] = telea.inpaint_many([(upright, plan)])
    expected, _ = write_jpeg(original, whole, plan.hole())
    window = jpegpatch.decode_window(original, plan.bounds())
    assert window is not None and window.image.size == (window.box[2] - window.box[0], window.box[3] - window.box[1])
    assert window.image.width * window.image.height < upright.width * upright.height / 2
    inside = plan.within(window.box)
    [part] = telea.inpaint_many([(window.image, inside)])
    result, patched = write_jpeg(original, part, inside.hole(), window)
    assert patched and result == expected


def exif_with_thumbnail(thumbnail: bytes, tag: int) -> bytes:
    """EXIF as cameras write it: IFD0 (Orientation, Make) and IFD1 pointing at a JPEG thumbnail."""
    import struct

    ifd0 = struct.pack("<H", 2) + struct.pack("<HHIHH", 0x0112, 3, 1, tag, 0) + struct.pack("<HHI4s", 0x010F, 2, 4,
                                                                                           b"cam\0")
    ifd1_at = 8 + len(ifd0) + 4
    thumb_at = ifd1_at + 2 + 2 * 12 + 4
    ifd1 = (struct.pack("<H", 2) + struct.pack("<HHII", 0x0201, 4, 1, thumb_at)
            + struct.pack("<HHII", 0x0202, 4, 1, len(thumbnail)) + struct.pack("<I", 0))
    return b"Exif\0\0II*\0" + struct.pack("<I", 8) + ifd0 + struct.pack("<I", ifd1_at) + ifd1 + thumbnail


@pytest.mark.parametrize("jpegtran_there", [True, False])
def test_results_drop_the_exif_thumbnail_where_the_object_still_shows(monkeypatch, jpegtran_there):
    from pconv.images import encode

    small = io.BytesIO()
    scene(32, 24, seed=4).save(small, "JPEG", quality=70)
    thumbnail = small.getvalue()
    out = io.BytesIO()
    scene(240, 160, seed=4).save(out, "JPEG", quality=85, exif=exif_with_thumbnail(thumbnail, 6))
    original = out.getvalue()
    assert thumbnail in original
    if not jpegtran_there:  # encoded whole, like the input
        monkeypatch.setattr(jpegpatch, "jpegtran", lambda: None)
    upright = ImageOps.exif_transpose(Image.open(io.BytesIO(original)))
    hole = box_hole((upright.height, upright.width), (20, 30, 60, 70))
    result, patched = write_jpeg(original, fill(original, hole), hole)
    assert patched is jpegtran_there and thumbnail not in result
    exif = Image.open(io.BytesIO(result)).getexif()
    assert exif[0x0112] == 6 and exif[0x010F] == "cam"  # every other tag kept
    if jpegtran_there:
        hole_stored = np.asarray(Image.fromarray(hole.view(np.uint8)).transpose(jpegpatch.TO_STORED[6])).astype(bool)
        check_patched(original, result, hole_stored)
    converted = fill(original, hole)
    converted.info["exif"] = exif_with_thumbnail(thumbnail, 1)  # as a decoded JPEG carries it
    as_png = io.BytesIO()
    encode(converted, as_png, "PNG")  # another format: no thumbnail either
    assert thumbnail not in as_png.getvalue() and Image.open(as_png).getexif()[0x010F] == "cam"
