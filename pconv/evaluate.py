"""Evaluate engines on a folder of photos: ``python -m pconv.evaluate --photos DIR``.

Every photo gets one seeded mask per bucket of each mask family: random strokes (free-form, hole ratio
(0.01–0.1] … (0.5–0.6]) and objects (one filled blob, polygon, rectangle or figure of (0.02–0.05],
(0.05–0.1], (0.1–0.2]: what people paint over a thing). Each engine fills it through ``Inpainter``, at a
256×256 centre crop (``--crop 256``) or at the photo's native size (``--crop 0``). Metrics: L1, PSNR and SSIM
(scikit-image) of the whole composited image and of the hole; the fill's colour bias (mean colour of the fill
against the truth's, per channel: a ghost shows as a lighter or greyer patch); the seam (gradient the fill adds
along the hole's edge beyond the truth's: a visible outline).

Writes markdown tables, a plot by bucket, and a fixed by-eye grid: the same 12 photos and object masks in
every report, each engine beside the truth at 1:1.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any, NamedTuple

import cv2
import numpy as np
from PIL import Image
from tqdm import tqdm

from .data import IMAGE_SUFFIXES
from .masks import EVAL_BUCKETS, OBJECT_BUCKETS, bucket_masks, object_masks

METRICS = ("psnr", "ssim", "l1", "hole_psnr", "hole_ssim", "hole_l1", "bias", "seam")
FAMILIES = {"strokes": (EVAL_BUCKETS, bucket_masks), "objects": (OBJECT_BUCKETS, object_masks)}
GRID_PHOTOS, GRID_TILE = 12, 256


class Bucket(NamedTuple):
    family: str
    lo: float
    hi: float

    @property
    def label(self) -> str:
        return f"{self.family} ({self.lo:g}, {self.hi:g}]"

    @classmethod
    def from_label(cls, label: str) -> Bucket:
        family, bounds = label.split(" ", 1)
        lo, hi = bounds.strip("(]").split(",")
        return cls(family, float(lo), float(hi))


def load_photo(path: Path, crop: int) -> np.ndarray:
    with Image.open(path) as im:
        image = np.asarray(im.convert("RGB"))
    if crop:
        h, w = image.shape[:2]
        if min(h, w) < crop:
            raise ValueError(f"{path} is smaller than {crop}")
        y, x = (h - crop) // 2, (w - crop) // 2
        image = image[y : y + crop, x : x + crop]
    return np.ascontiguousarray(image)


def masks_for(path: Path, shape: tuple[int, int], seed: int, families=("strokes",)) -> list[tuple[Bucket, np.ndarray]]:
    """One mask per bucket of each family, the same for a given photo name, size and seed whatever the
    engine (the stroke masks are those of every earlier report)."""
    made = []
    for family in families:
        key = f"{path.name}:{shape}:{seed}" + ("" if family == "strokes" else f":{family}")
        digest = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16)
        buckets, generate = FAMILIES[family]
        made += [(Bucket(family, lo, hi), hole)
                 for (lo, hi), hole in generate(shape[0], shape[1], per_bucket=1, buckets=buckets, seed=digest)]
    return made


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * math.log10(255.0**2 / mse)


def colour_bias(truth: np.ndarray, filled: np.ndarray, hole: np.ndarray) -> float:
    """Mean absolute difference, over the channels, between the fill's mean colour and the truth's (grey
    levels): the "ghost column", a patch lighter, darker or greyer than what it replaces."""
    return float(np.abs(filled[hole].mean(0) - truth[hole].mean(0)).mean())


def _gradient(image: np.ndarray) -> np.ndarray:
    luma = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    # Sobel's kernels weigh 4 pixel pairs two apart: / 8 gives grey levels per pixel
    return cv2.magnitude(cv2.Sobel(luma, cv2.CV_32F, 1, 0), cv2.Sobel(luma, cv2.CV_32F, 0, 1)) / 8


def seam(truth: np.ndarray, filled: np.ndarray, hole: np.ndarray) -> float:
    """Gradient the fill adds along the hole's edge beyond the truth's (grey levels per pixel, mean over a
    ring one pixel either side of the edge): 0 when the fill joins its surroundings as smoothly as the
    truth did; a visible outline raises it. A fill that is only blurrier than the truth does not."""
    kernel = np.ones((3, 3), np.uint8)
    hole8 = hole.astype(np.uint8)
    ring = (cv2.dilate(hole8, kernel) > 0) & ~(cv2.erode(hole8, kernel, borderValue=1) > 0)
    if not ring.any():
        return 0.0
    excess = _gradient(filled)[ring] - _gradient(truth)[ring]
    return float(np.maximum(excess, 0).mean())


def score(truth: np.ndarray, filled: np.ndarray, hole: np.ndarray) -> dict[str, float]:
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    ssim, ssim_map = structural_similarity(truth, filled, channel_axis=2, data_range=255, full=True)
    diff = np.abs(truth.astype(np.float64) - filled.astype(np.float64)) / 255
    return {
        "psnr": float(peak_signal_noise_ratio(truth, filled, data_range=255)),
        "ssim": float(ssim),
        "l1": float(diff.mean()),
        "hole_psnr": psnr(truth[hole], filled[hole]),
        "hole_ssim": float(ssim_map[hole].mean()),
        "hole_l1": float(diff[hole].mean()),
        "bias": colour_bias(truth, filled, hole),
        "seam": seam(truth, filled, hole),
    }


def evaluate(photos: list[Path], engines: dict, crop: int, seed: int = 0, families=("strokes",)) -> dict:
    """Per-engine, per-bucket mean metrics."""
    sums: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(float)))
    counts: dict = defaultdict(lambda: defaultdict(int))
    for path in tqdm(photos, unit="photo", dynamic_ncols=True, mininterval=5):
        truth = load_photo(path, crop)
        for bucket, hole in masks_for(path, truth.shape[:2], seed, families):
            for name, inpainter in engines.items():
                filled = np.asarray(inpainter.inpaint_hole(Image.fromarray(truth), hole))
                for metric, value in score(truth, filled, hole).items():
                    sums[name][bucket][metric] += value
                counts[name][bucket] += 1
    return {
        name: {bucket: {m: sums[name][bucket][m] / counts[name][bucket] for m in METRICS} for bucket in sums[name]}
        for name in sums
    }


def _cell(metric: str, value: float) -> str:
    return f"{value:.4f}" if "ssim" in metric or "l1" in metric else f"{value:.2f}"


def table(means: dict, metrics=("hole_psnr", "psnr", "ssim", "hole_l1")) -> str:
    names = list(means)
    head = "| holes | " + " | ".join(f"{n} {' / '.join(metrics)}" for n in names) + " |"
    lines = [head, "| --- |" + " --- |" * len(names)]
    for bucket in sorted(next(iter(means.values()))):
        cells = [" / ".join(_cell(k, means[n][bucket][k]) for k in metrics) for n in names]
        lines.append(f"| {bucket.label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(means: dict, path: Path, title: str) -> None:
    """One row per mask family: hole PSNR, SSIM against Navier-Stokes's (differences are a few
    thousandths), colour bias."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    reference = means.get("ns")
    families = sorted({b.family for by in means.values() for b in by}, reverse=True)
    fig, axes = plt.subplots(len(families), 3, figsize=(14, 3.6 * len(families)), squeeze=False)
    for row, family in zip(axes, families):
        for name, by_bucket in means.items():
            buckets = sorted(b for b in by_bucket if b.family == family)
            xs = [f"{b.hi:g}" for b in buckets]
            row[0].plot(xs, [by_bucket[b]["hole_psnr"] for b in buckets], marker="o", label=name)
            base = [reference[b]["ssim"] if reference else 0.0 for b in buckets]
            row[1].plot(xs, [by_bucket[b]["ssim"] - o for b, o in zip(buckets, base)], marker="o", label=name)
            row[2].plot(xs, [by_bucket[b]["bias"] for b in buckets], marker="o", label=name)
        row[0].set(xlabel=f"{family}: hole ratio up to", ylabel="hole PSNR (dB)",
                   title=title if family == families[0] else "")
        row[1].set(xlabel=f"{family}: hole ratio up to",
                   ylabel="SSIM − Navier-Stokes's SSIM" if reference else "SSIM, whole image")
        row[2].set(xlabel=f"{family}: hole ratio up to", ylabel="colour bias of the fill (levels)")
        for ax in row:
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def grid_cases(folder: str | Path, seed: int = 0) -> list[tuple[Path, np.ndarray, np.ndarray]]:
    """The fixed by-eye set: 12 photos spread over the folder, each with one object mask (of 5-10 % and
    10-20 % in turn), at native size."""
    cases = []
    for i, path in enumerate(list_eval_photos(folder, GRID_PHOTOS)):
        truth = load_photo(path, 0)
        masks = [h for b, h in masks_for(path, truth.shape[:2], seed, ("objects",))]
        cases.append((path, truth, masks[1 + i % 2]))
    return cases


