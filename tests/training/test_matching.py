"""EPE-style patch matching without faiss: exact kNN, cosine filter, sampling weights, and
unpaired training on the matched crops."""
import csv

import numpy as np
import pytest

from training.data.loader import CropDataset
from training.data.sources import open_source
from training.losses.vgg import VGG
from training.matching import MatchedCrops, collate_pairs, crop_weights, knn, match, weights_file
from training.options import RADOptions
from training.trainers.rad_unpaired import UnpairedRADTrainer


def test_knn_is_exact():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(50, 8))
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    queries = base[[3, 17]] + rng.normal(scale=0.01, size=(2, 8))
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    sims, idx = knn(queries.astype(np.float32), base.astype(np.float32), k=4, chunk=1)
    brute = queries @ base.T
    np.testing.assert_array_equal(idx, np.argsort(-brute, axis=1)[:, :4])
    np.testing.assert_allclose(sims, np.sort(brute, axis=1)[:, ::-1][:, :4], rtol=1e-5)
    assert list(idx[:, 0]) == [3, 17]


def test_crop_weights_flatten_coverage():
    # Two crops on the same spot and one elsewhere: the lonely crop gets twice the weight.
    positions = np.array([[0, 0, 0], [1, 0, 0], [2, 0, 4]])
    weights = crop_weights(positions, crop=4, height=4, width=8)
    np.testing.assert_allclose(weights, [1.0, 1.0, 2.0])


def test_match_writes_pairs_with_cosine_threshold(paired_root, photo_dir, tmp_path):
    vgg = VGG("vgg16", last_layer="relu2_2")
    out = tmp_path / "matches.csv"
    synthetic, real = open_source(str(paired_root / "fast"), []), open_source(str(photo_dir), [])
    summary = match(synthetic, real, vgg, out, crop=32, per_image=3, k=2, threshold=0.5,
                    progress=False, layer="relu2_2")
    rows = list(csv.DictReader(open(out)))
    assert len(rows) == summary["pairs"] > 0
    assert all(float(r["similarity"]) >= 0.5 for r in rows)
    assert len(np.load(weights_file(out))["w"]) == len(rows)
    with pytest.raises(ValueError, match="no crop pair"):
        match(synthetic, real, vgg, tmp_path / "none.csv", crop=32, per_image=2, k=1, threshold=1.01,
              progress=False, layer="relu2_2")

    with_gbuffers = open_source(str(paired_root / "fast"))      # pairs are found by file name
    pairs = MatchedCrops(out, CropDataset(with_gbuffers, 32), CropDataset(real, 32))
    batch = collate_pairs([pairs[(0, 1)], pairs[(len(pairs) - 1, 2)]])
    assert batch["synthetic"]["image"].shape == batch["real"]["image"].shape == (2, 3, 32, 32)
    assert batch["synthetic"]["gbuffers"].shape[1] == 8


def test_unpaired_training_on_matched_crops(paired_root, photo_dir, tmp_path):
    vgg = VGG("vgg16", last_layer="relu2_2")
    out = tmp_path / "matches.csv"
    match(open_source(str(paired_root / "fast"), []), open_source(str(photo_dir), []), vgg, out,
          crop=32, per_image=2, k=2, threshold=0.0, progress=False, layer="relu2_2")
    opts = RADOptions(run_dir=str(tmp_path / "run"), data=str(paired_root), real=str(photo_dir),
                      matches=str(out), net="tiny", batch_size=2, crop=32, workers=0, progress=False,
                      steps=2, log_every=1, vgg_taps=["relu1_2"], disc_layers=1, disc_dim=16,
                      disc_taps=["relu1_2"])
    trainer = UnpairedRADTrainer(opts)
    scalars = trainer.fit()
    trainer.close()
    assert trainer.step == 2 and np.isfinite(list(scalars.values())).all()
