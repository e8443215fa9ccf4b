"""The RAD and CRN networks in PyTorch: shapes, structure, tile safety, configs."""
from __future__ import annotations

import json
from dataclasses import asdict

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from neural_core import schema
from neural_core.errors import SizeMismatchError
from neural_core.networks import (CRN, CRNConfig, RADConfig, RADNet, build_network, count_flops,
                                  count_params)
from neural_core.networks.common import without_parametrizations
from neural_core.networks.rad_kernel import KernelHead, MultiScaleKernelHead
from neural_core.networks.rad_norm import _Convs


def tiny_rad_config(**overrides) -> RADConfig:
    """Every RAD feature (all branches with blocks, RAD layers, joint layers, full-res streams,
    the output RAD and two-scale kernel filtering) at a width that runs in milliseconds."""
    values = dict(num_branches=3, base_channels=4, blocks_per_branch=(1, 1, 1), gbuffer_dim=4,
                  stream_level=0, joint_layers=1, rad_layers=1, stream_kernel=3, decoder_kernel=3,
                  output_rad=True, output_kernel=3, kernel_scales=2)
    values.update(overrides)
    return RADConfig.small(**values)


def tiny_crn_config(**overrides) -> CRNConfig:
    values = dict(num_modules=4, widths=(16, 16, 8, 8), width_multiplier=1.0, num_images=3)
    values.update(overrides)
    return CRNConfig(**values)


def trained_like(model: nn.Module, seed: int = 1) -> nn.Module:
    """Give BatchNorm running statistics that are not the identity, as after training."""
    gen = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.copy_(torch.randn(module.num_features, generator=gen) * 0.1)
            module.running_var.copy_(torch.rand(module.num_features, generator=gen) + 0.5)
    return model.eval()


@pytest.fixture(scope="module")
def rad() -> RADNet:
    torch.manual_seed(0)
    return trained_like(RADNet(tiny_rad_config()))


# -- RAD ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("batch", [1, 2])
def test_rad_output_shape(rad, batch):
    inputs = rad.example_inputs(batch, 37, 53)
    with torch.no_grad():
        out = rad(*inputs)
    assert out.shape == (batch, 3, 37, 53)
    assert torch.isfinite(out).all()


def test_rad_batch_items_are_independent(rad):
    """EPE's class merge only worked for batch 1; here a batch is exactly its items."""
    a = rad.example_inputs(1, 40, 48, seed=1)
    b = rad.example_inputs(1, 40, 48, seed=2)
    with torch.no_grad():
        together = rad(*(torch.cat([x, y]) for x, y in zip(a, b)))
        alone = torch.cat([rad(*a), rad(*b)])
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-5)


def test_gbuffer_channels_follow_the_passes():
    passes = ("depth", "normal", "motion")
    model = RADNet(tiny_rad_config(gbuffer_passes=passes)).eval()
    expected = schema.num_gbuffer_channels(passes)
    assert expected == 1 + 3 + 4
    assert model.config.num_gbuffer_channels == expected
    assert model.gbuffer_encoder.stream_in.in_channels == expected
    image, gbuffers, classes = model.example_inputs(1, 16, 16)
    assert gbuffers.shape[1] == expected
    with torch.no_grad():
        model(image, gbuffers, classes)
        with pytest.raises(SizeMismatchError, match="depth, normal, motion"):
            model(image, gbuffers[:, :5], classes)


def test_default_config_uses_the_schema_defaults():
    config = RADConfig.small()
    assert config.gbuffer_passes == schema.DEFAULT_GBUFFER_PASSES
    assert config.num_gbuffer_channels == schema.num_gbuffer_channels(schema.DEFAULT_GBUFFER_PASSES)
    assert RADConfig() == config


def test_rad_without_kernel_head_is_a_residual_on_the_input():
    torch.manual_seed(0)
    rad = trained_like(RADNet(tiny_rad_config(output_kernel=0, kernel_scales=1)))
    inputs = rad.example_inputs(2, 33, 29)
    with torch.no_grad():
        assert not torch.allclose(rad(*inputs), inputs[0], atol=1e-3)
        zeroed = without_parametrizations(rad)
        zeroed.to_rgb.weight.zero_()
        zeroed.to_rgb.bias.zero_()
        torch.testing.assert_close(zeroed(*inputs), inputs[0], atol=0, rtol=0)


