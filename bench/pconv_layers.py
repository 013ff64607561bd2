"""How much does the partial convolution cost? One network, three layer types, one run.

- ours: PartialConv2d, masks carried as one plane per source, sum(M) by a 1-output-channel conv;
- reference: the same network with the reference implementations' layer: a per-channel mask,
  sum(M) by a C_out × C_in × k × k all-ones convolution, a C_out-channel mask passed on;
- plain: the same network with nn.Conv2d and no mask work at all: the floor.

Prints a table of median times and ratios (variants interleaved, so machine noise hits all
three alike) and, with --write, replaces its section in docs/benchmarks.md.

    python bench/pconv_layers.py [--sizes 256 512] [--batches 1 4 16] [--width 1.0] [--repeats 7] [--write FILE]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pconv.model import PConvUNet, PConvUNetConfig, fold_batchnorm  # noqa: E402
from pconv.report import machine_description, write_section  # noqa: E402


class ReferencePartialConv2d(nn.Conv2d):
    """The reference implementations' way: a full per-channel mask and an all-ones mask kernel."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, bias=True, mask_groups=None, **_):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2, bias=bias)
        self.register_buffer("ones", torch.ones(out_channels, in_channels, kernel_size, kernel_size), persistent=False)
        self.window_size = in_channels * kernel_size * kernel_size

    def forward(self, x, mask):
        xs, ms = (x, mask) if isinstance(x, (tuple, list)) else ((x,), (mask,))
        x = torch.cat(xs, 1)
        mask = torch.cat([m.expand(-1, xi.shape[1], -1, -1) for xi, m in zip(xs, ms)], 1)
        with torch.no_grad():
            count = F.conv2d(mask, self.ones, None, self.stride, self.padding)
            new_mask = (count > 0).float()
            ratio = self.window_size / count.clamp(min=1) * new_mask
        raw = F.conv2d(x * mask, self.weight, None, self.stride, self.padding)
        out = raw * ratio
        if self.bias is not None:
            out = (out + self.bias.view(1, -1, 1, 1)) * new_mask
        return out, new_mask


class PlainConv2d(nn.Conv2d):
    """No mask at all: the cost of the convolutions alone (a folded BatchNorm rides in the bias)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, bias=True, mask_groups=None, **_):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2, bias=bias)
        self.shift = None

    def forward(self, x, mask):
        xs, ms = (x, mask) if isinstance(x, (tuple, list)) else ((x,), (mask,))
        s = self.stride[0]
        bias = self.shift if self.shift is not None else self.bias
        out = F.conv2d(torch.cat(xs, 1) if len(xs) > 1 else xs[0], self.weight, bias, self.stride, self.padding)
        return out, ms[0][..., ::s, ::s]


def time_once(model, image, mask) -> float:
    start = time.perf_counter()
    model(image, mask)
    return time.perf_counter() - start


def bench(size: int, layers: int, width: float, repeats: int, batch: int) -> dict:
    torch.manual_seed(0)
    config = PConvUNetConfig(layers=layers, width=width)
    ours = PConvUNet(config).eval()
    variants = {"ours": ours, "folded": fold_batchnorm(ours)}
    for name, conv in (("reference", ReferencePartialConv2d), ("plain", PlainConv2d)):
        model = PConvUNet(config, conv=conv).eval()
        model.load_state_dict(ours.state_dict())
        variants[name] = model
    variants["plain"] = fold_batchnorm(variants["plain"])  # the floor: convolutions only
    image = torch.randn(batch, 3, size, size)
    mask = (torch.rand(batch, 1, size, size) > 0.25).float()
    mask[..., size // 4 : size // 2, size // 4 : size // 2] = 0
    times = {name: [] for name in variants}
    with torch.inference_mode():
        expected = variants["ours"](image, mask)
        diff = max((variants[n](image, mask) - expected).abs().max().item() for n in ("reference", "folded"))
        for model in variants.values():  # warm-up
            model(image, mask)
        for _ in range(repeats):
            for name, model in variants.items():
                times[name].append(time_once(model, image, mask))
    med = {name: statistics.median(t) * 1000 for name, t in times.items()}
    return {"size": size, "layers": layers, "width": width, "batch": batch, **med, "diff": diff}


def table(rows: list[dict]) -> str:
    lines = [
        "| input | layers | width | batch | ours ms | folded ms | reference ms | plain ms | reference / ours "
        "| folded / plain | max abs diff |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r['size']}² | {r['layers']} | {r['width']} | {r['batch']} | {r['ours']:.1f} | {r['folded']:.1f} | "
            f"{r['reference']:.1f} | {r['plain']:.1f} | {r['reference'] / r['ours']:.2f}× | "
            f"{r['folded'] / r['plain']:.2f}× | {r['diff']:.1e} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--batches", type=int, nargs="+", default=[1])
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--write", help="markdown file whose 'pconv layers' section is replaced")
    args = p.parse_args(argv)
    rows = []
    for size in args.sizes:
        for batch in args.batches:
            layers = 7 if size < 512 else 8
            rows.append(bench(size, layers, args.width, args.repeats, batch))
            print(table(rows[-1:]).splitlines()[-1], flush=True)
    text = table(rows)
    print()
    print(text)
    if args.write:
        body = (
            f"{machine_description()}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
            f"inference mode, median of {args.repeats} interleaved runs.\n\n{text}\n\n"
            "ours: PartialConv2d with BatchNorm as a layer (training form); folded: the same with BatchNorm "
            "folded into the convolutions, as `Inpainter` runs it; reference: the reference implementations' "
            "all-ones mask convolution; plain: convolutions only, BatchNorm folded (the floor). "
            "Goals: reference / ours ≥ 1.8× (issue 2); folded / plain ≤ 1.25× at every batch size (issue 9); "
            "outputs equal."
        )
        command = "python bench/pconv_layers.py " + " ".join(argv if argv is not None else sys.argv[1:])
        write_section(Path(args.write), f"pconv layers, width {args.width}", body, command)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
