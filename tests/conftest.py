import os
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from pconv.model import PConvUNet, PConvUNetConfig
from pconv.weights import save_model


@pytest.fixture(scope="session", autouse=True)
def model_cache(tmp_path_factory):
    """Converted models (pconv/runtime.py) go to this run's own cache, which workers it starts share."""
    path = tmp_path_factory.mktemp("model-cache")
    os.environ["SNEAKY_CACHE_DIR"] = str(path)
    return path


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory):
    """A small PConv model file (random weights, marked trained so the loader stays quiet):
    enough to exercise every code path of inference without a real training run."""
    torch.manual_seed(0)
    model = PConvUNet(PConvUNetConfig(layers=7, width=0.125))
    path = tmp_path_factory.mktemp("weights") / "tiny.safetensors"
    save_model(model, path, {"training": {"steps": 0, "note": "test fixture"}})
    return path


@pytest.fixture(scope="session")
def pconv_inpainter(tiny_weights):
    from pconv.inpaint import Inpainter

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return Inpainter.load("pconv", weights=tiny_weights, device="cpu")


@pytest.fixture
def photos(tmp_path):
    """Four small training photos from two sources (named SOURCE_i.jpg)."""
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i, source in enumerate(["a", "a", "a", "b"]):
        y, x = np.mgrid[0:80, 0:96]
        smooth = np.stack([x * 2 + i * 10, y * 3, (x + y) + 40 * i], -1) % 256
        Image.fromarray((smooth + rng.integers(0, 8, smooth.shape)).astype(np.uint8)).save(folder / f"{source}_{i}.jpg")
    return folder
