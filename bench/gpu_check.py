"""The GPU check: one command for the first minutes a GPU is lent (issue 18), sized to a few minutes.

1. CUDA and CPU fills agree: the same crops through the service's own filler on both devices (bf16 autocast on
   CUDA), compared in 8-bit levels inside the holes.
2. Throughput and memory of the model for crops of --size at each batch size, as the workers run it
   (``PConvFiller.fill_batch``: folded BatchNorm, autocast, flip averaging on), after a warm-up.

Writes ``gpu-check.json`` and ``gpu-check.md`` into --out (they come back from the device machine), and with
--write replaces the "GPU check" section of docs/benchmarks.md, naming the device. On a CPU it runs the same
code end to end (``tests/test_gpu_check.py``), so a typo cannot waste the GPU's minutes.

    python bench/gpu_check.py [--device cuda] [--batches 1 2 4 8 16 32 64] [--size 512] [--out DIR] [--write FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pconv.inpaint import PConvFiller  # noqa: E402
from pconv.report import machine_description, write_section  # noqa: E402
from pconv.weights import DEFAULT_WEIGHTS, load_model  # noqa: E402


def crops(n: int, size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Smooth photos with texture and stroke-like holes (10–20 %), the same on every device."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    images, holes = [], []
    for _ in range(n):
        a, b, c = rng.uniform(0.5, 3, 3)
        base = np.stack([np.sin(a * x * 6) + y, np.cos(b * y * 5) + x, np.sin(c * (x + y) * 4)], -1)
        noise = rng.normal(0, 0.05, (size, size, 3))
        images.append(np.clip((base - base.min()) / np.ptp(base) + noise, 0, 1) * 255)
        hole = np.zeros((size, size), bool)
        for _ in range(4):
            r0, c0 = rng.integers(0, size - size // 4, 2)
            hole[r0 : r0 + size // 4, c0 : c0 + size // 16] = True
        holes.append(hole)
    return np.asarray(images, np.uint8), np.asarray(holes)


def agreement(model_path: Path, device: str, size: int) -> dict:
    images, holes = crops(4, size, seed=1)
    model = load_model(model_path)
    on_cpu = PConvFiller(model, device="cpu", runtime="torch").fill_batch(images, holes).astype(np.int16)
    on_device = PConvFiller(model, device=device, runtime="torch").fill_batch(images, holes).astype(np.int16)
    diff = np.abs(on_cpu - on_device)[holes]
    return {"max_levels": int(diff.max()), "mean_levels": float(diff.mean()),
            "within_2_levels": float((diff <= 2).mean())}


def throughput(model_path: Path, device: str, size: int, batches: list[int], repeats: int) -> list[dict]:
    filler = PConvFiller(load_model(model_path), device=device, runtime="torch")
    cuda = filler.device.type == "cuda"
    rows = []
    for batch in batches:
        images, holes = crops(batch, size)
        if cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        try:
            filler.fill_batch(images, holes)  # warm-up: kernels chosen, memory allocated
            times = []
            for _ in range(repeats):
                if cuda:
                    torch.cuda.synchronize()
                start = time.perf_counter()
                filler.fill_batch(images, holes)
                if cuda:
                    torch.cuda.synchronize()
                times.append(time.perf_counter() - start)
        except torch.OutOfMemoryError:
            rows.append({"batch": batch, "error": "out of memory"})
            break
        seconds = statistics.median(times)
        rows.append({"batch": batch, "seconds": seconds, "crops_per_s": batch / seconds,
                     "ms_per_crop": 1000 * seconds / batch,
                     "peak_memory_mib": torch.cuda.max_memory_allocated() / 2**20 if cuda else None})
    return rows


def device_name(device: str) -> str:
    if device.startswith("cuda") and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        return f"{props.name}, {props.total_memory / 2**30:.0f} GiB, torch {torch.__version__}"
    return machine_description()


def markdown(report: dict) -> str:
    a = report["agreement"]
    lines = [f"Device: {report['device']}. Weights: {report['weights']}. Crops of {report['size']}², flip averaging "
             "on, as the workers fill them.", "",
             f"CUDA against CPU, inside the holes: at most {a['max_levels']} levels apart, {a['mean_levels']:.2f} on "
             f"average, {100 * a['within_2_levels']:.1f} % within 2 levels.", "",
             "| batch | ms per batch | crops/s | ms per crop | peak GPU memory, MiB |",
             "| --- | --- | --- | --- | --- |"]
    for row in report["throughput"]:
        if "error" in row:
            lines.append(f"| {row['batch']} | {row['error']} | | | |")
            continue
        memory = f"{row['peak_memory_mib']:.0f}" if row["peak_memory_mib"] is not None else "–"
        lines.append(f"| {row['batch']} | {1000 * row['seconds']:.1f} | {row['crops_per_s']:.1f} | "
                     f"{row['ms_per_crop']:.2f} | {memory} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--device", default="cuda")
    p.add_argument("--weights", default=str(DEFAULT_WEIGHTS))
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--batches", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32, 64])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", default=".")
    p.add_argument("--write")
    args = p.parse_args(argv)
    weights = Path(args.weights)
    report = {"device": device_name(args.device), "weights": weights.name, "size": args.size,
              "agreement": agreement(weights, args.device, args.size),
              "throughput": throughput(weights, args.device, args.size, args.batches, args.repeats)}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu-check.json").write_text(json.dumps(report, indent=1))
    body = markdown(report)
    (out / "gpu-check.md").write_text(body + "\n")
    print(body)
    if args.write:
        write_section(Path(args.write), "GPU check", body, "python bench/gpu_check.py --write docs/benchmarks.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
