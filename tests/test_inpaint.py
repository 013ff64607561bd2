"""Inpainter on real PIL photos: the README's image rules, for every engine."""

import io
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageCms

from pconv.images import MaskSizeMismatch, mask_to_hole
from pconv.inpaint import Inpainter, OpenCVFiller

PHOTOS = sorted((Path(__file__).resolve().parent / "data").glob("*.jpg"))  # tests/data/README.md


def photo(w, h, mode="RGB", seed=0):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    rgb = np.stack([(x * 255 // max(1, w - 1)), (y * 255 // max(1, h - 1)), ((x + y) % 256)], -1).astype(np.uint8)
    rgb = np.clip(rgb.astype(int) + rng.integers(-10, 10, rgb.shape), 0, 255).astype(np.uint8)
    image = Image.fromarray(rgb)
    if mode == "RGBA":
        image.putalpha(Image.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8)))
    elif mode == "LA":
        image = image.convert("L")
        image.putalpha(Image.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8)))
    elif mode != "RGB":
        image = image.convert(mode)
    return image


def rect_mask(w, h, box):
    m = np.zeros((h, w), np.uint8)
    x0, y0, x1, y1 = box
    m[y0:y1, x0:x1] = 255
    return Image.fromarray(m)


@contextmanager
def forward_passes(inpainter):
    """Record the shape of every batch the filler is asked to fill."""
    seen = []
    fill = inpainter.filler.fill_batch
    inpainter.filler.fill_batch = lambda images, holes: seen.append(images.shape) or fill(images, holes)
    try:
        yield seen
    finally:
        inpainter.filler.fill_batch = fill


def outside_unchanged(before: Image.Image, after: Image.Image, hole: np.ndarray) -> bool:
    a, b = np.asarray(before), np.asarray(after)
    return a.shape == b.shape and bool((a[~hole] == b[~hole]).all())


@pytest.fixture(params=["pconv", "telea", "ns"])
def inpainter(request, pconv_inpainter):
    return pconv_inpainter if request.param == "pconv" else Inpainter.load(request.param)


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "LA", "CMYK"])
def test_modes_are_kept_and_outside_is_identical(inpainter, mode):
    image = photo(203, 151, mode)
    mask = rect_mask(203, 151, (40, 30, 90, 70))
    out = inpainter.inpaint(image, mask)
    hole = mask_to_hole(mask)
    assert out.size == image.size and out.mode == mode
    assert outside_unchanged(image, out, hole)
    colour = np.asarray(out.convert("RGB"))[hole]
    assert not np.array_equal(colour, np.asarray(image.convert("RGB"))[hole])  # the hole was filled
    if "A" in mode:  # alpha untouched, in the hole too
        assert np.array_equal(np.asarray(out)[..., -1], np.asarray(image)[..., -1])


def test_palette_image_comes_back_as_rgb(inpainter):
    image = photo(64, 48).quantize(32)
    mask = rect_mask(64, 48, (10, 10, 20, 20))
    out = inpainter.inpaint(image, mask)
    assert out.mode == "RGB" and outside_unchanged(image.convert("RGB"), out, mask_to_hole(mask))


def test_empty_mask_returns_photo_without_running_the_engine():
    class Exploding(OpenCVFiller):
        def fill_batch(self, images, holes):
            raise AssertionError("the engine must not run for an empty mask")

    image = photo(50, 40)
    out = Inpainter(Exploding()).inpaint(image, Image.new("L", (50, 40), 127))  # 127 < 128: not a hole
    assert np.array_equal(np.asarray(out), np.asarray(image))


def test_full_mask_fills_everything(inpainter):
    image = photo(130, 70)
    out = inpainter.inpaint(image, Image.new("L", (130, 70), 255))
    assert out.size == (130, 70) and out.mode == "RGB"


def test_mask_size_mismatch():
    with pytest.raises(MaskSizeMismatch) as err:
        Inpainter.load("telea").inpaint(photo(50, 40), Image.new("L", (40, 50), 255))
    assert err.value.code == "mask_size_mismatch"


