import json

import numpy as np
from PIL import Image

from pconv.evaluate import GRID_PHOTOS, GRID_TILE, colour_bias, grid_cases, score, seam
from pconv.evaluate import main as evaluate_main


def test_evaluation_on_three_tiny_photos(tmp_path, tiny_weights, capsys):
    rng = np.random.default_rng(0)
    folder = tmp_path / "eval"
    folder.mkdir()
    for i, shape in enumerate([(70, 90), (71, 90), (150, 200)]):  # the last wider than the window below
        Image.fromarray(rng.integers(0, 256, (*shape, 3), dtype=np.uint8)).save(folder / f"p{i}.png")
    out = tmp_path / "means.json"
    code = evaluate_main(["--photos", str(folder), "--weights", str(tiny_weights), "--crop", "0", "--single-pass",
                          "--window", "128", "--other-weights", f"again={tiny_weights}",
                          "--json", str(out), "--plot", str(tmp_path / "plot.png"),
                          "--grid", str(tmp_path / "grid.png")])
    assert code == 0
    printed = capsys.readouterr().out
    assert "3 photos" in printed and "| strokes (0.5, 0.6] |" in printed and "| objects (0.1, 0.2] |" in printed
    for engine in ("pconv", "telea", "ns", "pconv-1pass", "pconv-w128", "pconv-again"):
        assert engine in printed
    means = json.loads(out.read_text())["means"]
    assert set(means) == {"pconv", "telea", "ns", "pconv-1pass", "pconv-w128", "pconv-again"}
    assert len(means["telea"]) == 6 + 3  # stroke and object buckets
    assert means["pconv"] == means["pconv-again"]  # the same weights by another name: the same masks and fills
    assert means["pconv"] != means["pconv-1pass"]  # flip averaging changes the fills
    assert means["pconv"] != means["pconv-w128"]  # large holes filled at reduced scale
    assert all(0 < m["ssim"] <= 1 and m["psnr"] > 0 and m["bias"] >= 0 and m["seam"] >= 0
               for by in means.values() for m in by.values())
    assert Image.open(tmp_path / "plot.png").size[0] > 500
    # the by-eye grid: a row per photo (all three here), hole + 6 engines + truth, 1:1 tiles
    assert Image.open(tmp_path / "grid.png").size == (8 * GRID_TILE, 3 * (GRID_TILE + 14))


def test_grid_cases_are_fixed_object_masks(tmp_path):
    rng = np.random.default_rng(1)
    for i in range(20):
        Image.fromarray(rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)).save(tmp_path / f"p{i:02d}.png")
    first, again = grid_cases(tmp_path), grid_cases(tmp_path)
    assert len(first) == GRID_PHOTOS
    assert [c[0].name for c in first] == [c[0].name for c in again]
    assert all(np.array_equal(a[2], b[2]) for a, b in zip(first, again))
    assert all(0.05 < h.mean() <= 0.2 for _, _, h in first)


def test_colour_bias_sees_a_lighter_fill_and_not_noise():
    rng = np.random.default_rng(0)
    truth = rng.integers(60, 200, (64, 64, 3)).astype(np.uint8)
    hole = np.zeros((64, 64), bool)
    hole[16:48, 16:48] = True
    lighter = truth.copy()
    lighter[hole] = np.clip(truth[hole].astype(int) + (5, 5, 0), 0, 255)
    assert abs(colour_bias(truth, lighter, hole) - 10 / 3) < 0.01  # +5 in red and green, 0 in blue
    shuffled = truth.copy()
    shuffled[hole] = rng.permutation(truth[hole])  # wrong pixels, right mean colour
    assert colour_bias(truth, shuffled, hole) < 1e-9


def test_seam_sees_an_outline_but_not_a_smooth_join():
    y, x = np.mgrid[0:64, 0:64]
    ramp = x * 2 + 40
    texture = np.random.default_rng(0).integers(-8, 9, (64, 64))
    truth = np.repeat((ramp + texture).astype(np.uint8)[..., None], 3, 2)  # a textured ramp
    hole = np.zeros((64, 64), bool)
    hole[20:44, 20:44] = True
    assert seam(truth, truth.copy(), hole) == 0
    step = truth.copy()
    step[hole] = np.clip(truth[hole].astype(int) + 30, 0, 255)  # a patch 30 levels lighter: an outline
    assert seam(truth, step, hole) > 5
    smooth = truth.copy()
    smooth[hole] = np.repeat(ramp.astype(np.uint8)[..., None], 3, 2)[hole]  # the ramp without its texture
    assert seam(truth, smooth, hole) < seam(truth, step, hole) / 3  # blur, not an outline


def test_score_hole_metrics_ignore_the_outside():
    truth = np.zeros((32, 32, 3), np.uint8)
    hole = np.zeros((32, 32), bool)
    hole[8:16, 8:16] = True
    filled = truth.copy()
    filled[hole] = 10
    s = score(truth, filled, hole)
    assert abs(s["hole_l1"] - 10 / 255) < 1e-9
    assert abs(s["l1"] - 10 / 255 * hole.mean()) < 1e-9
    assert s["hole_psnr"] < s["psnr"]
