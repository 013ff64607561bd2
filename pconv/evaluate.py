"""Evaluate engines on a folder of photos: ``python -m pconv.evaluate --photos DIR``.

Every photo gets one seeded free-form mask per hole-area bucket (0.01–0.1] … (0.5–0.6],
and each engine fills it through ``Inpainter`` — at a 256×256 centre crop (``--crop 256``)
or at the photo's native size (``--crop 0``). Metrics (scikit-image): L1, PSNR and SSIM of
the whole composited image, and L1, PSNR and SSIM restricted to the hole.

Writes a markdown table, a plot of PSNR by bucket and an image grid when asked.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from .data import IMAGE_SUFFIXES
from .masks import EVAL_BUCKETS, bucket_masks

METRICS = ("psnr", "ssim", "l1", "hole_psnr", "hole_ssim", "hole_l1")


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


def masks_for(path: Path, shape: tuple[int, int], seed: int) -> list[tuple[tuple[float, float], np.ndarray]]:
    """One mask per bucket, the same for a given photo name, size and seed whatever the engine."""
    digest = int(hashlib.sha256(f"{path.name}:{shape}:{seed}".encode()).hexdigest()[:8], 16)
    return list(bucket_masks(shape[0], shape[1], per_bucket=1, seed=digest))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * math.log10(255.0**2 / mse)


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
    }


def evaluate(photos: list[Path], engines: dict, crop: int, seed: int = 0, keep: int = 0):
    """Per-engine, per-bucket mean metrics; and up to ``keep`` examples for a grid."""
    sums: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(float)))
    counts: dict = defaultdict(lambda: defaultdict(int))
    examples = []
    for path in tqdm(photos, unit="photo", dynamic_ncols=True, mininterval=5):
        truth = load_photo(path, crop)
        for bucket, hole in masks_for(path, truth.shape[:2], seed):
            filled_by = {}
            for name, inpainter in engines.items():
                filled = np.asarray(inpainter.inpaint_hole(Image.fromarray(truth), hole))
                filled_by[name] = filled
                for metric, value in score(truth, filled, hole).items():
                    sums[name][bucket][metric] += value
                counts[name][bucket] += 1
            if len(examples) < keep and bucket in (EVAL_BUCKETS[1], EVAL_BUCKETS[3], EVAL_BUCKETS[5]):
                examples.append((path.name, bucket, truth, hole, filled_by))
    means = {
        name: {bucket: {m: sums[name][bucket][m] / counts[name][bucket] for m in METRICS} for bucket in sums[name]}
        for name in sums
    }
    return means, examples


def bucket_label(bucket) -> str:
    return f"({bucket[0]:g}, {bucket[1]:g}]"


def table(means: dict, metrics=("hole_psnr", "psnr", "ssim", "hole_l1")) -> str:
    names = list(means)
    head = "| hole ratio | " + " | ".join(f"{n} {' / '.join(metrics)}" for n in names) + " |"
    lines = [head, "| --- |" + " --- |" * len(names)]
    for bucket in sorted(next(iter(means.values()))):
        cells = []
        for n in names:
            m = means[n][bucket]
            cells.append(" / ".join(f"{m[k]:.4f}" if "ssim" in k or "l1" in k else f"{m[k]:.2f}" for k in metrics))
        lines.append(f"| {bucket_label(bucket)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(means: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # SSIM differences between engines are a few thousandths: drawn against Navier-Stokes's, they show
    reference = means.get("ns")
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for name, by_bucket in means.items():
        buckets = sorted(by_bucket)
        xs = [f"{b[1]:g}" for b in buckets]
        axes[0].plot(xs, [by_bucket[b]["psnr"] for b in buckets], marker="o", label=name)
        base = [reference[b]["ssim"] if reference else 0.0 for b in buckets]
        axes[1].plot(xs, [by_bucket[b]["ssim"] - o for b, o in zip(buckets, base)], marker="o", label=name)
    axes[0].set(xlabel="hole ratio up to", ylabel="PSNR (dB), whole image", title=title)
    axes[1].set(xlabel="hole ratio up to", ylabel="SSIM − Navier-Stokes's SSIM" if reference else "SSIM, whole image")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def grid(examples, path: Path, tile: int = 192) -> None:
    """Rows of: photo, mask, then each engine's result."""
    from PIL import ImageDraw

    if not examples:
        return
    names = list(examples[0][4])
    cols = 2 + len(names)
    canvas = Image.new("RGB", (cols * tile, len(examples) * (tile + 16)), "white")
    draw = ImageDraw.Draw(canvas)
    for r, (photo, bucket, truth, hole, filled_by) in enumerate(examples):
        shown = truth.copy()
        shown[hole] = (255, 255, 255)
        tiles = [("photo " + photo[:18], truth), (f"mask {bucket_label(bucket)}", shown)]
        tiles += [(n, filled_by[n]) for n in names]
        for c, (label, arr) in enumerate(tiles):
            im = Image.fromarray(arr)
            im.thumbnail((tile, tile))
            canvas.paste(im, (c * tile, r * (tile + 16) + 16))
            draw.text((c * tile + 2, r * (tile + 16) + 2), label, fill="black")
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)


