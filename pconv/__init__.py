"""pconv: Partial Convolutions inpainting (Liu et al. 2018, arXiv 1804.07723).

Usable on its own: no Redis, Flask or Celery. Names are imported lazily so that
the torch-free parts (``pconv.images``, ``pconv.masks``) stay light to import.
"""

from importlib import import_module

ENGINES = ("pconv", "telea", "ns")  # here, not in inpaint.py, so torch-free code can read it

_EXPORTS = {
    "PartialConv2d": "layers",
    "PConvUNet": "model",
    "PConvUNetConfig": "model",
    "pconv_unet": "model",
    "InpaintingLoss": "losses",
    "LossWeights": "losses",
    "MaskGenerator": "masks",
    "bucket_masks": "masks",
    "Inpainter": "inpaint",
    "InpaintError": "images",
    "MaskSizeMismatch": "images",
    "load_model": "weights",
    "save_model": "weights",
    "read_metadata": "weights",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'pconv' has no attribute {name!r}")