def test_exif_rotated_photo(inpainter):
    """A JPEG stored landscape with orientation 6 (rotate 90° to display): the mask is drawn on
    what the user sees (portrait), and the result comes back upright, without the tag."""
    stored = photo(120, 80)
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    stored.save(buf, "JPEG", exif=exif, quality=95)
    buf.seek(0)
    image = Image.open(buf)
    assert image.size == (120, 80)
    mask = rect_mask(80, 120, (10, 70, 30, 100))  # portrait, as displayed
    out = inpainter.inpaint(image, mask)
    assert out.size == (80, 120)
    assert out.getexif().get(0x0112) in (None, 1)
    upright = np.asarray(Image.open(buf).transpose(Image.Transpose.ROTATE_270))
    hole = mask_to_hole(mask)
    assert (np.asarray(out)[~hole] == upright[~hole]).all()
    with pytest.raises(MaskSizeMismatch):  # the stored (unrotated) size is refused
        inpainter.inpaint(image, rect_mask(120, 80, (0, 0, 5, 5)))


def test_icc_profile_is_kept():
    image = photo(40, 30)
    image.info["icc_profile"] = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    out = Inpainter.load("telea").inpaint(image, rect_mask(40, 30, (5, 5, 10, 10)))
    assert out.info.get("icc_profile") == image.info["icc_profile"]


@pytest.mark.parametrize(
    "mask_mode,expect",
    [("L", [False, False, True, True]), ("1", [False, False, True, True]), ("RGB", [False, False, True, True])],
)
def test_mask_grey_threshold(mask_mode, expect):
    grey = Image.fromarray(np.array([[0, 127, 128, 255]], np.uint8))
    assert mask_to_hole(grey.convert(mask_mode)).ravel().tolist() == expect


def test_rgba_mask_with_uniform_colour_uses_alpha():
    layer = Image.new("RGBA", (4, 1), (255, 0, 0, 0))
    layer.putpixel((2, 0), (255, 0, 0, 200))
    assert mask_to_hole(layer).ravel().tolist() == [False, False, True, False]
    # colour varies: the grey value decides, not alpha
    painted = Image.new("RGBA", (2, 1), (0, 0, 0, 255))
    painted.putpixel((1, 0), (255, 255, 255, 255))
    assert mask_to_hole(painted).ravel().tolist() == [False, True]


def test_sixteen_bit_mask():
    m = Image.fromarray(np.array([[0, 30000, 40000, 65535]], np.uint16))
    assert mask_to_hole(m).ravel().tolist() == [False, False, True, True]


