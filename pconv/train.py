"""Train the PConv UNet: ``python -m pconv.train --data PHOTOS --out RUN_DIR``.

Two phases, as the paper: Adam at 2e-4, then fine-tuning at 5e-5 with the
encoder's BatchNorm frozen. Resumable: the run directory holds ``checkpoint.pt``
(model, optimiser, step, RNG; read back with ``weights_only=True``) and the
latest ``model.safetensors``. SIGTERM or Ctrl-C saves and stops cleanly.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import time
from dataclasses import asdict
from pathlib import Path

import torch
from tqdm import tqdm

from .adversarial import Adversary
from .data import PhotoHoles, as_float, list_photos
from .losses import RANDOM_VGG, InpaintingLoss, LossWeights
from .masks import DEFAULT_KINDS, GENERATORS
from .model import PConvUNet, PConvUNetConfig
from .weights import read_metadata, save_model

log = logging.getLogger("pconv.train")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m pconv.train", description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="folder of training photos")
    p.add_argument("--out", required=True, help="run directory (checkpoints, model, log)")
    p.add_argument("--size", type=int, default=256, help="training crop side")
    p.add_argument("--layers", type=int, default=7)
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--upsampling", default="nearest", choices=["nearest", "bilinear"])
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--steps", type=int, default=100_000, help="steps of the first phase")
    p.add_argument("--finetune-steps", type=int, default=0, help="steps of the fine-tuning phase after it")
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--finetune-lr", type=float, default=5e-5)
    p.add_argument("--vgg", help="VGG16 weights file (torchvision format) for the perceptual and style terms, "
                   "or 'random' for fixed random-weight VGG16 features")
    for name, default in asdict(LossWeights()).items():
        p.add_argument(f"--w-{name}", type=float, default=default, help=f"weight of the {name} term")
    p.add_argument("--hole-max", type=float, default=0.6)
    p.add_argument("--mask-kinds", nargs="+", default=list(DEFAULT_KINDS), choices=sorted(GENERATORS),
                   help="hole generators drawn from evenly; a kind named twice has twice the share")
    p.add_argument("--checkpoint-minutes", type=float, default=10.0)
    p.add_argument("--max-minutes", type=float, default=0,
                   help="stop (with a checkpoint) after this long; 0 = no limit")
    p.add_argument("--finetune-minutes", type=float, default=0,
                   help="with --max-minutes: spend its last minutes in the fine-tuning phase whatever the step "
                        "(a GPU slot is measured in minutes, not steps)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads; 0 = torch's default")
    p.add_argument("--workers", type=int, default=1, help="data loader processes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--amp", action="store_true", help="bfloat16 autocast (GPU)")
    p.add_argument("--init",
                   help="start from this model file's weights (a new optimiser) when the run has no checkpoint")
    p.add_argument("--keep-statistics", action="store_true",
                   help="every BatchNorm keeps its running statistics (fine-tuning at a small batch after "
                        "training at a large one); their scale and shift still learn")
    p.add_argument("--half-model", action="store_true",
                   help="write model.safetensors in float16, as weights ship (half the size; the checkpoint "
                        "keeps float32)")
    p.add_argument("--log-every", type=int, default=50, help="steps between lines of log.jsonl")
    return p.parse_args(argv)


def _ignore_stop_signals(_worker_id: int) -> None:
    """Data loader processes leave SIGTERM and Ctrl-C to the trainer, which stops them in order after
    its checkpoint; a stop sent to the whole process group (as containers get) would kill them first."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class Stopper:
    """Turns SIGTERM and SIGINT into a flag the loop checks between steps."""

    def __init__(self) -> None:
        self.requested = False
        signal.signal(signal.SIGTERM, self._set)
        signal.signal(signal.SIGINT, self._set)

    def _set(self, *_):
        self.requested = True


