"""`python -m training evaluate --model M.onnx --data DIR`: run an exported model through the
add-on's runtime (neural_core.runtime.Enhancer) on a dataset and measure it.

DIR is an exported dataset, or a ROOT with fast/ and reference/ (then PSNR/SSIM against the
reference renders). --real PHOTOS adds the realism metrics against real images (KID, Frechet
distance, sKVD); without it they are measured against the reference renders. Frames with a
motion pass give the temporal warping error (for the output and, as a baseline, the input).

Writes OUT/metrics.json, OUT/grids/<frame>.png (input | output | reference) and, with --run,
OUT/training_curves.png from the run's metrics.csv.
"""
from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from neural_core import schema
from neural_core.dataset_format import DatasetReader, linear_to_srgb8

from .data.sources import open_source
from .metrics import distribution, image as image_metrics, skvd as skvd_mod, temporal
from .metrics.features import DEFAULT_SPEC, FeatureNet

log = logging.getLogger(__name__)


def display(linear: np.ndarray) -> np.ndarray:
    return linear_to_srgb8(linear).astype(np.float32) / 255.0


def open_frames(data: Path) -> tuple[DatasetReader, DatasetReader | None]:
    if (data / "fast" / "manifest.json").is_file():
        return DatasetReader(data / "fast"), DatasetReader(data / "reference")
    return DatasetReader(data), None


def real_set(spec: str, limit: int | None) -> tuple[list[np.ndarray], list[np.ndarray]]:
    source = open_source(spec, gbuffer_passes=[])
    images, labels = [], []
    for index in range(min(len(source), limit or len(source))):
        try:
            item = source.load(index)
        except Exception as exc:  # noqa: BLE001 - any broken photo is skipped and named
            source.skip(source.name(index), str(exc))
            continue
        linear = schema.decode_radiance(item["image"].transpose(1, 2, 0))
        images.append(display(linear))
        labels.append(item["class_ids"])
    return images, labels


def evaluate(model: str, data: str, out: str, real: str = "", run: str = "", max_frames: int | None = None,
             features: str = DEFAULT_SPEC, vgg_weights: str = "", grids: int = 8, device: str = "cpu",
             progress: bool = True) -> dict:
    from neural_core.runtime import Enhancer
    out_dir = Path(out)
    (out_dir / "grids").mkdir(parents=True, exist_ok=True)
    enhancer = Enhancer.from_pretrained(model, device=device)
    fast, reference = open_frames(Path(data))
    frames = fast.frames[:max_frames] if max_frames else fast.frames
    record = {"inputs": [], "outputs": [], "references": [], "labels": [], "motions": [], "numbers": []}
    skipped = []
    for number in tqdm(frames, desc="evaluate", disable=not progress):
        try:
            frame = fast.read_frame(number)
            output = enhancer.enhance(frame)
            ref = reference.read_frame(number)["image"] if reference else None
        except Exception as exc:  # noqa: BLE001 - a broken frame is skipped, named and counted
            log.warning("skipping frame %d of %s: %s", number, fast.directory, exc)
            skipped.append(number)
            continue
        record["numbers"].append(number)
        record["inputs"].append(display(frame["image"]))
        record["outputs"].append(display(output))
        record["references"].append(display(ref) if ref is not None else None)
        record["labels"].append(schema.class_map_from_frame(frame, fast.class_source).astype(np.int64))
        record["motions"].append(frame.get("motion"))
    if not record["outputs"]:
        raise ValueError(f"no frame of {data} could be enhanced ({len(skipped)} skipped)")
    metrics = {"model": str(model), "data": str(data), "frames": len(record["outputs"]),
               "skipped_frames": skipped, "trained_on": enhancer.metadata.trained_on}
    metrics.update(full_reference(record))
    metrics.update(realism(record, real, max_frames, features, vgg_weights))
    metrics.update(temporal_metrics(record))
    write_grids(record, out_dir / "grids", grids)
    if run:
        metrics["training_curves"] = plot_curves(Path(run), out_dir / "training_curves.png")
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    log.info("metrics written to %s", out_dir / "metrics.json")
    return metrics