def _around(hole: np.ndarray, tile: int) -> tuple[slice, slice]:
    """A tile×tile window centred on the hole, inside the photo."""
    ys, xs = np.nonzero(hole)
    h, w = hole.shape
    cy, cx = (ys.min() + ys.max()) // 2, (xs.min() + xs.max()) // 2
    y = int(np.clip(cy - tile // 2, 0, max(0, h - tile)))
    x = int(np.clip(cx - tile // 2, 0, max(0, w - tile)))
    return slice(y, y + tile), slice(x, x + tile)


def grid(folder: str | Path, engines: dict, path: Path, seed: int = 0, tile: int = GRID_TILE) -> None:
    """Rows of 1:1 crops around the hole: the photo with the hole painted, each engine's fill, the truth."""
    from PIL import ImageDraw

    cases = grid_cases(folder, seed)
    names = list(engines)
    cols, label_h = 2 + len(names), 14
    canvas = Image.new("RGB", (cols * tile, len(cases) * (tile + label_h)), "white")
    draw = ImageDraw.Draw(canvas)
    for r, (photo, truth, hole) in enumerate(cases):
        shown = truth.copy()
        shown[hole] = (255, 255, 255)
        tiles = [(f"{photo.stem[:16]} {100 * hole.mean():.0f}%", shown)]
        tiles += [(n, np.asarray(engines[n].inpaint_hole(Image.fromarray(truth), hole))) for n in names]
        tiles.append(("truth", truth))
        window = _around(hole, tile)
        for c, (label, arr) in enumerate(tiles):
            canvas.paste(Image.fromarray(np.ascontiguousarray(arr[window])), (c * tile, r * (tile + label_h) + label_h))
            draw.text((c * tile + 2, r * (tile + label_h) + 1), label, fill="black")
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path, quality=88) if path.suffix.lower() in (".jpg", ".jpeg") else canvas.save(path)


def list_eval_photos(folder: str | Path, limit: int = 0) -> list[Path]:
    photos = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if limit:
        step = max(1, len(photos) // limit)  # spread over the sources, which are sorted by name
        photos = photos[::step][:limit]
    return photos


def main(argv=None) -> int:
    from .inpaint import Inpainter
    from .runtime import RUNTIMES

    p = argparse.ArgumentParser(prog="python -m pconv.evaluate", description=__doc__.split("\n")[0])
    p.add_argument("--photos", required=True)
    p.add_argument("--weights", help="PConv weights (default: the shipped file)")
    p.add_argument("--engines", nargs="+", default=["pconv", "telea", "ns"])
    p.add_argument("--single-pass", action="store_true",
                   help="also evaluate pconv without flip averaging, as the engine 'pconv-1pass'")
    p.add_argument("--bridge", type=int, nargs="*", default=[],
                   help="also evaluate pconv with its edge band of these depths refilled by Telea (0: none), "
                        "as 'pconv-bN'")
    p.add_argument("--window", type=int, nargs="*", default=[],
                   help="also evaluate pconv with these windows (largest side filled at full resolution), "
                        "as the engines 'pconv-wN'")
    p.add_argument("--runtime", default="torch", choices=RUNTIMES,
                   help="CPU runtime of every pconv engine (torch, float32: the reference the tables use)")
    p.add_argument("--runtimes", nargs="*", default=[], choices=RUNTIMES,
                   help="also evaluate pconv through these CPU runtimes, as the engines 'pconv-RUNTIME'")
    p.add_argument("--other-weights", nargs="*", default=[], metavar="NAME=FILE",
                   help="also evaluate pconv with these weights, as the engines 'pconv-NAME'")
    p.add_argument("--crop", type=int, default=256, help="centre crop side; 0 = native size")
    p.add_argument("--limit", type=int, default=0, help="evaluate this many photos, spread over the folder")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--masks", nargs="+", default=["strokes", "objects"], choices=sorted(FAMILIES),
                   help="mask families to evaluate")
    p.add_argument("--json", help="write the means here")
    p.add_argument("--from-json", help="report the means of an earlier run's --json instead of evaluating again "
                                       "(the grid is still drawn by the engines named)")
    p.add_argument("--plot", help="PNG plot of PSNR and SSIM by bucket")
    p.add_argument("--grid", help="the fixed by-eye grid (PNG, or JPEG by its suffix)")
    p.add_argument("--markdown", help="markdown file whose section for this setting is replaced with the results")
    args = p.parse_args(argv)

    def pconv(weights: str | None = args.weights, **options: Any) -> Inpainter:
        return Inpainter.load("pconv", weights=weights, **{"runtime": args.runtime, **options})

    engines = {name: pconv() if name == "pconv" else Inpainter.load(name) for name in args.engines}
    if args.single_pass:
        engines["pconv-1pass"] = pconv(flip_average=False)
    for runtime in args.runtimes:
        engines[f"pconv-{runtime}"] = pconv(runtime=runtime)
    for spec in args.other_weights:
        name, _, weights = spec.partition("=")
        if not weights:
            p.error(f"--other-weights takes NAME=FILE, not {spec!r}")
        engines[f"pconv-{name}"] = pconv(weights)
    for depth in args.bridge:
        engines[f"pconv-b{depth}"] = pconv(bridge=depth)
    for window in args.window:
        engines[f"pconv-w{window}"] = pconv(window=window)
    if args.from_json:
        earlier = json.loads(Path(args.from_json).read_text())
        means = {n: {Bucket.from_label(b): v for b, v in by.items()} for n, by in earlier["means"].items()}
        where = earlier["where"]
    else:
        photos = list_eval_photos(args.photos, args.limit)
        means = evaluate(photos, engines, args.crop, args.seed, tuple(args.masks))
        where = f"{len(photos)} photos of {args.photos}, " + (f"{args.crop}×{args.crop} centre crops" if args.crop
                                                              else "native size")
    print(f"\n{where}, seed {args.seed}\n")
    print(table(means))
    print()
    print(table(means, ("bias", "seam")))
    if args.json:
        serial = {n: {b.label: v for b, v in by.items()} for n, by in means.items()}
        Path(args.json).write_text(json.dumps({"where": where, "means": serial}, indent=1))
    if args.plot:
        plot(means, Path(args.plot), where)
    if args.grid:
        grid(args.photos, engines, Path(args.grid), args.seed)
    if args.markdown:
        from .report import machine_description, write_section

        doc = Path(args.markdown)
        body = [f"{where}, seed {args.seed}; weights: `{args.weights or 'shipped'}`; {machine_description()}.",
                "Each cell: hole PSNR (dB) / whole-image PSNR (dB) / whole-image SSIM / hole L1.", "", table(means), "",
                "The fill's colour bias (grey levels, mean over channels of |fill's mean − truth's mean|) / seam "
                "(gradient added along the hole's edge, grey levels per pixel); lower is better for both.", "",
                table(means, ("bias", "seam"))]
        for label, path in (("plot", args.plot), ("by-eye grid: the hole, each engine, the truth", args.grid)):
            if path:
                body += ["", f"![{label}]({Path(path).resolve().relative_to(doc.resolve().parent)})"]
        title = "Evaluation at native size" if not args.crop else f"Evaluation on {args.crop}×{args.crop} crops"
        write_section(doc, title, "\n".join(body), "python -m pconv.evaluate " + " ".join(argv or sys.argv[1:]),
                      document="The PConv model")
    return 0


if __name__ == "__main__":
    sys.exit(main())
