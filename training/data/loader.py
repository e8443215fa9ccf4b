"""Random crops, batches and a sampler that makes every step reproducible.

The batch of step s is a pure function of (seed, s, rank): indices and crop positions come from
a generator seeded with those three numbers. A resumed run therefore sees exactly the batches
the killed run would have seen, with or without DataLoader workers and without pickling any
RNG state.

A file that fails to load is skipped with a warning naming it; the next item takes its place
and the sample carries the skipped name, so the trainer can count and log it.
"""
from __future__ import annotations

import logging

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from neural_core import schema
from neural_core.errors import PhotorealError

from .source import Source

log = logging.getLogger(__name__)
MAX_CONSECUTIVE_FAILURES = 20


def step_generator(seed: int, step: int, rank: int, stream: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(((seed * 1_000_003 + step) * 1009 + rank) * 31 + stream)


class StepSampler:
    """Yields, for each step from `start`, a batch of (item index, crop seed) keys."""

    def __init__(self, num_items: int, batch_size: int, seed: int, start: int = 0, rank: int = 0,
                 weights: np.ndarray | None = None, stream: int = 0):
        self.num_items, self.batch_size, self.seed = num_items, batch_size, seed
        self.start, self.rank, self.stream = start, rank, stream
        self.weights = None if weights is None else torch.as_tensor(weights, dtype=torch.float64)

    def batch(self, step: int) -> list[tuple[int, int]]:
        g = step_generator(self.seed, step, self.rank, self.stream)
        if self.weights is None:
            indices = torch.randint(self.num_items, (self.batch_size,), generator=g)
        else:
            indices = torch.multinomial(self.weights, self.batch_size, replacement=True, generator=g)
        seeds = torch.randint(2 ** 31 - 1, (self.batch_size,), generator=g)
        return list(zip(indices.tolist(), seeds.tolist()))

    def __iter__(self):
        step = self.start
        while True:
            yield self.batch(step)
            step += 1


def random_crop(arrays: dict[str, np.ndarray], size: int | None, rng: np.random.Generator,
                multiple: int = 1) -> dict[str, np.ndarray]:
    h, w = next(iter(arrays.values())).shape[-2:]
    if size is None:
        ch, cw = h - h % multiple, w - w % multiple
    else:
        if size > min(h, w):
            raise ValueError(f"crop {size} is larger than the {w}x{h} image; use a smaller --crop")
        ch = cw = size
    top, left = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    return {k: np.ascontiguousarray(v[..., top:top + ch, left:left + cw]) for k, v in arrays.items()}


class CropDataset(Dataset):
    """Source items -> cropped torch samples (G-buffers standardised, one-hot classes added)."""

    def __init__(self, source: Source, crop: int | None, stats: schema.GBufferStats | None = None,
                 multiple: int = 1, flip: bool = True, resize: tuple[int, int] | None = None,
                 depth_scale: float = 1.0, color_permute: float = 0.0):
        self.source, self.crop, self.multiple, self.flip = source, crop, multiple, flip
        if depth_scale < 1.0:
            raise ValueError(f"--depth-scale {depth_scale} must be at least 1 (1 turns it off)")
        if not 0.0 <= color_permute <= 1.0:
            raise ValueError(f"--color-permute {color_permute} is a probability: give 0 to 1")
        self.depth_scale, self.color_permute = depth_scale, color_permute
        self.resize = tuple(resize) if resize else None
        self._check_crop_fits()
        self.mean = self.std = None
        if stats is not None:
            self.mean = np.asarray(stats.mean, np.float32)[:, None, None]
            self.std = np.maximum(np.asarray(stats.std, np.float32), 1e-6)[:, None, None]

    def _check_crop_fits(self) -> None:
        """Before training, not in a loader worker (where it ended in a traceback): a crop
        larger than the frames, e.g. train-rad's 256 on make-scenes' 320x180."""
        if not self.crop or len(self.source) == 0:
            return
        if self.resize:
            h, w = self.resize
        else:
            try:
                h, w = next(iter(self.source.load(0).values())).shape[-2:]
            except (PhotorealError, OSError, ValueError):
                return  # a broken first item is skipped and reported by __getitem__
        if self.crop > min(h, w):
            largest = min(h, w) // max(self.multiple, 1) * max(self.multiple, 1)
            raise ValueError(f"--crop {self.crop} is larger than the {w}x{h} frames of "
                             f"{getattr(self.source, 'root', 'the data')}; use --crop {largest} "
                             f"or less, or make larger scenes (make-scenes --resolution)")

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, key: tuple[int, int]) -> dict:
        index, seed = key
        skipped = []
        for attempt in range(MAX_CONSECUTIVE_FAILURES):
            i = (index + attempt) % len(self.source)
            try:
                arrays = self.source.load(i)
                break
            except (PhotorealError, OSError, ValueError) as exc:
                name = self.source.name(i)
                log.warning("skipping broken item %s: %s", name, exc)
                skipped.append(name)
        else:
            raise RuntimeError(f"{MAX_CONSECUTIVE_FAILURES} items in a row failed to load from "
                               f"{self.source.root} (last: {skipped[-1]}); check the dataset")
        return self.make_sample(arrays, np.random.default_rng(seed), skipped, self.source.name(i))

    def make_sample(self, arrays, rng, skipped, name) -> dict:
        if self.resize:
            arrays = resize_arrays(arrays, self.resize)
        arrays = random_crop(arrays, self.crop, rng, self.multiple)
        # Blender's normals and positions are in world space, so a mirrored render is not a
        # render of the mirrored scene: only G-buffer-free items (photos) are flipped.
        if self.flip and "gbuffers" not in arrays and rng.random() < 0.5:
            arrays = {k: np.ascontiguousarray(v[..., ::-1]) for k, v in arrays.items()}
        if "gbuffers" in arrays and self.depth_scale > 1.0:
            arrays["gbuffers"] = self._rescale_depth(arrays["gbuffers"], rng)
        if "gbuffers" in arrays and self.color_permute and rng.random() < self.color_permute:
            arrays = self._permute_colors(arrays, rng.permutation(3))
        if "gbuffers" in arrays and self.mean is not None:
            arrays["gbuffers"] = (arrays["gbuffers"] - self.mean) / self.std
        sample = {k: torch.from_numpy(v) for k, v in arrays.items()}
        sample["classes"] = torch.from_numpy(schema.one_hot(arrays["class_ids"]))
        sample["skipped"] = skipped
        sample["name"] = name
        return sample


    def _rescale_depth(self, gbuffers: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        channels = getattr(self.source, "gbuffer_channels", [])
        if "depth.z" not in channels:
            return gbuffers
        factor = float(np.exp(rng.uniform(-np.log(self.depth_scale), np.log(self.depth_scale))))
        index = channels.index("depth.z")
        gbuffers = gbuffers.copy()
        gbuffers[index] = schema.rescale_encoded_depth(gbuffers[index], factor)
        return gbuffers

    def _permute_colors(self, arrays: dict[str, np.ndarray], order: np.ndarray) -> dict[str, np.ndarray]:
        """The same render with its R, G and B swapped in every radiance and colour pass: light
        transport treats the three alike, so a cyan ball is a red ball's render in other
        channels (the network then cannot tie what it adds to one hue)."""
        arrays = dict(arrays)
        for key in ("image", "noisy", "target"):
            if key in arrays:
                arrays[key] = np.ascontiguousarray(arrays[key][order])
        channels = getattr(self.source, "gbuffer_channels", [])
        gbuffers = arrays["gbuffers"].copy()
        for i, name in enumerate(channels):
            if name.endswith(".r"):
                gbuffers[i:i + 3] = arrays["gbuffers"][i:i + 3][order]
        arrays["gbuffers"] = gbuffers
        return arrays


def resize_arrays(arrays: dict[str, np.ndarray], size: tuple[int, int]) -> dict[str, np.ndarray]:
    """Whole-image resize (CRN trains on downscaled full frames): area averaging for images and
    G-buffers, nearest for label ids."""
    import torch.nn.functional as F
    out = {}
    for key, value in arrays.items():
        t = torch.from_numpy(np.ascontiguousarray(value))
        if value.ndim == 2:
            out[key] = F.interpolate(t[None, None].float(), size=size, mode="nearest")[0, 0].to(t.dtype).numpy()
        else:
            out[key] = F.interpolate(t[None], size=size, mode="area")[0].numpy()
    return out


def collate(samples: list[dict]) -> dict:
    batch = {k: torch.stack([s[k] for s in samples]) for k in samples[0]
             if isinstance(samples[0][k], torch.Tensor)}
    batch["skipped"] = [name for s in samples for name in s["skipped"]]
    batch["name"] = [s["name"] for s in samples]
    return batch


def make_loader(dataset: Dataset, sampler: StepSampler, workers: int = 0, collate_fn=collate) -> DataLoader:
    return DataLoader(dataset, batch_sampler=sampler, collate_fn=collate_fn, num_workers=workers,
                      persistent_workers=workers > 0, pin_memory=torch.cuda.is_available())
