"""ONNX export: PyTorch vs onnxruntime, dynamic shapes, embedded metadata, bundled models."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from neural_core import schema
from neural_core.errors import ModelMetadataError
from neural_core import export
from neural_core.export import OPSET, FromPasses, example_passes, exportable, export_onnx, metadata_for
from neural_core.metadata import OUTPUT_NAME, PREFIX, RAD_GRID_ALIGNMENT, read_onnx_metadata
from neural_core.networks import CRN, RADConfig, RADNet, build_network, config_for

from test_networks import tiny_crn_config, tiny_rad_config, trained_like

MODELS_DIR = Path(__file__).resolve().parents[1] / "neural_core" / "models"
ODD_H, ODD_W = 131, 250     # the odd size, W x H = 250 x 131


def session(path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1   # tiny inputs; see one_torch_thread
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def feeds(meta, inputs) -> dict[str, np.ndarray]:
    return {name: x.numpy() for name, x in zip(meta.input_names, inputs)}


def run_both(model, meta, path, inputs) -> tuple[np.ndarray, np.ndarray]:
    """(PyTorch output of the exported module, onnxruntime output) for the same passes."""
    with torch.no_grad():
        expected = exportable(model, meta)(*inputs).numpy()
    return expected, session(path).run([OUTPUT_NAME], feeds(meta, inputs))[0]


@pytest.fixture(scope="module")
def rad_export(tmp_path_factory):
    torch.manual_seed(0)
    model = trained_like(RADNet(tiny_rad_config(spectral_norm=True, padding_mode="replicate")))
    meta = metadata_for("rad", model.config, trained_on="test: tiny RAD")
    return model, meta, export_onnx(model, meta, tmp_path_factory.mktemp("rad") / "rad.onnx")


@pytest.fixture(scope="module")
def crn_export(tmp_path_factory):
    torch.manual_seed(0)
    model = CRN(tiny_crn_config()).eval()
    meta = metadata_for("crn", model.config, trained_on="test: tiny CRN")
    return model, meta, export_onnx(model, meta, tmp_path_factory.mktemp("crn") / "crn.onnx")


# -- numerical equality ----------------------------------------------------------------------------

@pytest.mark.parametrize("batch", [1, 2])
def test_rad_onnx_matches_pytorch_at_an_odd_size(rad_export, batch):
    model, meta, path = rad_export
    inputs = example_passes(meta, batch, ODD_H, ODD_W, seed=batch)
    expected, actual = run_both(model, meta, path, inputs)
    assert actual.shape == (batch, 3, ODD_H, ODD_W)
    np.testing.assert_allclose(actual, expected, atol=1e-4, rtol=1e-4)
    # Spectral norm was folded, not dropped: the original model gives the same output.
    with torch.no_grad():
        np.testing.assert_allclose(FromPasses(model, meta)(*inputs).numpy(), actual, atol=1e-4, rtol=1e-4)


def test_default_rad_config_onnx_matches_pytorch(tmp_path):
    torch.manual_seed(0)
    model = trained_like(build_network("rad", None))
    meta = metadata_for("rad", model.config)
    path = export_onnx(model, meta, tmp_path / "rad.onnx")
    for height, width in [(45, 62), (32, 32)]:
        expected, actual = run_both(model, meta, path, example_passes(meta, 1, height, width))
        np.testing.assert_allclose(actual, expected, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("batch", [1, 2])
def test_crn_onnx_matches_pytorch_at_an_odd_size(crn_export, batch):
    """The exported CRN pads to its size multiple, keeps the first of k images and crops."""
    model, meta, path = crn_export
    inputs = example_passes(meta, batch, ODD_H, ODD_W, seed=batch)
    expected, actual = run_both(model, meta, path, inputs)
    assert actual.shape == (batch, 3, ODD_H, ODD_W)
    np.testing.assert_allclose(actual, expected, atol=1e-4, rtol=1e-4)


def test_crn_export_equals_the_network_at_a_multiple(crn_export):
    """At a size multiple nothing is padded: the graph is one-hot -> CRN -> first image -> decode."""
    model, meta, path = crn_export
    (ids,) = example_passes(meta, 1, 16, 24)
    classes = torch.from_numpy(schema.one_hot(schema.class_map_from_index(ids[0, 0].numpy())))[None]
    with torch.no_grad():
        first_image = schema.decode_radiance(model(classes)[:, 0].numpy())
    np.testing.assert_allclose(session(path).run(None, feeds(meta, (ids,)))[0],
                               first_image, atol=1e-4, rtol=1e-4)


def test_graph_transforms_equal_the_schema_on_hard_values():
    """The in-graph transforms are the schema's numpy transforms (which training uses), also on
    the values renders really hold: inf/NaN depth, negative and huge radiance, untagged and
    out-of-range ids."""
    radiance = np.array([-1.0, 0.0, 1e-7, 0.5, 3.0, 999.0, 5e4, np.inf], np.float32)
    np.testing.assert_allclose(export.encode_radiance(torch.from_numpy(radiance)).numpy(),
                               schema.encode_radiance(radiance.copy()), rtol=1e-6, atol=1e-6)
    encoded = np.array([-0.5, 0.0, 1e-6, 1.0, 6.9, 7.0, 50.0], np.float32)
    np.testing.assert_allclose(export.decode_radiance(torch.from_numpy(encoded)).numpy(),
                               schema.decode_radiance(encoded.copy()), rtol=1e-5, atol=1e-6)
    depth = np.array([-3.0, 0.0, 0.1, 10.0, 999.0, 1e10, np.inf, -np.inf, np.nan], np.float32)
    np.testing.assert_allclose(export.transform_pass("depth", torch.from_numpy(depth)).numpy(),
                               schema.apply_transform("depth", depth), rtol=1e-6, atol=1e-7)
    ids = np.array([0, 1, 1.2, 2.9, 13, 20, 21, 22, 255, -1], np.float32).reshape(1, 10)
    hot = export.class_one_hot(torch.from_numpy(ids)[None, None])[0].numpy()
    np.testing.assert_array_equal(hot, schema.one_hot(schema.class_map_from_index(ids)))


def test_fp16_export_keeps_fp32_inputs_and_is_close(tmp_path):
    torch.manual_seed(0)
    model = RADNet(tiny_rad_config()).eval()
    meta = metadata_for("rad", model.config)
    path = export_onnx(model, meta, tmp_path / "rad16.onnx", fp16=True)
    sess = session(path)
    assert all(i.type == "tensor(float)" for i in sess.get_inputs())
    graph_types = {init.data_type for init in onnx.load(str(path)).graph.initializer}
    assert onnx.TensorProto.FLOAT16 in graph_types
    inputs = example_passes(meta, 1, 24, 40)
    with torch.no_grad():
        expected = exportable(model, meta)(*inputs).numpy()
    actual = sess.run(None, feeds(meta, inputs))[0]
    np.testing.assert_allclose(actual, expected, atol=2e-2, rtol=2e-2)


# -- graph interface -------------------------------------------------------------------------------

@pytest.mark.parametrize("which", ["rad", "crn"])
def test_graph_has_named_dynamic_inputs_and_opset(rad_export, crn_export, which):
    model, meta, path = rad_export if which == "rad" else crn_export
    proto = onnx.load(str(path))
    assert [i.name for i in proto.graph.input] == meta.required_passes
    assert [o.name for o in proto.graph.output] == [OUTPUT_NAME]
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) >= OPSET
    for value in [*proto.graph.input, *proto.graph.output]:
        dims = value.type.tensor_type.shape.dim
        assert [d.dim_param for d in (dims[0], dims[2], dims[3])] == ["batch", "height", "width"]


def test_dynamic_batch_in_onnxruntime(rad_export):
    """A batch of 3 gives the same images as three runs of 1."""
    model, meta, path = rad_export
    sess = session(path)
    items = [example_passes(meta, 1, 40, 56, seed=s) for s in range(3)]
    batch = [torch.cat([item[i] for item in items]) for i in range(len(meta.input_names))]
    together = sess.run(None, feeds(meta, batch))[0]
    alone = np.concatenate([sess.run(None, feeds(meta, item))[0] for item in items])
    np.testing.assert_allclose(together, alone, atol=1e-5, rtol=0)


# -- metadata --------------------------------------------------------------------------------------

def test_metadata_reads_back_and_matches(rad_export, crn_export):
    for model, meta, path in (rad_export, crn_export):
        back = read_onnx_metadata(path)
        assert back == meta
        assert back.config == json.loads(json.dumps(model.config.to_dict()))
        assert back.required_passes == meta.required_passes
        assert build_network(back.model_kind, back.config).config == model.config
    rad_meta = read_onnx_metadata(rad_export[2])
    assert rad_meta.gbuffer_channels == schema.gbuffer_channel_names(rad_export[0].config.gbuffer_passes)
    assert read_onnx_metadata(crn_export[2]).num_images == crn_export[0].config.num_images


def rewrite_props(src: Path, dst: Path, edit) -> Path:
    proto = onnx.load(str(src))
    props = {p.key: p.value for p in proto.metadata_props}
    edit(props)
    del proto.metadata_props[:]
    for key, value in props.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(dst))
    return dst


@pytest.mark.parametrize("edit,message", [
    (lambda p: p.clear(), "no Photoreal Enhance metadata"),
    (lambda p: p.pop(PREFIX + "model_kind"), "lacks photoreal.model_kind"),
    (lambda p: p.__setitem__(PREFIX + "schema_version", json.dumps("0")), "schema version '0'"),
    (lambda p: p.__setitem__(PREFIX + "classes", json.dumps(["road", "sky"])), "class list of 2 classes"),
    (lambda p: p.__setitem__(PREFIX + "gbuffer_mean", json.dumps([0.0])), "normalisation for 1/"),
    (lambda p: p.__setitem__(PREFIX + "gbuffer_passes", json.dumps(["depth", "lidar"])),
     "unknown G-buffer passes"),
    (lambda p: p.__setitem__(PREFIX + "model_kind", "{not json"), "not valid JSON"),
])
def test_tampered_metadata_is_rejected_with_the_reason(rad_export, tmp_path, edit, message):
    path = rewrite_props(rad_export[2], tmp_path / "tampered.onnx", edit)
    with pytest.raises(ModelMetadataError, match=message):
        read_onnx_metadata(path)


def test_export_refuses_mismatched_metadata(tmp_path):
    model = RADNet(tiny_rad_config())
    with pytest.raises(ValueError, match="metadata says 'crn'"):
        export_onnx(model, metadata_for("crn", tiny_crn_config()), tmp_path / "x.onnx")
    bad = metadata_for("rad", model.config)
    bad.schema_version = "0"
    with pytest.raises(ModelMetadataError, match="schema version"):
        export_onnx(model, bad, tmp_path / "x.onnx")
    assert list(tmp_path.iterdir()) == []   # nothing half-written left behind


def test_metadata_for_uses_the_config_passes_and_identity_stats():
    config = RADConfig.small(gbuffer_passes=("depth", "normal"))
    meta = metadata_for("rad", config)
    assert meta.gbuffer_passes == ["depth", "normal"]
    assert meta.gbuffer_mean == [0.0] * 4 and meta.gbuffer_std == [1.0] * 4
    assert meta.required_passes == ["image", "depth", "normal", "object_index"]
    stats = schema.GBufferStats((0.5,) * 4, (2.0,) * 4)
    assert metadata_for("rad", config, stats).gbuffer_std == [2.0] * 4
    assert meta.grid_multiple == RAD_GRID_ALIGNMENT      # the graph pads: any size works
    assert metadata_for("crn").grid_multiple == build_network("crn", None).size_multiple


# -- the bundled default models --------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["rad", "crn"])
def test_bundled_model_is_trained_by_the_project_and_documented(kind):
    """The committed models come from `python -m training` (scripts/train_default_models.sh):
    the metadata says what they were trained on, the network is the default config (so the
    speed figures apply), RAD carries the dataset's G-buffer statistics, and the model card
    records the command and the held-out metrics."""
    path = MODELS_DIR / f"{kind}.onnx"
    assert path.stat().st_size < 50e6
    meta = read_onnx_metadata(path)
    assert meta.model_kind == kind and meta.is_trained
    assert f"{kind} " in meta.trained_on and "steps" in meta.trained_on
    # RAD: the bundled model is the preset on top of Cycles' denoiser (RADConfig.denoised) with
    # the context module (stage 2g of scripts/train_default_models.sh).
    default = (RADConfig.denoised(gbuffer_passes=tuple(meta.gbuffer_passes), context_pool=8,
                                  context_layers=3).to_dict()
               if kind == "rad" else build_network(kind, None).config.to_dict())
    default = json.loads(json.dumps(default))
    if kind == "crn":  # k only matters for the diversity loss: the export keeps the first image
        default["num_images"] = meta.config["num_images"]
    # Keys a newer config added read back with their defaults (the old behaviour).
    assert config_for(kind, meta.config).to_dict() == config_for(kind, default).to_dict()
    if kind == "rad":
        assert meta.gbuffer_std != [1.0] * len(meta.gbuffer_std), "identity G-buffer statistics"
    card = (MODELS_DIR / f"{kind}.md").read_text()
    assert f"python -m training train-{kind}" in card and "PSNR" in card
    # The graph runs and is not the identity (RAD) / not constant (CRN) on a plausible input.
    inputs = example_passes(meta, 1, 48, 80)
    out = session(path).run([OUTPUT_NAME], feeds(meta, inputs))[0]
    assert np.isfinite(out).all()
    if kind == "rad":
        assert np.abs(out - inputs[0].numpy()).mean() > 1e-3
    else:
        assert out.std() > 1e-2


def test_rad_without_gbuffers_exports_and_runs_through_the_runtime(tmp_path):
    """The ablation baseline: the same RAD with no G-buffer passes. Its modulation depends on
    the class masks alone, its graph takes the image and the class source only, and so does
    the runtime."""
    from neural_core.runtime import Enhancer

    torch.manual_seed(0)
    model = trained_like(RADNet(tiny_rad_config(gbuffer_passes=())))
    meta = metadata_for("rad", model.config, trained_on="test: RAD without G-buffers")
    path = export_onnx(model, meta, tmp_path / "rad_nog.onnx")
    image, ids = example_passes(meta, 1, ODD_H, ODD_W)
    expected, got = run_both(model, meta, path, (image, ids))
    assert [i.name for i in session(path).get_inputs()] == ["image", "object_index"]
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=1e-4)
    # Different classes must change the output: the class streams still condition the network.
    other = session(path).run([OUTPUT_NAME], feeds(meta, (image, (ids + 3) % 21)))[0]
    assert np.abs(other - got).max() > 1e-4

    enhancer = Enhancer.from_pretrained(path, device="cpu", threads=1)
    assert enhancer.required_passes == ["image", "object_index"]


def test_crn_layer_norm_stays_accurate_over_millions_of_values(tmp_path):
    """The layer norm's statistics in onnxruntime, against PyTorch in float64: a single float32
    running sum over the 8.4 M values of one 1080p feature map drifted by 0.8 % on average."""
    torch.manual_seed(0)
    model = CRN(tiny_crn_config()).eval()
    meta = metadata_for("crn", model.config)
    path = export_onnx(model, meta, tmp_path / "crn.onnx")
    inputs = example_passes(meta, 1, 768, 1024)
    with torch.no_grad():
        exact = FromPasses(model, meta).double()(*(x.double() for x in inputs)).numpy()
    got = session(path).run([OUTPUT_NAME], feeds(meta, inputs))[0]
    relative = np.abs(got - exact) / np.maximum(np.abs(exact), 1e-3)
    assert relative.mean() < 2e-5


# -- RAD on top of Cycles' denoiser ----------------------------------------------------------------

def denoised_rad_config(**overrides) -> RADConfig:
    return tiny_rad_config(image_passes=("image", "noisy"), output_kernel=0, kernel_scales=1,
                           zero_residual=True, **overrides)


def test_rad_on_the_denoiser_starts_as_the_denoised_image(tmp_path):
    """A fresh model of the denoised preset returns its first image pass: the denoised render.
    Training only adds what it learns; the noisy image informs but is never the output."""
    torch.manual_seed(0)
    model = trained_like(RADNet(denoised_rad_config()))
    meta = metadata_for("rad", model.config, trained_on="test: fresh RAD on the denoiser")
    path = export_onnx(model, meta, tmp_path / "rad.onnx")
    assert [i.name for i in session(path).get_inputs()][:2] == ["image", "noisy"]
    inputs = example_passes(meta, 1, ODD_H, ODD_W)
    out = session(path).run([OUTPUT_NAME], feeds(meta, inputs))[0]
    np.testing.assert_allclose(out, inputs[0].numpy(), rtol=2e-6, atol=2e-6)


def test_rad_context_module_exports_and_starts_as_the_network_without_it(tmp_path):
    """The context module (coarsest branch pooled, two convs, added back) is added to a trained
    network with its last conv at zero: the output is unchanged. Trained, its ONNX graph
    (padded to the 32 px grid, so pooling never meets a partial window) matches PyTorch."""
    from training.checkpoint import load_widened
    torch.manual_seed(0)
    old = trained_like(RADNet(denoised_rad_config()))
    torch.nn.init.normal_(old.to_rgb.weight, std=0.1)
    new = trained_like(RADNet(denoised_rad_config(context_pool=8)))
    assert load_widened(new, old.state_dict(), "old.pt") == []
    inputs = old.example_inputs(1, 64, 96)
    with torch.no_grad():
        torch.testing.assert_close(new(*inputs), old(*inputs))
    torch.nn.init.normal_(new.context.out.weight, std=0.1)       # as after training
    with torch.no_grad():
        assert (new(*inputs) - old(*inputs)).abs().max() > 1e-3
    meta = metadata_for("rad", new.config, trained_on="test: RAD with context")
    path = export_onnx(new, meta, tmp_path / "rad.onnx")
    expected, actual = run_both(new, meta, path, example_passes(meta, 1, ODD_H, ODD_W))
    np.testing.assert_allclose(actual, expected, atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="context_pool"):
        denoised_rad_config(context_pool=16)


def test_the_residual_on_renders_with_every_bounce_has_its_own_scale(tmp_path):
    """`full_bounce_scale` scales the correction (encoded domain) where the bounces plane says
    nothing is missing, inside the graph; other renders keep the weights' residual."""
    from neural_core.schema import encode_radiance
    torch.manual_seed(0)
    passes = (*schema.DEFAULT_GBUFFER_PASSES, "bounces")
    model = trained_like(RADNet(denoised_rad_config(gbuffer_passes=passes)))
    torch.nn.init.normal_(model.to_rgb.weight, std=0.1)
    plain = metadata_for("rad", model.config, trained_on="test: RAD")
    scaled = metadata_for("rad", model.config, trained_on="test: RAD")
    scaled.full_bounce_scale = 0.5
    paths = {name: export_onnx(model, meta, tmp_path / f"{name}.onnx")
             for name, meta in (("plain", plain), ("scaled", scaled))}
    inputs = list(example_passes(plain, 1, ODD_H, ODD_W))
    bounces = plain.input_names.index("bounces")
    for depth, factor in ((1.0, 0.5), (0.5, 1.0)):
        inputs[bounces] = torch.full_like(inputs[bounces], depth)
        out = {name: session(path).run([OUTPUT_NAME], feeds(plain, inputs))[0] for name, path in paths.items()}
        base = encode_radiance(inputs[0].numpy())
        residual = {name: encode_radiance(o) - base for name, o in out.items()}
        unclamped = (out["plain"] > 1e-6) & (out["scaled"] > 1e-6)     # the output stops at 0
        assert np.abs(residual["plain"]).max() > 1e-2 and unclamped.mean() > 0.9
        np.testing.assert_allclose(residual["scaled"][unclamped], factor * residual["plain"][unclamped], atol=2e-5)
    bad = metadata_for("rad", denoised_rad_config(), trained_on="test: RAD")
    bad.full_bounce_scale = 0.5
    with pytest.raises(ModelMetadataError, match="bounces input"):
        bad.validate()


