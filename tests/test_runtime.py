"""The network through OpenVINO on CPU (pconv/runtime.py): the same fill as torch's, converted once."""

import numpy as np
import pytest
import torch

from pconv import runtime
from pconv.inpaint import PConvFiller
from pconv.model import fold_batchnorm
from pconv.weights import DEFAULT_WEIGHTS, load_model


def crops(n, height, width, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, height, width, 3), dtype=np.uint8)
    holes = np.zeros((n, height, width), bool)
    holes[:, height // 4: height // 2, width // 3: 2 * width // 3] = True
    return images, holes


def test_auto_means_openvino_on_cpu_and_torch_on_cuda():
    assert runtime.resolve("auto", torch.device("cpu")) == "openvino"
    assert runtime.resolve("auto", torch.device("cuda")) == "torch"
    assert runtime.resolve("openvino", torch.device("cuda")) == "torch"  # CUDA is torch's, whatever the setting
    assert runtime.resolve("torch", torch.device("cpu")) == "torch"
    with pytest.raises(ValueError, match="unknown CPU runtime"):
        runtime.resolve("tensorrt", torch.device("cpu"))


def test_openvino_float32_fills_as_torch_does_at_any_size_and_batch(tiny_weights):
    model = load_model(tiny_weights)
    reference = PConvFiller(model, "cpu", runtime="torch", bridge=0)
    converted = PConvFiller(model, "cpu", runtime="openvino-f32", bridge=0)
    assert converted.runtime == "openvino-f32" and "32" in converted._compiled.precision
    for n, height, width in ((1, 256, 256), (3, 128, 384)):  # one converted model serves every shape
        images, holes = crops(n, height, width, seed=n)
        ours, torchs = converted.fill_batch(images, holes), reference.fill_batch(images, holes)
        assert np.array_equal(ours[~holes], images[~holes])
        assert np.abs(ours.astype(int) - torchs.astype(int)).max() <= 1  # float32 sums in another order


def test_the_cpus_own_precision_stays_within_a_few_levels_on_the_shipped_weights():
    model = load_model(DEFAULT_WEIGHTS)
    images, holes = crops(2, 256, 256, seed=3)
    torchs = PConvFiller(model, "cpu", runtime="torch").fill_batch(images, holes).astype(int)
    ours = PConvFiller(model, "cpu", runtime="openvino").fill_batch(images, holes).astype(int)
    difference = np.abs(ours - torchs)
    assert difference[~holes].max() == 0
    assert difference.max() <= 4 and difference[holes].mean() < 0.5


def test_a_converted_model_is_kept_and_a_damaged_or_unwritable_cache_only_costs_a_conversion(
        tiny_weights, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("SNEAKY_CACHE_DIR", str(tmp_path))
    exports = []
    real_export = torch.export.export
    monkeypatch.setattr(torch.export, "export", lambda *a, **k: exports.append(1) or real_export(*a, **k))
    model = fold_batchnorm(load_model(tiny_weights))
    runtime.convert(model)
    kept = list((tmp_path / "openvino").glob("pconv-*.xml"))
    assert len(exports) == 1 and len(kept) == 1 and kept[0].with_suffix(".bin").is_file()
    runtime.convert(model)
    assert len(exports) == 1  # read back, not converted again
    other = fold_batchnorm(load_model(tiny_weights))
    with torch.no_grad():
        next(other.parameters()).add_(1)
    assert runtime.model_digest(other) != runtime.model_digest(model)  # other weights, another file
    # a damaged copy, in a cache that cannot be written now: converted again, used, and said
    kept[0].write_text("<not a model")

    def refuse(*_):
        raise OSError("read-only file system")

    monkeypatch.setattr(runtime.os, "replace", refuse)
    fill = runtime.OpenVINOFill(model, threads=1, precision="f32")
    assert len(exports) == 2
    images, holes = crops(1, 128, 128)
    image, valid = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255, torch.from_numpy(~holes)[:, None].float()
    with torch.no_grad():
        torchs = model.fill(image.clone(), valid.clone())
    ours = fill(image, valid)
    assert torch.allclose(ours, torchs, atol=1e-4)
    assert "could not read the cached model" in caplog.text and "could not keep the converted model" in caplog.text
    assert not list((tmp_path / "openvino").glob("tmp*"))  # no half-written files left behind


def test_auto_falls_back_to_torch_when_openvino_cannot_take_the_network(tiny_weights, monkeypatch, caplog):
    def broken(*_, **__):
        raise RuntimeError("conversion failed")

    monkeypatch.setattr(runtime, "OpenVINOFill", broken)
    model = load_model(tiny_weights)
    filler = PConvFiller(model, "cpu", runtime="auto", bridge=0)
    assert filler.runtime == "torch" and filler._compiled is None
    assert "filling through torch" in caplog.text
    images, holes = crops(1, 128, 128)
    assert np.array_equal(filler.fill_batch(images, holes),
                          PConvFiller(model, "cpu", runtime="torch", bridge=0).fill_batch(images, holes))
    with pytest.raises(RuntimeError, match="conversion failed"):  # named, not auto: the failure shows
        PConvFiller(model, "cpu", runtime="openvino")
