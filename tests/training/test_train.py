"""A few optimisation steps of each mode on a fixed tiny batch lower the loss; NaN steps are skipped."""
import json

import pytest
import torch

from training.options import CRNOptions, RADOptions
from training.trainers.base import lr_factor
from training.trainers.crn import CRNTrainer
from training.trainers.rad_paired import PairedRADTrainer
from training.trainers.rad_unpaired import UnpairedRADTrainer

FAST = dict(net="tiny", batch_size=2, crop=32, workers=0, progress=False, log_every=1,
            checkpoint_every=1000, vgg_taps=["relu1_2", "relu2_2"])
SMALL_DISC = dict(disc_layers=2, disc_dim=16, disc_taps=["relu1_2", "relu2_2"])


def fixed_batch(trainer):
    batch = next(trainer.batches())
    return batch


def run_steps(trainer, batch, steps):
    return [trainer.train_step(batch) for _ in range(steps)]


def test_paired_rad_lowers_its_loss(paired_root, tmp_path):
    opts = RADOptions(run_dir=str(tmp_path / "run"), data=str(paired_root), lr=2e-3, **FAST)
    trainer = PairedRADTrainer(opts)
    batch = fixed_batch(trainer)
    assert batch["image"].shape[0] == 2 and "target" in batch
    history = run_steps(trainer, batch, 8)
    assert history[-1]["loss"] < 0.8 * history[0]["loss"], [h["loss"] for h in history]
    assert "FIXED RANDOM" in json.dumps(trainer.state["vgg"]) or "ImageNet" in json.dumps(trainer.state["vgg"])
    assert (tmp_path / "run" / "gbuffer_stats.json").is_file()
    trainer.close()


def test_unpaired_rad_trains_both_networks(paired_root, photo_dir, tmp_path):
    opts = RADOptions(run_dir=str(tmp_path / "run"), data=str(paired_root), real=str(photo_dir), lr=1e-3,
                      disc_lr=2e-3, **FAST, **SMALL_DISC)
    trainer = UnpairedRADTrainer(opts)
    batch = fixed_batch(trainer)
    assert batch["synthetic"]["image"].shape[0] == 2 and batch["real"]["image"].shape[0] == 2
    g0 = [p.detach().clone() for p in trainer.models["generator"].parameters()]
    history = run_steps(trainer, batch, 8)
    # On a fixed batch the discriminator learns to tell the two sets apart ...
    assert history[-1]["d_loss"] < 0.7 * history[0]["d_loss"], [h["d_loss"] for h in history]
    assert history[-1]["d_real"] > history[-1]["d_fake"]
    # ... and the generator is updated with finite adversarial + LPIPS terms.
    assert all(torch.isfinite(torch.tensor([h["g_gan"], h["lpips"], h["r1"]])).all() for h in history)
    assert any(not torch.equal(a, b) for a, b in zip(g0, trainer.models["generator"].parameters()))
    assert trainer.state["nan_skips"] == 0
    assert not trainer.use_labels      # unlabelled photos: no label projection on either side
    trainer.close()


def test_unpaired_rad_with_labelled_real_data(paired_root, cityscapes_root, tmp_path):
    opts = RADOptions(run_dir=str(tmp_path / "run"), data=str(paired_root), real=str(cityscapes_root),
                      steps=1, **FAST, **SMALL_DISC)
    trainer = UnpairedRADTrainer(opts)
    assert trainer.use_labels
    scalars = trainer.fit()
    trainer.close()
    assert trainer.step == 1 and all(v == v for v in scalars.values())


def test_crn_measures_layer_weights_and_lowers_its_loss(paired_root, tmp_path):
    opts = CRNOptions(run_dir=str(tmp_path / "run"), data=str(paired_root), lr=1e-2, size=[32, 32],
                      lambda_warmup=2, **{**FAST, "crop": 0, "vgg_taps": ["relu1_2", "relu2_2"]})
    trainer = CRNTrainer(opts)
    batch = fixed_batch(trainer)
    weights = json.loads((tmp_path / "run" / "crn_layer_weights.json").read_text())
    assert weights["layers"] == ["pixels", "relu1_2", "relu2_2"]
    torch.testing.assert_close(torch.tensor(weights["weights"]), 1 / torch.tensor(weights["mean_loss"]))
    assert batch["classes"].shape == (2, 20, 32, 32)
    history = run_steps(trainer, batch, 12)
    assert history[-1]["loss"] < 0.8 * history[0]["loss"], [round(h["loss"], 3) for h in history]
    trainer.close()


def test_diversity_loss_takes_the_per_class_minimum():
    from training.losses.crn import CRNLoss
    from training.losses.vgg import VGG
    loss = CRNLoss(VGG("vgg19", last_layer="relu1_2"), taps=["relu1_2"])
    real = torch.rand(1, 3, 16, 16)
    classes = torch.zeros(1, 20, 16, 16)
    classes[:, 0, :, :4] = 1       # class 0 on the left, class 1 on the right, void between
    classes[:, 1, :, 12:] = 1
    classes[:, 19, :, 4:12] = 1
    good_left, good_right = real.clone(), real.clone()
    good_left[..., 8:] = 0         # image 0 is right only on the left, image 1 only on the right
    good_right[..., :8] = 0
    fake = torch.stack([good_left, good_right], 1)
    total, _ = loss(fake, real, classes)
    per_class = loss.per_layer(fake, real, classes).sum(0)[0]       # (k, C)
    assert per_class[0, 0] < 1e-6 and per_class[1, 1] < 1e-6           # each class has a perfect image
    assert per_class[1, 0] > 0.01 and per_class[0, 1] > 0.01
    torch.testing.assert_close(total, 0.999 * per_class.min(0).values.sum() + 0.001 * per_class.mean(0).sum())
    # A minimum over whole images (the common mis-port) would be larger.
    assert total < 0.999 * per_class.sum(1).min()


