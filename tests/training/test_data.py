"""Every loader on a tiny dataset in its own layout, broken-file handling, stats and sampling."""
import json
import logging

import numpy as np
import pytest
import torch
from PIL import Image

from neural_core import schema
from training.data import stats as stats_mod
from training.data.loader import CropDataset, StepSampler, collate
from training.data.sources import (Cityscapes, EPEList, ExportedScenes, PairedScenes, PhotoFolder,
                                   SourceError, open_source, srgb_to_linear)

from conftest import GBUFFER_PASSES, SIZE, photo, scene_frame, write_scenes


def test_exported_scenes_match_the_schema_tensors(paired_root):
    source = open_source(str(paired_root / "reference"))
    assert isinstance(source, ExportedScenes) and len(source) == 4
    assert source.gbuffer_passes == list(GBUFFER_PASSES)   # the defaults present in the data
    item = source.load(0)
    frame = scene_frame(1)
    np.testing.assert_allclose(item["image"], schema.image_tensor(frame), atol=1e-6)
    np.testing.assert_allclose(item["gbuffers"], schema.gbuffer_tensor(frame, GBUFFER_PASSES), atol=1e-6)
    np.testing.assert_array_equal(item["class_ids"], frame["object_index"][..., 0].astype(int) - 1)


def test_paired_scenes_give_the_reference_as_target(paired_root):
    source = open_source(str(paired_root))
    assert isinstance(source, PairedScenes) and len(source) == 4
    item = source.load(2)
    np.testing.assert_allclose(item["target"], schema.image_tensor(scene_frame(3)), atol=1e-6)
    np.testing.assert_allclose(item["image"], schema.image_tensor(scene_frame(3, noise=0.5)), atol=1e-6)


def test_paired_frames_without_reference_are_skipped_and_named(tmp_path, caplog):
    write_scenes(tmp_path / "fast", {1: scene_frame(1), 2: scene_frame(2)}, samples=4)
    write_scenes(tmp_path / "reference", {1: scene_frame(1)}, samples=512)
    with caplog.at_level(logging.WARNING):
        source = PairedScenes(tmp_path / "fast", tmp_path / "reference")
    assert len(source) == 1 and len(source.skipped) == 1
    assert "frame 2" in caplog.text


def test_epe_list_written_by_the_exporter(paired_root):
    source = open_source(str(paired_root / "fast" / "list.txt"))
    assert isinstance(source, EPEList) and len(source) == 4
    assert source.gbuffer_passes == list(GBUFFER_PASSES)
    item = source.load(1)
    frame = scene_frame(2, noise=0.5)
    np.testing.assert_allclose(item["gbuffers"], schema.gbuffer_tensor(frame, GBUFFER_PASSES), atol=1e-6)
    np.testing.assert_array_equal(item["class_ids"], frame["object_index"][..., 0].astype(int) - 1)
    # The PNG is 8-bit display sRGB of the clipped render; decoding it gives back the clipped radiance.
    expected = np.clip(frame["image"], 0, 1).transpose(2, 0, 1)
    np.testing.assert_allclose(schema.decode_radiance(item["image"]), expected, atol=0.01)


def test_epe_list_with_epe_style_npz_and_cityscapes_ids(tmp_path):
    img = photo(1)
    Image.fromarray(img).save(tmp_path / "a.png")
    Image.fromarray(np.full(SIZE, 26, np.uint8)).save(tmp_path / "gt.png")       # 26 = car
    Image.fromarray(np.full(SIZE, 5, np.uint8)).save(tmp_path / "robust.png")
    raw = np.random.default_rng(0).random((*SIZE, 32)).astype(np.float16)
    np.savez(tmp_path / "a.npz", data=raw)
    (tmp_path / "list.txt").write_text("a.png,robust.png,a.npz,gt.png\n"
                                       "missing.png,robust.png,a.npz,gt.png\n")
    source = EPEList(tmp_path / "list.txt", gt_labels="cityscapes")
    assert len(source) == 1 and len(source.skipped) == 1      # the missing image is named, not hidden
    assert source.gbuffer_passes is None and len(source.gbuffer_channels) == 32
    item = source.load(0)
    np.testing.assert_allclose(item["gbuffers"], raw.astype(np.float32).transpose(2, 0, 1))
    assert (item["class_ids"] == schema.CLASSES.index("car")).all()
    assert (item["labels"] == 5).all()


@pytest.mark.parametrize("label_kind", ["labelIds", "color"])
def test_cityscapes_layout_uses_the_official_table(cityscapes_root, label_kind):
    source = Cityscapes(cityscapes_root, "train", label_kind)
    assert len(source) == 3
    item = source.load(0)
    ids = np.asarray(Image.open(next((cityscapes_root / "gtFine/train/aachen").glob("*000000*labelIds.png"))))
    expected = {7: "road", 11: "building", 21: "vegetation", 23: "sky", 26: "car", 1: "void", 0: "void"}
    for city_id, name in expected.items():
        if (ids == city_id).any():
            assert (item["class_ids"][ids == city_id] == schema.CLASSES.index(name)).all(), city_id
    assert open_source(str(cityscapes_root)).kind == "cityscapes"


