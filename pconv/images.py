"""Photo and mask rules shared by every engine (README, "Mask convention"; docs/architecture.md).

Pillow and NumPy (and ISA-L's deflate for PNG): no torch, so the API can use the same rules.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from isal import isal_zlib
from PIL import ExifTags, Image, ImageOps

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
HOLE_THRESHOLD = 128  # grey ≥ 128 is a hole (white = remove)

# Modes that come back in their own mode; anything else comes back as RGB (or RGBA with transparency).
KEPT_MODES = {"RGB", "RGBA", "L", "LA", "CMYK"}
SIXTEEN_BIT = {"I;16", "I;16B", "I;16L", "I;16N"}


class InpaintError(ValueError):
    """A bad input, with the stable code the service reports."""

    code = "invalid_input"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        if code:
            self.code = code


class MaskSizeMismatch(InpaintError):
    code = "mask_size_mismatch"


def without_thumbnail(exif: bytes) -> bytes:
    """EXIF less its thumbnail (IFD1): a small copy of the photo as it was, the removed object still in it, which
    viewers and file browsers show. Every other tag, the Exif and GPS sub-IFDs included, is kept; EXIF without a
    thumbnail, or that cannot be read, is returned as it is."""
    try:
        parsed = Image.Exif()
        parsed.load(exif)
        if not parsed.get_ifd(ExifTags.IFD.IFD1):
            return exif
        return parsed.tobytes()  # Pillow writes IFD0 and its sub-IFDs, never IFD1
    except Exception:
        return exif


def orientation(image: Image.Image) -> int:
    """The EXIF orientation (1 = as stored), read without decoding pixels (Pillow's getexif()
    decodes a PNG whole to look for a trailing eXIf chunk)."""
    try:
        if image.format == "PNG":
            raw = image.info.get("exif")
            if not raw:
                return 1
            exif = Image.Exif()
            exif.load(raw)
            return int(exif.get(0x0112, 1) or 1)
        return int(image.getexif().get(0x0112, 1) or 1)
    except Exception:  # unreadable metadata: treat as stored
        return 1


def upright(image: Image.Image) -> Image.Image:
    """Apply EXIF orientation; the result carries no orientation tag, so it displays the same
    everywhere. Keeps ``info`` (ICC profile and the like). An image already upright is returned
    as it is: no full-size copy."""
    if orientation(image) == 1:
        return image
    info = dict(image.info)
    out = ImageOps.exif_transpose(image)
    for key in ("icc_profile", "transparency", "dpi"):
        if key in info and key not in out.info:
            out.info[key] = info[key]
    return out


def output_mode(image: Image.Image) -> str:
    """The mode the result keeps: the input's for the common modes, RGB(A) otherwise."""
    if image.mode in KEPT_MODES:
        return image.mode
    has_alpha = image.mode in ("PA", "RGBa", "La") or "transparency" in image.info
    return "RGBA" if has_alpha else "RGB"


def mask_to_hole(mask: Image.Image) -> np.ndarray:
    """The boolean hole (True = fill) of a mask image, the README's convention: grey ≥ 128,
    or the alpha channel when the colour channels are uniform (a painted layer)."""
    if mask.mode == "P" and "transparency" in mask.info or mask.mode == "PA":
        mask = mask.convert("RGBA")
    if mask.mode in ("RGBA", "LA", "RGBa", "La"):
        bands = np.asarray(mask)
        colour, alpha = bands[..., :-1], bands[..., -1]
        if colour.size == 0 or (colour == colour[0, 0]).all():
            return alpha >= HOLE_THRESHOLD
        return np.asarray(mask.convert("L")) >= HOLE_THRESHOLD
    if mask.mode in SIXTEEN_BIT:
        return np.asarray(mask.convert("I")) >= HOLE_THRESHOLD * 257
    if mask.mode != "L":
        mask = mask.convert("L")
    # in strips: a 144-megapixel mask never has a full-size grey copy beside the full-size hole
    width, height = mask.size
    hole = np.empty((height, width), bool)
    step = max(1, (1 << 24) // max(1, width))
    for top in range(0, height, step):
        strip = mask.crop((0, top, width, min(height, top + step)))
        np.greater_equal(np.asarray(strip), HOLE_THRESHOLD, out=hole[top : top + strip.height])
    return hole


def decode_hole(data: bytes) -> tuple[np.ndarray, tuple[int, int]]:
    """A mask file's hole (``mask_to_hole`` of the upright mask) and the upright mask's size. A plain 8-bit grey
    PNG, the usual mask, is decoded by OpenCV straight into the array that becomes the hole: one full-size
    buffer, where Pillow's decode and the hole would be two (a 144-megapixel mask: 144 MB, not 288)."""
    opened = Image.open(io.BytesIO(data))
    if opened.format == "PNG" and opened.mode == "L" and "transparency" not in opened.info \
            and orientation(opened) == 1:
        try:
            import cv2
        except ImportError:
            cv2 = None
        if cv2 is not None:
            grey = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
            if grey is not None and grey.shape == (opened.height, opened.width):
                hole = grey.view(np.bool_)
                np.greater_equal(grey, HOLE_THRESHOLD, out=hole)  # in place: same element, same place
                return hole, opened.size
    opened.load()
    mask = upright(opened)
    return mask_to_hole(mask), mask.size


MAX_GROW = 64


def grow_hole(hole: np.ndarray, pixels: int) -> np.ndarray:
    """The hole dilated by ``pixels`` (a disc): a painted object's soft edge and shadow, just outside the
    strokes, are filled too instead of bleeding back into the fill. Only the hole's bounding box (and the
    margin) is worked on, so a small hole in a huge photo stays cheap."""
    if pixels <= 0 or not hole.any():
        return hole
    import cv2  # here: the API imports this module for header checks and never grows a hole

    rows, cols = np.flatnonzero(hole.any(1)), np.flatnonzero(hole.any(0))
    y0, y1 = max(0, rows[0] - pixels), min(hole.shape[0], rows[-1] + pixels + 1)
    x0, x1 = max(0, cols[0] - pixels), min(hole.shape[1], cols[-1] + pixels + 1)
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * pixels + 1, 2 * pixels + 1))
    grown = hole.copy()
    grown[y0:y1, x0:x1] = cv2.dilate(hole[y0:y1, x0:x1].view(np.uint8), disc).view(bool)
    return grown