def test_rad_output_depends_on_gbuffers_and_classes(rad):
    image, gbuffers, classes = rad.example_inputs(1, 32, 32)
    with torch.no_grad():
        base = rad(image, gbuffers, classes)
        other_g = rad(image, gbuffers.flip(-1), classes)
        other_c = rad(image, gbuffers, classes.roll(1, dims=1))
    assert (base - other_g).abs().max() > 1e-4
    assert (base - other_c).abs().max() > 1e-4


def test_class_streams_are_routed_by_the_masks():
    """Changing one class group's stream changes the embedding only where that class is."""
    # 1x1 streams and no joint layers: nothing mixes neighbouring pixels.
    config = tiny_rad_config(stream_kernel=1, joint_layers=0)
    model = RADNet(config).eval()
    encoder = model.gbuffer_encoder
    _, gbuffers, classes = model.example_inputs(1, 24, 24)
    road = schema.class_id("road")
    classes[:, :, :, :7] = 0.0
    classes[:, road, :, :7] = 1.0          # a road strip on the left
    group = next(i for i, g in enumerate(config.groups) if "road" in g)
    in_group = [schema.class_id(name) for name in config.groups[group]]
    with torch.no_grad():
        before = encoder(gbuffers, classes)[0]
        rows = slice(group * config.stream_dim, (group + 1) * config.stream_dim)
        encoder.stream_in.weight[rows] += 1.0
        after = encoder(gbuffers, classes)[0]
    changed = (after - before).abs().amax(dim=1)[0] > 1e-6
    is_group = classes[0, in_group].sum(0) > 0.5
    assert is_group.any() and (~is_group).any()
    assert changed[is_group].float().mean() > 0.9
    assert not changed[~is_group].any()


def test_rad_is_tile_safe(rad):
    """No per-image statistics: a crop aligned to the branch grid, run on its own, reproduces
    the whole-frame output away from the crop's border."""
    inputs = rad.example_inputs(1, 96, 112, seed=3)
    top, left, size, margin = 16, 24, 64, 24
    assert top % rad.config.alignment == 0 and left % rad.config.alignment == 0
    with torch.no_grad():
        whole = rad(*inputs)
        tile = rad(*(x[..., top:top + size, left:left + size] for x in inputs))
    inner = (slice(None), slice(None), slice(margin, size - margin), slice(margin, size - margin))
    whole_inner = whole[..., top:top + size, left:left + size][inner]
    torch.testing.assert_close(tile[inner], whole_inner, atol=1e-5, rtol=0)


def kernel_head_with_bias(size: int, bias: torch.Tensor) -> KernelHead:
    head = KernelHead(2, size, _Convs(RADConfig.small()))
    with torch.no_grad():
        head.logits.weight.zero_()
        head.logits.bias.copy_(bias)
    return head


def test_kernel_head_applies_its_per_pixel_kernels():
    """All weight on the centre tap gives the image back; equal weights give a 5x5 box filter
    with edge padding; the taps line up (a kernel on the right neighbour shifts left)."""
    image = torch.rand(1, 3, 9, 11)
    features = torch.zeros(1, 2, 9, 11)
    centre = torch.full((25,), -1e4)
    centre[12] = 0.0
    torch.testing.assert_close(kernel_head_with_bias(5, centre)(features, image), image)
    box = F.avg_pool2d(F.pad(image, (2, 2, 2, 2), mode="replicate"), 5, stride=1)
    torch.testing.assert_close(kernel_head_with_bias(5, torch.zeros(25))(features, image), box)
    right = torch.full((9,), -1e4)
    right[5] = 0.0                                  # row 1, column 2 of the 3x3 taps
    shifted = kernel_head_with_bias(3, right)(features, image)
    torch.testing.assert_close(shifted[..., :-1], image[..., 1:])


