"""Inpainting real photos of any size and mode: ``Inpainter``.

An ``Inpainter`` applies the README's image rules (orientation, modes, alpha,
ICC profile, mask convention, bit-identical pixels outside the hole) and cuts
the work into crops around the holes; a *filler* fills same-size RGB crops.
The PConv network and OpenCV's two classical methods are fillers, so every
engine follows the same rules through the same code.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import cv2
import numpy as np
from PIL import Image

from . import ENGINES
from .images import check_mask_size, grow_hole, mask_to_hole, output_mode, upright
from .regions import Box, hole_boxes, plan_regions

if TYPE_CHECKING:
    import torch

    from .model import PConvUNet

# torch is imported where the network is loaded, not here: it alone costs some 680 MB of memory and a second,
# which a Telea or Navier-Stokes job never needs (a 144-megapixel JPEG's whole job then fits in 400 MB)

log = logging.getLogger(__name__)

DEFAULT_WINDOW = 1024  # largest crop side PConv fills at full resolution (docs/model.md measures it)
DEFAULT_BRIDGE = 5  # pixels of the hole's edge refilled by Telea between photo and fill (docs/model.md measures it)



class Filler(Protocol):
    """Fills the holes of same-size RGB crops. ``stride``: crop sides are padded to a multiple;
    ``min_side``: context the filler wants around a hole; ``window``: largest side it fills
    at native resolution (larger regions are filled at reduced scale)."""

    name: str
    stride: int
    min_side: int
    window: int
    margin: int
    batch_size: int  # most crops per forward pass
    max_batch_pixels: int  # most padded crop pixels per forward pass (a larger crop goes alone)

    def fill_batch(self, images: np.ndarray, holes: np.ndarray) -> np.ndarray:
        """images B×H×W×3 uint8, holes B×H×W bool → B×H×W×3 uint8 (hole pixels replaced)."""
        ...


class PConvFiller:
    """The PConv UNet on CPU, or on CUDA with bf16/fp16 autocast.

    ``runtime`` (CPU only): ``auto`` runs the network through OpenVINO where it is installed, at the CPU's
    fastest precision, and through torch otherwise; ``torch``, ``openvino`` and ``openvino-f32`` choose
    (``pconv/runtime.py``; docs/benchmarks.md, "CPU runtimes"). ``threads``: the runtime's CPU threads.

    ``flip_average``: fill each crop and its mirror image in one forward pass and average the two;
    the network's errors on the two are partly independent, so the mean is closer to the truth
    (docs/model.md measures it) for twice the compute.

    ``bridge``: the outer pixels of the hole, this deep, are refilled by Telea from both the photo and
    the network's fill (``bridge_edge``): the network's fill does not continue the photo's last pixels
    exactly, and an outline shows; Telea's does. 0 turns it off.

    ``window``: the largest crop side filled at full resolution. The network is fully
    convolutional: a large hole filled at full resolution, up to 1024 pixels, scores better SSIM
    than the same hole filled at 512 and upsampled (docs/model.md), for up to 4x the compute and
    memory of such a crop (bench/window.py).
    """

    name = "pconv"

    def __init__(self, model: PConvUNet, device: str | torch.device | None = None, window: int = DEFAULT_WINDOW,
                 flip_average: bool = True, bridge: int = DEFAULT_BRIDGE, runtime: str = "auto",
                 threads: int = 0) -> None:
        import torch

        from . import runtime as runtime_module
        from .model import fold_batchnorm

        self.flip_average = flip_average
        self.bridge = bridge
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = fold_batchnorm(model).to(self.device)  # inference only: BN folded into the convolutions
        # on CPU, the network through the fastest runtime installed (pconv/runtime.py); torch on CUDA
        self.runtime = runtime_module.resolve(runtime, self.device)
        self._compiled = None
        if self.runtime.startswith("openvino"):
            try:
                self._compiled = runtime_module.OpenVINOFill(
                    self.model, threads, "f32" if self.runtime == "openvino-f32" else None)
            except Exception:
                if runtime != "auto":  # asked for by name: say so rather than run slower in silence
                    raise
                log.warning("OpenVINO could not take the network; filling through torch", exc_info=True)
                self.runtime = "torch"
        self.stride = model.config.stride
        self.min_side = 256  # the training crop: context the network is used to
        self.margin = 64
        self.window = max(window, self.stride)
        # crops per forward pass; flip averaging doubles each pass, so it takes half as many
        self.batch_size = (16 if self.device.type == "cuda" else 4) // (2 if flip_average else 1)
        # memory follows pixels, not crops: as many as batch_size crops of 512² (two 1024² crops would double it)
        self.max_batch_pixels = self.batch_size * 512 * 512
        if self.device.type == "cuda":
            self.amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        else:
            self.amp_dtype = None
        self.metadata = getattr(model, "metadata", {})

    @property
    def trained(self) -> bool:
        return bool(self.metadata.get("trained", False))

    def fill_batch(self, images: np.ndarray, holes: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            image = torch.from_numpy(images).to(self.device).permute(0, 3, 1, 2).float().div_(255)
            valid = torch.from_numpy(~holes).to(self.device).unsqueeze(1).float()
            if self.flip_average:
                image, valid = torch.cat([image, image.flip(-1)]), torch.cat([valid, valid.flip(-1)])
            if self._compiled is not None:
                pred = self._compiled(image, valid)
            else:
                with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None):
                    pred = self.model.fill(image, valid)
            if self.flip_average:
                plain, mirrored = pred.float().chunk(2)
                pred = (plain + mirrored.flip(-1)) / 2
            pred = pred.float().clamp_(0, 1).mul_(255).round_().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        filled = np.where(holes[..., None], pred, images)
        if self.bridge:
            filled = np.stack([bridge_edge(f, h, self.bridge) for f, h in zip(filled, holes)])
        return filled


def bridge_edge(filled: np.ndarray, hole: np.ndarray, depth: int) -> np.ndarray:
    """Refill the hole's outer ``depth`` pixels by Telea's fast marching from both sides: the photo
    outside and the network's fill further in. Telea continues its boundary exactly, the network
    does not; this band joins the two."""
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * depth + 1, 2 * depth + 1))
    inner = cv2.erode(hole.view(np.uint8), kernel, borderValue=1)
    band = hole.view(np.uint8) & (1 - inner)
    if not band.any():
        return filled
    bridged = cv2.inpaint(np.ascontiguousarray(filled), band, 3, cv2.INPAINT_TELEA)
    return np.where(band[..., None].astype(bool), bridged, filled)


class OpenCVFiller:
    """OpenCV's Telea (fast marching) or Navier-Stokes inpainting: cheap, local, no model."""

    stride = 1
    min_side = 0
    window = 4096
    batch_size = 8
    max_batch_pixels = 1 << 62  # one crop at a time inside, whatever the batch

    def __init__(self, method: str = "telea", radius: int = 3) -> None:
        self.name = method
        self.flag = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}[method]
        self.radius = radius
        self.margin = 4 * radius + 8

    def fill_batch(self, images: np.ndarray, holes: np.ndarray) -> np.ndarray:
        out = np.empty_like(images)
        for i, (image, hole) in enumerate(zip(images, holes)):
            filled = cv2.inpaint(image, hole.view(np.uint8), self.radius, self.flag)
            out[i] = np.where(hole[..., None], filled, image)
        return out