def test_rad_on_the_denoiser_reads_the_noisy_image(tmp_path):
    torch.manual_seed(0)
    model = trained_like(RADNet(denoised_rad_config()))
    torch.nn.init.normal_(model.to_rgb.weight, std=0.1)      # as after training
    meta = metadata_for("rad", model.config, trained_on="test: RAD on the denoiser")
    path = export_onnx(model, meta, tmp_path / "rad.onnx")
    inputs = example_passes(meta, 1, ODD_H, ODD_W)
    expected, actual = run_both(model, meta, path, inputs)
    np.testing.assert_allclose(actual, expected, atol=1e-4, rtol=1e-4)
    other_noise = (inputs[0], inputs[1] * 0.5, *inputs[2:])
    changed = session(path).run([OUTPUT_NAME], feeds(meta, other_noise))[0]
    assert np.abs(changed - actual).max() > 1e-4
    assert meta.required_passes[:2] == ["image", "noisy"]
    assert read_onnx_metadata(path).image_passes == ["image", "noisy"]


def test_missing_noisy_image_names_the_blender_setting_and_eevee_serves_combined(tmp_path):
    from neural_core.errors import MissingPassError
    from neural_core.runtime import Enhancer
    from runtime_models import make_frame

    torch.manual_seed(0)
    model = trained_like(RADNet(denoised_rad_config()))
    path = export_onnx(model, metadata_for("rad", model.config, trained_on="test"), tmp_path / "rad.onnx")
    enhancer = Enhancer.from_pretrained(path, device="cpu", threads=1)
    frame = make_frame(40, 56, ["image", *schema.DEFAULT_GBUFFER_PASSES, "object_index"])
    with pytest.raises(MissingPassError, match=r"lacks pass\(es\) noisy.*denoising_store_passes"):
        enhancer.enhance(frame, engine="CYCLES")
    # EEVEE has no denoiser: its Combined is also its noisy image.
    eevee = enhancer.enhance(frame, engine="BLENDER_EEVEE_NEXT")
    same = enhancer.enhance({**frame, "noisy": frame["image"]}, engine="CYCLES")
    np.testing.assert_array_equal(np.asarray(eevee), np.asarray(same))


def test_rad_exported_before_image_passes_is_refused_with_the_reason(rad_export, tmp_path):
    path = rewrite_props(rad_export[2], tmp_path / "old.onnx", lambda p: p.pop(PREFIX + "image_passes"))
    with pytest.raises(ModelMetadataError, match="exported before models recorded which radiance "
                                                 "passes.*python -m training export"):
        read_onnx_metadata(path)


def test_rad_config_refuses_image_passes_that_do_not_start_with_the_image():
    with pytest.raises(ValueError, match="image_passes must start with 'image'"):
        RADConfig.small(image_passes=("noisy", "image"))
    with pytest.raises(ValueError, match="image_passes"):
        RADConfig.small(image_passes=("image", "albedo"))