def test_photo_folder_is_linearised_before_encoding(photo_dir):
    source = open_source(str(photo_dir))
    assert isinstance(source, PhotoFolder) and len(source) == 5     # recursive, png and jpg
    item = source.load(0)
    srgb = photo(0)
    np.testing.assert_allclose(schema.decode_radiance(item["image"]).transpose(1, 2, 0),
                               srgb_to_linear(srgb), atol=1e-5)
    assert srgb_to_linear(np.array([255]))[0] == pytest.approx(1.0)
    assert srgb_to_linear(np.array([128]))[0] == pytest.approx(0.2158, abs=1e-3)   # not 0.5: EOTF
    assert (item["class_ids"] == schema.VOID_CLASS).all()


def test_broken_file_is_skipped_with_its_name_and_counted(tmp_path, caplog):
    write_scenes(tmp_path / "d", {n: scene_frame(n) for n in (1, 2, 3)}, samples=4)
    broken = tmp_path / "d" / "frames" / "000002.exr"
    broken.write_bytes(b"not an exr at all")
    dataset = CropDataset(ExportedScenes(tmp_path / "d"), crop=32)
    with caplog.at_level(logging.WARNING):
        sample = dataset[(1, 0)]
    assert sample["skipped"] == [str(broken)] and str(broken) in caplog.text
    assert sample["name"].endswith("000003.exr")
    batch = collate([sample, dataset[(0, 1)]])
    assert batch["skipped"] == [str(broken)]


def test_empty_dataset_is_a_clear_error(tmp_path):
    (tmp_path / "leftImg8bit").mkdir()
    with pytest.raises(SourceError, match="Cityscapes"):
        open_source(str(tmp_path))


def test_stats_are_computed_once_and_saved_next_to_the_data(tmp_path):
    write_scenes(tmp_path / "d", {n: scene_frame(n) for n in (1, 2)}, samples=4)
    source = ExportedScenes(tmp_path / "d")
    data = stats_mod.load_or_compute(source, run_dir=tmp_path / "run")
    path = tmp_path / "d" / "gbuffer_stats.json"
    assert json.loads(path.read_text()) == data == json.loads((tmp_path / "run" / "gbuffer_stats.json").read_text())
    stacked = np.concatenate([schema.gbuffer_tensor(scene_frame(n), GBUFFER_PASSES)[:, ::4, ::4]
                              .reshape(8, -1) for n in (1, 2)], axis=1)
    np.testing.assert_allclose(data["mean"], stacked.mean(1), atol=1e-5)
    np.testing.assert_allclose(data["std"], stacked.std(1), atol=1e-5)
    # Second call reads the file (a changed file proves it is not recomputed).
    data["mean"][0] = 123.0
    path.write_text(json.dumps(data))
    assert stats_mod.load_or_compute(source)["mean"][0] == 123.0


def test_random_crops_and_batches(paired_root):
    source = open_source(str(paired_root))
    stats = schema.GBufferStats((0.5,) * 8, (2.0,) * 8)
    dataset = CropDataset(source, crop=32, stats=stats)
    sampler = StepSampler(len(dataset), batch_size=3, seed=5)
    batch = collate([dataset[key] for key in sampler.batch(0)])
    assert batch["image"].shape == (3, 3, 32, 32) and batch["target"].shape == (3, 3, 32, 32)
    assert batch["gbuffers"].shape == (3, 8, 32, 32) and batch["classes"].shape == (3, 20, 32, 32)
    torch.testing.assert_close(batch["classes"].sum(1), torch.ones(3, 32, 32))
    # Same step -> same batch; another step -> another one.
    assert sampler.batch(7) == StepSampler(len(dataset), 3, 5, start=7).batch(7)
    assert sampler.batch(7) != sampler.batch(8)
    # Crops of input and target come from the same place.
    key = sampler.batch(0)[0]
    sample, full = dataset[key], source.load(key[0])
    found = any(np.allclose(full["target"][:, t:t + 32, l:l + 32], sample["target"].numpy())
                and np.allclose(full["image"][:, t:t + 32, l:l + 32], sample["image"].numpy())
                for t in range(SIZE[0] - 31) for l in range(SIZE[1] - 31))
    assert found


def test_stats_command(tmp_path, capsys):
    from training.__main__ import main
    write_scenes(tmp_path / "d", {n: scene_frame(n) for n in (1, 2)}, samples=4)
    assert main(["stats", str(tmp_path / "d")]) == 0
    assert "8 channels over 2 items" in capsys.readouterr().out
    assert json.loads((tmp_path / "d" / "gbuffer_stats.json").read_text())["channels"][0] == "depth.z"