def pad_to(image: np.ndarray, hole: np.ndarray, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Mirror-pad a crop (and its hole, so a mirrored hole stays a hole) at the bottom and right."""
    ph, pw = height - image.shape[0], width - image.shape[1]
    if ph == 0 and pw == 0:
        return image, hole
    return (
        np.pad(image, ((0, ph), (0, pw), (0, 0)), mode="symmetric"),
        np.pad(hole, ((0, ph), (0, pw)), mode="symmetric"),
    )


def padded_side(side: int, filler: Filler) -> int:
    side = max(side, filler.min_side)
    return -(-side // filler.stride) * filler.stride


def reduced_size(height: int, width: int, window: int) -> tuple[int, int] | None:
    """The (height, width) a crop larger than the window is filled at; None when it fits."""
    if max(height, width) <= window:
        return None
    scale = window / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def forward_chunks(regions: list, filler: Filler):
    """Consecutive regions (``(photo index, crop box, …)``) per forward pass: at most ``batch_size``
    crops and at most ``max_batch_pixels`` padded pixels, so a pass of large crops stays in memory."""
    chunk, pixels = [], 0
    for region in regions:
        crop = region[1]
        height, width = reduced_size(crop.height, crop.width, filler.window) or (crop.height, crop.width)
        area = padded_side(height, filler) * padded_side(width, filler)
        if chunk and (len(chunk) == filler.batch_size or pixels + area > filler.max_batch_pixels):
            yield chunk
            chunk, pixels = [], 0
        chunk.append(region)
        pixels += area
    if chunk:
        yield chunk


@dataclass
class Plan:
    size: tuple[int, int]  # the photo's (width, height)
    regions: list  # (crop box, hole box, the hole inside the crop)

    def bounds(self) -> tuple[int, int, int, int] | None:
        """The box around every crop (x0, y0, x1, y1): all of the photo the fill reads. None: nothing to fill."""
        if not self.regions:
            return None
        crops = [crop for crop, _box, _hole in self.regions]
        return (min(c.x0 for c in crops), min(c.y0 for c in crops), max(c.x1 for c in crops), max(c.y1 for c in crops))

    def within(self, box: tuple[int, int, int, int]) -> Plan:
        """The same crops for the part of the photo at ``box`` (which holds ``bounds()``), decoded alone."""
        x0, y0, x1, y1 = box

        def moved(b: Box) -> Box:
            return Box(b.x0 - x0, b.y0 - y0, b.x1 - x0, b.y1 - y0)

        return Plan((x1 - x0, y1 - y0), [(moved(crop), moved(hole_box), crop_hole)
                                         for crop, hole_box, crop_hole in self.regions])

    def hole(self) -> np.ndarray:
        """The full-size hole again, from its crops (a JPEG result patches the blocks it touches)."""
        width, height = self.size
        hole = np.zeros((height, width), bool)
        for crop, _box, crop_hole in self.regions:
            hole[crop.y0 : crop.y1, crop.x0 : crop.x1] |= crop_hole
        return hole


class Inpainter:
    """Load once, then ``inpaint(image, mask)`` for PIL images of any size and mode.

    >>> inpainter = Inpainter.load("pconv")          # the shipped weights
    >>> result = inpainter.inpaint(photo, mask)      # mask: white (≥ 128) = remove
    """

    def __init__(self, filler: Filler) -> None:
        self.filler = filler

    @property
    def engine(self) -> str:
        return self.filler.name

    @classmethod
    def load(
        cls,
        engine: str = "pconv",
        weights: str | Path | None = None,
        device: str | None = None,
        allow_random: bool = False,
        flip_average: bool = True,
        window: int = DEFAULT_WINDOW,
        bridge: int = DEFAULT_BRIDGE,
        runtime: str = "auto",
        threads: int = 0,
    ) -> Inpainter:
        """``weights`` defaults to the shipped file; a missing default file is an error unless
        ``allow_random`` (then the model is random and says so). ``flip_average``, ``window``, ``bridge``,
        ``runtime`` and ``threads`` (the runtime's CPU threads, 0: its own choice): see ``PConvFiller``."""
        if engine in ("telea", "ns"):
            return cls(OpenCVFiller(engine))
        if engine != "pconv":
            raise ValueError(f"unknown engine {engine!r}; choose from {', '.join(ENGINES)}")
        from .weights import DEFAULT_WEIGHTS, load_model, random_model

        path = Path(weights) if weights else DEFAULT_WEIGHTS
        if path.is_file() or weights:
            model = load_model(path)
        elif allow_random:
            model = random_model()
        else:
            raise FileNotFoundError(f"no weights at {path}: train some (python -m pconv.train) or pass weights=")
        return cls(PConvFiller(model, device, flip_average=flip_average, window=window, bridge=bridge,
                               runtime=runtime, threads=threads))

    # -- photos ---------------------------------------------------------------------------

    def inpaint(self, image: Image.Image, mask: Image.Image, grow: int = 0) -> Image.Image:
        """The photo with its holes filled: upright (EXIF orientation applied), in the input's
        mode (RGB, RGBA with its alpha, L, LA, CMYK; other modes as RGB or RGBA), ICC profile
        kept, every pixel outside the hole identical to the upright input's. ``grow``: the hole
        is first dilated by that many pixels (``grow_hole``)."""
        image, mask = upright(image), upright(mask)
        check_mask_size(image.size, mask.size)
        hole = grow_hole(mask_to_hole(mask), grow)
        return self.inpaint_hole(image, hole)

    def inpaint_hole(self, image: Image.Image, hole: np.ndarray) -> Image.Image:
        """As ``inpaint``, for an upright image and a boolean hole of its size."""
        return self.inpaint_many([(image, hole)])[0]

    def plan(self, hole: np.ndarray) -> Plan:
        """Where this engine will work for a hole: crops with context, each with its own copy of
        the hole inside it. A plan keeps nothing of the full-size hole, which can then be freed
        before the photo is decoded (the worker does, for very large photos)."""
        height, width = hole.shape
        if not hole.any():
            return Plan((width, height), [])
        f = self.filler
        boxes = hole_boxes(hole, join=f.margin // 2)
        regions = [(crop, box, hole[crop.y0 : crop.y1, crop.x0 : crop.x1].copy())
                   for crop, box in plan_regions(boxes, (width, height), f.margin, f.min_side, f.window)]
        return Plan((width, height), regions)

    def inpaint_many(self, work: list[tuple[Image.Image, np.ndarray | Plan]], check=None,
                     in_place: bool = False) -> list[Image.Image]:
        """Several upright photos with their holes (or plans) at once: crops of all of them that pad
        to the same size share forward passes (the worker's batched inference). ``check()`` runs
        between forward passes, a safe point where it may raise to stop (a cancel). ``in_place``:
        fill the given images themselves, sparing a full-size copy (the worker owns its photos)."""
        filler = self.filler
        results, images, regions = [], [], []  # regions: (photo index, crop box, hole box, crop hole)
        for index, (image, hole) in enumerate(work):
            plan = hole if isinstance(hole, Plan) else self.plan(hole)
            if plan.size != image.size:
                raise ValueError(f"a plan for {plan.size} cannot fill a {image.size} photo")
            mode = output_mode(image)
            given, image = image, image if image.mode == mode else image.convert(mode)
            images.append(image)
            if not plan.regions:
                results.append(image)  # nothing to remove: the photo as it is, no model run
                continue
            results.append(image if in_place and image is given else image.copy())
            regions += [(index, crop, box, crop_hole) for crop, box, crop_hole in plan.regions]
        # same padded size next to each other, so they share forward passes; chunks bound memory
        regions.sort(key=lambda r: (padded_side(r[1].height, filler), padded_side(r[1].width, filler)))
        for passes, chunk in enumerate(forward_chunks(regions, filler)):
            if check is not None and passes:  # between passes only: a one-pass fill costs no look
                check()
            crops = [(self._rgb_crop(images[i], crop), crop_hole) for i, crop, _, crop_hole in chunk]
            for (i, crop, box, crop_hole), out in zip(chunk, self.fill_crops(crops)):
                self._paste(results[i], out, crop, box, crop_hole)
        return results

    @staticmethod
    def _rgb_crop(image: Image.Image, box: Box) -> np.ndarray:
        region = image.crop(tuple(box))
        return np.asarray(region if region.mode == "RGB" else region.convert("RGB"))

    @staticmethod
    def _paste(result: Image.Image, filled: np.ndarray, crop: Box, box: Box, crop_hole: np.ndarray) -> None:
        """Write the crop's fill into ``result`` at the pixels of the hole box that are holes,
        converted to the result's mode; alpha is never touched."""
        inner = (slice(box.y0 - crop.y0, box.y1 - crop.y0), slice(box.x0 - crop.x0, box.x1 - crop.x0))
        patch = Image.fromarray(np.ascontiguousarray(filled[inner]))
        where = Image.fromarray(np.ascontiguousarray(crop_hole[inner]).view(np.uint8) * 255)
        if result.mode in ("RGBA", "LA"):
            # fill the colour bands only: the alpha of a hole pixel stays what it was
            bands = list(result.crop(tuple(box)).split())
            colour = patch.convert("L") if result.mode == "LA" else patch
            patch = Image.merge(result.mode, [*colour.split(), bands[-1]])
        elif result.mode != "RGB":
            patch = patch.convert(result.mode)
        result.paste(patch, (box.x0, box.y0), where)

    # -- crops ----------------------------------------------------------------------------

    def fill_crops(self, crops: list[tuple[np.ndarray, np.ndarray]]) -> list[np.ndarray]:
        """Fill RGB uint8 crops of any sizes; crops that pad to the same size share one batch.
        A crop larger than the filler's window is filled at reduced scale and only its hole
        is upsampled back."""
        filler = self.filler
        prepared = []  # (padded image, padded hole, original size, scale-down or None)
        for image, hole in crops:
            h, w = hole.shape
            small = None
            reduced = reduced_size(h, w, filler.window)
            if reduced:
                size = small = (reduced[1], reduced[0])  # cv2's (width, height)
                image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
                # a reduced pixel is a hole if any hole pixel falls in it
                hole = cv2.resize(hole.astype(np.float32), size, interpolation=cv2.INTER_AREA) > 0
            ph, pw = padded_side(hole.shape[0], filler), padded_side(hole.shape[1], filler)
            prepared.append((*pad_to(image, hole, ph, pw), (h, w), small))
        groups: dict[tuple[int, int], list[int]] = defaultdict(list)
        for i, (image, _, _, _) in enumerate(prepared):
            groups[image.shape[:2]].append(i)
        outputs: list[np.ndarray | None] = [None] * len(crops)
        for indices in groups.values():
            filled = filler.fill_batch(
                np.stack([prepared[i][0] for i in indices]), np.stack([prepared[i][1] for i in indices])
            )
            for i, out in zip(indices, filled):
                _, small_hole, (h, w), small = prepared[i]
                if small is not None:
                    out = cv2.resize(out[: small[1], : small[0]], (w, h), interpolation=cv2.INTER_CUBIC)
                    image, hole = crops[i]
                    out = np.where(hole[..., None], out, image)
                outputs[i] = out[:h, :w]
        return outputs