@pytest.mark.parametrize("size", [(1, 1), (3, 250), (257, 129), (511, 333)])
def test_odd_sizes_through_pconv(pconv_inpainter, size):
    w, h = size
    image = photo(w, h)
    hole = np.zeros((h, w), bool)
    hole[h // 3 : h // 3 + max(1, h // 4), w // 3 : w // 3 + max(1, w // 4)] = True
    out = pconv_inpainter.inpaint(image, Image.fromarray(hole.view(np.uint8) * 255))
    assert out.size == size and outside_unchanged(image, out, hole)


def test_hole_larger_than_window_is_filled_at_reduced_scale(tiny_weights):
    inp = Inpainter.load("pconv", weights=tiny_weights, window=256)
    image = photo(700, 400)
    mask = rect_mask(700, 400, (20, 20, 680, 380))
    with forward_passes(inp) as seen:
        out = inp.inpaint(image, mask)
    assert all(max(shape[1:3]) <= 256 for shape in seen)
    assert out.size == (700, 400) and outside_unchanged(image, out, mask_to_hole(mask))


def assert_batched(seen, inpainter, crops, side):
    """``crops`` crops of side×side went through in as few forward passes as the batch size allows."""
    assert [shape[1:] for shape in seen] == [(side, side, 3)] * len(seen)
    assert sum(shape[0] for shape in seen) == crops
    assert len(seen) == -(-crops // inpainter.filler.batch_size)


def test_far_apart_holes_are_filled_in_separate_crops_and_batched(pconv_inpainter):
    image = photo(1600, 900)
    m = np.zeros((900, 1600), np.uint8)
    m[50:60, 50:70] = 255  # three small holes far apart, same crop size once padded
    m[800:830, 1500:1520] = 255
    m[400:420, 800:830] = 255
    with forward_passes(pconv_inpainter) as seen:
        out = pconv_inpainter.inpaint(image, Image.fromarray(m))
    assert_batched(seen, pconv_inpainter, crops=3, side=256)  # crops, not the whole photo
    assert outside_unchanged(image, out, m >= 128)


def test_large_crops_get_a_forward_pass_each(pconv_inpainter):
    """Memory follows pixels: crops too large to share a pass's pixel budget are filled one at a time."""
    image = photo(2400, 900)
    m = np.zeros((900, 2400), np.uint8)
    m[100:700, 50:650] = 255
    m[100:700, 1700:2300] = 255
    assert pconv_inpainter.filler.batch_size >= 2  # by count alone, they would share a pass
    with forward_passes(pconv_inpainter) as seen:
        out = pconv_inpainter.inpaint(image, Image.fromarray(m))
    assert [shape[0] for shape in seen] == [1, 1]
    assert all(2 * shape[1] * shape[2] > pconv_inpainter.filler.max_batch_pixels for shape in seen)
    assert outside_unchanged(image, out, m > 0)


def test_speckled_mask_gives_few_crops(pconv_inpainter):
    """Thousands of one-pixel specks must not become thousands of crops (nor a batch of them)."""
    rng = np.random.default_rng(1)
    hole = rng.random((300, 300)) < 0.3
    image = photo(300, 300)
    with forward_passes(pconv_inpainter) as seen:
        out = pconv_inpainter.inpaint(image, Image.fromarray(hole.view(np.uint8) * 255))
    assert sum(shape[0] for shape in seen) == 1
    assert outside_unchanged(image, out, hole)


def test_regions_are_bounded_and_disjoint():
    from pconv.regions import hole_boxes, plan_regions

    rng = np.random.default_rng(2)
    hole = np.zeros((3000, 4000), bool)
    ys, xs = rng.integers(0, 3000, 400), rng.integers(0, 4000, 400)
    hole[ys, xs] = True
    boxes = hole_boxes(hole, join=32)
    assert len(boxes) <= 400
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])
    covered = np.zeros_like(hole)
    for crop, box in plan_regions(boxes, (4000, 3000), 64, 256, 512):
        assert crop.x0 <= box.x0 and crop.y0 <= box.y0 and box.x1 <= crop.x1 and box.y1 <= crop.y1
        covered[box.y0 : box.y1, box.x0 : box.x1] = True
    assert covered[hole].all()


def test_batched_crops_equal_single_crops(pconv_inpainter):
    rng = np.random.default_rng(0)
    crops = [(np.asarray(photo(256, 256, seed=i)), rng.random((256, 256)) > 0.7) for i in range(3)]
    together = pconv_inpainter.fill_crops(crops)
    alone = [pconv_inpainter.fill_crops([c])[0] for c in crops]
    for a, b in zip(together, alone):
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 1


def test_missing_default_weights(monkeypatch, tmp_path):
    from pconv import weights
    from pconv.weights import RandomWeightsWarning

    monkeypatch.setattr(weights, "DEFAULT_WEIGHTS", tmp_path / "absent.safetensors")
    with pytest.raises(FileNotFoundError, match="no weights"):
        Inpainter.load("pconv")
    with pytest.warns(RandomWeightsWarning):
        inp = Inpainter.load("pconv", allow_random=True)
    assert inp.filler.trained is False


def test_unknown_engine():
    with pytest.raises(ValueError, match="unknown engine"):
        Inpainter.load("magic")


modes = st.sampled_from(["RGB", "RGBA", "L", "LA", "P"])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    w=st.integers(1, 300),
    h=st.integers(1, 300),
    mode=modes,
    seed=st.integers(0, 2**16),
    density=st.floats(0.0, 1.0),
    engine=st.sampled_from(["pconv", "telea"]),
)
def test_property_outside_hole_unchanged(pconv_inpainter, w, h, mode, seed, density, engine):
    inpainter = pconv_inpainter if engine == "pconv" else Inpainter.load("telea")
    image = photo(w, h, "RGB" if mode == "P" else mode, seed)
    if mode == "P":
        image = image.quantize(64)
    rng = np.random.default_rng(seed)
    hole = rng.random((h, w)) < density * 0.5
    if rng.random() < 0.5:  # and a blob, so holes are not only speckle
        y, x = rng.integers(0, h), rng.integers(0, w)
        hole[y : y + 40, x : x + 60] = True
    out = inpainter.inpaint(image, Image.fromarray(hole.view(np.uint8) * 255))
    expected = image.convert("RGB") if mode == "P" else image
    assert out.size == (w, h)
    assert out.mode == expected.mode
    assert outside_unchanged(expected, out, hole)


