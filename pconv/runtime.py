"""The network on CPU through OpenVINO: the same PConv UNet, converted once when the engine loads,
run at the CPU's fastest precision (bfloat16 on CPUs with AMX or AVX-512 BF16, float32 elsewhere).

On the 2-core Xeon with AMX this project measures on, a pass of two 512×512 crops costs 0.14 s of CPU
against 0.62 s in torch (float32) and 0.42 s in ONNX Runtime; fills differ from torch's by at most 2 of
255 levels, and the evaluation's measures do not move (docs/benchmarks.md, "CPU runtimes"). torch stays
for training and CUDA.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from .model import PConvUNet

log = logging.getLogger(__name__)

RUNTIMES = ("auto", "torch", "openvino", "openvino-f32")


def available(runtime: str) -> bool:
    if runtime == "torch":
        return True
    return runtime.startswith("openvino") and importlib.util.find_spec("openvino") is not None


def resolve(runtime: str, device: torch.device) -> str:
    """``auto``: OpenVINO on CPU where it is installed, torch otherwise (and always on CUDA)."""
    if runtime not in RUNTIMES:
        raise ValueError(f"unknown CPU runtime {runtime!r}; choose from {', '.join(RUNTIMES)}")
    if device.type != "cpu":
        return "torch"
    if runtime == "auto":
        return "openvino" if available("openvino") else "torch"
    if not available(runtime):
        raise ValueError(f"CPU runtime {runtime} is not installed (pip install openvino)")
    return runtime


class _Fill(torch.nn.Module):
    """``PConvUNet.fill`` as a module's forward, for tracing."""

    def __init__(self, model: PConvUNet) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        return self.model.fill(image, valid)


def cache_dir() -> Path:
    """Where converted models are kept between processes: ``SNEAKY_CACHE_DIR``, else the user's cache."""
    default = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sneaky"
    return Path(os.environ.get("SNEAKY_CACHE_DIR") or default)


def model_digest(model: PConvUNet) -> str:
    """The model's identity for the cache: its structure, every tensor, and the converting libraries."""
    import openvino as ov

    digest = hashlib.sha256(f"{model.config}|{torch.__version__}|{ov.__version__}".encode())
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:24]


def convert(model: PConvUNet):  # -> openvino.Model
    """``model.fill`` as an OpenVINO model for any batch and crop size, through ``torch.export``: about
    ten seconds, so the result is kept in ``cache_dir()`` and the next process reads it in a fraction of one.
    A cache that cannot be written is skipped."""
    import openvino as ov

    path = cache_dir() / "openvino" / f"pconv-{model_digest(model)}.xml"
    if path.is_file():
        try:
            return ov.Core().read_model(path)
        except Exception:  # a damaged or partial file: convert again, and replace it
            log.warning("could not read the cached model %s; converting again", path)
    side = model.config.stride * 2
    example = (torch.rand(2, 3, side, side + model.config.stride), torch.ones(2, 1, side, side + model.config.stride))
    auto = {0: torch.export.Dim.AUTO, 2: torch.export.Dim.AUTO, 3: torch.export.Dim.AUTO}
    with torch.no_grad():
        exported = torch.export.export(_Fill(model).eval(), example, dynamic_shapes=(auto, auto))
    converted = ov.convert_model(exported)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=path.parent) as scratch:  # whole files or none, for other processes
            staged = Path(scratch) / path.name
            ov.save_model(converted, staged, compress_to_fp16=False)
            os.replace(staged.with_suffix(".bin"), path.with_suffix(".bin"))
            os.replace(staged, path)
    except OSError as exc:
        log.warning("could not keep the converted model in %s: %s", path.parent, exc)
    return converted


class OpenVINOFill:
    """``model.fill`` compiled by OpenVINO for any batch and crop size (the stride's multiples)."""

    def __init__(self, model: PConvUNet, threads: int = 0, precision: str | None = None) -> None:
        import openvino as ov

        converted = convert(model)
        # no pinning: OpenVINO would pin every pool process's threads to the same first cores (two processes
        # on two cores then share one; docs/benchmarks.md, "PConv through the stack")
        config: dict[str, object] = {"ENABLE_CPU_PINNING": False}
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        if precision:
            config["INFERENCE_PRECISION_HINT"] = precision
        self.compiled = ov.Core().compile_model(converted, "CPU", config)
        self.precision = str(self.compiled.get_property("INFERENCE_PRECISION_HINT"))
        log.info("PConv on OpenVINO, %s", self.precision)

    def __call__(self, image: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        request = self.compiled.create_infer_request()  # one per call: a request is not shared across threads
        request.infer({0: image.numpy(), 1: valid.numpy()})
        return torch.from_numpy(np.array(request.get_output_tensor(0).data))


def prepare(weights: str | None = None) -> Path:
    """Convert a weights file (default: the shipped one) into the cache as a CPU worker would, so an image
    built with it starts without converting (``python -m pconv.runtime``, deploy/Dockerfile.worker)."""
    from .model import fold_batchnorm
    from .weights import DEFAULT_WEIGHTS, load_model

    model = fold_batchnorm(load_model(Path(weights) if weights else DEFAULT_WEIGHTS))
    convert(model)
    return cache_dir() / "openvino" / f"pconv-{model_digest(model)}.xml"


if __name__ == "__main__":
    import sys

    print(prepare(sys.argv[1] if len(sys.argv) > 1 else None))