def full_reference(record: dict) -> dict:
    pairs = [(o, r) for o, r in zip(record["outputs"], record["references"]) if r is not None]
    if not pairs:
        return {}
    base = [(i, r) for i, r in zip(record["inputs"], record["references"]) if r is not None]
    return {"psnr": float(np.mean([image_metrics.psnr(o, r) for o, r in pairs])),
            "ssim": float(np.mean([image_metrics.ssim(o, r) for o, r in pairs])),
            "input_psnr": float(np.mean([image_metrics.psnr(i, r) for i, r in base])),
            "input_ssim": float(np.mean([image_metrics.ssim(i, r) for i, r in base]))}


def realism(record: dict, real: str, limit, spec: str, vgg_weights: str) -> dict:
    if real:
        real_images, real_labels = real_set(real, limit)
        against = f"real images {real}"
    else:
        real_images = [r for r in record["references"] if r is not None]
        real_labels = [lab for lab, r in zip(record["labels"], record["references"]) if r is not None]
        against = "reference renders"
    if len(real_images) < 2 or len(record["outputs"]) < 2:
        return {"realism_note": "KID/FID/sKVD need at least 2 output and 2 real/reference images"}
    net = FeatureNet(spec, vgg_weights or None)
    if not net.vgg.pretrained:
        log.warning(net.description)
    out_f, in_f, real_f = net(record["outputs"]), net(record["inputs"]), net(real_images)
    result = {"realism_against": against, "feature_net": net.spec, "feature_weights": net.description,
              "kid": distribution.kid(out_f, real_f)[0], "input_kid": distribution.kid(in_f, real_f)[0]}
    if min(len(out_f), len(real_f)) > 2:
        result["frechet"] = distribution.frechet_distance(out_f, real_f)
        result["input_frechet"] = distribution.frechet_distance(in_f, real_f)
    result["skvd"] = skvd_mod.skvd(record["outputs"], record["labels"], real_images, real_labels, net)
    return result


def temporal_metrics(record: dict) -> dict:
    numbers, motions = record["numbers"], record["motions"]
    runs, current = [], []
    for i, number in enumerate(numbers):
        if motions[i] is None:
            current = []
            continue
        if current and numbers[current[-1]] != number - 1:
            runs.append(current)
            current = []
        current.append(i)
    runs.append(current)
    runs = [r for r in runs if len(r) > 1]
    if not runs:
        return {}
    out = [temporal.warping_error([record["outputs"][i] for i in r], [motions[i] for i in r]) for r in runs]
    inp = [temporal.warping_error([record["inputs"][i] for i in r], [motions[i] for i in r]) for r in runs]
    return {"warping_error": float(np.mean(out)), "input_warping_error": float(np.mean(inp))}


def write_grids(record: dict, folder: Path, count: int) -> None:
    for i in range(min(count, len(record["outputs"]))):
        panels = [record["inputs"][i], record["outputs"][i]]
        if record["references"][i] is not None:
            panels.append(record["references"][i])
        grid = np.concatenate(panels, axis=1)
        Image.fromarray((np.clip(grid, 0, 1) * 255 + 0.5).astype(np.uint8)).save(
            folder / f"{record['numbers'][i]:06d}.png")


def plot_curves(run: Path, path: Path) -> str:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    csv_path = run / "metrics.csv"
    if not csv_path.is_file():
        log.warning("%s has no metrics.csv; no training curves", run)
        return ""
    series: dict[str, dict[int, float]] = {}
    with open(csv_path, newline="") as f:
        for row in csv.DictReader(f):
            series.setdefault(row["name"], {})[int(row["step"])] = float(row["value"])  # resumed runs: last wins
    names = sorted(series)
    cols = min(3, len(names))
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.5 * cols, 3 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names):
        steps = sorted(series[name])
        ax.plot(steps, [series[name][s] for s in steps])
        ax.set_title(name)
        ax.set_xlabel("step")
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return str(path)
