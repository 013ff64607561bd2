import numpy as np
import pytest

from pconv.masks import (
    EVAL_BUCKETS,
    GENERATORS,
    OBJECT_BUCKETS,
    OBJECT_KINDS,
    MaskGenerator,
    bucket_masks,
    hole_ratio,
    object_masks,
    object_shape,
)


@pytest.mark.parametrize("kind", sorted(GENERATORS))
def test_generators_are_deterministic_and_make_holes(kind):
    a = GENERATORS[kind](256, 192, np.random.default_rng(5))
    b = GENERATORS[kind](256, 192, np.random.default_rng(5))
    c = GENERATORS[kind](256, 192, np.random.default_rng(6))
    assert a.shape == (256, 192) and a.dtype == bool
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert 0 < hole_ratio(a) < 1


def test_mask_generator_sequence_is_seeded_and_in_range():
    first = [MaskGenerator(seed=3)(128, 128) for _ in range(1)]
    gen_a, gen_b = MaskGenerator(seed=3), MaskGenerator(seed=3)
    seq_a = [gen_a(128, 128) for _ in range(20)]
    seq_b = [gen_b(128, 128) for _ in range(20)]
    assert all(np.array_equal(x, y) for x, y in zip(seq_a, seq_b))
    assert np.array_equal(first[0], seq_a[0])
    assert all(0.01 <= hole_ratio(m) <= 0.6 for m in seq_a)
    assert len({m.tobytes() for m in seq_a}) == 20


def test_mask_generator_rejects_unknown_kinds():
    with pytest.raises(ValueError, match="unknown mask kinds"):
        MaskGenerator(kinds=("nope",))


def test_bucket_masks_land_in_their_buckets_and_repeat():
    made = list(bucket_masks(128, 128, per_bucket=3, seed=1))
    assert len(made) == 3 * len(EVAL_BUCKETS)
    for (lo, hi), hole in made:
        assert lo < hole_ratio(hole) <= hi
    again = list(bucket_masks(128, 128, per_bucket=3, seed=1))
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(made, again))
    assert [b for b, _ in made] == [b for b in EVAL_BUCKETS for _ in range(3)]


def test_training_masks_cover_large_holes_too():
    gen = MaskGenerator(seed=4)
    ratios = np.array([hole_ratio(gen(128, 128)) for _ in range(150)])
    assert ratios.max() <= 0.6 and ratios.min() >= 0.01
    assert (ratios > 0.3).mean() > 0.3 and (ratios < 0.15).mean() > 0.1  # both ends, not one hump


@pytest.mark.parametrize("kind", OBJECT_KINDS)
def test_object_shapes_are_one_solid_piece_of_the_asked_area(kind):
    import cv2

    rng = np.random.default_rng(2)
    for area in (0.03, 0.1, 0.18):
        hole = object_shape(300, 400, rng, area=area, kind=kind)
        assert abs(hole_ratio(hole) - area) < 0.25 * area  # scaled to the area, whatever the outline
        filled = hole.astype(np.uint8)
        contours, _ = cv2.findContours(filled, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        solid = np.zeros_like(filled)
        cv2.drawContours(solid, contours, -1, 1, -1)
        assert np.count_nonzero(solid) - np.count_nonzero(filled) < 0.02 * filled.sum()  # filled, no strokes


def test_object_masks_land_in_their_buckets_and_repeat():
    made = list(object_masks(240, 320, per_bucket=4, seed=3))
    assert [b for b, _ in made] == [b for b in OBJECT_BUCKETS for _ in range(4)]
    assert all(lo < hole_ratio(h) <= hi for (lo, hi), h in made)
    again = list(object_masks(240, 320, per_bucket=4, seed=3))
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(made, again))


def test_training_mix_includes_objects():
    assert "object" in MaskGenerator().kinds


def test_a_kind_named_twice_is_drawn_twice_as_often(monkeypatch):
    drawn: list[str] = []

    def recorder(kind):
        def draw(h, w, rng):
            drawn.append(kind)
            return np.ones((h, w), bool)  # one shape reaches any target
        return draw

    monkeypatch.setitem(GENERATORS, "keras", recorder("keras"))
    monkeypatch.setitem(GENERATORS, "object", recorder("object"))
    generator = MaskGenerator(kinds=("object", "object", "keras"), seed=1)
    for _ in range(3000):
        generator(32, 32)
    share = drawn.count("object") / len(drawn)
    assert set(drawn) == {"object", "keras"}
    assert 0.62 < share < 0.71