def hardware(device: torch.device) -> str:
    """What trained the model, for its metadata: GPU name, or CPU model and threads."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    from .report import machine_description

    return f"{machine_description()}, {torch.get_num_threads()} threads"


def checkpoint(out: Path, model, optimizer, step: int, images: int, args, losses: dict, phase: str,
               minutes: float, adversary: Adversary | None = None) -> None:
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "step": step,
        "images": images,
        "minutes": minutes,
        "torch_rng": torch.get_rng_state(),
    }
    if adversary is not None:
        state["adversary"] = adversary.state_dict()
    tmp = out / "checkpoint.pt.tmp"
    torch.save(state, tmp)
    tmp.replace(out / "checkpoint.pt")  # never leave a half-written checkpoint
    meta = {
        "training": {
            "steps": step,
            "images_seen": images,
            "data": str(args.data),
            "hardware": hardware(torch.device(args.device)),
            "minutes": round(minutes, 1),
            "size": args.size,
            "batch": args.batch,
            "phase": phase,
            "loss_weights": {k[2:]: v for k, v in vars(args).items() if k.startswith("w_")},
            "vgg": args.vgg if args.vgg == RANDOM_VGG else bool(args.vgg),
            "last_losses": {k: round(float(v), 5) for k, v in losses.items()},
        }
    }
    if args.init:
        # a continued run counts what its starting weights had seen too
        before = read_metadata(args.init).get("training", {})
        meta["training"]["initialised_from"] = {"file": Path(args.init).name, **before}
        meta["training"]["total_steps"] = step + before.get("total_steps", before.get("steps", 0))
        meta["training"]["total_images_seen"] = images + before.get("total_images_seen", before.get("images_seen", 0))
    save_model(model, out / "model.safetensors", meta, half=args.half_model)


def resume(out: Path, model, optimizer, device, adversary: Adversary | None = None) -> tuple[int, int, float]:
    """Load the run's checkpoint if there is one (model, optimiser, RNG); returns (step, images,
    minutes trained)."""
    path = out / "checkpoint.pt"
    if not path.exists():
        return 0, 0, 0.0
    state = torch.load(path, map_location=device, weights_only=True)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["torch_rng"])
    if adversary is not None and "adversary" in state:  # a run that turns the term on later starts a fresh judge
        adversary.load_state_dict(state["adversary"])
    log.info("resumed from %s at step %d (%d images)", path, state["step"], state["images"])
    return state["step"], state["images"], float(state.get("minutes", 0.0))


def train(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed crop size: the fastest kernels are found once
    config = PConvUNetConfig(layers=args.layers, width=args.width, upsampling=args.upsampling)
    if args.size % config.stride:
        raise SystemExit(f"--size must be a multiple of {config.stride} for {args.layers} layers")
    model = PConvUNet(config).to(device)
    weights = LossWeights(**{k[2:]: v for k, v in vars(args).items() if k.startswith("w_")})
    criterion = InpaintingLoss(weights, vgg_weights=args.vgg).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    adversary = Adversary(device, lr=args.lr) if weights.adversarial else None
    step, images, minutes_before = resume(out, model, optimizer, device, adversary)
    if step == 0 and args.init:
        from .weights import load_model

        initial = load_model(args.init)
        if initial.config != config:
            raise SystemExit(f"--init {args.init} is {initial.config}, not the requested {config}")
        model.load_state_dict(initial.state_dict())
        log.info("initialised from %s", args.init)
    model.set_keep_statistics(args.keep_statistics)
    (out / "args.json").write_text(json.dumps(vars(args), indent=1))

    total_steps = args.steps + args.finetune_steps
    sources = {k: len(v) for k, v in list_photos(args.data).items()}
    log.info("data: %s", sources)
    # a fresh seed per resume so a restarted run does not replay the same crops
    data = PhotoHoles(args.data, args.size, seed=args.seed + step, hole_range=(0.01, args.hole_max),
                       mask_kinds=tuple(args.mask_kinds))
    loader = torch.utils.data.DataLoader(
        data, batch_size=args.batch, num_workers=args.workers, persistent_workers=args.workers > 0,
        worker_init_fn=_ignore_stop_signals, pin_memory=device.type == "cuda",
    )
    stopper = Stopper()
    started = last_ckpt = window_start = time.monotonic()
    window_images = images
    losses: dict = {}
    bar = tqdm(total=total_steps, initial=step, unit="step", dynamic_ncols=True, mininterval=5)
    log_file = (out / "log.jsonl").open("a")
    model.train()
    phase = None
    finetune_at = args.max_minutes - args.finetune_minutes if args.max_minutes and args.finetune_minutes else None
    for image, valid in loader:
        if step >= total_steps or stopper.requested:
            break
        elapsed = (time.monotonic() - started) / 60
        if args.max_minutes and elapsed > args.max_minutes:
            break
        late = finetune_at is not None and elapsed >= finetune_at
        now_phase = "finetune" if step >= args.steps or late else "main"
        if now_phase != phase:
            phase = now_phase
            model.set_finetune(phase == "finetune")
            for group in optimizer.param_groups:
                group["lr"] = args.finetune_lr if phase == "finetune" else args.lr
        image, valid = as_float(image.to(device, non_blocking=True), valid.to(device, non_blocking=True))
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.amp):
            out_img = model.fill(image, valid)
        loss, losses = criterion(out_img.float(), image, valid)
        if adversary is not None:
            composite = valid * image + (1 - valid) * out_img.float()
            losses["adversarial"] = adversary.generator_loss(composite, valid)
            loss = loss + weights.adversarial * losses["adversarial"]
            losses["adversarial"] = losses["adversarial"].detach()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if adversary is not None:
            losses["discriminator"] = adversary.discriminator_step(image, composite, valid)
        step += 1
        images += image.shape[0]
        bar.update(1)
        # reading a loss waits for the GPU: only every log_every steps, and the rate over that window
        if step % args.log_every == 0:
            now = time.monotonic()
            rate = (images - window_images) / (now - window_start)
            window_start, window_images = now, images
            values = {"loss": loss.item(), **{k: v.item() for k, v in losses.items()}}
            bar.set_postfix(img_s=f"{rate:.1f}", refresh=False, **{k: f"{v:.4f}" for k, v in values.items()})
            log_file.write(json.dumps({"step": step, "images": images, "img_s": rate, "phase": phase,
                                       "minutes": round((now - started) / 60, 3), **values}) + "\n")
            log_file.flush()
        if time.monotonic() - last_ckpt > args.checkpoint_minutes * 60:
            checkpoint(out, model, optimizer, step, images, args, losses, phase,
                       minutes_before + (time.monotonic() - started) / 60, adversary)
            last_ckpt = time.monotonic()
    bar.close()
    final_phase = phase or ("finetune" if step >= args.steps else "main")
    checkpoint(out, model, optimizer, step, images, args, losses, final_phase,
               minutes_before + (time.monotonic() - started) / 60, adversary)
    log.info("stopped at step %d (%d images); model in %s", step, images, out / "model.safetensors")
    return 0


def main(argv=None) -> int:
    return train(parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