def test_kernel_guide_steers_the_filter_per_pixel():
    """The G-buffer guide adds to the kernel logits pixel by pixel: where the guide channel is
    set, the centre tap wins (no blur); elsewhere the head keeps its box filter."""
    head = KernelHead(2, 3, _Convs(RADConfig.small()), guide_channels=2)
    with torch.no_grad():
        head.logits.weight.zero_()
        head.logits.bias.zero_()
        head.guide.weight.zero_()
        head.guide.weight[4, 0] = 1e4                   # guide channel 0 -> centre tap
    image = torch.rand(1, 3, 8, 10)
    guide = torch.zeros(1, 2, 8, 10)
    guide[:, 0, :, :5] = 1.0                            # left half guided
    out = head(torch.zeros(1, 2, 8, 10), image, guide)
    box = F.avg_pool2d(F.pad(image, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    torch.testing.assert_close(out[..., :5], image[..., :5])
    torch.testing.assert_close(out[..., 5:], box[..., 5:])


def test_multi_scale_kernels_compose_coarse_into_fine():
    """With identity kernels and alpha = 1 the fine scale's low frequencies are replaced by the
    coarse scale's: out = x + up(down(x)) - up(down(x)) = x, the image itself."""
    head = MultiScaleKernelHead([2, 2], 3, 2, _Convs(RADConfig.small()))
    with torch.no_grad():
        for kernel in head.heads:
            kernel.logits.weight.zero_()
            kernel.logits.bias.fill_(-1e4)
            kernel.logits.bias[4] = 0.0
        head.alphas[0].weight.zero_()
        head.alphas[0].bias.fill_(1e4)
    image = torch.rand(1, 3, 16, 20)
    decoded = [torch.zeros(1, 2, 16, 20), torch.zeros(1, 2, 8, 10)]
    torch.testing.assert_close(head(decoded, image), image, atol=1e-6, rtol=0)


def test_rad_has_no_per_image_normalisation():
    for config in (RADConfig.small(), RADConfig.paper(blocks_per_branch=1, gbuffer_dim=8, spectral_norm=False)):
        norms = [m for m in RADNet(config).modules()
                 if isinstance(m, (nn.GroupNorm, nn.InstanceNorm2d, nn.LayerNorm))]
        assert norms == []


def test_spectral_norm_is_finite_when_fresh_and_folds_exactly():
    """EPE's fresh models in eval() could give NaN; folding must not change the output."""
    torch.manual_seed(0)
    model = RADNet(tiny_rad_config(spectral_norm=True, padding_mode="replicate")).eval()
    inputs = model.example_inputs(1, 20, 28)
    with torch.no_grad():
        out = model(*inputs)
        folded = without_parametrizations(model)(*inputs)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(folded, out, atol=1e-6, rtol=1e-6)
    assert not any(hasattr(m, "parametrizations") for m in without_parametrizations(model).modules())


def test_streams_at_reduced_resolution_need_blockless_fine_branches():
    with pytest.raises(ValueError, match="must have 0 blocks"):
        RADConfig(stream_level=1, blocks_per_branch=(1, 1, 1))
    with pytest.raises(ValueError, match="class_groups"):
        RADConfig(class_groups=(("road",),))


def test_named_config_sizes():
    # Spectral norm does not change the parameter count, but its initial power iterations
    # make building the paper RAD slow; meta tensors skip allocating CRN's 98 M parameters.
    with torch.device("meta"):
        paper = RADNet(RADConfig.paper(spectral_norm=False))
        crn_paper = CRN(CRNConfig.paper())
    # EPE's 'hr' generator has 44.7 M parameters with 32 G-buffer channels and 12 classes.
    assert 35e6 < count_params(paper) < 55e6
    # CRN 256p: 97.88 M parameters in the TensorFlow checkpoint.
    assert count_params(crn_paper) == pytest.approx(97.88e6, rel=1e-3)
    assert count_params(RADNet(RADConfig.small())) < 1e6


def test_count_flops_counts_conv_macs_twice():
    class OneConv(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3, padding=1)

        def forward(self, x):
            return self.conv(x)

    assert count_flops(OneConv(), 10, 12, torch.zeros(1, 3, 10, 12)) == 2 * 3 * 8 * 9 * 10 * 12


def test_small_rad_budget_at_full_hd():
    flops = count_flops(RADNet(RADConfig.small()), 1080 // 24, 1920 // 24) * 24 ** 2
    assert flops < 150e9, f"{flops / 1e9:.0f} GFLOP per 1080p frame"


# -- CRN ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("batch", [1, 2])
def test_crn_output_shape(batch):
    config = tiny_crn_config()
    model = CRN(config).eval()
    (classes,) = model.example_inputs(batch, 16, 40)
    with torch.no_grad():
        out = model(classes)
    assert config.size_multiple == 8
    assert out.shape == (batch, 3, 3, 16, 40)
    assert not torch.allclose(out[:, 0], out[:, 1])     # k different images


def test_crn_rejects_sizes_off_the_multiple():
    model = CRN(tiny_crn_config())
    with pytest.raises(SizeMismatchError, match="multiples of 8"):
        model(torch.zeros(1, schema.NUM_CLASSES, 20, 40))


def test_crn_modules_see_area_downsampled_labels():
    """Module i gets [bilinear-upsampled features, labels avg-pooled to its size] and its two
    convs have no bias before the layer norm."""
    config = tiny_crn_config()
    model = CRN(config).eval()
    (classes,) = model.example_inputs(1, 32, 64)
    seen = {}
    for i, module in enumerate(model.refinements):
        module.register_forward_hook(lambda m, inp, out, i=i: seen.__setitem__(i, inp[0]))
    with torch.no_grad():
        model(classes)
    for i in range(config.num_modules):
        factor = 2 ** (config.num_modules - 1 - i)
        labels = F.avg_pool2d(classes, factor) if factor > 1 else classes
        torch.testing.assert_close(seen[i][:, -schema.NUM_CLASSES:], labels)
    assert seen[0].shape[1] == schema.NUM_CLASSES and seen[0].shape[-2:] == (4, 8)
    convs = [m for m in model.refinements.modules() if isinstance(m, nn.Conv2d)]
    assert all(c.bias is None for c in convs)
    norms = [m for m in model.refinements.modules() if isinstance(m, nn.GroupNorm)]
    assert len(norms) == 2 * config.num_modules and all(n.num_groups == 1 for n in norms)


def test_crn_width_multiplier():
    config = CRNConfig.small(width_multiplier=0.25)
    assert config.module_widths == tuple(round(w * 0.25) for w in config.widths)
    assert CRNConfig.small().training_size == (128, 256)


# -- build_network ---------------------------------------------------------------------------------

@pytest.mark.parametrize("kind,config", [("rad", tiny_rad_config()), ("crn", tiny_crn_config())])
def test_build_network_from_json_config(kind, config):
    as_json = json.loads(json.dumps(asdict(config)))
    torch.manual_seed(0)
    model = build_network(kind, as_json)
    assert model.kind == kind and model.config == config
    assert isinstance(build_network(kind, None).config, type(config))


def test_build_network_rejects_unknown_things():
    with pytest.raises(ValueError, match="unknown network kind"):
        build_network("unet", None)
    with pytest.raises(ValueError, match="unknown RAD config keys"):
        build_network("rad", {"depth": 3})


def test_crn_onnx_form_computes_the_same_function():
    """CRN.forward_for_onnx (split first convolution, layer norm as ReduceMeans + affine) is the
    network's own function: same outputs as forward, per image of a batch, with trained-like
    (non-trivial) norm affines."""
    torch.manual_seed(0)
    model = CRN(tiny_crn_config()).eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.GroupNorm):
                module.weight.uniform_(0.5, 1.5), module.bias.uniform_(-0.5, 0.5)
        classes = model.example_inputs(2)[0]
        torch.testing.assert_close(model.forward_for_onnx(classes), model(classes),
                                   atol=1e-5, rtol=1e-4)