def test_nan_step_is_skipped_logged_and_counted(paired_root, tmp_path, caplog):
    opts = RADOptions(run_dir=str(tmp_path / "run"), data=str(paired_root), **FAST)
    trainer = PairedRADTrainer(opts)
    batch = fixed_batch(trainer)
    before = [p.detach().clone() for p in trainer.models["generator"].parameters()]
    poisoned = dict(batch, target=batch["target"].clone())
    poisoned["target"][0, 0, 0, 0] = float("nan")
    trainer.train_step(poisoned)
    assert trainer.state["nan_skips"] == 1 and "non-finite" in caplog.text
    assert all(torch.equal(a, b) for a, b in zip(before, trainer.models["generator"].parameters()))
    trainer.train_step(batch)
    assert trainer.state["nan_skips"] == 1
    trainer.close()


def test_paired_training_refuses_unpaired_data(paired_root, tmp_path):
    with pytest.raises(ValueError, match="fast/ and reference/"):
        PairedRADTrainer(RADOptions(run_dir=str(tmp_path / "r"), data=str(paired_root / "fast"), **FAST))


def test_rad_refuses_unnamed_epe_gbuffers(tmp_path):
    import numpy as np
    from PIL import Image
    from conftest import SIZE, photo
    Image.fromarray(photo(1)).save(tmp_path / "a.png")
    Image.fromarray(np.zeros(SIZE, np.uint8)).save(tmp_path / "l.png")
    np.savez(tmp_path / "a.npz", data=np.zeros((*SIZE, 4), np.float16))
    (tmp_path / "list.txt").write_text("a.png,l.png,a.npz,l.png\n")
    with pytest.raises(ValueError, match="channel names"):
        UnpairedRADTrainer(RADOptions(run_dir=str(tmp_path / "r"), data=str(tmp_path / "list.txt"),
                                      real=str(tmp_path), **FAST))


def test_cosine_schedule_follows_the_step(paired_root, tmp_path):
    """The learning rate is a function of the step alone: full at the start, half at mid-run,
    zero at --steps, so a resumed run continues the same curve; constant is untouched."""
    assert [lr_factor("cosine", s, 4) for s in (0, 2, 4, 9)] == pytest.approx([1.0, 0.5, 0.0, 0.0])
    assert lr_factor("constant", 3, 4) == 1.0
    opts = RADOptions(run_dir=str(tmp_path / "run"), data=str(paired_root), lr=1e-3, steps=4,
                      lr_schedule="cosine", **FAST)
    trainer = PairedRADTrainer(opts)
    batch = fixed_batch(trainer)
    lrs = []
    for step in (0, 1, 2):
        trainer.step = step
        trainer.train_step(batch)
        lrs.append(trainer.optimizers["generator"].param_groups[0]["lr"])
    assert lrs == pytest.approx([1e-3, 1e-3 * lr_factor("cosine", 1, 4), 5e-4])
    trainer.close()
    with pytest.raises(ValueError, match="lr-schedule"):
        PairedRADTrainer(RADOptions(run_dir=str(tmp_path / "bad"), data=str(paired_root),
                                    lr_schedule="linear", **FAST))


def test_start_line_names_device_backend_and_precision(paired_root, tmp_path, caplog):
    """What a GPU user checks first: the device, the process-group backend and whether bf16 is on
    (never on a CPU, where autocast is not used)."""
    opts = RADOptions(run_dir=str(tmp_path / "run"), data=str(paired_root), steps=1, **FAST)
    trainer = PairedRADTrainer(opts)
    with caplog.at_level("INFO", logger="training"):
        trainer.fit()
    trainer.close()
    start = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("training rad"))
    assert "on cpu x1 (backend none)" in start and "bf16" not in start
    assert trainer.autocast_dtype() is None


def test_paired_rad_trains_on_several_corpora(paired_root, tmp_path):
    opts = RADOptions(run_dir=str(tmp_path / "run"), data=f"{paired_root},{paired_root}", **FAST)
    trainer = PairedRADTrainer(opts)
    assert len(trainer.source) == 8
    run_steps(trainer, fixed_batch(trainer), 1)
    trainer.close()


def test_no_worse_hinge_counts_only_crops_worse_than_the_input():
    from training.trainers.rad_paired import worse_than_input
    target = torch.zeros(2, 3, 4, 4)
    image = torch.full((2, 3, 4, 4), 0.5)            # the input: 0.5 off everywhere
    out = torch.stack([torch.full((3, 4, 4), 0.2), torch.full((3, 4, 4), 0.9)])
    assert worse_than_input(out, image, target).item() == pytest.approx((0.0 + 0.4) / 2)
    assert worse_than_input(target.clone(), image, target).item() == 0.0


def test_paired_rad_with_the_no_worse_hinge_trains_and_logs_it(paired_root, tmp_path):
    opts = RADOptions(run_dir=str(tmp_path / "run"), data=str(paired_root), no_worse_weight=1.0,
                      vgg_weight=0, lr=2e-3, **FAST)
    trainer = PairedRADTrainer(opts)
    history = run_steps(trainer, fixed_batch(trainer), 6)
    assert all("worse" in h and h["worse"] >= 0.0 for h in history)
    assert history[-1]["loss"] < history[0]["loss"]
    trainer.close()
