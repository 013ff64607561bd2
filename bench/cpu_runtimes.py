"""The PConv network on CPU through each runtime, in one run: CPU time per forward pass of a flip-averaged
512×512 crop (a batch of two, as a worker runs it) and how far its fill is from torch's float32 fill.

    python bench/cpu_runtimes.py [--threads 1 2] [--repeats 4] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pconv.model import fold_batchnorm  # noqa: E402
from pconv.report import machine_description, write_section  # noqa: E402
from pconv.runtime import OpenVINOFill, _Fill  # noqa: E402
from pconv.weights import DEFAULT_WEIGHTS, load_model  # noqa: E402

Run = Callable[[torch.Tensor, torch.Tensor], np.ndarray]


def levels(prediction: np.ndarray) -> np.ndarray:
    return np.clip(np.round(prediction.astype(np.float32) * 255), 0, 255)


def runtimes(threads: int) -> dict[str, Callable[[], Run]]:
    """Each runtime's set-up (not timed), returning the call that is."""
    model = fold_batchnorm(load_model(DEFAULT_WEIGHTS)).eval()

    def plain() -> Run:
        return lambda x, v: model.fill(x.clone(), v.clone()).numpy()

    def channels_last() -> Run:
        m = fold_batchnorm(load_model(DEFAULT_WEIGHTS)).eval().to(memory_format=torch.channels_last)
        return lambda x, v: m.fill(x.clone().contiguous(memory_format=torch.channels_last),
                                   v.clone().contiguous(memory_format=torch.channels_last)).numpy()

    def bf16_autocast() -> Run:
        def run(x: torch.Tensor, v: torch.Tensor) -> np.ndarray:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return model.fill(x.clone(), v.clone()).float().numpy()
        return run

    def compiled() -> Run:
        fill = torch.compile(_Fill(fold_batchnorm(load_model(DEFAULT_WEIGHTS)).eval()), dynamic=True)
        return lambda x, v: fill(x.clone(), v.clone()).numpy()

    def onnxruntime() -> Run:
        import onnxruntime as ort

        path = Path(tempfile.mkdtemp()) / "pconv.onnx"
        side = model.config.stride * 2
        axes = {0: "n", 2: "h", 3: "w"}
        torch.onnx.export(_Fill(model), (torch.rand(1, 3, side, side), torch.ones(1, 1, side, side)), str(path),
                          input_names=["image", "valid"], output_names=["fill"], opset_version=17, dynamo=False,
                          dynamic_axes={name: axes for name in ("image", "valid", "fill")})
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        return lambda x, v: session.run(None, {"image": x.numpy(), "valid": v.numpy()})[0]

    def openvino(precision: str | None) -> Callable[[], Run]:
        def make() -> Run:
            fill = OpenVINOFill(model, threads, precision)
            return lambda x, v: fill(x, v).numpy()
        return make

    return {"torch float32 (before)": plain, "torch channels-last": channels_last,
            "torch bfloat16 autocast": bf16_autocast, "torch.compile (inductor)": compiled,
            "ONNX Runtime float32": onnxruntime, "OpenVINO float32": openvino("f32"),
            "OpenVINO, the CPU's precision (shipped)": openvino(None)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--repeats", type=int, default=4)
    p.add_argument("--side", type=int, default=512)
    p.add_argument("--write")
    args = p.parse_args(argv)
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, args.side, args.side, generator=generator)
    v = (torch.rand(1, 1, args.side, args.side, generator=generator) > 0.15).float()
    x, v = torch.cat([x, x.flip(-1)]), torch.cat([v, v.flip(-1)])  # the flip-averaged pair
    rows = ["| runtime | " + " | ".join(f"CPU s, {t} thread{'s' if t > 1 else ''} | speed-up" for t in args.threads)
            + " | max levels from torch | mean levels |",
            "| --- | " + " | ".join("---: | ---:" for _ in args.threads) + " | ---: | ---: |"]
    reference: np.ndarray | None = None
    base: dict[int, float] = {}
    for name in runtimes(1):
        cells, diff = [], ""
        for threads in args.threads:
            torch.set_num_threads(threads)
            try:
                with torch.no_grad():
                    run = runtimes(threads)[name]()
                    out = run(x, v)  # warm-up: first-shape compilation
                    start = time.process_time()
                    for _ in range(args.repeats):
                        run(x, v)
                seconds = (time.process_time() - start) / args.repeats
            except Exception as exc:  # a runtime that cannot run here says why, in the table
                cells.append(f"failed: {type(exc).__name__} | –")
                continue
            base.setdefault(threads, seconds)
            cells.append(f"{seconds:.3f} | {base[threads] / seconds:.2f}")
            if reference is None:
                reference = levels(out)
            if not diff:
                delta = np.abs(levels(out) - reference)
                diff = f"{delta.max():.0f} | {delta.mean():.3f}"
        rows.append(f"| {name} | " + " | ".join(cells) + f" | {diff or '–'} |")
        print(rows[-1], flush=True)
    text = "\n".join(rows)
    print(text)
    if args.write:
        write_section(Path(args.write), "CPU runtimes", f"{machine_description()}; the shipped weights, one forward "
                      f"pass of a flip-averaged {args.side}×{args.side} crop (a batch of two), CPU time (user + "
                      "system) per pass after a warm-up, mean of "
                      f"{args.repeats}; levels: the fill against torch float32's, in 0–255 steps.\n\n" + text,
                      "python bench/cpu_runtimes.py --write docs/benchmarks.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
