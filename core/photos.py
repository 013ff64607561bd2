"""Checks on uploaded photos and masks that read headers only: the API never decodes pixels.

Format by content, pixel count before any decoding (a decompression bomb costs nothing),
a cheap structural check for truncation, the size after EXIF orientation.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from pconv.images import InpaintError, check_mask_size, orientation

from .errors import SneakyError, translate

ACCEPTED_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
EXTENSIONS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp"}
# EXIF orientations that swap width and height
TRANSPOSING = {5, 6, 7, 8}


@dataclass(frozen=True)
class PhotoInfo:
    format: str
    width: int  # after EXIF orientation
    height: int
    mode: str

    @property
    def content_type(self) -> str:
        return ACCEPTED_FORMATS[self.format]

    def as_input(self) -> dict:
        return {"width": self.width, "height": self.height, "format": self.format}


HEADER_BYTES = 256 * 1024  # enough for the header and EXIF of any photo we accept


def inspect(data: bytes, max_pixels: int, what: str = "image", complete: bool = True) -> PhotoInfo:
    """Identify a photo or mask from its bytes without decoding pixels; raise SneakyError
    with a stable code when it cannot be accepted. ``complete=False``: ``data`` is only the
    file's beginning, so truncation cannot be checked (the worker finds it)."""
    if not data:
        raise SneakyError(f"the {what} is empty", "invalid_image")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data))
        except Image.DecompressionBombError:
            raise SneakyError(f"the {what} has more pixels than allowed ({max_pixels:,})", "too_many_pixels") from None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
            raise SneakyError(f"the {what} is not an image Sneaky can read", "invalid_image") from None
    if image.format not in ACCEPTED_FORMATS:
        raise SneakyError(
            f"the {what} is {image.format}; accepted formats are JPEG, PNG and WebP", "unsupported_format"
        )
    width, height = image.size
    if width * height > max_pixels:
        raise SneakyError(
            f"the {what} is {width}×{height} = {width * height:,} pixels, more than the {max_pixels:,} allowed",
            "too_many_pixels",
        )
    if complete:
        _check_complete(data, image.format, what)
    if orientation(image) in TRANSPOSING:
        width, height = height, width
    return PhotoInfo(image.format, width, height, image.mode)


def _check_complete(data: bytes, fmt: str, what: str) -> None:
    truncated = SneakyError(f"the {what} is truncated or damaged", "invalid_image")
    if fmt == "PNG":
        try:
            Image.open(io.BytesIO(data)).verify()  # walks the chunks and their CRCs, decodes nothing
        except Exception:
            raise truncated from None
    elif fmt == "JPEG":
        tail = data.rstrip(b"\0\r\n ")
        if not tail.endswith(b"\xff\xd9") and b"\xff\xd9" not in tail[-4096:]:
            raise truncated
    elif fmt == "WEBP":
        if len(data) < 12 or int.from_bytes(data[4:8], "little") + 8 > len(data):
            raise truncated


def check_decodes(data: bytes, fmt: str, what: str = "image") -> None:
    """JPEG entropy data that ends early (a truncated file with an end marker added) decodes in Pillow
    as grey rows without a word; libjpeg-turbo in strict mode says so. PNG and WebP decoders already
    raise on the same damage, when the photo is decoded."""
    if fmt != "JPEG":
        return
    import simplejpeg

    try:
        simplejpeg.decode_jpeg(data, colorspace="GRAY", strict=True)
    except ValueError as exc:
        raise SneakyError(f"the {what} is damaged: {exc}", "invalid_image") from None


def inspect_pair(image: bytes, mask: bytes, max_pixels: int) -> tuple[PhotoInfo, PhotoInfo]:
    photo = inspect(image, max_pixels, "image")
    mask_info = inspect(mask, max_pixels, "mask")
    check_same_size(photo, mask_info)
    return photo, mask_info


def check_same_size(photo: PhotoInfo, mask: PhotoInfo) -> None:
    """pconv's rule (sizes after EXIF orientation), with the service's error."""
    try:
        check_mask_size((photo.width, photo.height), (mask.width, mask.height))
    except InpaintError as exc:
        raise translate(exc) from None
