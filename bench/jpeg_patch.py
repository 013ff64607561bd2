"""JPEG results: the file patched where the hole is (pconv/jpegpatch.py) against encoding the whole photo anew
as results were written before (quality 95, 4:4:4), on evaluation photos with an object-shaped hole, filled by
Telea. One run, one table, and a difference image of the first photo (docs/images/jpeg-patch.png).

    python bench/jpeg_patch.py [--photos 8] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pconv.images import encode  # noqa: E402
from pconv.inpaint import Inpainter  # noqa: E402
from pconv.jpegpatch import read_layout, touched_mcus, write_jpeg  # noqa: E402
from pconv.masks import object_shape  # noqa: E402
from pconv.report import machine_description, write_section  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ROOT.parent / "shared" / "datasets" / "photos" / "eval"


def whole(filled: Image.Image) -> bytes:
    out = io.BytesIO()
    encode(filled, out, "JPEG")  # quality 95, 4:4:4: what every JPEG result was before the patch
    return out.getvalue()


def changed_outside(original: bytes, result: bytes, hole: np.ndarray) -> tuple[float, int]:
    """Share of the pixels outside the hole that differ, and the largest difference there."""
    before = np.asarray(Image.open(io.BytesIO(original)).convert("RGB")).astype(int)
    after = np.asarray(Image.open(io.BytesIO(result)).convert("RGB")).astype(int)
    diff = np.abs(after - before).max(axis=-1)
    outside = diff[~hole]
    return float(np.mean(outside > 0)), int(outside.max())


def changed_beyond_patch(original: bytes, result: bytes, hole: np.ndarray) -> int:
    """Pixels that differ outside the MCUs touching the hole and the one-pixel ring around them: 0 is the promise."""
    layout = read_layout(original)
    mcu_w, mcu_h = layout.mcu
    touched = touched_mcus(hole, layout.mcu)
    blocks = np.repeat(np.repeat(touched, mcu_h, 0), mcu_w, 1)[: hole.shape[0], : hole.shape[1]]
    ring = cv2.dilate(blocks.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    before = np.asarray(Image.open(io.BytesIO(original)).convert("RGB"))
    after = np.asarray(Image.open(io.BytesIO(result)).convert("RGB"))
    return int((np.any(before != after, axis=-1) & ~ring).sum())


def difference_image(original: bytes, results: dict[str, bytes], hole: np.ndarray, path: Path) -> None:
    """The photo with its hole outlined, then each result's difference from the input (×32, white = changed)."""
    photo = Image.open(io.BytesIO(original)).convert("RGB")
    before = np.asarray(photo).astype(int)
    outline = Image.fromarray((hole * 255).astype(np.uint8))
    shown = photo.copy()
    shown.paste((255, 0, 255), mask=outline.point(lambda v: 110 if v else 0))
    tiles = [("photo and hole", shown)]
    for name, data in results.items():
        after = np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(int)
        diff = np.clip(np.abs(after - before).max(axis=-1) * 32, 0, 255).astype(np.uint8)
        tiles.append((name, Image.fromarray(diff)))
    width, height = photo.size
    sheet = Image.new("RGB", (len(tiles) * (width + 10) - 10, height + 24), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (title, tile) in enumerate(tiles):
        sheet.paste(tile.convert("RGB"), (i * (width + 10), 24))
        draw.text((i * (width + 10) + 4, 6), title, fill="black")
    path.parent.mkdir(parents=True, exist_ok=True)
    # 256 colours: the difference tiles are grey levels, the photo tile loses little; a third of the bytes
    sheet.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(path, optimize=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--photos", type=int, default=8)
    p.add_argument("--write")
    p.add_argument("--image", default=str(ROOT / "docs" / "images" / "jpeg-patch.png"))
    args = p.parse_args(argv)
    files = sorted(PHOTOS.glob("*.jpg"))[: args.photos]
    if not files:
        raise SystemExit(f"no evaluation photos in {PHOTOS}")
    telea = Inpainter.load("telea")
    rng = np.random.default_rng(0)
    rows = ["| photo | size | pixels changed outside the hole: whole / patched | largest change there: whole / "
            "patched | patched: changed beyond its blocks | file size against the input's: whole / patched | "
            "CPU ms: whole / patched |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for n, file in enumerate(files):
        original = file.read_bytes()
        photo = ImageOps.exif_transpose(Image.open(io.BytesIO(original)))
        hole = object_shape(photo.height, photo.width, rng, area=float(rng.uniform(0.02, 0.08)))
        filled = telea.inpaint_hole(photo, hole)
        start = time.process_time()
        before = whole(filled)
        whole_ms = 1000 * (time.process_time() - start)
        start = time.process_time()
        patched, ok = write_jpeg(original, filled, hole)
        patch_ms = 1000 * (time.process_time() - start)
        assert ok, f"{file.name} was not patched"
        share_whole, max_whole = changed_outside(original, before, hole)
        share_patch, max_patch = changed_outside(original, patched, hole)
        rows.append(f"| {file.name} | {photo.width}×{photo.height} | {100 * share_whole:.1f} % / "
                    f"{100 * share_patch:.2f} % | {max_whole} / {max_patch} | "
                    f"{changed_beyond_patch(original, patched, hole)} | "
                    f"{len(before) / len(original):.2f}× / "
                    f"{len(patched) / len(original):.3f}× | {whole_ms:.0f} / {patch_ms:.0f} |")
        if n == 0:
            shown = {"encoded whole (before), difference x32": before, "patched (now), difference x32": patched}
            difference_image(original, shown, hole, Path(args.image))
    text = "\n".join(rows)
    print(text)
    if args.write:
        body = (f"{machine_description()}; evaluation photos as they are (baseline JPEGs, 4:2:0), one object-shaped "
                "hole of 2–8 % each, filled by Telea. *Whole*: the photo encoded anew as every JPEG result was "
                "before (quality 95, 4:4:4); *patched*: `pconv/jpegpatch.py`. CPU is this process's only (the "
                "patch's `jpegtran` runs are child processes: add about 10 ms each). The pixels a patch changes "
                "outside the hole lie in the MCUs the hole touches (it is rounded out to 16×16 squares) and on "
                "the ring beside them; beyond those, none.\n\n"
                f"{text}\n\n![the first photo's differences from its input, ×32](images/jpeg-patch.png)\n\n"
                "Left: the photo and its hole; then each result's difference from the input, ×32. Encoded "
                "whole, the whole photo changes; patched, only the MCUs that touch the hole (and the "
                "one-pixel ring where the decoder smooths chroma across their edges).")
        write_section(Path(args.write), "JPEG results: patched, not re-encoded", body,
                      "python bench/jpeg_patch.py --write docs/benchmarks.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
