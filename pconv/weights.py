"""Model files: safetensors tensors plus a JSON header (architecture, training, metrics).

Nothing here unpickles a model file. The one exception is a user's own VGG16
file in torchvision's format, read with ``torch.load(weights_only=True)``,
which refuses anything but tensors and plain containers.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from .model import PConvUNet, PConvUNetConfig

log = logging.getLogger(__name__)

FORMAT = "sneaky-pconv/1"
META_KEY = "sneaky"
DEFAULT_WEIGHTS = Path(__file__).parent / "weights" / "pconv.safetensors"


class WeightsError(ValueError):
    """A weights file that cannot be used: missing, not safetensors, or not ours."""


class RandomWeightsWarning(UserWarning):
    """The model has random weights: its output is noise, not inpainting."""


def save_model(model: PConvUNet, path: str | Path, metadata: dict[str, Any] | None = None, half: bool = False):
    """Write the model; ``metadata`` (training, metrics, ...) is stored beside the architecture."""
    meta = {"format": FORMAT, "architecture": model.config.to_dict(), "trained": True, **(metadata or {})}
    tensors = {}
    for name, t in model.state_dict().items():
        t = t.detach().cpu()
        if half and t.is_floating_point() and "running_" not in name:
            t = t.half()
        tensors[name] = t.contiguous()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata={META_KEY: json.dumps(meta, sort_keys=True)})


def read_metadata(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get(META_KEY)
    except Exception as exc:  # safetensors raises its own error types for foreign files
        raise WeightsError(f"{path} is not a safetensors file: {exc}") from None
    if raw is None:
        raise WeightsError(f"{path} has no '{META_KEY}' metadata: not a Sneaky model file")
    meta = json.loads(raw)
    if meta.get("format") != FORMAT:
        raise WeightsError(f"{path}: unsupported format {meta.get('format')!r}, expected {FORMAT!r}")
    return meta


def load_model(path: str | Path, device: str | torch.device = "cpu") -> PConvUNet:
    """Build the network its metadata describes and load its tensors, in float32 and eval mode."""
    meta = read_metadata(path)
    model = PConvUNet(PConvUNetConfig.from_dict(meta["architecture"]))
    state = load_file(str(path), device="cpu")
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    model.load_state_dict(state)
    model.metadata = meta
    if not meta.get("trained", False):
        warn_random(f"{path} holds untrained (random) weights")
    return model.to(device).eval()


def random_model(config: PConvUNetConfig | None = None, seed: int = 0) -> PConvUNet:
    """A model with random weights, marked as such in its metadata and announced with a warning."""
    config = config or PConvUNetConfig()
    torch.manual_seed(seed)
    model = PConvUNet(config).eval()
    model.metadata = {"format": FORMAT, "architecture": config.to_dict(), "trained": False}
    warn_random("using a PConv model with random weights")
    return model


def warn_random(message: str) -> None:
    message += ": its output is noise, not inpainting"
    log.warning(message)
    warnings.warn(message, RandomWeightsWarning, stacklevel=3)


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A plain state dict from safetensors, or from torchvision's ``.pth`` format without
    running pickled code (``weights_only=True``)."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    if path.suffix == ".safetensors":
        return load_file(str(path))
    state = torch.load(str(path), map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise WeightsError(f"{path} does not hold a state dict")
    return state


def ship(source: str | Path, target: str | Path, evaluations: list[str | Path] = ()) -> dict:
    """Copy a training run's model to ``target`` in float16, its metadata joined by evaluation
    results (``python -m pconv.evaluate --json``): what ships in pconv/weights/."""
    model = load_model(source)
    meta = {k: v for k, v in model.metadata.items() if k not in ("format", "architecture")}
    meta["evaluation"] = [json.loads(Path(p).read_text()) for p in evaluations]
    meta["terms"] = ("trained on the project's shared photo datasets, which are for research use; "
                     "so are these weights")
    save_model(model, target, meta, half=True)
    return read_metadata(target)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(prog="python -m pconv.weights", description="ship a run's model")
    parser.add_argument("source")
    parser.add_argument("target")
    parser.add_argument("--evaluation", nargs="*", default=[], help="JSON files from pconv.evaluate --json")
    args = parser.parse_args()
    shipped = ship(args.source, args.target, args.evaluation)
    print(json.dumps({k: shipped[k] for k in ("architecture", "training")}, indent=1))
