"""Training photos: random crops and flips, sources sampled evenly, holes from the generators."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .masks import DEFAULT_KINDS, MaskGenerator

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}


def source_of(path: Path) -> str:
    """Files are named ``SOURCE_name.jpg`` in our data sets; anything else is one source."""
    return path.name.split("_", 1)[0] if "_" in path.name else "all"


def list_photos(folder: str | Path) -> dict[str, list[Path]]:
    by_source: dict[str, list[Path]] = defaultdict(list)
    for p in sorted(Path(folder).rglob("*")):
        if p.suffix.lower() in IMAGE_SUFFIXES:
            by_source[source_of(p)].append(p)
    if not by_source:
        raise FileNotFoundError(f"no photos in {folder}")
    return dict(by_source)


def random_crop(image: Image.Image, size: int, rng: np.random.Generator) -> np.ndarray:
    """A size×size uint8 RGB crop, flipped half the time; images smaller than the crop are scaled up."""
    image = image.convert("RGB")
    w, h = image.size
    if min(w, h) < size:
        scale = size / min(w, h)
        image = image.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BICUBIC)
        w, h = image.size
    x, y = int(rng.integers(0, w - size + 1)), int(rng.integers(0, h - size + 1))
    arr = np.asarray(image.crop((x, y, x + size, y + size)))
    if rng.random() < 0.5:
        arr = arr[:, ::-1]
    return np.array(arr)  # writable and contiguous


class PhotoHoles(torch.utils.data.IterableDataset):
    """An endless stream of (image uint8 3×S×S, valid mask bool 1×S×S) pairs; ``as_float`` turns a
    batch of them into the network's floats. Bytes, not floats, cross from the loader processes: a
    quarter of the traffic, which is what limits a GPU's intake.

    Each sample first picks a source uniformly, then a photo of it, so a source with
    many files (landscapes, street frames) does not crowd out the others.
    """

    def __init__(
        self,
        folder: str | Path,
        size: int = 256,
        seed: int = 0,
        hole_range=(0.01, 0.6),
        mask_kinds: tuple[str, ...] = DEFAULT_KINDS,
    ) -> None:
        self.by_source = list_photos(folder)
        self.size = size
        self.seed = seed
        self.hole_range = hole_range
        self.mask_kinds = mask_kinds

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        seed = self.seed + (info.id if info else 0) * 7919
        rng = np.random.default_rng(seed)
        masks = MaskGenerator(self.mask_kinds, hole_range=self.hole_range, seed=seed + 1)
        sources = sorted(self.by_source)
        while True:
            files = self.by_source[sources[int(rng.integers(len(sources)))]]
            with Image.open(files[int(rng.integers(len(files)))]) as im:
                crop = random_crop(im, self.size, rng)
            hole = masks(self.size, self.size)
            yield torch.from_numpy(crop).permute(2, 0, 1), torch.from_numpy(~hole).unsqueeze(0)


def as_float(image: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch from ``PhotoHoles`` as the network takes it: image in [0, 1], valid mask 1.0 / 0.0."""
    return image.float().div_(255), valid.float()
