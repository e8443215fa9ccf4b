"""sKVD, EPE's semantically aligned kernel VGG distance.

From every image one random square crop of 1/8 of the image area is taken. A crop's semantic
descriptor is its label map nearest-downsampled to 16x16; each enhanced crop is paired with the
real crop whose descriptor agrees on the largest fraction of cells, and the pair is kept when
that fraction exceeds 0.5. The score is the KID (polynomial-kernel unbiased MMD^2) between the
VGG features of the kept pairs, reported x1000 as in the paper.
"""
from __future__ import annotations

import numpy as np

from .distribution import polynomial_mmd2

GRID = 16
THRESHOLD = 0.5


def random_crop_box(height: int, width: int, rng: np.random.Generator) -> tuple[int, int, int]:
    side = int(np.floor(np.sqrt(height * width / 8)))
    side = min(side, height, width)
    return int(rng.integers(0, height - side + 1)), int(rng.integers(0, width - side + 1)), side


def descriptor(labels: np.ndarray) -> np.ndarray:
    h, w = labels.shape
    rows = (np.arange(GRID) * h / GRID + h / (2 * GRID)).astype(int)
    cols = (np.arange(GRID) * w / GRID + w / (2 * GRID)).astype(int)
    return labels[rows][:, cols].ravel()


def crop(image: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One random 1/8-area square crop of an image and the descriptor of its labels."""
    top, left, side = random_crop_box(*labels.shape, rng)
    return (image[top:top + side, left:left + side],
            descriptor(labels[top:top + side, left:left + side]))


def match(desc_fake: np.ndarray, desc_real: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of the best real crop per fake crop and the agreement fraction."""
    agreement = (desc_fake[:, None, :] == desc_real[None, :, :]).mean(axis=2)
    best = agreement.argmax(axis=1)
    return best, agreement[np.arange(len(best)), best]


def skvd_from_features(fake_features, fake_desc, real_features, real_desc) -> dict:
    """sKVD from per-crop features and descriptors (what a streaming evaluation keeps)."""
    best, agreement = match(np.asarray(fake_desc), np.asarray(real_desc))
    keep = np.nonzero(agreement > THRESHOLD)[0]
    if len(keep) < 2:
        return {"skvd_x1000": None, "pairs": int(len(keep)),
                "note": "fewer than 2 semantically aligned crop pairs; need more (labelled) images"}
    fake = np.asarray(fake_features)[keep]
    real = np.asarray(real_features)[best[keep]]
    return {"skvd_x1000": 1000.0 * polynomial_mmd2(fake, real), "pairs": int(len(keep))}


def skvd(fake_images, fake_labels, real_images, real_labels, features, seed: int = 0) -> dict:
    """features: callable list of display images -> (N, D). Returns sKVD x1000 and pair count."""
    fake_rng, real_rng = np.random.default_rng(seed), np.random.default_rng(seed + 1)
    fake = [crop(i, lab, fake_rng) for i, lab in zip(fake_images, fake_labels)]
    real = [crop(i, lab, real_rng) for i, lab in zip(real_images, real_labels)]
    return skvd_from_features(features([c for c, _ in fake]), [d for _, d in fake],
                              features([c for c, _ in real]), [d for _, d in real])
