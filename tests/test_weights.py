import json

import pytest
import torch
from safetensors import safe_open

from pconv.model import PConvUNet, PConvUNetConfig
from pconv.weights import RandomWeightsWarning, WeightsError, load_model, random_model, read_metadata, save_model


def test_round_trip_keeps_tensors_config_and_metadata(tmp_path):
    torch.manual_seed(1)
    model = PConvUNet(PConvUNetConfig(layers=7, width=0.125, upsampling="bilinear"))
    model.encoder[1].bn.running_mean.uniform_()  # buffers travel too
    path = tmp_path / "m.safetensors"
    save_model(model, path, {"training": {"steps": 12}, "metrics": {"psnr": 1.5}})
    meta = read_metadata(path)
    assert meta["architecture"]["width"] == 0.125 and meta["training"]["steps"] == 12 and meta["trained"] is True
    loaded = load_model(path)
    assert loaded.config == model.config and not loaded.training
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name
    with safe_open(str(path), "pt") as f:  # the header is plain JSON
        assert json.loads(f.metadata()["sneaky"])["format"] == "sneaky-pconv/1"


def test_half_precision_file_loads_as_float32(tmp_path):
    model = PConvUNet(PConvUNetConfig(width=0.125))
    path = tmp_path / "half.safetensors"
    save_model(model, path, half=True)
    loaded = load_model(path)
    w = loaded.encoder[0].conv.weight
    assert w.dtype == torch.float32
    assert torch.allclose(w, model.encoder[0].conv.weight, atol=1e-3)


def test_random_weights_are_reported(tmp_path):
    with pytest.warns(RandomWeightsWarning):
        model = random_model(PConvUNetConfig(width=0.125))
    assert model.metadata["trained"] is False
    path = tmp_path / "random.safetensors"
    save_model(model, path, {"trained": False})
    assert read_metadata(path)["trained"] is False
    with pytest.warns(RandomWeightsWarning):
        load_model(path)


def test_loader_never_unpickles(tmp_path):
    pickled = tmp_path / "model.safetensors"
    torch.save(PConvUNet(PConvUNetConfig(width=0.125)).state_dict(), pickled)  # a pickle in disguise
    with pytest.raises(WeightsError, match="not a safetensors file"):
        load_model(pickled)
    with pytest.raises(WeightsError, match="not found"):
        load_model(tmp_path / "missing.safetensors")


def test_foreign_safetensors_is_refused(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(path))
    with pytest.raises(WeightsError, match="not a Sneaky model file"):
        load_model(path)
