"""Reading multilayer EXRs that real Blender wrote (fixtures made by scripts/make_exr_fixtures.py).

Blender 4.5 writes one interleaved part with the old pass names (DiffCol, IndexOB, ...);
Blender 5.2 writes one part per pass with the new names (Diffuse Color, Object Index, ...).
"""
from pathlib import Path

import numpy as np
import OpenEXR
import pytest

from neural_core import exr, schema
from neural_core.errors import CorruptFileError

FIXTURES = Path(__file__).parent / "fixtures"
VERSIONS = {"4.5": 1, "5.2": 11}  # Blender version -> number of EXR parts it wrote (one per pass in 5.x)

# The fixture scene's known materials (see scripts/make_exr_fixtures.py).
CUBE_ALBEDO = (0.8, 0.1, 0.1)
FLOOR_ALBEDO = (0.5, 0.5, 0.5)
LAMP_EMISSION = (2.0, 1.0, 0.5)  # colour (1, 0.5, 0.25) x strength 2
CUBE_ROUGHNESS = 0.3


def fixture(version):
    return FIXTURES / f"blender{version}_passes.exr"


def interior(class_map, class_name):
    """Pixels of a class whose 3x3 neighbourhood is the same class (no antialiased edges)."""
    mask = class_map == schema.class_id(class_name)
    eroded = mask.copy()
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            eroded &= np.roll(np.roll(mask, dy, 0), dx, 1)
    assert eroded.sum() >= 4, f"fixture has too few interior {class_name} pixels"
    return eroded


@pytest.mark.parametrize("version,parts", VERSIONS.items())
def test_fixture_layout_is_what_blender_writes(version, parts):
    with OpenEXR.File(str(fixture(version)), separate_channels=True) as f:
        assert len(f.parts) == parts
    names = exr.read_channels(fixture(version))
    old = version.startswith("4")
    assert ("ViewLayer.DiffCol.R" in names) == old
    assert ("ViewLayer.Diffuse Color.R" in names) == (not old)


@pytest.mark.parametrize("version", VERSIONS)
def test_every_schema_pass_is_found(version):
    frame = exr.read_frame(fixture(version))
    expected = {"image", "alpha", "depth", "normal", "albedo", "glossy", "emission",
                "object_index", "material_index", "position", "motion", "roughness"}
    assert set(frame) == expected
    for key, arr in frame.items():
        assert arr.shape == (32, 48, schema.pass_spec(key).num_channels)
        assert arr.dtype == np.float32


@pytest.mark.parametrize("version", VERSIONS)
def test_pass_values_match_the_scene(version):
    frame = exr.read_frame(fixture(version))
    classes = schema.class_map_from_frame(frame, "object_index")
    assert set(np.unique(classes)) == {schema.class_id(c) for c in ("road", "car", "traffic light", "void")}

    car, road, lamp = (interior(classes, c) for c in ("car", "road", "traffic light"))
    np.testing.assert_allclose(frame["albedo"][car], np.broadcast_to(CUBE_ALBEDO, (car.sum(), 3)), atol=1e-5)
    np.testing.assert_allclose(frame["albedo"][road], np.broadcast_to(FLOOR_ALBEDO, (road.sum(), 3)), atol=1e-5)
    np.testing.assert_allclose(frame["emission"][lamp], np.broadcast_to(LAMP_EMISSION, (lamp.sum(), 3)), atol=1e-4)
    np.testing.assert_allclose(frame["roughness"][car], CUBE_ROUGHNESS, atol=1e-5)

    geometry = classes != schema.VOID_CLASS
    np.testing.assert_allclose(np.linalg.norm(frame["normal"][interior(classes, "road")], axis=-1), 1.0, atol=1e-3)
    # Cycles writes 1e10 on the background; the schema's transform maps it to exactly 1.
    assert np.all(frame["depth"][~geometry] >= 1e9)
    depth = schema.apply_transform("depth", frame["depth"])
    assert np.all(depth[~geometry] == pytest.approx(1.0))
    assert np.all(depth[geometry] < 0.5)


def test_both_versions_read_to_the_same_frame():
    a, b = (exr.read_frame(fixture(v)) for v in VERSIONS)
    # Same scene, same seed and samples: the passes agree up to float rounding in the renderer.
    for key in ("albedo", "normal", "depth", "object_index", "emission"):
        np.testing.assert_allclose(a[key], b[key], rtol=1e-5, atol=1e-5, err_msg=key)


def test_corrupt_and_missing_files_raise_clear_errors(tmp_path):
    truncated = tmp_path / "truncated.exr"
    truncated.write_bytes(fixture("5.2").read_bytes()[:2000])
    with pytest.raises(CorruptFileError, match="truncated.exr"):
        exr.read_channels(truncated)
    not_exr = tmp_path / "notes.exr"
    not_exr.write_text("hello")
    with pytest.raises(CorruptFileError, match="not an OpenEXR"):
        exr.read_channels(not_exr)
    with pytest.raises(FileNotFoundError, match="nowhere.exr"):
        exr.read_channels(tmp_path / "nowhere.exr")


@pytest.mark.parametrize("blender_version", [(4, 5), (5, 2)])
def test_write_frame_round_trips_with_blender_names(tmp_path, blender_version):
    frame = exr.read_frame(fixture("5.2"))
    path = tmp_path / "copy.exr"
    exr.write_frame(path, frame, blender_version=blender_version)
    names = exr.read_channels(path)
    assert ("ViewLayer.IndexOB.X" in names) == (blender_version < (5, 0))
    back = exr.read_frame(path)
    assert set(back) == set(frame)
    for key in frame:
        np.testing.assert_array_equal(back[key], frame[key])
    assert not list(tmp_path.glob(".*.tmp")), "atomic write left a temporary file behind"


def test_channels_stay_valid_and_owned_after_the_file_closes(tmp_path):
    """read_channels keeps OpenEXR's arrays without copying them: they must outlive the file."""
    import gc
    rng = np.random.default_rng(3)
    written = {"ViewLayer.Normal.X": rng.random((7, 9), dtype=np.float32),
               "ViewLayer.Depth.Z": rng.random((7, 9)).astype(np.float16)}
    path = tmp_path / "owned.exr"
    exr.write_channels(path, written)
    channels = exr.read_channels(path)
    gc.collect()
    path.unlink()
    for name, data in written.items():
        assert channels[name].dtype == np.float32 and channels[name].flags.writeable
        np.testing.assert_array_equal(channels[name], data.astype(np.float32))
    channels["ViewLayer.Normal.X"][0, 0] = -5.0   # ours to change
    assert channels["ViewLayer.Normal.X"][0, 0] == -5.0