def test_rescaled_depth_is_the_depth_of_a_larger_scene():
    depth = np.array([0.2, 3.0, 40.0, schema.DEPTH_FAR], np.float32)
    encoded = schema.apply_transform("depth", depth)
    np.testing.assert_allclose(schema.rescale_encoded_depth(encoded, 2.5),
                               schema.apply_transform("depth", np.minimum(depth * 2.5, schema.DEPTH_FAR)),
                               rtol=1e-5)
    assert schema.rescale_encoded_depth(encoded, 0.1)[-1] == 1.0       # the sky stays at infinity
    np.testing.assert_allclose(schema.rescale_encoded_depth(encoded, 1.0), encoded, rtol=1e-5)


def test_depth_scale_augmentation_changes_only_the_depth(paired_root):
    source = open_source(str(paired_root))
    plain, scaled = CropDataset(source, crop=None), CropDataset(source, crop=None, depth_scale=8.0)
    depth = source.gbuffer_channels.index("depth.z")
    factors = []
    for seed in range(6):
        a, b = plain[(0, seed)]["gbuffers"].numpy(), scaled[(0, seed)]["gbuffers"].numpy()
        np.testing.assert_array_equal(np.delete(a, depth, 0), np.delete(b, depth, 0))
        meters = lambda g: np.expm1(g[depth].astype(np.float64) * np.log1p(schema.DEPTH_FAR))  # noqa: E731
        near = meters(a) < 0.99 * schema.DEPTH_FAR                  # the sky stays at infinity
        ratio = meters(b)[near] / meters(a)[near]
        assert near.any() and np.allclose(ratio, ratio[0], rtol=1e-3)   # one factor per sample
        assert (b[depth][~near] == 1.0).all()
        factors.append(ratio[0])
    assert all(1 / 8 <= f <= 8 for f in factors) and max(factors) / min(factors) > 1.5
    with pytest.raises(ValueError, match="at least 1"):
        CropDataset(source, crop=None, depth_scale=0.5)


def test_color_permutation_swaps_every_colour_alike(paired_root):
    source = open_source(str(paired_root))
    plain, permuted = CropDataset(source, crop=None), CropDataset(source, crop=None, color_permute=1.0)
    channels = source.gbuffer_channels
    colour = [i for i, name in enumerate(channels) if name.split(".")[1] in "rgb"]
    assert colour, channels
    swapped = 0
    for seed in range(6):
        a, b = plain[(0, seed)], permuted[(0, seed)]
        image, permuted_image = a["image"].numpy(), b["image"].numpy()
        order = [next(j for j in range(3) if np.array_equal(permuted_image[c], image[j])) for c in range(3)]
        swapped += order != [0, 1, 2]
        np.testing.assert_array_equal(b["target"].numpy(), a["target"].numpy()[order])
        start = colour[0]
        np.testing.assert_array_equal(b["gbuffers"].numpy()[start:start + 3],
                                      a["gbuffers"].numpy()[start:start + 3][order])
        others = [i for i in range(len(channels)) if i not in colour]
        np.testing.assert_array_equal(b["gbuffers"].numpy()[others], a["gbuffers"].numpy()[others])
    assert swapped >= 3
    with pytest.raises(ValueError, match="probability"):
        CropDataset(source, crop=None, color_permute=2.0)


def test_several_paired_corpora_read_as_one(paired_root, tmp_path):
    extra = tmp_path / "closeups"
    write_scenes(extra / "reference", {7: scene_frame(7)}, samples=1024)
    write_scenes(extra / "fast", {7: scene_frame(7, noise=0.5)}, samples=4)
    source = open_source(f"{paired_root},{extra}", several=True)
    assert len(source) == 5 and source.root == paired_root / "fast"   # stats: the first corpus's
    np.testing.assert_allclose(source.load(4)["target"], schema.image_tensor(scene_frame(7)), atol=1e-6)
    np.testing.assert_allclose(source.load(1)["image"], schema.image_tensor(scene_frame(2, noise=0.5)),
                               atol=1e-6)
    assert source.name(4).endswith("7.exr") and "+" in source.describe()


def test_several_roots_are_refused_where_they_cannot_be_read(paired_root, photo_dir):
    with pytest.raises(SourceError, match="paired RAD training only"):
        open_source(f"{paired_root},{paired_root}")   # e.g. CRN training
    with pytest.raises(SourceError, match="must all be paired corpora"):
        open_source(f"{paired_root},{photo_dir}", several=True)


def test_several_corpora_need_the_same_gbuffer_channels(paired_root, tmp_path):
    other = tmp_path / "other"
    frames = {n: {k: v for k, v in scene_frame(n).items() if k != "roughness"} for n in (1,)}
    write_scenes(other / "reference", frames, samples=1024)
    write_scenes(other / "fast", frames, samples=4)
    with pytest.raises(SourceError, match="--gbuffer-passes"):
        open_source(f"{paired_root},{other}", several=True)
