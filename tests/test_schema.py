"""The G-buffer schema: names, tensors, classes and the errors users see."""
import numpy as np
import pytest

from neural_core import schema
from neural_core.errors import MissingPassError, NonFiniteError, SizeMismatchError


def synthetic_frame(h=6, w=8, seed=0):
    rng = np.random.default_rng(seed)
    frame = {key: rng.uniform(0, 1, (h, w, spec.num_channels)).astype(np.float32)
             for key, spec in schema.PASSES.items()}
    frame["object_index"] = rng.integers(0, 25, (h, w, 1)).astype(np.float32)
    frame["depth"][0, 0, 0] = 1e10   # Cycles background
    return frame


def test_channel_names_follow_the_pass_registry():
    names = schema.gbuffer_channel_names(["depth", "normal", "albedo"])
    assert names == ["depth.z", "normal.x", "normal.y", "normal.z", "albedo.r", "albedo.g", "albedo.b"]
    assert schema.num_gbuffer_channels(schema.DEFAULT_GBUFFER_PASSES) == len(
        schema.gbuffer_channel_names(schema.DEFAULT_GBUFFER_PASSES))
    assert all(k in schema.GBUFFER_PASS_ORDER for k in schema.DEFAULT_GBUFFER_PASSES)


def test_both_blender_namings_resolve_to_the_same_frame():
    rng = np.random.default_rng(1)
    old = {f"ViewLayer.{n}.{c}": rng.random((4, 5)).astype(np.float32)
           for n, cs in (("DiffCol", "RGB"), ("IndexOB", "X"), ("Emit", "RGB"), ("Combined", "RGBA"))
           for c in cs}
    renamed = {"DiffCol": "Diffuse Color", "IndexOB": "Object Index", "Emit": "Emission"}
    new = {}
    for name, arr in old.items():
        layer, p, c = name.split(".")
        new[f"{layer}.{renamed.get(p, p)}.{c}"] = arr
    a, b = schema.frame_from_exr_channels(old), schema.frame_from_exr_channels(new)
    assert set(a) == set(b) == {"albedo", "object_index", "emission", "image", "alpha"}
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


def test_a_render_result_layer_gives_the_frame_its_exr_gives():
    """frame_from_passes takes a render engine's passes by name (render_pass.py), without
    going through EXR channel names."""
    rng = np.random.default_rng(2)
    passes = {"Combined": {c: rng.random((3, 4)).astype(np.float32) for c in "RGBA"},
              "Diffuse Color": {c: rng.random((3, 4)).astype(np.float32) for c in "RGB"},
              "Photoreal Weight": {"X": np.ones((3, 4), np.float32)}}
    channels = {f"View.Layer.{p}.{c}": a for p, chans in passes.items() for c, a in chans.items()}
    a, b = schema.frame_from_passes(passes), schema.frame_from_exr_channels(channels, "View.Layer")
    assert set(a) == set(b) == {"image", "alpha", "albedo"}
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


def test_the_class_source_rule_both_ways():
    """What to render on EEVEE (the class AOV, no noisy image) and how that frame serves the
    model (the AOV as its class source, Combined as its noisy image): one rule."""
    required = ["image", "noisy", "albedo", "object_index", "bounces"]
    assert schema.passes_to_render(required, "CYCLES") == ["image", "noisy", "albedo", "object_index"]
    eevee = "BLENDER_EEVEE"
    rendered = schema.passes_to_render(required, eevee)
    assert rendered == ["image", "albedo", "class_aov"]
    frame = {key: np.full((2, 2, schema.pass_spec(key).num_channels), 1.0, np.float32) for key in rendered}
    served = schema.with_model_sources(frame, "object_index", eevee)
    assert served["object_index"] is frame["class_aov"] and served["noisy"] is frame["image"]
    assert "noisy" not in schema.with_model_sources(frame, "object_index", "CYCLES")
    # An EXR read by the CLI has no engine: the class AOV without an index pass says EEVEE.
    assert schema.with_model_sources(frame, "object_index", None)["noisy"] is frame["image"]
    cycles_frame = {**frame, "object_index": frame["class_aov"]}
    assert "noisy" not in schema.with_model_sources(cycles_frame, "object_index", None)


