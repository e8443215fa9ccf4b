"""The plain-torch VGG: torchvision state dicts load into it, and without weights it says so."""
import pytest
import torch
import torch.nn.functional as F

from training.losses import vgg as vgg_mod
from training.losses.vgg import VGG


def torchvision_style_state(arch: str, seed: int = 3) -> dict:
    """What torchvision's vgg16()/vgg19().state_dict() holds: features.N.* plus classifier.*."""
    g = torch.Generator().manual_seed(seed)
    state, channels = {}, 3
    index = 0
    for item in vgg_mod.CONFIGS[arch]:
        if item == "M":
            index += 1
            continue
        state[f"features.{index}.weight"] = torch.randn(item, channels, 3, 3, generator=g) * 0.1
        state[f"features.{index}.bias"] = torch.randn(item, generator=g) * 0.1
        channels, index = item, index + 2
    state["classifier.0.weight"] = torch.zeros(8, 8)   # ignored, as in torchvision files
    return state


def test_layer_indices_match_torchvision():
    names = vgg_mod.layer_names("vgg16")
    assert len(names) == 31 and names[29] == "relu5_3" and names[22] == "relu4_3" and names[3] == "relu1_2"
    names19 = vgg_mod.layer_names("vgg19")
    assert [names19.index(n) for n in ("relu1_2", "relu2_2", "relu3_2", "relu4_2", "relu5_2")] == [3, 8, 13, 22, 31]


@pytest.mark.parametrize("arch", ["vgg16", "vgg19"])
def test_loads_torchvision_state_dict_from_path(tmp_path, arch):
    state = torchvision_style_state(arch)
    path = tmp_path / f"{arch}.pth"
    torch.save(state, path)
    net = VGG(arch, weights=path)
    assert net.pretrained and str(path) in net.description
    x = torch.rand(1, 3, 16, 16)
    normalised = (x - net.mean) / net.std
    # Hand computation of relu1_2 from the saved tensors.
    h = F.relu(F.conv2d(normalised, state["features.0.weight"], state["features.0.bias"], padding=1))
    h = F.relu(F.conv2d(h, state["features.2.weight"], state["features.2.bias"], padding=1))
    torch.testing.assert_close(net.run(normalised, ["relu1_2"])["relu1_2"], h)


def test_hub_cache_is_used(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    path = tmp_path / "hub" / "checkpoints" / "vgg16-397923af.pth"
    path.parent.mkdir(parents=True)
    torch.save(torchvision_style_state("vgg16"), path)
    assert VGG("vgg16").pretrained


def test_missing_weights_fall_back_loudly_and_deterministically(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    a, b = VGG("vgg16", last_layer="relu2_2"), VGG("vgg16", last_layer="relu2_2")
    assert not a.pretrained
    assert "FIXED RANDOM" in a.description and "NOT ImageNet" in a.description
    x = torch.rand(2, 3, 16, 16)
    torch.testing.assert_close(a(x, ["relu2_2"])["relu2_2"], b(x, ["relu2_2"])["relu2_2"])
    assert a(x, ["relu2_2"])["relu2_2"].std() > 0


def test_wrong_files_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        VGG("vgg16", weights=tmp_path / "nope.pth")
    path = tmp_path / "vgg19_as_16.pth"
    torch.save(torchvision_style_state("vgg19"), path)   # layer 10 is a conv in vgg19, a pool in vgg16
    with pytest.raises(ValueError, match="vgg16"):
        VGG("vgg16", weights=path)


def test_vgg_is_frozen():
    net = VGG("vgg16", last_layer="relu1_2")
    net.train()
    assert not net.training and not any(p.requires_grad for p in net.parameters())
