"""The PatchGAN term: the judge learns to tell made-up patches from real ones, its reward reaches the
network only through the hole, and a training run with it checkpoints and resumes the judge too."""

import json

import torch

from pconv.adversarial import Adversary, PatchDiscriminator
from pconv.train import main as train_main
from pconv.weights import read_metadata


def textured_and_smooth(n=4, size=32):
    torch.manual_seed(0)
    real = torch.rand(n, 3, size, size)  # texture
    valid = torch.ones(n, 1, size, size)
    valid[..., 8:24, 8:24] = 0
    fake = valid * real + (1 - valid) * 0.5  # the hole filled flat: a blur's extreme
    return real, fake, valid


def test_discriminator_scores_patches():
    logits = PatchDiscriminator()(torch.rand(2, 3, 64, 96), torch.ones(2, 1, 64, 96))
    assert logits.shape == (2, 1, 8, 12)


def test_judge_learns_to_tell_a_flat_fill_from_texture():
    real, fake, valid = textured_and_smooth()
    adversary = Adversary()
    first = adversary.discriminator_step(real, fake, valid)
    for _ in range(60):
        last = adversary.discriminator_step(real, fake, valid)
    assert last < first * 0.5
    assert adversary.generator_loss(fake, valid) > adversary.generator_loss(real, valid)  # the flat fill loses


def test_reward_reaches_the_fill_only_through_the_hole_and_leaves_the_judge_alone():
    real, fake, valid = textured_and_smooth()
    adversary = Adversary()
    out = fake.clone().requires_grad_(True)
    composite = valid * real + (1 - valid) * out
    adversary.generator_loss(composite, valid).backward()
    assert out.grad[..., 8:24, 8:24].abs().sum() > 0
    assert out.grad[(valid == 1).expand_as(out.grad)].abs().sum() == 0
    assert all(p.grad is None for p in adversary.net.parameters())


def test_training_with_the_term_checkpoints_and_resumes_the_judge(photos, tmp_path):
    out = tmp_path / "run"
    common = ["--data", str(photos), "--out", str(out), "--size", "64", "--layers", "4", "--width", "0.125",
              "--batch", "2", "--workers", "0", "--log-every", "1", "--threads", "1", "--w-adversarial", "0.1"]
    assert train_main([*common, "--steps", "3"]) == 0
    saved = torch.load(out / "checkpoint.pt", weights_only=True)
    assert "adversary" in saved and saved["adversary"]["net"]
    assert train_main([*common, "--steps", "5"]) == 0
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5]
    assert all("adversarial" in r and "discriminator" in r for r in rows)
    assert read_metadata(out / "model.safetensors")["training"]["loss_weights"]["adversarial"] == 0.1
