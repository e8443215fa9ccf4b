"""The onnxruntime Enhancer: providers, metadata and graph checks, frame errors, tiling, CRN."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from neural_core import schema
from neural_core.errors import (ModelMetadataError, MissingPassError, NonFiniteError,
                                PhotorealError, SizeMismatchError)
from neural_core.metadata import RAD_GRID_ALIGNMENT
from neural_core.runtime import (Enhancer, available_devices, crn_resolution, pass_input,
                                 resolve_model_path)

from runtime_models import build, export_model, make_frame, metadata_for, torch_reference, with_metadata

ROOT = Path(__file__).resolve().parents[1]
CUDA_HERE = "CUDAExecutionProvider" in ort.get_available_providers()


@pytest.fixture(scope="module")
def rad_model(tmp_path_factory):
    net = build("rad")
    return net, metadata_for(net), export_model(net, tmp_path_factory.mktemp("rad") / "rad.onnx")


@pytest.fixture(scope="module")
def crn_model(tmp_path_factory):
    net = build("crn")
    return net, metadata_for(net), export_model(net, tmp_path_factory.mktemp("crn") / "crn.onnx")


@pytest.fixture(scope="module")
def rad(rad_model):
    return Enhancer.from_pretrained(rad_model[2], device="cpu", threads=1)


# -- the add-on's constraint ----------------------------------------------------------------------

def test_runtime_path_never_imports_torch():
    code = ("import sys, neural_core.runtime, neural_core.tiling, neural_core.display, neural_core.cli; "
            "bad = [m for m in sys.modules if m == 'torch' or m.startswith('torch.')]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


# -- providers ------------------------------------------------------------------------------------

@pytest.mark.skipif(CUDA_HERE, reason="this machine has CUDA; the CPU-only behaviour is tested elsewhere")
def test_auto_falls_back_to_cpu_and_says_why(rad_model):
    enhancer = Enhancer.from_pretrained(rad_model[2], device="auto")
    assert enhancer.provider == "CPUExecutionProvider"
    assert "no CUDA" in enhancer.provider_reason
    assert available_devices() == ["cpu"]


@pytest.mark.skipif(CUDA_HERE, reason="CUDA is available here")
def test_explicit_cuda_without_cuda_is_a_clear_error(rad_model):
    with pytest.raises(PhotorealError, match="onnxruntime-gpu.*CUDA 13.*cuDNN 9"):
        Enhancer.from_pretrained(rad_model[2], device="cuda")


@pytest.mark.skipif(CUDA_HERE, reason="CUDA is available here")
def test_fp16_sibling_is_left_alone_on_the_cpu(rad_model, tmp_path):
    import shutil
    model = shutil.copy(rad_model[2], tmp_path / "rad.onnx")
    (tmp_path / "rad.fp16.onnx").write_bytes(b"only for CUDA; never loaded on the CPU")
    enhancer = Enhancer.from_pretrained(model, device="auto")
    assert enhancer.model_path == tmp_path / "rad.onnx"


def test_unknown_device_and_missing_model_are_clear_errors(rad_model, tmp_path):
    with pytest.raises(PhotorealError, match="unknown device 'tpu'"):
        Enhancer.from_pretrained(rad_model[2], device="tpu")
    with pytest.raises(PhotorealError, match="no model file"):
        Enhancer.from_pretrained(tmp_path / "nope.onnx")


def test_bundled_names_resolve_into_the_package():
    try:
        path = resolve_model_path("rad")
    except PhotorealError as exc:
        assert "neural_core/models/rad.onnx" in str(exc)
    else:
        assert path == ROOT / "neural_core" / "models" / "rad.onnx"


# -- numbers --------------------------------------------------------------------------------------

def test_enhance_equals_the_pytorch_module_on_the_schema_tensors(rad_model, rad):
    net, meta, _ = rad_model
    frame = make_frame(96, 128, seed=1)
    out = rad.enhance(frame)
    assert out.shape == (96, 128, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out, torch_reference(net, frame, meta), rtol=1e-4, atol=1e-4)
    assert set(rad.last_timings) == {"preprocess", "inference", "postprocess"}
    assert rad.last_timings["preprocess"] > 0 and rad.last_timings["inference"] > 0


def test_odd_sizes_are_padded_and_cropped_back(rad_model, rad):
    net, meta, _ = rad_model
    frame = make_frame(131, 250, seed=2)
    out = rad.enhance(frame)
    assert out.shape == (131, 250, 3)
    # The graph pads to the grid alignment by edge replication, so that every level's grid
    # halves exactly; the reference is the module on the np.pad-ed tensors (160 x 256), cropped.
    assert meta.grid_multiple == RAD_GRID_ALIGNMENT == 32
    np.testing.assert_allclose(out, torch_reference(net, frame, meta), rtol=1e-4, atol=1e-4)


def test_tiled_output_matches_whole_frame_within_1_over_255(rad_model):
    frame = make_frame(400, 600, seed=3)
    whole = Enhancer.from_pretrained(rad_model[2], device="cpu", tile_size=0, threads=1)
    tiled = Enhancer.from_pretrained(rad_model[2], device="cpu", tile_size=256, threads=1)
    reference = whole.enhance(frame)
    seen = []
    out = tiled.enhance(frame, progress=lambda done, total: seen.append((done, total)))
    assert whole.last_num_tiles == 1
    assert tiled.last_num_tiles == len(seen) >= 6 and seen[-1] == (len(seen), len(seen))
    # Compared as a viewer would: in display terms (relative to the value for HDR > 1).
    error = np.abs(out - reference) / np.maximum(1.0, np.abs(reference))
    assert error.max() < 1 / 255
    assert not np.array_equal(out, reference), "tiles really ran separately"


def test_a_model_that_sees_further_gets_the_tile_overlap_it_records(tmp_path):
    """RAD's context module reads ~4 pooled cells around a pixel: its metadata records a wider
    tile overlap, the runtime uses it, tiles still match the whole frame, and tiles too small to
    hold that overlap are refused with the size that works."""
    import torch
    net = build("rad", context_pool=8)            # cells of 4 x 8 = 32 px
    torch.nn.init.normal_(net.context.out.weight, std=0.5)   # as after training
    meta = metadata_for(net)
    assert meta.tile_overlap == 256 and metadata_for(build("rad")).tile_overlap == 128
    path = export_model(net, tmp_path / "rad_context.onnx", meta)
    frame = make_frame(640, 1024, seed=6)
    whole = Enhancer.from_pretrained(path, device="cpu", tile_size=0, threads=1).enhance(frame)
    tiled = Enhancer.from_pretrained(path, device="cpu", tile_size=512, threads=1)
    assert tiled.overlap == 256
    narrow = Enhancer.from_pretrained(path, device="cpu", tile_size=512, threads=1, overlap=128)
    error = {name: (np.abs(enhancer.enhance(frame) - whole) / np.maximum(1.0, np.abs(whole))).max()
             for name, enhancer in (("recorded", tiled), ("default", narrow))}
    assert tiled.last_num_tiles > 2
    assert error["recorded"] < 1 / 255 and error["recorded"] < 0.2 * error["default"]
    with pytest.raises(PhotorealError, match="at least 512 px"):
        Enhancer.from_pretrained(path, device="cpu", tile_size=256)


def test_frames_of_up_to_two_tiles_of_pixels_run_whole(rad):
    """1080p runs whole with the default 1024 px tiles (faster, ~1.3 GB); 1440p and 4K are tiled."""
    assert rad.tile_size == 1024
    assert len(rad.plan(1080, 1920)) == 1 and len(rad.plan(1024, 2048)) == 1
    assert len(rad.plan(1440, 2560)) > 1 and len(rad.plan(2160, 3840)) == 15


def test_tiles_start_on_the_grid_alignment(rad):
    for tile in rad.plan(2160, 3840):
        assert tile.y0 % RAD_GRID_ALIGNMENT == 0 and tile.x0 % RAD_GRID_ALIGNMENT == 0


# -- bad frames -----------------------------------------------------------------------------------

def test_missing_pass_names_the_blender_setting(rad):
    frame = make_frame(64, 64)
    del frame["normal"]
    with pytest.raises(MissingPassError, match=r"normal.*use_pass_normal") as info:
        rad.enhance(frame)
    assert info.value.missing == ["normal"]


def test_missing_index_pass_under_eevee_says_switch_to_cycles(rad):
    frame = make_frame(64, 64)
    del frame["object_index"]
    with pytest.raises(MissingPassError, match="EEVEE has no Object Index pass"):
        rad.enhance(frame, engine="BLENDER_EEVEE_NEXT")


def test_eevee_frames_use_the_class_aov_for_the_index_pass(rad):
    frame = make_frame(64, 64)
    expected = rad.enhance(frame)
    frame["class_aov"] = frame.pop("object_index")
    np.testing.assert_array_equal(rad.enhance(frame), expected)


def test_nan_and_inf_are_refused_with_their_position(rad):
    frame = make_frame(64, 64)
    frame["image"][10, 20, 1] = np.nan
    with pytest.raises(NonFiniteError, match="'image'.*row 10, column 20"):
        rad.enhance(frame)
    frame = make_frame(64, 64)
    frame["albedo"][5, 6, 0] = np.inf
    with pytest.raises(NonFiniteError, match="'albedo'"):
        rad.enhance(frame)


def test_size_mismatch_between_passes_is_refused(rad):
    frame = make_frame(64, 64)
    frame["depth"] = make_frame(64, 60, passes=["depth"])["depth"]
    with pytest.raises(SizeMismatchError, match="depth 64x60"):
        rad.enhance(frame)


# -- bad models -----------------------------------------------------------------------------------

def test_model_without_metadata_is_refused(rad_model, tmp_path):
    path = with_metadata(rad_model[2], tmp_path / "bare.onnx", strip=True)
    with pytest.raises(ModelMetadataError, match="no Photoreal Enhance metadata"):
        Enhancer.from_pretrained(path)


def test_model_with_another_schema_version_is_refused(rad_model, tmp_path):
    path = with_metadata(rad_model[2], tmp_path / "old.onnx", props={"photoreal.schema_version": '"0"'})
    with pytest.raises(ModelMetadataError, match="schema version '0'"):
        Enhancer.from_pretrained(path)


def test_graph_with_other_gbuffer_passes_than_its_metadata_is_refused(rad_model, tmp_path):
    net, _, exported = rad_model
    # The graph takes seven G-buffer passes; the metadata claims depth + normal only.
    claimed = metadata_for(net, gbuffer_passes=["depth", "normal"], gbuffer_mean=[0.0] * 4,
                           gbuffer_std=[1.0] * 4)
    path = with_metadata(exported, tmp_path / "mismatch.onnx", props=claimed.to_props())
    with pytest.raises(ModelMetadataError, match=r"inputs \[.*'albedo'.*\] do not match a rad model's "
                                                 r"inputs \['image', 'depth', 'normal', 'object_index'\]"):
        Enhancer.from_pretrained(path)


def test_a_model_exported_with_tensor_inputs_is_refused_with_how_to_re_export(rad_model, tmp_path):
    props = {k: v for k, v in rad_model[1].to_props().items() if not k.endswith("input_format")}
    path = with_metadata(rad_model[2], tmp_path / "old.onnx", props=props, strip=True)
    with pytest.raises(ModelMetadataError, match=r"earlier version.*python -m training export"):
        Enhancer.from_pretrained(path)


def test_graph_whose_inputs_are_another_kinds_is_refused(rad_model, crn_model, tmp_path):
    path = with_metadata(crn_model[2], tmp_path / "crn_as_rad.onnx", props=rad_model[1].to_props())
    with pytest.raises(ModelMetadataError, match=r"inputs \['object_index'\].*rad model"):
        Enhancer.from_pretrained(path)


def test_a_file_that_is_not_onnx_is_refused(tmp_path):
    path = tmp_path / "broken.onnx"
    path.write_bytes(b"not a model")
    with pytest.raises(PhotorealError, match="cannot load ONNX model"):
        Enhancer.from_pretrained(path)


# -- CRN ------------------------------------------------------------------------------------------

def test_crn_runs_whole_frame_and_takes_the_first_of_k_images(crn_model):
    net, meta, path = crn_model
    crn = Enhancer.from_pretrained(path, device="cpu", threads=1)
    frame = make_frame(60, 100, passes=["object_index"], seed=4)  # not a multiple of 4: padded
    out = crn.enhance(frame)
    assert out.shape == (60, 100, 3) and crn.last_num_tiles == 1
    np.testing.assert_allclose(out, torch_reference(net, frame, meta), rtol=1e-4, atol=1e-4)


def test_crn_above_the_budget_runs_at_bounded_resolution(crn_model):
    run_h, run_w = crn_resolution(2160, 3840, 1024, 8)
    assert run_h * run_w <= 2048 ** 2 and run_h % 8 == run_w % 8 == 0
    assert abs(run_w / run_h - 3840 / 2160) < 0.01 and run_h > 1500
    assert crn_resolution(2160, 3840, 0, 8) == (2160, 3840)
    assert crn_resolution(1080, 1920, 1024, 1) == (1080, 1920)
    crn = Enhancer.from_pretrained(crn_model[2], device="cpu", tile_size=64, threads=1)
    frame = make_frame(160, 240, passes=["object_index"], seed=5)
    out = crn.enhance(frame)
    assert out.shape == (160, 240, 3) and np.isfinite(out).all()


def test_tile_feeds_are_contiguous_crops_of_the_passes_in_reused_memory(rad_model):
    """Tiles of an odd-sized frame (edge tiles smaller than the rest): each feed is exactly the
    tile's crop of its pass, C-contiguous (1, C, h, w), and every tile reuses one array a pass."""
    enhancer = Enhancer.from_pretrained(rad_model[2], device="cpu", threads=1, tile_size=96,
                                        overlap=32)
    frame = make_frame(150, 203, seed=4)
    tiles = enhancer.plan(150, 203)
    assert len(tiles) > 4 and len({t.shape for t in tiles}) > 1
    first = enhancer._tile_feeds(frame, max(tiles, key=lambda t: t.shape[0] * t.shape[1]))
    starts = {key: feed.ctypes.data for key, feed in first.items()}
    for tile in tiles:
        feeds = enhancer._tile_feeds(frame, tile)
        assert list(feeds) == enhancer.required_passes
        rows, cols = tile.slices
        for key, feed in feeds.items():
            assert feed.flags.c_contiguous and feed.ctypes.data == starts[key]
            np.testing.assert_array_equal(feed[0], frame[key][rows, cols].transpose(2, 0, 1))


def test_a_whole_frame_read_from_an_exr_is_fed_without_a_copy():
    """The EXR reader stacks each pass channel-first; the graph input is then a view of it."""
    planes = [np.random.default_rng(0).random((20, 30), dtype=np.float32) for _ in range(3)]
    normal = schema.frame_from_exr_channels({f"V.Normal.{c}": p for c, p in zip("XYZ", planes)})["normal"]
    fed = pass_input(normal)
    assert fed.shape == (1, 3, 20, 30) and np.shares_memory(fed, normal)
    np.testing.assert_array_equal(fed[0, 1], planes[1])


def test_channel_first_frames_give_the_same_output(rad):
    """Frames read from EXRs hold multi-channel passes channel-first in memory (transposed
    views); the output equals that of ordinary interleaved arrays."""
    frame = make_frame(70, 90, seed=2)
    views = {k: np.ascontiguousarray(v.transpose(2, 0, 1)).transpose(1, 2, 0) for k, v in frame.items()}
    np.testing.assert_allclose(rad.enhance(views), rad.enhance(frame), rtol=1e-6, atol=1e-7)
