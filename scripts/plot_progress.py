"""The model's measures against the training crops it has seen: docs/images/progress.png.

    python scripts/plot_progress.py [--log RUN/log.jsonl]

Reads docs/progress.json: one entry per shipped weights file (means over the buckets of the native-size
evaluation, 165 photos; append one when a file ships) and OpenCV's means on the same masks. With --log, a
training run's loss against its crops is drawn beside them.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PANELS = (("strokes_hole_psnr", "hole PSNR, strokes (dB)"), ("objects_hole_psnr", "hole PSNR, objects (dB)"),
          ("objects_bias", "colour bias, objects (levels)"), ("objects_seam", "seam, objects (levels/px)"))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default=str(ROOT / "docs" / "progress.json"))
    p.add_argument("--log", help="a training run's log.jsonl, drawn as loss against crops")
    p.add_argument("--out", default=str(ROOT / "docs" / "images" / "progress.png"))
    args = p.parse_args()
    data = json.loads(Path(args.data).read_text())
    panels = len(PANELS) + bool(args.log)
    fig, axes = plt.subplots(1, panels, figsize=(4.2 * panels, 3.6))
    for ax, (key, label) in zip(axes, PANELS):
        points = [(s["crops"], s[key]) for s in data["shipped"] if key in s]
        ax.plot(*zip(*points), marker="o", label="ours (shipped files)")
        for name, style in (("telea", ":"), ("ns", "--")):
            ax.axhline(data["reference"][name][key], linestyle=style, color="grey", label=f"OpenCV {name}")
        ax.set(xscale="log", xlabel="training crops seen (256×256)", ylabel=label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    if args.log:
        rows = [json.loads(line) for line in Path(args.log).read_text().splitlines()]
        start = data["shipped"][-2]["crops"] if len(data["shipped"]) > 1 else 0
        ax = axes[-1]
        window = 20  # single batches are noisy: a running mean of 20 log lines
        smooth = [sum(r["hole"] for r in rows[max(0, i - window + 1) : i + 1]) / min(window, i + 1)
                  for i in range(len(rows))]
        ax.plot([start + r["images"] for r in rows], smooth)
        ax.set(xlabel="training crops seen", ylabel=f"hole L1, mean of {window} log lines",
               title=Path(args.log).parent.name)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(args.out, dpi=90)
    print(args.out)


if __name__ == "__main__":
    main()
