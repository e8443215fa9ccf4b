"""Training with the `bounces` input, and a new run started from an older network (--init-from)
whose added input channels start at zero."""
from pathlib import Path

import pytest
import torch

from training import checkpoint
from training.data.sources import PairedScenes
from training.options import RADOptions
from training.trainers.rad_paired import PairedRADTrainer

from neural_core.dataset_format import DatasetWriter

from conftest import GBUFFER_PASSES, scene_frame

FAST = dict(net="tiny", batch_size=2, crop=32, workers=0, progress=False, log_every=1,
            checkpoint_every=1, vgg_taps=["relu1_2", "relu2_2"], lr=1e-3)
BOUNCES = [*GBUFFER_PASSES, "bounces"]


@pytest.fixture(scope="module")
def lit_root(tmp_path_factory):
    """Paired data whose fast frames record 1, 2, 3 and 12 bounces."""
    root = tmp_path_factory.mktemp("lit")
    fast = DatasetWriter(root / "fast", engine="CYCLES", samples=4, resolution=(64, 48))
    reference = DatasetWriter(root / "reference", engine="CYCLES", samples=1024, resolution=(64, 48))
    for n, bounces in enumerate((1, 2, 3, 12), 1):
        fast.write_frame(n, scene_frame(n, noise=0.5), light_paths={"max_bounces": bounces})
        reference.write_frame(n, scene_frame(n), light_paths={"max_bounces": 12, "diffuse_bounces": 4})
    return root


def test_the_bounces_plane_is_a_training_input_when_every_frame_records_it(lit_root, paired_root):
    source = PairedScenes(lit_root / "fast", lit_root / "reference", BOUNCES)
    assert source.gbuffer_channels[-1] == "bounces.x"
    planes = sorted(float(source.load(i)["gbuffers"][-1].mean()) for i in range(len(source)))
    assert planes == [0.25, 0.5, 0.75, 1.0]
    assert "bounces" not in PairedScenes(lit_root / "fast", lit_root / "reference").gbuffer_passes
    with pytest.raises(ValueError, match="bounces"):   # data exported without light paths
        PairedScenes(paired_root / "fast", paired_root / "reference", BOUNCES)


def test_a_run_with_an_added_input_starts_as_the_network_it_came_from(lit_root, tmp_path):
    old = PairedRADTrainer(RADOptions(run_dir=str(tmp_path / "old"), data=str(lit_root), steps=1,
                                      gbuffer_passes=GBUFFER_PASSES, **FAST))
    old.fit()
    new = PairedRADTrainer(RADOptions(run_dir=str(tmp_path / "new"), data=str(lit_root), steps=1,
                                      gbuffer_passes=BOUNCES, init_from=str(tmp_path / "old"), **FAST))
    batch = next(new.batches())
    assert batch["gbuffers"].shape[1] == len(new.source.gbuffer_channels) == len(old.source.gbuffer_channels) + 1
    old_net, new_net = old.unwrap(old.models["generator"]).eval(), new.unwrap(new.models["generator"]).eval()
    image, classes = new.generator_image(batch), batch["classes"]
    with torch.no_grad():
        torch.testing.assert_close(new_net(image, batch["gbuffers"], classes),
                                   old_net(image, batch["gbuffers"][:, :-1], classes))
    old.close()
    new.close()


def test_load_widened_copies_old_channels_zeroes_new_and_refuses_other_changes():
    old, new = torch.nn.Conv2d(3, 4, 1), torch.nn.Conv2d(5, 4, 1)
    assert checkpoint.load_widened(new, old.state_dict(), "old.pt") == ["weight"]
    assert torch.equal(new.weight[:, :3], old.weight) and not new.weight[:, 3:].any()
    assert torch.equal(new.bias, old.bias)
    with pytest.raises(checkpoint.CheckpointError, match="weight is \\(4, 3, 1, 1\\) there"):
        checkpoint.load_widened(torch.nn.Conv2d(3, 6, 1), old.state_dict(), "old.pt")
    with pytest.raises(checkpoint.CheckpointError, match="another network"):
        checkpoint.load_widened(torch.nn.Linear(3, 4), {"other": torch.zeros(1)}, "old.pt")
    with pytest.raises(checkpoint.CheckpointError, match="no checkpoint"):
        checkpoint.weights_to_start_from(Path(__file__).parent)


def test_crop_0_trains_rad_on_whole_frames(lit_root, tmp_path):
    """--crop 0: every sample is the whole frame (cut to the network's size multiple), so the
    context a network sees in training is the frame it sees at inference."""
    trainer = PairedRADTrainer(RADOptions(run_dir=str(tmp_path / "run"), data=str(lit_root), steps=1,
                                          gbuffer_passes=BOUNCES, **{**FAST, "crop": 0}))
    batch = next(trainer.batches())
    multiple = trainer.size_multiple
    assert batch["gbuffers"].shape[-2:] == (48 - 48 % multiple, 64 - 64 % multiple)
    trainer.close()