def test_eevee_class_aov_blends_at_edges_are_taken_back_to_the_covering_class():
    """EEVEE filters AOVs: a pixel 70 % car (value 15) and 30 % road (value 1) reads 10.8,
    which would round to class 10. Read through the frame builder it is the car again."""
    aov = np.full((4, 6), 1.0, np.float32)
    aov[:, :3] = 15.0
    aov[1, 3] = 0.7 * 15 + 0.3 * 1
    aov[2, 3] = 0.2 * 15 + 0.8 * 1
    frame = schema.frame_from_passes({"photoreal_class": {"X": aov}})
    ids = schema.class_map_from_index(frame["class_aov"])
    assert ids[1, 3] == 14 and ids[2, 3] == 0
    np.testing.assert_array_equal(np.delete(frame["class_aov"][..., 0], 3, axis=1), np.delete(aov, 3, axis=1))
    # Alone, with no whole-numbered neighbour, a value is left as it is.
    lone = np.full((3, 3), 7.4, np.float32)
    np.testing.assert_array_equal(schema.unblended_class_values(lone), lone)


def test_composite_layer_is_not_mistaken_for_the_view_layer():
    chans = {f"Composite.Combined.{c}": np.zeros((2, 2), np.float32) for c in "RGBA"}
    chans.update({f"ViewLayer.Combined.{c}": np.ones((2, 2), np.float32) for c in "RGBA"})
    frame = schema.frame_from_exr_channels(chans)
    assert frame["image"].min() == 1.0


def test_radiance_encoding_round_trips_and_clamps():
    rgb = np.array([0.0, 0.18, 1.0, 37.5, 999.0], np.float32)
    np.testing.assert_allclose(schema.decode_radiance(schema.encode_radiance(rgb)), rgb, rtol=1e-5)
    assert schema.encode_radiance(np.array([-1.0]))[0] == 0.0
    assert schema.decode_radiance(schema.encode_radiance(np.array([1e6])))[0] == pytest.approx(schema.MAX_RADIANCE)


def test_gbuffer_tensor_order_transforms_and_standardisation():
    frame = synthetic_frame()
    passes = ["depth", "normal", "emission"]
    raw = schema.gbuffer_tensor(frame, passes)
    assert raw.shape == (7, 6, 8)
    np.testing.assert_allclose(raw[1:4], frame["normal"].transpose(2, 0, 1))
    np.testing.assert_allclose(raw[4:7], np.log1p(frame["emission"]).transpose(2, 0, 1), rtol=1e-6)
    assert raw[0, 0, 0] == pytest.approx(1.0)  # 1e10 background clamps to DEPTH_FAR
    mean = raw.mean(axis=(1, 2))
    std = raw.std(axis=(1, 2))
    stats = schema.GBufferStats(tuple(mean), tuple(std))
    normed = schema.gbuffer_tensor(frame, passes, stats)
    np.testing.assert_allclose(normed.mean(axis=(1, 2)), 0, atol=1e-5)
    np.testing.assert_allclose(normed.std(axis=(1, 2)), 1, atol=1e-4)
    assert schema.GBufferStats.from_dict(stats.to_dict()) == stats
    with pytest.raises(SizeMismatchError, match="normalisation has 3 channels"):
        schema.gbuffer_tensor(frame, passes, schema.GBufferStats.identity(3))


def test_class_ids_from_pass_index():
    index = np.array([[0, 1, 14], [19, 20, 99]], np.float32)
    classes = schema.class_map_from_index(index)
    assert classes.tolist() == [[schema.VOID_CLASS, 0, schema.class_id("car")],
                                [schema.VOID_CLASS - 1, schema.VOID_CLASS, schema.VOID_CLASS]]
    onehot = schema.one_hot(classes)
    assert onehot.shape == (schema.NUM_CLASSES, 2, 3)
    np.testing.assert_array_equal(onehot.sum(0), 1)
    assert onehot[schema.class_id("car"), 0, 2] == 1
    assert schema.pass_index_for_class("road") == 1


