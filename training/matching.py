"""EPE-style patch matching between synthetic and real images, without faiss.

1. `collect_crops`: random square crops from every image of a source; each crop is described by
   its VGG-16 relu5_3 features averaged over space (EPE: 196 px crops, an unpadded VGG, so
   relu5_3 is 1x1), L2-normalised.
2. `knn`: exact k nearest real crops for each synthetic crop by cosine similarity (a chunked
   matrix product and topk in torch).
3. keep the pairs with cosine >= threshold (EPE: squared distance < 1.0 between unit vectors,
   i.e. cosine > 0.5).
4. `crop_weights`: coverage density d of the kept synthetic crops over image positions; a
   pair's sampling weight is max(d) / mean(d over its crop), so well-matched regions (cars,
   road centre) are not oversampled.

Output: a CSV (one pair a row) and a weights .npz next to it, read by `MatchedCrops`.
"""
from __future__ import annotations

import csv
import logging
import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from neural_core.errors import PhotorealError
from neural_core.files import write_atomic

from .data.loader import CropDataset
from .data.source import Source
from .losses.vgg import VGG

log = logging.getLogger(__name__)
FIELDS = ["src_index", "src_name", "src_top", "src_left", "dst_index", "dst_name", "dst_top",
          "dst_left", "crop", "similarity"]


@torch.no_grad()
def collect_crops(source: Source, vgg: VGG, crop: int, per_image: int, seed: int = 0,
                  layer: str = "relu5_3", device="cpu", progress: bool = True):
    """-> positions (N, 3) int64 [item, top, left], features (N, D) float32 unit vectors."""
    rng = np.random.default_rng(seed)
    positions, features = [], []
    for index in tqdm(range(len(source)), desc=f"crops {source.kind}", disable=not progress):
        try:
            image = source.load(index)["image"]
        except (PhotorealError, OSError, ValueError) as exc:
            source.skip(source.name(index), str(exc))
            continue
        h, w = image.shape[1:]
        if min(h, w) < crop:
            source.skip(source.name(index), f"smaller than the {crop} px crop")
            continue
        tops = rng.integers(0, h - crop + 1, per_image)
        lefts = rng.integers(0, w - crop + 1, per_image)
        tiles = np.stack([image[:, t:t + crop, l:l + crop] for t, l in zip(tops, lefts)])
        feat = vgg(torch.from_numpy(tiles).to(device), [layer])[layer].mean(dim=(2, 3))
        features.append(torch.nn.functional.normalize(feat, dim=1).cpu())
        positions.append(np.stack([np.full(per_image, index), tops, lefts], 1))
    if not positions:
        raise ValueError(f"no crops could be taken from {source.root}")
    return np.concatenate(positions).astype(np.int64), torch.cat(features).numpy()


def knn(queries: np.ndarray, base: np.ndarray, k: int, chunk: int = 4096):
    """Exact cosine kNN of unit vectors -> (similarities (N, k), indices (N, k))."""
    base_t = torch.from_numpy(base)
    k = min(k, len(base))
    sims, idx = [], []
    for start in range(0, len(queries), chunk):
        s, i = (torch.from_numpy(queries[start:start + chunk]) @ base_t.T).topk(k, dim=1)
        sims.append(s)
        idx.append(i)
    return torch.cat(sims).numpy(), torch.cat(idx).numpy()


def crop_weights(src_positions: np.ndarray, crop: int, height: int, width: int) -> np.ndarray:
    """EPE's sampling weights: max(d) / mean(d over the crop), d = crop coverage density."""
    density = np.zeros((height, width), np.float64)
    for _, top, left in src_positions:
        density[top:top + crop, left:left + crop] += 1
    peak = density.max()
    return np.array([peak / density[t:t + crop, l:l + crop].mean() for _, t, l in src_positions])


