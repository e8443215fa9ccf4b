"""The dataset format: round trips, resume and crash safety (no Blender needed)."""
import json

import numpy as np
import pytest

from neural_core import dataset_format as df
from neural_core import display, exr, schema
from neural_core.errors import MissingPassError

W, H = 8, 6


def make_frame(seed: int, with_glossy: bool = True) -> schema.Frame:
    rng = np.random.default_rng(seed)
    frame = {
        "image": rng.uniform(0, 2, (H, W, 3)).astype(np.float32),
        "depth": rng.uniform(1, 50, (H, W, 1)).astype(np.float32),
        "normal": rng.uniform(-1, 1, (H, W, 3)).astype(np.float32),
        "albedo": rng.uniform(0, 1, (H, W, 3)).astype(np.float32),
        "object_index": rng.integers(0, 5, (H, W, 1)).astype(np.float32),
    }
    if with_glossy:
        frame["glossy"] = rng.uniform(0, 1, (H, W, 3)).astype(np.float32)
    return frame


def blender_exr(tmp_path, frame, name="render.exr", version=(4, 5)):
    path = tmp_path / name
    exr.write_frame(path, frame, blender_version=version)
    return path


def new_writer(directory, **kw):
    settings = dict(engine="CYCLES", samples=4, resolution=(W, H), blender_version="4.5.15")
    settings.update(kw)
    return df.DatasetWriter(directory, **settings)


def test_round_trip_of_every_file(tmp_path):
    out = tmp_path / "ds"
    frames = {n: make_frame(n) for n in (1, 2, 3)}
    writer = new_writer(out)
    for n, frame in frames.items():
        writer.write_frame(n, blender_exr(tmp_path, frame, version=(4, 5) if n < 3 else (5, 0)))

    reader = df.DatasetReader(out)
    assert reader.frames == [1, 2, 3]
    assert reader.resolution == (W, H)
    assert reader.gbuffer_passes == ["depth", "normal", "albedo", "glossy"]
    assert reader.gbuffer_channels == schema.gbuffer_channel_names(reader.gbuffer_passes)
    for n, frame in frames.items():
        got = reader.read_frame(n)
        for key, arr in frame.items():
            np.testing.assert_array_equal(got[key], arr)
        npz = reader.read_gbuffers_npz(n)
        expected = np.concatenate([frame[k] for k in reader.gbuffer_passes], axis=-1)
        np.testing.assert_array_equal(npz["gbuffers"], expected)
        assert list(npz["channels"]) == reader.gbuffer_channels
        np.testing.assert_array_equal(npz["img"], display.to_display(frame["image"]))
        np.testing.assert_array_equal(reader.read_image(n), npz["img"])
        np.testing.assert_array_equal(reader.read_labels(n), schema.class_map_from_frame(frame))


def test_list_file_and_manifest(tmp_path):
    out = tmp_path / "ds"
    writer = new_writer(out, extra={"seed": 7})
    writer.write_frame(12, make_frame(0))
    writer.write_frame(3, make_frame(1))
    lines = (out / "list.txt").read_text().splitlines()
    assert lines == ["image/000003.png,labels/000003.png,gbuffers/000003.npz,labels/000003.png",
                     "image/000012.png,labels/000012.png,gbuffers/000012.npz,labels/000012.png"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["format"] == "photoreal-dataset" and manifest["samples"] == 4
    assert manifest["schema_version"] == schema.SCHEMA_VERSION and manifest["extra"] == {"seed": 7}
    assert list(manifest["frames"]) == ["3", "12"]


def test_srgb_encoding_known_values():
    got = display.to_display(np.array([[[0.0, 0.0031308, 0.18]], [[0.5, 1.0, 7.0]]], np.float32))
    np.testing.assert_array_equal(got, [[[0, 10, 118]], [[188, 255, 255]]])


def test_resume_skips_finished_frames_and_redoes_unlisted_ones(tmp_path):
    out = tmp_path / "ds"
    new_writer(out).write_frame(1, make_frame(1))
    # Simulate a crash while frame 2 was being written: files exist, manifest never updated.
    (out / "frames").joinpath("000002.exr").write_bytes(b"half")
    resumed = new_writer(out)
    assert resumed.is_complete(1) and not resumed.is_complete(2)
    resumed.write_frame(2, make_frame(2))
    assert df.DatasetReader(out).frames == [1, 2]
    np.testing.assert_array_equal(df.DatasetReader(out).read_frame(2)["image"], make_frame(2)["image"])


def test_frame_with_missing_file_is_not_complete(tmp_path):
    out = tmp_path / "ds"
    new_writer(out).write_frame(1, make_frame(1))
    (out / "labels" / "000001.png").unlink()
    assert not new_writer(out).is_complete(1)


def test_no_temporary_files_left(tmp_path):
    out = tmp_path / "ds"
    new_writer(out).write_frame(1, make_frame(1))
    leftovers = [p.name for p in out.rglob("*") if ".tmp" in p.name]
    assert leftovers == []


def test_resume_with_changed_settings_is_refused(tmp_path):
    out = tmp_path / "ds"
    new_writer(out).write_frame(1, make_frame(1))
    with pytest.raises(df.DatasetFormatError, match="samples: 4 in the dataset, 64 now"):
        new_writer(out, samples=64)


def test_changed_passes_or_size_are_refused(tmp_path):
    writer = new_writer(tmp_path / "ds")
    writer.write_frame(1, make_frame(1))
    with pytest.raises(df.DatasetFormatError, match="G-buffer passes"):
        writer.write_frame(2, make_frame(2, with_glossy=False))
    small = {k: v[:4] for k, v in make_frame(3).items()}
    with pytest.raises(df.DatasetFormatError, match="8x4 but the dataset is 8x6"):
        writer.write_frame(3, small)


def test_missing_class_pass_says_how_to_fix(tmp_path):
    frame = make_frame(1)
    del frame["object_index"]
    with pytest.raises(MissingPassError, match="use_pass_object_index"):
        new_writer(tmp_path / "ds").write_frame(1, frame)


def test_reader_refuses_other_directories(tmp_path):
    with pytest.raises(df.DatasetFormatError, match="no manifest.json"):
        df.DatasetReader(tmp_path)
    (tmp_path / "manifest.json").write_text('{"format": "something-else"}')
    with pytest.raises(df.DatasetFormatError, match="not a photoreal-dataset"):
        df.DatasetReader(tmp_path)


def test_reader_hides_incomplete_frames(tmp_path):
    out = tmp_path / "ds"
    new_writer(out).write_frame(1, make_frame(1))
    reader = df.DatasetReader(out)
    with pytest.raises(KeyError, match="frame 2 is not a complete frame"):
        reader.read_labels(2)
