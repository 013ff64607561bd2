import warnings

import pytest
import torch

from pconv.model import PConvUNet, PConvUNetConfig
from pconv.weights import save_model


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
