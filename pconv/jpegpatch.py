"""JPEG results that leave the rest of the photo alone (README, "Images"; docs/architecture.md).

A JPEG is a grid of independently coded blocks. A result is the input's file with only the MCUs (the
16×16 pixels of a 4:2:0 file, 8×8 of a 4:4:4 or greyscale one, …) that touch the hole coded anew, from
the filled pixels, with the input's own quantisation tables and sampling; every other block's
coefficients are copied as they are. Decoded, it gives the input's pixels everywhere else, except on the
one-pixel ring beside a changed block where a decoder smooths chroma across block edges. It stays in the
input's stored orientation (its EXIF tag kept), progressive stays progressive, the restart interval and
every marker (EXIF, ICC, XMP, comments, density) are kept, and the size stays close to the input's.

The block work is libjpeg-turbo's and jpeglib's, each doing what it does fully:

- ``jpegtran`` (libjpeg-turbo's lossless transforms) cuts the rectangle of MCUs around the hole out of the
  input (``-crop``) and drops the patched rectangle back in (``-drop``), writing the input's markers,
  progressive mode and restart interval again; its memory is a child process's, not the worker's.
- ``jpeglib`` hands the rectangle's DCT coefficients over as arrays, so the touched blocks can be swapped
  for those of the same rectangle coded from the filled pixels with the same tables.

jpeglib alone could write the whole file, but not progressive, not a restart interval and not a CMYK
file's fourth component, and it holds every coefficient of the photo twice (docs/architecture.md). Inputs
that cannot be patched (CMYK or RGB-coded files, arithmetic coding, no ``jpegtran`` on the machine) are
encoded whole, with the input's quantisation tables, sampling, progressive mode and metadata.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import numpy as np
from PIL import Image, JpegImagePlugin

from .images import orientation, without_thumbnail

log = logging.getLogger("pconv.jpegpatch")

# EXIF orientation → the transpose that takes an upright image back to how the file stores it
# (the inverse of what ImageOps.exif_transpose applies)
TO_STORED = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}
# ... and the transpose that shows a stored image upright (what ImageOps.exif_transpose applies)
TO_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_SOF_PROGRESSIVE = {0xC2, 0xC6, 0xCA, 0xCE}
_SOF_ARITHMETIC = {0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


@dataclass(frozen=True)
class JpegLayout:
    """What the file's header says about its blocks, read from its markers up to the first scan."""

    width: int
    height: int
    sampling: tuple[tuple[int, int], ...]  # (horizontal, vertical) factors per component
    progressive: bool
    arithmetic: bool
    restart_interval: int  # MCUs between restart markers; 0: none
    adobe_transform: int | None  # APP14's colour transform (0: stored as RGB or CMYK), None: no APP14

    @property
    def mcu(self) -> tuple[int, int]:
        """The MCU's width and height in pixels: the grid every changed block is rounded out to."""
        if len(self.sampling) == 1:  # one component: its blocks are coded one by one, whatever its factors
            return 8, 8
        return 8 * max(h for h, _ in self.sampling), 8 * max(v for _, v in self.sampling)

    @property
    def patchable(self) -> bool:
        """Greyscale and YCbCr files coded with Huffman tables: what both tools take whole."""
        if self.arithmetic:
            return False
        if len(self.sampling) == 1:
            return True
        return len(self.sampling) == 3 and self.adobe_transform != 0


def read_layout(data: bytes) -> JpegLayout | None:
    """The header's facts, or None where the markers do not parse as a JPEG's."""
    if data[:2] != b"\xff\xd8":
        return None
    at, restart, adobe, frame = 2, 0, None, None
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        length = int.from_bytes(data[at + 2 : at + 4], "big")
        body = data[at + 4 : at + 2 + length]
        if marker in _SOF and len(body) >= 6:
            height, width, count = int.from_bytes(body[1:3], "big"), int.from_bytes(body[3:5], "big"), body[5]
            factors = tuple((body[7 + 3 * i] >> 4, body[7 + 3 * i] & 15) for i in range(count)
                            if 8 + 3 * i <= len(body))
            frame = (marker, width, height, factors)
        elif marker == 0xDD and len(body) >= 2:
            restart = int.from_bytes(body[:2], "big")
        elif marker == 0xEE and body[:5] == b"Adobe" and len(body) >= 12:
            adobe = body[11]
        elif marker == 0xDA:
            break
        at += 2 + length
    if frame is None:
        return None
    marker, width, height, factors = frame
    return JpegLayout(width, height, factors, marker in _SOF_PROGRESSIVE, marker in _SOF_ARITHMETIC, restart, adobe)


