import numpy as np
import pytest

from pconv.masks import EVAL_BUCKETS, GENERATORS, MaskGenerator, bucket_masks, hole_ratio


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