def list_eval_photos(folder: str | Path, limit: int = 0) -> list[Path]:
    photos = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if limit:
        step = max(1, len(photos) // limit)  # spread over the sources, which are sorted by name
        photos = photos[::step][:limit]
    return photos


def main(argv=None) -> int:
    from .inpaint import Inpainter

    p = argparse.ArgumentParser(prog="python -m pconv.evaluate", description=__doc__.split("\n")[0])
    p.add_argument("--photos", required=True)
    p.add_argument("--weights", help="PConv weights (default: the shipped file)")
    p.add_argument("--engines", nargs="+", default=["pconv", "telea", "ns"])
    p.add_argument("--single-pass", action="store_true",
                   help="also evaluate pconv without flip averaging, as the engine 'pconv-1pass'")
    p.add_argument("--window", type=int, nargs="*", default=[],
                   help="also evaluate pconv with these windows (largest side filled at full resolution), "
                        "as the engines 'pconv-wN'")
    p.add_argument("--crop", type=int, default=256, help="centre crop side; 0 = native size")
    p.add_argument("--limit", type=int, default=0, help="evaluate this many photos, spread over the folder")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="write the means here")
    p.add_argument("--plot", help="PNG plot of PSNR and SSIM by bucket")
    p.add_argument("--grid", help="PNG grid of examples")
    p.add_argument("--markdown", help="markdown file whose section for this setting is replaced with the results")
    args = p.parse_args(argv)

    engines = {name: Inpainter.load(name, weights=args.weights if name == "pconv" else None) for name in args.engines}
    if args.single_pass:
        engines["pconv-1pass"] = Inpainter.load("pconv", weights=args.weights, flip_average=False)
    for window in args.window:
        engines[f"pconv-w{window}"] = Inpainter.load("pconv", weights=args.weights, window=window)
    photos = list_eval_photos(args.photos, args.limit)
    means, examples = evaluate(photos, engines, args.crop, args.seed, keep=6 if args.grid else 0)
    where = f"{len(photos)} photos of {args.photos}, " + (f"{args.crop}×{args.crop} centre crops" if args.crop else
                                                          "native size")
    print(f"\n{where}, seed {args.seed}\n")
    print(table(means))
    if args.json:
        serial = {n: {bucket_label(b): v for b, v in by.items()} for n, by in means.items()}
        Path(args.json).write_text(json.dumps({"where": where, "means": serial}, indent=1))
    if args.plot:
        plot(means, Path(args.plot), where)
    if args.grid:
        grid(examples, Path(args.grid))
    if args.markdown:
        from .report import machine_description, write_section

        doc = Path(args.markdown)
        body = [f"{where}, seed {args.seed}; weights: `{args.weights or 'shipped'}`; {machine_description()}.",
                "Each cell: hole PSNR (dB) / whole-image PSNR (dB) / whole-image SSIM / hole L1.", "", table(means)]
        for label, path in (("plot", args.plot), ("examples", args.grid)):
            if path:
                body += ["", f"![{label}]({Path(path).resolve().relative_to(doc.resolve().parent)})"]
        title = "Evaluation at native size" if not args.crop else f"Evaluation on {args.crop}×{args.crop} crops"
        write_section(doc, title, "\n".join(body), "python -m pconv.evaluate " + " ".join(argv or sys.argv[1:]),
                      document="The PConv model")
    return 0


if __name__ == "__main__":
    sys.exit(main())