def check_mask_size(image_size: tuple[int, int], mask_size: tuple[int, int]) -> None:
    if image_size != mask_size:
        raise MaskSizeMismatch(
            f"mask is {mask_size[0]}×{mask_size[1]} but the photo is {image_size[0]}×{image_size[1]} "
            "(after EXIF orientation); they must match"
        )


FORMATS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp"}
_SUFFIX_FORMAT = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP"}


def format_for_path(path: str) -> str:
    for suffix, fmt in _SUFFIX_FORMAT.items():
        if str(path).lower().endswith(suffix):
            return fmt
    raise InpaintError(f"cannot tell the output format from {path!r}: use .jpg, .png or .webp", "unsupported_format")


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = isal_zlib.crc32(data, isal_zlib.crc32(kind))  # not crc32(kind + data): no copy of a large IDAT
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def _png(image: Image.Image, icc: bytes | None, exif: bytes | None) -> bytes:
    """An 8-bit L, RGB or RGBA image as PNG, written here: every row through the Up filter (one vectorised
    subtraction) and deflated by ISA-L at level 1. 0.30× the CPU of libpng with the Paeth filter and zlib's
    run-length deflate, for about 6 % more bytes on photos (docs/benchmarks.md, "PNG encoding"): zlib's
    deflate, not the filtering, was the cost. Rows go through in strips of about 16 MB, so a huge photo has
    no full-size copy beside it. The ICC profile and EXIF go in as the chunks Pillow writes."""
    width, height = image.size
    channels = len(image.getbands())
    step = max(1, (1 << 24) // (width * channels))
    deflate = isal_zlib.compressobj(1) if step < height else None  # one strip: the one-call form, 1 ms less
    parts, above = [], None
    for top in range(0, height, step):
        strip = image if step >= height else image.crop((0, top, width, min(height, top + step)))
        rows = np.asarray(strip).reshape(strip.height, width * channels)
        filtered = np.empty((strip.height, 1 + width * channels), np.uint8)
        filtered[:, 0] = 2  # Up: each byte minus the one above it (the first row's "above" is zero)
        if above is None:
            filtered[0, 1:] = rows[0]
        else:
            np.subtract(rows[0], above, out=filtered[0, 1:])
        np.subtract(rows[1:], rows[:-1], out=filtered[1:, 1:])
        if deflate is None:
            parts.append(isal_zlib.compress(filtered.data, 1))
            break
        parts.append(deflate.compress(filtered.data))
        above = rows[-1].copy()
    if deflate is not None:
        parts.append(deflate.flush())
    colour_type = {1: 0, 3: 2, 4: 6}[channels]
    chunks = [_png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0))]
    if icc:
        chunks.append(_png_chunk(b"iCCP", b"ICC Profile\0\0" + zlib.compress(icc)))
    if exif:
        chunks.append(_png_chunk(b"eXIf", exif[6:] if exif.startswith(b"Exif\0\0") else exif))
    chunks += [_png_chunk(b"IDAT", b"".join(parts)), _png_chunk(b"IEND", b"")]
    return PNG_SIGNATURE + b"".join(chunks)


def encode(image: Image.Image, fp, fmt: str, quality: int | None = None, lossless: bool = False) -> None:
    """Write ``image`` as JPEG, PNG or WebP, keeping its ICC profile and EXIF (orientation
    already applied). Modes the format cannot hold are refused rather than silently changed.
    ``quality`` (JPEG and WebP; default 95) and ``lossless`` (WebP) as the job asked (pconv/results.py)."""
    fmt = fmt.upper()
    params: dict = {}
    for key in ("icc_profile", "exif"):
        if image.info.get(key):
            params[key] = image.info[key]
    if "exif" in params:
        params["exif"] = without_thumbnail(params["exif"])
    if fmt == "JPEG":
        if image.mode not in ("RGB", "L", "CMYK"):
            raise InpaintError(f"JPEG cannot hold a {image.mode} image; write PNG or WebP", "unsupported_format")
        quality = quality or 95
        params.update(quality=quality, subsampling=0 if quality >= 90 else 2)
    elif fmt == "PNG":
        if image.mode in ("L", "RGB", "RGBA") and "transparency" not in image.info:
            fp.write(_png(image, params.get("icc_profile"), params.get("exif")))
            return
        # run-length deflate: on photos 4 % larger than level 3 at two thirds of its CPU, on flat graphics
        # smaller (docs/benchmarks.md, "PNG encoding")
        params.update(compress_level=1, compress_type=zlib.Z_RLE)
        if "transparency" in image.info and image.mode in ("L", "RGB", "P"):
            params["transparency"] = image.info["transparency"]
    elif fmt == "WEBP":
        if image.mode not in ("RGB", "RGBA"):
            image = image.convert("RGBA" if "A" in image.mode else "RGB")
        if lossless:  # exact: the colour under transparent pixels is kept too: nothing outside the hole changes
            params.update(lossless=True, exact=True, quality=100, method=1)
        else:
            params.update(quality=quality or 95, method=4)
    else:
        raise InpaintError(f"unsupported output format {fmt}", "unsupported_format")
    image.save(fp, format=fmt, **params)
