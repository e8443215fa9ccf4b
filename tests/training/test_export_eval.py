"""Export a trained run, run it through the add-on's runtime, and evaluate it from the CLI."""
import json

import numpy as np
import pytest
import torch

from neural_core import schema
from neural_core.metadata import read_onnx_metadata
from neural_core.runtime import Enhancer
from training.__main__ import main
from training.export import export_run, generator_from, load_run
from training.options import CRNOptions, RADOptions
from training.trainers.crn import CRNTrainer
from training.trainers.rad_paired import PairedRADTrainer

from conftest import scene_frame, write_scenes

FAST = dict(net="tiny", batch_size=2, crop=32, workers=0, progress=False, log_every=1,
            vgg_taps=["relu1_2"], steps=2)


@pytest.fixture(scope="module")
def rad_run(paired_root, tmp_path_factory):
    run = tmp_path_factory.mktemp("rad_run")
    trainer = PairedRADTrainer(RADOptions(run_dir=str(run), data=str(paired_root), **FAST))
    trainer.fit()
    trainer.close()
    return run


def test_rad_export_matches_pytorch_through_the_runtime(rad_run, tmp_path):
    path = export_run(rad_run, tmp_path / "rad.onnx")
    meta = read_onnx_metadata(path)
    stats = json.loads((rad_run / "gbuffer_stats.json").read_text())
    assert meta.model_kind == "rad" and meta.is_trained
    assert meta.gbuffer_mean == pytest.approx(stats["mean"]) and meta.gbuffer_std == pytest.approx(stats["std"])
    assert "2 steps" in meta.trained_on and "paired scenes" in meta.trained_on

    # 64 x 64 needs no padding to the runtime's grid alignment, so the two must agree everywhere.
    frame = scene_frame(11, size=(64, 64))
    enhanced = Enhancer.from_pretrained(path, device="cpu").enhance(frame)

    model = generator_from(load_run(rad_run))
    inputs = (torch.from_numpy(schema.image_tensor(frame))[None],
              torch.from_numpy(schema.gbuffer_tensor(frame, meta.gbuffer_passes, meta.stats))[None],
              torch.from_numpy(schema.one_hot(schema.class_map_from_frame(frame)))[None])
    with torch.no_grad():
        expected = schema.decode_radiance(model(*inputs)[0].numpy()).transpose(1, 2, 0)
    np.testing.assert_allclose(enhanced, expected, rtol=1e-3, atol=1e-4)


def test_crn_export_matches_pytorch_through_the_runtime(paired_root, tmp_path):
    trainer = CRNTrainer(CRNOptions(run_dir=str(tmp_path / "crn"), data=str(paired_root), size=[32, 32],
                                    lambda_warmup=1, **{**FAST, "crop": 0}))
    trainer.fit()
    trainer.close()
    assert main(["export", str(tmp_path / "crn"), "--out", str(tmp_path / "crn.onnx")]) == 0
    frame = scene_frame(12)
    enhanced = Enhancer.from_pretrained(tmp_path / "crn.onnx", device="cpu").enhance(frame)
    model = generator_from(load_run(tmp_path / "crn"))
    classes = torch.from_numpy(schema.one_hot(schema.class_map_from_frame(frame)))[None]
    with torch.no_grad():
        expected = schema.decode_radiance(model(classes)[0, 0].numpy()).transpose(1, 2, 0)
    np.testing.assert_allclose(enhanced, expected, rtol=1e-3, atol=1e-4)


def test_export_without_a_checkpoint_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="train first"):
        export_run(tmp_path, tmp_path / "m.onnx")


def test_evaluate_cli_writes_metrics_grids_and_curves(rad_run, paired_root, photo_dir, tmp_path):
    model = export_run(rad_run, tmp_path / "rad.onnx")
    out = tmp_path / "eval"
    assert main(["evaluate", "--model", str(model), "--data", str(paired_root), "--out", str(out),
                 "--real", str(photo_dir), "--run-dir", str(rad_run), "--features", "vgg16:relu2_2"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["frames"] == 4 and metrics["skipped_frames"] == []
    for key in ("psnr", "ssim", "input_psnr", "kid", "input_kid", "frechet", "skvd"):
        assert key in metrics, key
    assert 0 < metrics["psnr"] < 60 and -1 <= metrics["ssim"] <= 1
    assert sorted(p.name for p in (out / "grids").iterdir()) == [f"00000{n}.png" for n in range(1, 5)]
    grid = np.asarray(__import__("PIL.Image", fromlist=["Image"]).open(out / "grids" / "000001.png"))
    assert grid.shape == (48, 64 * 3, 3)    # input | output | reference
    assert (out / "training_curves.png").stat().st_size > 1000


def test_evaluate_temporal_error_on_a_static_sequence(rad_run, tmp_path):
    model = export_run(rad_run, tmp_path / "rad.onnx")
    frames = {}
    for n in (1, 2, 3):
        frame = scene_frame(5)
        frame["motion"] = np.zeros((*frame["image"].shape[:2], 4), np.float32)
        frames[n] = frame
    write_scenes(tmp_path / "seq", frames, samples=4)
    out = tmp_path / "eval"
    assert main(["evaluate", "--model", str(model), "--data", str(tmp_path / "seq"), "--out", str(out),
                 "--features", "vgg16:relu1_2"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    # A static scene and a deterministic model: nothing flickers.
    assert metrics["warping_error"] == pytest.approx(0.0, abs=1e-12)
    assert metrics["input_warping_error"] == pytest.approx(0.0, abs=1e-12)


def test_residual_scale_is_baked_into_the_exported_weights(paired_root, tmp_path):
    """--residual-scale S: the output is the input image plus S times the residual (encoded
    domain), what scripts/calibrate_residual.py measures before choosing S."""
    residual_net = json.dumps({"zero_residual": True, "output_kernel": 0, "kernel_scales": 1})
    run = tmp_path / "run"
    trainer = PairedRADTrainer(RADOptions(run_dir=str(run), data=str(paired_root), net_config=residual_net,
                                          lr=1e-2, **{**FAST, "steps": 3}))
    trainer.fit()
    trainer.close()
    frame = scene_frame(12, size=(64, 64))
    full = Enhancer.from_pretrained(export_run(run, tmp_path / "full.onnx"), device="cpu").enhance(frame)
    half_path = export_run(run, tmp_path / "half.onnx", residual_scale=0.5)
    half = Enhancer.from_pretrained(half_path, device="cpu").enhance(frame)
    image = schema.encode_radiance(frame["image"].copy())
    residual = schema.encode_radiance(full.copy()) - image
    assert np.abs(residual).max() > 1e-3          # the run learned a residual to scale
    np.testing.assert_allclose(half, schema.decode_radiance(image + 0.5 * residual), rtol=1e-4, atol=1e-5)
    assert "residual x0.5" in read_onnx_metadata(half_path).trained_on


def test_residual_scale_is_refused_for_a_network_without_a_residual(rad_run, tmp_path):
    with pytest.raises(ValueError, match="image \\+ residual"):
        export_run(rad_run, tmp_path / "m.onnx", residual_scale=0.5)
    with pytest.raises(ValueError, match="in \\(0, 1\\]"):
        export_run(rad_run, tmp_path / "m.onnx", residual_scale=1.5)
    with pytest.raises(ValueError, match="--full-bounce-scale needs a network that returns image"):
        export_run(rad_run, tmp_path / "m.onnx", full_bounce_scale=0.5)
    assert not (tmp_path / "m.onnx").exists()