def test_missing_pass_error_names_the_blender_setting():
    frame = synthetic_frame()
    del frame["albedo"]
    with pytest.raises(MissingPassError, match=r"use_pass_diffuse_color") as err:
        schema.check_frame(frame, ["image", "albedo"])
    assert err.value.missing == ["albedo"]
    del frame["object_index"]
    with pytest.raises(MissingPassError, match="EEVEE has no Object Index pass"):
        schema.check_frame(frame, ["object_index"], engine="BLENDER_EEVEE")
    with pytest.raises(MissingPassError, match="AOV named 'roughness'"):
        schema.check_frame({"image": frame["image"]}, ["roughness"])


def test_non_finite_values_are_reported_with_their_position():
    frame = synthetic_frame()
    frame["normal"][2, 5, 1] = np.nan
    with pytest.raises(NonFiniteError, match=r"'normal' has 1 NaN/inf values \(first at row 2, column 5\)"):
        schema.check_frame(frame, ["normal"])
    frame = synthetic_frame()
    frame["depth"][:] = np.inf  # legitimate: background depth
    schema.check_frame(frame, ["depth"])


def test_size_mismatch_lists_every_pass():
    frame = synthetic_frame()
    frame["normal"] = frame["normal"][:, :4]
    with pytest.raises(SizeMismatchError, match=r"normal 6x4"):
        schema.check_frame(frame, ["image", "normal"])


def test_non_finite_check_finds_the_first_bad_pixel_anywhere():
    """The fast finite-sum check must not hide a NaN/inf, nor report one where there is none."""
    frame = synthetic_frame(40, 50)
    frame["albedo"][39, 49, 2] = -np.inf
    frame["albedo"][17, 3, 0] = np.nan
    with pytest.raises(NonFiniteError, match=r"'albedo' has 2 NaN/inf values \(first at row 17, column 3\)"):
        schema.check_frame(frame, ["albedo"])
    # Finite values whose sum overflows float32 are still finite: no error.
    frame = synthetic_frame(40, 50)
    frame["emission"][:] = np.finfo(np.float32).max / 2
    schema.check_frame(frame, ["emission"])


def test_frame_from_exr_channels_equals_stacked_channels():
    rng = np.random.default_rng(1)
    chans = {f"ViewLayer.Normal.{c}": rng.random((5, 7), dtype=np.float32) for c in "XYZ"}
    chans["ViewLayer.Depth.Z"] = rng.random((5, 7), dtype=np.float32)
    frame = schema.frame_from_exr_channels(chans)
    np.testing.assert_array_equal(frame["normal"],
                                  np.stack([chans[f"ViewLayer.Normal.{c}"] for c in "XYZ"], -1))
    assert frame["normal"].shape == (5, 7, 3) and frame["normal"].dtype == np.float32
    np.testing.assert_array_equal(frame["depth"][..., 0], chans["ViewLayer.Depth.Z"])


def test_tensor_helpers_into_given_arrays_equal_fresh_ones():
    frame = synthetic_frame(12, 10)
    stats = schema.GBufferStats(tuple(np.linspace(-1, 1, 7)), tuple(np.linspace(0.5, 2, 7)))
    passes = ["depth", "normal", "albedo"]
    out = np.full((7, 16, 16), -9.0, np.float32)
    schema.gbuffer_tensor(frame, passes, stats, out=out[:, :12, :10])
    np.testing.assert_array_equal(out[:, :12, :10], schema.gbuffer_tensor(frame, passes, stats))
    assert (out[:, 12:] == -9).all()
    image = np.empty((3, 12, 10), np.float32)
    schema.image_tensor(frame, out=image)
    np.testing.assert_allclose(image, schema.image_tensor(frame), rtol=1e-6)
    ids = np.array([[0, 19], [3, 3]], np.uint8)
    hot = np.full((schema.NUM_CLASSES, 2, 2), 7.0, np.float32)
    schema.one_hot(ids, out=hot)
    np.testing.assert_array_equal(hot, (np.arange(schema.NUM_CLASSES)[:, None, None] == ids).astype(np.float32))
