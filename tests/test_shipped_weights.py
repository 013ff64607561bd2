"""The weights that ship in the package: a smoke test, not a quality claim (docs/model.md is)."""

import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from pconv.inpaint import Inpainter
from pconv.weights import DEFAULT_WEIGHTS, load_model, random_model, read_metadata

pytestmark = pytest.mark.skipif(not DEFAULT_WEIGHTS.is_file(), reason="no weights shipped yet")


def test_shipped_weights_load_with_their_metadata():
    meta = read_metadata(DEFAULT_WEIGHTS)
    assert meta["trained"] is True
    assert meta["architecture"]["layers"] == 7 and meta["architecture"]["width"] > 0
    assert meta["training"]["steps"] > 0 and meta["training"]["images_seen"] >= meta["training"]["steps"]
    assert meta["evaluation"] and "research use" in meta["terms"]
    assert DEFAULT_WEIGHTS.stat().st_size <= 60 * 1024 * 1024
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # trained weights load without the random-weights warning
        model = load_model(DEFAULT_WEIGHTS)
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_shipped_weights_are_the_default_and_differ_from_random():
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:256, 0:256]
    photo = Image.fromarray(np.stack([x, y, (x + y) // 2], -1).astype(np.uint8))
    hole = np.zeros((256, 256), bool)
    hole[96:160, 80:176] = True
    shipped = Inpainter.load("pconv")
    assert shipped.filler.trained
    config = shipped.filler.model.config
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pconv.inpaint import PConvFiller

        noise = Inpainter(PConvFiller(random_model(config, seed=int(rng.integers(100)))))
    a = np.asarray(shipped.inpaint_hole(photo, hole)).astype(int)
    b = np.asarray(noise.inpaint_hole(photo, hole)).astype(int)
    assert np.abs(a - b)[hole].mean() > 5
    # on a smooth gradient, trained weights fill close to the truth; random ones do not
    truth = np.asarray(photo).astype(int)
    assert np.abs(a - truth)[hole].mean() < np.abs(b - truth)[hole].mean()
