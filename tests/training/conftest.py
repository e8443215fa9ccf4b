"""Tiny datasets in every layout the training package reads, made by the tests themselves."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from neural_core import schema
from neural_core.dataset_format import DatasetWriter

SIZE = (48, 64)   # H, W: small enough for CPU training steps in well under a second
GBUFFER_PASSES = ("depth", "normal", "albedo", "roughness")


def scene_frame(seed: int, noise: float = 0.0, size=SIZE) -> schema.Frame:
    """A blocky scene: classes in 16 px blocks, per-class albedo, shading from the normal."""
    h, w = size
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, schema.NUM_CLASSES - 1, (h // 16 + 1, w // 16 + 1))
    class_ids = np.kron(blocks, np.ones((16, 16), np.int64))[:h, :w]
    palette = np.random.default_rng(99).random((schema.NUM_CLASSES, 3)).astype(np.float32)
    albedo = palette[class_ids]
    normal = rng.normal(size=(h, w, 3)).astype(np.float32) * 0.2 + np.array([0, 0, 1], np.float32)
    normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
    shade = np.clip(normal[..., 2:3], 0, 1)
    image = albedo * shade * 2.0
    if noise:
        image = image * rng.gamma(1 / noise ** 2, noise ** 2, size=image.shape).astype(np.float32)
    depth = np.linspace(1, 40, h, dtype=np.float32)[:, None, None].repeat(w, 1)
    depth[:6] = np.inf   # "sky" rows, as Cycles writes them
    return {"image": image.astype(np.float32), "depth": depth, "normal": normal, "albedo": albedo,
            "roughness": rng.random((h, w, 1), dtype=np.float32),
            "object_index": (class_ids + 1).astype(np.float32)[..., None]}


def write_scenes(directory, frames: dict[int, schema.Frame], samples: int) -> None:
    h, w = next(iter(frames.values()))["image"].shape[:2]
    writer = DatasetWriter(directory, engine="CYCLES", samples=samples, resolution=(w, h))
    for number, frame in frames.items():
        writer.write_frame(number, frame)


@pytest.fixture(scope="session")
def paired_root(tmp_path_factory):
    """ROOT/fast (noisy 4 spp look-alike) and ROOT/reference of the same 4 frames."""
    root = tmp_path_factory.mktemp("paired")
    numbers = range(1, 5)
    write_scenes(root / "reference", {n: scene_frame(n) for n in numbers}, samples=1024)
    write_scenes(root / "fast", {n: scene_frame(n, noise=0.5) for n in numbers}, samples=4)
    return root


def photo(seed: int, size=SIZE) -> np.ndarray:
    rng = np.random.default_rng(seed)
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([np.sin(xx / 7 + seed), np.cos(yy / 5), np.sin((xx + yy) / 11)], -1) * 0.4 + 0.5
    return np.clip((base + rng.normal(0, 0.03, base.shape)) * 255, 0, 255).astype(np.uint8)


@pytest.fixture(scope="session")
def photo_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("photos")
    for i in range(4):
        Image.fromarray(photo(i)).save(root / f"photo_{i}.png")
    (root / "sub").mkdir()
    Image.fromarray(photo(9)).save(root / "sub" / "photo_9.jpg")
    return root


CITY_IDS = {7: "road", 11: "building", 21: "vegetation", 23: "sky", 26: "car", 1: None, 0: None}


@pytest.fixture(scope="session")
def cityscapes_root(tmp_path_factory):
    """leftImg8bit + gtFine labelIds/color in Cityscapes' layout, 3 images of one city."""
    from cityscapesscripts.helpers.labels import id2label
    root = tmp_path_factory.mktemp("cityscapes")
    ids = list(CITY_IDS)
    for i in range(3):
        stem = f"aachen_{i:06d}_000019"
        img_dir = root / "leftImg8bit" / "train" / "aachen"
        gt_dir = root / "gtFine" / "train" / "aachen"
        img_dir.mkdir(parents=True, exist_ok=True)
        gt_dir.mkdir(parents=True, exist_ok=True)
        label_ids = np.array(ids, np.uint8)[np.kron(np.random.default_rng(i).integers(0, len(ids), (3, 4)),
                                                    np.ones((16, 16), np.int64))]
        Image.fromarray(photo(i + 10)).save(img_dir / f"{stem}_leftImg8bit.png")
        Image.fromarray(label_ids).save(gt_dir / f"{stem}_gtFine_labelIds.png")
        color = np.array([id2label[int(v)].color for v in label_ids.ravel()], np.uint8).reshape(*label_ids.shape, 3)
        Image.fromarray(color).save(gt_dir / f"{stem}_gtFine_color.png")
    return root