def match(synthetic: Source, real: Source, vgg: VGG, out: str | os.PathLike, crop: int = 196,
          per_image: int = 15, k: int = 10, threshold: float = 0.5, seed: int = 0,
          device="cpu", progress: bool = True, layer: str = "relu5_3") -> dict:
    src_pos, src_feat = collect_crops(synthetic, vgg, crop, per_image, seed, layer, device, progress)
    dst_pos, dst_feat = collect_crops(real, vgg, crop, per_image, seed + 1, layer, device, progress)
    sims, idx = knn(src_feat, dst_feat, k)
    rows_src, rows_dst = np.nonzero(sims >= threshold)
    pairs_src, pairs_dst = src_pos[rows_src], dst_pos[idx[rows_src, rows_dst]]
    kept_sims = sims[rows_src, rows_dst]
    if not len(kept_sims):
        raise ValueError(f"no crop pair reaches cosine {threshold}; the datasets look too different "
                         f"(best similarity {sims.max():.3f}). Add more varied real images")
    height = int(pairs_src[:, 1].max()) + crop
    width = int(pairs_src[:, 2].max()) + crop
    weights = crop_weights(pairs_src, crop, height, width)
    out = Path(out)

    def write_csv(tmp: Path) -> None:
        with open(tmp, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(FIELDS)
            for (si, st, sl), (di, dt, dl), sim in zip(pairs_src, pairs_dst, kept_sims):
                writer.writerow([si, synthetic.name(si), st, sl, di, real.name(di), dt, dl, crop,
                                 f"{sim:.5f}"])

    def write_weights(tmp: Path) -> None:
        with open(tmp, "wb") as f:   # a handle: numpy would append '.npz' to a name
            np.savez(f, w=weights)

    write_atomic(out, write_csv)
    weights_path = write_atomic(weights_file(out), write_weights)
    summary = {"synthetic_crops": len(src_pos), "real_crops": len(dst_pos), "pairs": int(len(kept_sims)),
               "mean_similarity": float(kept_sims.mean()), "csv": str(out), "weights": str(weights_path)}
    log.info("matching: %s", summary)
    return summary


def weights_file(csv_path: str | os.PathLike) -> Path:
    csv_path = Path(csv_path)
    return csv_path.with_name(csv_path.stem + "_weights.npz")


class MatchedCrops(Dataset):
    """Pairs of (synthetic crop, matched real crop), keyed by (pair index, seed) like CropDataset."""

    def __init__(self, csv_path: str | os.PathLike, synthetic: CropDataset, real: CropDataset,
                 weights_path: str | os.PathLike | None = None):
        with open(csv_path, newline="") as f:
            self.rows = list(csv.DictReader(f))
        if not self.rows:
            raise ValueError(f"{csv_path} holds no matched pairs")
        self.synthetic, self.real = synthetic, real
        self.src_index = self._resolve(synthetic.source, "src")
        self.dst_index = self._resolve(real.source, "dst")
        path = Path(weights_path) if weights_path else weights_file(csv_path)
        self.weights = np.load(path)["w"] if path.is_file() else np.ones(len(self.rows))
        if len(self.weights) != len(self.rows):
            raise ValueError(f"{path} has {len(self.weights)} weights for {len(self.rows)} pairs")

    def _resolve(self, source: Source, side: str) -> list[int]:
        """Names are authoritative (indices change when files are added); fall back to indices."""
        by_name = {source.name(i): i for i in range(len(source))}
        return [by_name.get(row[f"{side}_name"], int(row[f"{side}_index"])) for row in self.rows]

    def __len__(self) -> int:
        return len(self.rows)

    @staticmethod
    def _crop(dataset: CropDataset, index: int, top: int, left: int, crop: int, seed: int) -> dict:
        arrays = dataset.source.load(index)
        arrays = {k: v[..., top:top + crop, left:left + crop] for k, v in arrays.items()}
        # A training crop smaller than the matched crop is taken at random inside it.
        return dataset.make_sample(arrays, np.random.default_rng(seed), [], dataset.source.name(index))

    def __getitem__(self, key: tuple[int, int], failures: int = 0) -> dict:
        i, seed = key
        row = self.rows[i]
        crop = int(row["crop"])
        try:
            return {"synthetic": self._crop(self.synthetic, self.src_index[i], int(row["src_top"]),
                                            int(row["src_left"]), crop, seed),
                    "real": self._crop(self.real, self.dst_index[i], int(row["dst_top"]),
                                       int(row["dst_left"]), crop, seed + 1)}
        except (PhotorealError, OSError, ValueError) as exc:
            if failures >= 20:
                raise RuntimeError(f"20 matched pairs in a row failed to load (last: {exc})") from exc
            log.warning("skipping matched pair %d (%s / %s): %s", i, row["src_name"], row["dst_name"], exc)
            sample = self.__getitem__(((i + 1) % len(self), seed), failures + 1)
            sample["synthetic"]["skipped"].insert(0, f"{row['src_name']} / {row['dst_name']}")
            return sample


def collate_pairs(samples: list[dict]) -> dict:
    from .data.loader import collate
    return {side: collate([s[side] for s in samples]) for side in ("synthetic", "real")}
