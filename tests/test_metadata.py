"""ONNX metadata contract: round trip and refusal of models that do not fit the schema."""
import pytest

from neural_core import schema
from neural_core.errors import ModelMetadataError
from neural_core.metadata import ModelMetadata


def rad_metadata(**overrides):
    n = schema.num_gbuffer_channels(schema.DEFAULT_GBUFFER_PASSES)
    values = dict(model_kind="rad", gbuffer_passes=list(schema.DEFAULT_GBUFFER_PASSES),
                  gbuffer_mean=[0.0] * n, gbuffer_std=[1.0] * n, trained_on="unit test data")
    values.update(overrides)
    return ModelMetadata(**values)


def test_round_trip_through_props():
    meta = rad_metadata(config={"branches": 3})
    props = meta.to_props()
    assert all(k.startswith("photoreal.") and isinstance(v, str) for k, v in props.items())
    back = ModelMetadata.from_props(props)
    assert back == meta
    assert back.required_passes == ["image", *schema.DEFAULT_GBUFFER_PASSES, "object_index"]
    assert back.is_trained


def test_crn_needs_only_the_class_source():
    meta = ModelMetadata(model_kind="crn", class_source="material_index")
    assert meta.required_passes == ["material_index"]
    assert meta.input_names == ("material_index",)
    assert not meta.is_trained


@pytest.mark.parametrize("change,reason", [
    (lambda p: p.clear(), "no Photoreal Enhance metadata"),
    (lambda p: p.pop("photoreal.model_kind"), "lacks photoreal.model_kind"),
    (lambda p: p.update({"photoreal.schema_version": '"0"'}), "schema version '0'"),
    (lambda p: p.update({"photoreal.model_kind": '"unet"'}), "model kind 'unet'"),
    (lambda p: p.update({"photoreal.classes": '["road", "sky"]'}), "class list of 2 classes"),
    (lambda p: p.update({"photoreal.gbuffer_mean": "[0.0]"}), "normalisation for 1/"),
    (lambda p: p.update({"photoreal.gbuffer_passes": '["depth", "lidar"]'}), "unknown G-buffer passes"),
    (lambda p: p.update({"photoreal.config": "{not json"}), "not valid JSON"),
])
def test_wrong_metadata_is_refused_with_the_reason(change, reason):
    props = rad_metadata().to_props()
    change(props)
    with pytest.raises(ModelMetadataError, match=reason):
        ModelMetadata.from_props(props, source="test.onnx")