@pytest.mark.parametrize("path", PHOTOS, ids=lambda p: p.name)
def test_real_photo_with_every_engine(inpainter, path):
    image = Image.open(path)
    w, h = image.size
    mask = rect_mask(w, h, (w // 3, h // 3, w // 3 + 60, h // 3 + 40))
    out = inpainter.inpaint(image, mask)
    hole = mask_to_hole(mask)
    assert outside_unchanged(image.convert("RGB"), out, hole)


def test_inpaint_many_shares_forward_passes_across_photos(pconv_inpainter):
    work = []
    for i in range(3):
        image = photo(300, 200, seed=i)
        hole = np.zeros((200, 300), bool)
        hole[50 + i : 80, 60:100 + i] = True
        work.append((image, hole))
    work.append((photo(40, 30, "L"), np.zeros((30, 40), bool)))  # empty: returned as is
    with forward_passes(pconv_inpainter) as seen:
        together = pconv_inpainter.inpaint_many(work)
    assert_batched(seen, pconv_inpainter, crops=3, side=256)
    for (image, hole), out in zip(work, together):
        alone = np.asarray(pconv_inpainter.inpaint_hole(image, hole)).astype(int)
        assert np.abs(np.asarray(out).astype(int) - alone).max() <= 1
        assert outside_unchanged(image, out, hole)


def test_huge_photo_path_matches_the_ordinary_one(monkeypatch):
    """Block-reduced hole labelling (what a 144-megapixel mask gets) fills exactly like the ordinary
    path: its boxes are only a little larger, and the fill does not depend on more distant context."""
    from pconv import regions

    image = photo(900, 700)
    hole = np.zeros((700, 900), bool)
    hole[100:130, 200:260] = True
    hole[500:507, 600:700] = True
    hole[300, 450] = True
    inpainter = Inpainter.load("telea")
    ordinary = np.asarray(inpainter.inpaint_hole(image, hole))
    monkeypatch.setattr(regions, "MAX_LABEL_CELLS", 10_000)  # blocks of 8×8 on this photo
    assert len(regions.hole_boxes(hole)) == 3
    huge = np.asarray(inpainter.inpaint_hole(image, hole))
    assert np.array_equal(ordinary, huge)


def test_in_place_fill_spares_the_copy():
    image, hole = photo(60, 40), np.zeros((40, 60), bool)
    hole[10:20, 10:20] = True
    inpainter = Inpainter.load("telea")
    [copied] = inpainter.inpaint_many([(image, hole)])
    assert copied is not image
    [same] = inpainter.inpaint_many([(image, hole)], in_place=True)
    assert same is image and np.array_equal(np.asarray(same), np.asarray(copied))


def test_a_plan_fills_like_the_hole_it_came_from(pconv_inpainter):
    image = photo(400, 300)
    hole = np.zeros((300, 400), bool)
    hole[40:90, 50:120] = True
    hole[200:260, 300:390] = True
    plan = pconv_inpainter.plan(hole)
    original = hole.copy()
    hole[:] = False  # the plan keeps its own copies of the crops' holes
    [from_plan] = pconv_inpainter.inpaint_many([(image, plan)])
    direct = pconv_inpainter.inpaint_hole(image, original)
    assert np.array_equal(np.asarray(from_plan), np.asarray(direct))
    assert np.array_equal(plan.hole(), original)  # and gives the whole hole back, for a JPEG's patch
    with pytest.raises(ValueError, match="cannot fill"):
        pconv_inpainter.inpaint_many([(photo(10, 10), plan)])


def test_flip_average_is_the_mean_of_the_photo_and_its_mirror(tiny_weights):
    from pconv.inpaint import PConvFiller
    from pconv.weights import load_model

    model = load_model(tiny_weights)
    # the edge bridge is left out: this is about the two halves alone
    averaged = PConvFiller(model, "cpu", bridge=0)
    single = PConvFiller(model, "cpu", flip_average=False, bridge=0)
    assert averaged.flip_average and averaged.batch_size == single.batch_size // 2  # same work per pass
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, (2, 128, 128, 3), dtype=np.uint8)
    holes = rng.random((2, 128, 128)) < 0.2
    plain = single.fill_batch(images, holes).astype(float)
    mirrored = single.fill_batch(images[:, :, ::-1].copy(), holes[:, :, ::-1].copy())[:, :, ::-1].astype(float)
    assert np.abs(plain - mirrored)[holes].mean() > 1  # the two fills differ, so the test can tell
    both = averaged.fill_batch(images, holes).astype(float)
    assert np.abs(both - (plain + mirrored) / 2).max() <= 1  # rounding of the two halves
    assert (both[~holes] == images[~holes]).all()


def test_grow_hole_is_a_disc_dilation_of_the_hole_alone():
    from pconv.images import grow_hole

    hole = np.zeros((300, 400), bool)
    hole[150, 200] = True
    grown = grow_hole(hole, 5)
    ys, xs = np.nonzero(grown)
    distance = np.hypot(ys - 150, xs - 200)
    assert distance.max() <= 5.5 and grown[150, 195] and grown[145, 200] and not grown[145, 195]  # a disc
    assert grow_hole(hole, 0) is hole and not grow_hole(np.zeros((4, 4), bool), 3).any()
    edge = np.zeros((50, 60), bool)
    edge[0:3, 55:60] = True  # at the photo's corner: the margin is clipped, not wrapped
    grown = grow_hole(edge, 4)
    assert grown[0:7, 55:60].all() and grown[0:3, 51:60].all() and not grown[7:, :].any() and not grown[:, :51].any()


@pytest.mark.parametrize("engine", ["telea", "pconv"])
def test_inpaint_grow_fills_the_margin_and_keeps_the_rest(engine, pconv_inpainter):
    inpainter = pconv_inpainter if engine == "pconv" else Inpainter.load(engine)
    image = photo(120, 90)
    mask = rect_mask(120, 90, (40, 30, 70, 60))
    painted = mask_to_hole(mask)
    result = np.asarray(inpainter.inpaint(image, mask, grow=6))
    before = np.asarray(image)
    changed = (before != result).any(-1)
    near = np.zeros_like(painted)
    near[24:66, 34:76] = True  # within 6 px of the rectangle, corners rounded off
    assert not changed[~near].any()
    margin = near & ~painted
    margin[24:30, 34:40] = margin[24:30, 70:76] = margin[60:66, 34:40] = margin[60:66, 70:76] = False
    assert changed[margin].mean() > 0.8
    plain = np.asarray(inpainter.inpaint(image, mask))
    assert not (before != plain).any(-1)[~painted].any()  # grow defaults to 0: only the painted pixels


def test_bridge_refills_only_the_edge_band_and_continues_the_photo():
    from pconv.inpaint import bridge_edge

    y, x = np.mgrid[0:64, 0:64]
    truth = np.repeat((x * 3 + 20).astype(np.uint8)[..., None], 3, 2)  # a ramp
    hole = np.zeros((64, 64), bool)
    hole[16:48, 16:48] = True
    filled = truth.copy()
    filled[hole] = 200  # a fill that ignores the photo: a hard outline all round
    bridged = bridge_edge(filled, hole, 5)
    band = hole.copy()
    band[21:43, 21:43] = False
    assert np.array_equal(bridged[~band], filled[~band])  # outside and deep inside untouched
    outline = np.abs(bridged[16:48, 16].astype(int) - truth[16:48, 15].astype(int)).mean()
    assert outline < np.abs(200 - truth[16:48, 15].astype(int)).mean() / 3  # the first hole pixel now follows the photo


def test_bridge_is_on_by_default_and_can_be_turned_off(tiny_weights):
    from pconv.inpaint import DEFAULT_BRIDGE

    bridged, plain = Inpainter.load("pconv", weights=tiny_weights), Inpainter.load("pconv", weights=tiny_weights,
                                                                                    bridge=0)
    assert bridged.filler.bridge == DEFAULT_BRIDGE > 0 and plain.filler.bridge == 0
    image, mask = photo(80, 60), rect_mask(80, 60, (20, 20, 50, 40))
    a, b = np.asarray(bridged.inpaint(image, mask)), np.asarray(plain.inpaint(image, mask))
    hole = mask_to_hole(mask)
    assert np.array_equal(a[~hole], b[~hole]) and not np.array_equal(a[hole], b[hole])
    inner = np.zeros_like(hole)
    inner[26:34, 26:44] = True  # deeper than the band: the network's own fill
    assert np.array_equal(a[inner], b[inner])
