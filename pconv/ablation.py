"""What replaces the VGG terms? ``python -m pconv.ablation --data TRAIN --photos EVAL --runs DIR``.

Trains the same network from the same seed, data and masks once per loss variant (short runs:
small crops, equal steps), then evaluates every variant on the same seeded masks at 256×256 crops.
Resumable: a variant whose run directory already holds its final model is not trained again, and
its evaluation is cached in ``eval.json`` beside it.

Variants whose steps cost much more (VGG16 features) train for the same wall time as the slowest
cheap variant instead, and the table says how many steps they reached.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from .evaluate import evaluate, list_eval_photos
from .weights import read_metadata

# name -> (extra arguments of pconv.train, what it is); every variant has valid 1, hole 6, tv 0.1
VARIANTS = {
    "l1": ([], "valid + hole L1 + TV (the paper without VGG)"),
    "multiscale": (["--w-multiscale", "2"], "+ 2 × multi-scale hole L1"),
    "ssim": (["--w-ssim", "3"], "+ 3 × (1 − SSIM)"),
    "multiscale+ssim": (["--w-multiscale", "2", "--w-ssim", "3"], "+ both (the shipped choice)"),
    "multiscale+ssim seed 1": (["--w-multiscale", "2", "--w-ssim", "3", "--seed", "1"],
                               "the same, another seed: run-to-run noise"),
    "gradient": (["--w-gradient", "2"], "+ 2 × image-gradient L1 on the dilated hole"),
    "random-vgg": (["--vgg", "random"], "+ perceptual 0.05 and style 120 on fixed random VGG16 features"),
    "gradient+adversarial": (["--w-gradient", "2", "--w-adversarial", "0.01"],
                             "+ 2 × image-gradient L1 and 0.01 × PatchGAN hinge (pconv.adversarial)"),
}
DEFAULT_VARIANTS = [n for n in VARIANTS if n != "gradient+adversarial"]  # the loss table of docs/model.md
SAME_TIME = {"random-vgg"}  # trained for the cheap variants' wall time, not their steps
SUMMARY = ("hole_psnr", "psnr", "ssim", "hole_l1")


def run_dir(runs: Path, name: str) -> Path:
    return runs / name.replace(" ", "-").replace("+", "-")


def train_variant(name: str, args, minutes: float | None) -> None:
    out = run_dir(args.runs, name)
    extra, _ = VARIANTS[name]
    seed = [] if "--seed" in extra else ["--seed", "0"]
    limit = ["--steps", "1000000", "--max-minutes", f"{minutes:.2f}"] if minutes else ["--steps", str(args.steps)]
    if args.finetune:  # continued weights keep their BatchNorm statistics: the paper's second phase
        limit = ["--steps", "0", "--finetune-steps", str(args.steps)]
    command = [sys.executable, "-m", "pconv.train", "--data", args.data, "--out", str(out),
               "--size", str(args.size), "--batch", str(args.batch), "--layers", str(args.layers),
               "--width", str(args.width), "--threads", str(args.threads), "--workers", "1",
               "--checkpoint-minutes", "5", *limit, *seed, *(["--init", args.init] if args.init else []), *extra]
    started = time.monotonic()
    subprocess.run(command, check=True)
    record = out / "ablation.json"
    done = json.loads(record.read_text()) if record.exists() else {"minutes": 0.0}
    done["minutes"] += (time.monotonic() - started) / 60  # a resumed run adds its part
    record.write_text(json.dumps(done))


def minutes_spent(args, name: str) -> float:
    record = run_dir(args.runs, name) / "ablation.json"
    return json.loads(record.read_text())["minutes"] if record.exists() else 0.0


def steps_done(args, name: str) -> int:
    model = run_dir(args.runs, name) / "model.safetensors"
    return read_metadata(model)["training"]["steps"] if model.exists() else 0


def evaluate_variant(name: str, args, photos) -> dict:
    from .inpaint import Inpainter

    out = run_dir(args.runs, name)
    cache = out / "eval.json"
    model = out / "model.safetensors"
    steps = read_metadata(model)["training"]["steps"]
    if cache.exists() and json.loads(cache.read_text())["steps"] == steps:
        return json.loads(cache.read_text())
    engine = {name: Inpainter.load("pconv", weights=model)}
    means = evaluate(photos, engine, crop=256)
    result = {
        "steps": steps,
        "minutes": minutes_spent(args, name),
        "buckets": {b.label: v for b, v in means[name].items()},
    }
    cache.write_text(json.dumps(result, indent=1))
    return result


def evaluate_classical(args, photos) -> dict:
    from .inpaint import Inpainter

    cache = args.runs / "classical.json"
    if cache.exists():
        return json.loads(cache.read_text())
    means = evaluate(photos, {n: Inpainter.load(n) for n in ("telea", "ns")}, crop=256)
    result = {n: {"buckets": {b.label: v for b, v in by.items()}} for n, by in means.items()}
    cache.write_text(json.dumps(result, indent=1))
    return result


def mean_over_buckets(result: dict) -> dict:
    return {m: float(np.mean([b[m] for b in result["buckets"].values()])) for m in SUMMARY}


def table(results: dict, classical: dict) -> str:
    lines = ["| loss | steps | min | hole PSNR | PSNR | SSIM | hole L1 | SSIM per bucket, holes up to 0.1, 0.2 … 0.6 |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for name, r in {**results, **classical}.items():
        m = mean_over_buckets(r)
        by_bucket = " ".join(f"{b['ssim']:.4f}" for b in r["buckets"].values())
        label = f"{name}: {VARIANTS[name][1]}" if name in VARIANTS else f"OpenCV {name}"
        steps = str(r["steps"]) if "steps" in r else ""
        minutes = f"{r['minutes']:.0f}" if "minutes" in r else ""
        lines.append(f"| {label} | {steps} | {minutes} | {m['hole_psnr']:.2f} | {m['psnr']:.2f} | "
                     f"{m['ssim']:.4f} | {m['hole_l1']:.4f} | {by_bucket} |")
    return "\n".join(lines)


def plot(results: dict, classical: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for name, r in {**results, **classical}.items():
        m = mean_over_buckets(r)
        ax.scatter(m["psnr"], m["ssim"], marker="o" if name in results else "s")
        ax.annotate(name, (m["psnr"], m["ssim"]), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set(xlabel="PSNR (dB), mean over buckets", ylabel="SSIM, mean over buckets", title=title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m pconv.ablation", description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="training photos")
    p.add_argument("--photos", required=True, help="evaluation photos")
    p.add_argument("--runs", required=True, type=Path, help="one run directory per variant goes here")
    p.add_argument("--variants", nargs="+", default=DEFAULT_VARIANTS, choices=list(VARIANTS))
    p.add_argument("--init", help="every variant continues from this model file (same start), instead of from scratch")
    p.add_argument("--finetune", action="store_true", help="train in the fine-tuning phase (encoder BatchNorm frozen)")
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--layers", type=int, default=7)
    p.add_argument("--width", type=float, default=0.5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--limit", type=int, default=40, help="evaluation photos, spread over the folder")
    p.add_argument("--title", default="Loss ablation", help="the markdown section (and plot) it writes")
    p.add_argument("--plot", type=Path)
    p.add_argument("--markdown", type=Path)
    args = p.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    args.runs.mkdir(parents=True, exist_ok=True)
    photos = list_eval_photos(args.photos, args.limit)
    cheap = [n for n in args.variants if n not in SAME_TIME]
    for name in cheap:
        if steps_done(args, name) < args.steps:
            train_variant(name, args, None)
    budget = max((minutes_spent(args, n) for n in cheap), default=10.0)
    for name in [n for n in args.variants if n in SAME_TIME]:
        left = budget - minutes_spent(args, name)
        if left > 0.5 or not steps_done(args, name):
            train_variant(name, args, left)
    results = {name: evaluate_variant(name, args, photos) for name in args.variants}
    classical = evaluate_classical(args, photos)
    start = f"continuing {Path(args.init).name}" if args.init else "from scratch"
    start += " in the fine-tuning phase" if args.finetune else ""
    where = (f"{args.width:g}-width {args.layers}-layer UNet {start}, {args.steps} steps of batch {args.batch} at "
             f"{args.size}×{args.size}; evaluated on {len(photos)} photos at 256×256 crops")
    text = table(results, classical)
    print(f"\n{where}\n\n{text}")
    if args.plot:
        plot(results, classical, args.plot, args.title)
    if args.markdown:
        from .report import machine_description, write_section

        body = [f"{where}; {machine_description()}. Metrics are means over the six hole-area buckets "
                "(whole-image PSNR and SSIM, hole PSNR and L1); `min` is the wall time of training.", "", text]
        if args.plot:
            body += ["", f"![loss ablation]({args.plot.resolve().relative_to(args.markdown.resolve().parent)})"]
        write_section(args.markdown, args.title, "\n".join(body),
                      "python -m pconv.ablation " + " ".join(argv or sys.argv[1:]), document="The PConv model")
    return 0


if __name__ == "__main__":
    sys.exit(main())