def jpegtran() -> str | None:
    return shutil.which("jpegtran")


def touched_mcus(hole: np.ndarray, mcu: tuple[int, int]) -> np.ndarray:
    """One flag per MCU of the grid: does any hole pixel fall in it."""
    mcu_w, mcu_h = mcu
    height, width = hole.shape
    rows, cols = -(-height // mcu_h), -(-width // mcu_w)
    padded = np.zeros((rows * mcu_h, cols * mcu_w), bool)
    padded[:height, :width] = hole
    return padded.reshape(rows, mcu_h, cols, mcu_w).any(axis=(1, 3))


Box = tuple[int, int, int, int]  # x0, y0, x1, y1 (x1 and y1 exclusive)


def _stored_point(u: int, v: int, tag: int, width: int, height: int) -> tuple[int, int]:
    """Where a corner of the upright image lies in the stored one (``width``×``height``, as stored)."""
    return {1: (u, v), 2: (width - u, v), 3: (width - u, height - v), 4: (u, height - v), 5: (v, u),
            6: (v, height - u), 7: (width - v, height - u), 8: (width - v, u)}[tag]


def _upright_point(x: int, y: int, tag: int, width: int, height: int) -> tuple[int, int]:
    return {1: (x, y), 2: (width - x, y), 3: (width - x, height - y), 4: (x, height - y), 5: (y, x),
            6: (height - y, x), 7: (height - y, width - x), 8: (y, width - x)}[tag]


def _map_box(box: Box, point, tag: int, width: int, height: int) -> Box:
    (ax, ay), (bx, by) = point(box[0], box[1], tag, width, height), point(box[2], box[3], tag, width, height)
    return min(ax, bx), min(ay, by), max(ax, bx), max(ay, by)


@dataclass(frozen=True)
class Window:
    """Part of a JPEG decoded alone: ``image`` upright, at ``box`` of the upright photo; ``origin`` is its
    top-left corner in the file's stored layout (on the MCU grid)."""

    image: Image.Image
    box: Box
    origin: tuple[int, int]
    cut: bytes = b""  # the rectangle as jpegtran cut it: the patch is cut from it, not from the whole file again


def decode_window(original: bytes, box: Box) -> Window | None:
    """The pixels of ``box`` (upright coordinates) and an MCU around it, decoded from the rectangle of whole MCUs
    that ``jpegtran`` cuts out, without decoding the rest of the photo: a 144-megapixel JPEG with a small hole
    costs the hole's surroundings, not 432 MB. The margin keeps the pixels of ``box`` as a whole decode gives
    them (chroma is smoothed across block edges, and a cut edge has no neighbour). None where the file cannot
    be patched (then nothing is gained: the whole photo is decoded and encoded)."""
    layout, tool = read_layout(original), jpegtran()
    if layout is None or not layout.patchable or tool is None:
        return None
    with Image.open(BytesIO(original)) as source:
        tag = orientation(source)
    mcu_w, mcu_h = layout.mcu
    x0, y0, x1, y1 = _map_box(box, _stored_point, tag, layout.width, layout.height)
    x0, y0 = max(0, (x0 // mcu_w - 1) * mcu_w), max(0, (y0 // mcu_h - 1) * mcu_h)
    x1, y1 = min(layout.width, (-(-x1 // mcu_w) + 1) * mcu_w), min(layout.height, (-(-y1 // mcu_h) + 1) * mcu_h)
    with tempfile.TemporaryDirectory(prefix="sneaky-jpeg-") as folder:
        tmp = Path(folder)
        (tmp / "in.jpg").write_bytes(original)
        _run(tool, "-crop", f"{x1 - x0}x{y1 - y0}+{x0}+{y0}", "-copy", "none", "-outfile", tmp / "window.jpg",
             tmp / "in.jpg")
        cut_bytes = (tmp / "window.jpg").read_bytes()
        with Image.open(BytesIO(cut_bytes)) as cut:
            cut.load()
            image = cut.transpose(TO_UPRIGHT[tag]) if tag in TO_UPRIGHT else cut.copy()
    if image.mode not in ("RGB", "L"):
        return None
    upright = _map_box((x0, y0, x1, y1), _upright_point, tag, layout.width, layout.height)
    return Window(image, upright, (x0, y0), cut_bytes)


def write_jpeg(original: bytes, filled: Image.Image, hole: np.ndarray,
               window: Window | None = None) -> tuple[bytes, bool]:
    """The result of a JPEG job: ``filled`` (upright, the input's pixels outside ``hole``) as the input's
    file with the touched blocks patched, or encoded whole like the input where it cannot be patched.
    Returns the bytes and whether they were patched. ``window``: ``filled`` and ``hole`` are that ``Window``'s
    (then the file is always patched)."""
    with Image.open(BytesIO(original)) as source:
        turn = TO_STORED.get(orientation(source))
        if turn is not None:  # back to the stored layout: the blocks are the file's, and so is the tag
            filled = filled.transpose(turn)
            hole = np.asarray(Image.fromarray(hole.view(np.uint8)).transpose(turn)).astype(bool)
        layout = read_layout(original)
        tool = jpegtran()
        if window is not None:  # a window was cut, so the file can be patched; no whole photo to encode anyway
            if layout is None or tool is None:
                raise ValueError("a window of a JPEG that cannot be patched")
            return _patch(original, layout, filled, hole, tool, window.origin, window.cut), True
        if layout is not None and layout.patchable and tool is not None and filled.mode in ("RGB", "L"):
            try:
                return _patch(original, layout, filled, hole, tool, (0, 0)), True
            except (ImportError, OSError, ValueError, subprocess.CalledProcessError) as exc:
                log.warning("could not patch the JPEG (%s); encoding it whole like the input", exc)
        elif tool is None:
            log.warning("no jpegtran (libjpeg-turbo's tools) on this machine: JPEG results are encoded whole")
        return _encode_like(source, filled), False


def _patch(original: bytes, layout: JpegLayout, filled: Image.Image, hole: np.ndarray, tool: str,
           origin: tuple[int, int], cut: bytes = b"") -> bytes:
    """``filled`` and ``hole`` in the stored layout, their top-left corner at ``origin`` (on the MCU grid); ``cut``:
    the window's own JPEG, whose blocks are the file's from ``origin`` on (a small file to cut the patch from, where
    cutting from the original reads every block of the photo once more)."""
    import jpeglib

    touched = touched_mcus(hole, layout.mcu)
    if not touched.any():
        return original
    rows, cols = np.nonzero(touched)
    r0, r1, c0, c1 = int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1
    mcu_w, mcu_h = layout.mcu
    ox, oy = origin
    x, y = ox + c0 * mcu_w, oy + r0 * mcu_h
    w, h = min(layout.width, ox + c1 * mcu_w) - x, min(layout.height, oy + r1 * mcu_h) - y
    with tempfile.TemporaryDirectory(prefix="sneaky-jpeg-") as folder:
        tmp = Path(folder)
        (tmp / "in.jpg").write_bytes(original)
        # the rectangle of whole MCUs around the hole, its blocks as they are
        if cut:
            (tmp / "cut.jpg").write_bytes(cut)
            _run(tool, "-crop", f"{w}x{h}+{x - ox}+{y - oy}", "-copy", "none", "-outfile", tmp / "kept.jpg",
                 tmp / "cut.jpg")
        else:
            _run(tool, "-crop", f"{w}x{h}+{x}+{y}", "-copy", "none", "-outfile", tmp / "kept.jpg", tmp / "in.jpg")
        kept = jpeglib.read_dct(str(tmp / "kept.jpg"))
        # the same rectangle coded from the filled pixels, with the input's tables and sampling
        pixels = np.asarray(filled.crop((x - ox, y - oy, x - ox + w, y - oy + h)))
        coded = jpeglib.from_spatial(np.ascontiguousarray(pixels if pixels.ndim == 3 else pixels[..., None]))
        coded.samp_factor = kept.samp_factor
        coded.write_spatial(str(tmp / "coded.jpg"), qt=kept.qt, quant_tbl_no=kept.quant_tbl_no)
        fresh = jpeglib.read_dct(str(tmp / "coded.jpg"))
        inside = touched[r0:r1, c0:c1]
        factors = np.asarray(kept.samp_factor).reshape(-1, 2)  # (vertical, horizontal) per component
        for name, (v, h_factor) in zip(("Y", "Cb", "Cr"), factors):
            old, new = getattr(kept, name), getattr(fresh, name)
            if old is None:
                continue
            if new is None or old.shape != new.shape:
                raise ValueError(f"the recoded {name} blocks do not line up ({getattr(new, 'shape', None)} "
                                 f"against {old.shape})")
            if len(factors) > 1:
                blocks = np.repeat(np.repeat(inside, v, axis=0), h_factor, axis=1)
            else:
                blocks = inside
            blocks = blocks[: old.shape[0], : old.shape[1]]
            old[blocks] = new[blocks]
        kept.write_dct(str(tmp / "patch.jpg"))
        # dropped back into the input: every other block, the markers and the coding mode kept
        options = ["-copy", "all", "-optimize"]
        if layout.progressive:
            options.append("-progressive")
        if layout.restart_interval:
            options += ["-restart", f"{layout.restart_interval}B"]
        _run(tool, "-drop", f"+{x}+{y}", tmp / "patch.jpg", *options, "-outfile", tmp / "out.jpg", tmp / "in.jpg")
        return _drop_exif_thumbnail((tmp / "out.jpg").read_bytes())


def _drop_exif_thumbnail(jpeg: bytes) -> bytes:
    """The file with its EXIF segment (APP1) written again without the thumbnail (``without_thumbnail``); the
    rest byte for byte."""
    at = 2
    while at + 4 <= len(jpeg) and jpeg[at] == 0xFF:
        marker, length = jpeg[at + 1], int.from_bytes(jpeg[at + 2 : at + 4], "big")
        if marker == 0xDA:
            break
        body = jpeg[at + 4 : at + 2 + length]
        if marker == 0xE1 and body.startswith(b"Exif\0\0"):
            lean = without_thumbnail(body)
            if lean is body or len(lean) + 2 > 0xFFFF:
                return jpeg
            return jpeg[:at] + b"\xff\xe1" + (len(lean) + 2).to_bytes(2, "big") + lean + jpeg[at + 2 + length :]
        at += 2 + length
    return jpeg


def _run(tool: str, *args: object) -> None:
    subprocess.run([tool, *map(str, args)], check=True, capture_output=True, timeout=600)


def _encode_like(source: Image.Image, filled: Image.Image) -> bytes:
    """The whole photo encoded as the input was: its quantisation tables, chroma sampling, progressive
    mode, EXIF (orientation tag included: ``filled`` is in the stored layout), ICC profile, XMP, comment
    and density."""
    params: dict = {"qtables": [list(table) for _, table in sorted(source.quantization.items())],
                    "optimize": True}
    sampling = JpegImagePlugin.get_sampling(source)
    if sampling >= 0 and filled.mode != "L":
        params["subsampling"] = sampling
    if source.info.get("progressive"):
        params["progressive"] = True
    for key in ("exif", "icc_profile", "xmp", "comment", "dpi"):
        if source.info.get(key):
            params[key] = source.info[key]
    if "exif" in params:
        params["exif"] = without_thumbnail(params["exif"])
    out = BytesIO()
    filled.save(out, "JPEG", **params)
    return out.getvalue()
