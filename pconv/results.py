"""How a result is written: the format a job asks for (``output``) and the bytes (README, "Images").

``same`` (the default) answers in the photo's own format, as close to the input as the format allows: a
JPEG patched only where the hole is (pconv/jpegpatch.py), a lossless WebP as lossless WebP, PNG as PNG;
``png``, ``jpeg`` and ``webp`` convert, ``quality`` (1–100) choosing the JPEG or lossy WebP quality.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from io import BytesIO
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from .images import InpaintError, encode

if TYPE_CHECKING:
    from .jpegpatch import Window

OUTPUTS = {"same": None, "png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}
QUALITY_OUTPUTS = ("jpeg", "webp")
ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")


@dataclass(frozen=True)
class Written:
    data: bytes
    format: str  # JPEG, PNG or WEBP
    patched: bool = False  # a JPEG with only the blocks at the hole coded anew


def check_output(output: str, quality: int | None, mode: str | None = None) -> None:
    """What a job may ask for, known at submission from the photo's header (``mode``; None: the options alone,
    as a batch's are checked before its items)."""
    if output not in OUTPUTS:
        raise InpaintError(f"output must be one of {', '.join(OUTPUTS)}", "invalid_field")
    if quality is not None and output not in QUALITY_OUTPUTS:
        raise InpaintError("quality applies to output jpeg or webp only", "invalid_field")
    if output == "jpeg" and mode in ALPHA_MODES:
        raise InpaintError(f"a {mode} photo has transparency, which JPEG cannot hold: ask for png or webp",
                           "invalid_field")


def result_format(source_format: str, output: str) -> str:
    return OUTPUTS.get(output) or source_format


def output_for(source_format: str, wanted_format: str, quality: int | None = None) -> str:
    """The ``output`` that writes ``wanted_format`` (a file name's format): ``same`` where it is the photo's own
    and no quality is asked for (a quality means encoding anew, in that format)."""
    if wanted_format == source_format and quality is None:
        return "same"
    return next(name for name, fmt in OUTPUTS.items() if fmt == wanted_format)


def is_lossless_webp(data: bytes) -> bool:
    """A WebP coded losslessly: its image chunk (after any VP8X, ICC or metadata chunks) is VP8L."""
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        return False
    at = 12
    while at + 8 <= len(data):
        kind, size = data[at : at + 4], int.from_bytes(data[at + 4 : at + 8], "little")
        if kind in (b"VP8L", b"VP8 ", b"ANMF"):
            return kind == b"VP8L"
        at += 8 + size + (size & 1)
    return False


def patches(source_format: str, output: str, quality: int | None) -> bool:
    """Whether the result is the input's file patched where the hole is: a JPEG kept as JPEG, no quality asked."""
    return source_format == "JPEG" and result_format(source_format, output) == "JPEG" and quality is None


def write_result(original: bytes, source_format: str, result: Image.Image, hole: Callable[[], np.ndarray],
                 output: str = "same", quality: int | None = None, window: Window | None = None) -> Written:
    """``result`` (upright, the input's pixels outside the hole) in the format ``output`` asks for. ``hole()``
    gives the upright hole, asked for only where a JPEG is patched. ``window``: ``result`` is that window of the
    photo (``pconv.jpegpatch.decode_window``)."""
    fmt = result_format(source_format, output)
    if patches(source_format, output, quality):
        from .jpegpatch import write_jpeg

        data, patched = write_jpeg(original, result, hole(), window)
        return Written(data, fmt, patched)
    lossless = fmt == "WEBP" and quality is None and (
        source_format == "PNG" or (source_format == "WEBP" and is_lossless_webp(original)))
    out = BytesIO()
    encode(result, out, fmt, quality=quality, lossless=lossless)
    return Written(out.getvalue(), fmt)
