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
from neural_core.dataset_format import DatasetReader
from neural_core.display import to_display

from .data.sources import open_source
from .metrics import distribution, image as image_metrics, skvd as skvd_mod, temporal
from .metrics.features import DEFAULT_SPEC, FeatureNet

log = logging.getLogger(__name__)


def display(linear: np.ndarray) -> np.ndarray:
    return to_display(linear).astype(np.float32) / 255.0


def open_frames(data: Path) -> tuple[DatasetReader, DatasetReader | None]:
    if (data / "fast" / "manifest.json").is_file():
        return DatasetReader(data / "fast"), DatasetReader(data / "reference")
    return DatasetReader(data), None


def independent_scenes(reader: DatasetReader) -> bool:
    """make-scenes numbers its frames 0..N-1 but every frame is another scene, not a sequence
    (unless it made shots: --sequence)."""
    extra = reader.manifest.get("extra", {})
    return extra.get("generator") == "training.make_scenes" and not extra.get("sequence_length")


class Measurements:
    """Per-frame numbers and features, accumulated while streaming through the frames, so a
    long sequence never has to be held in memory."""

    def __init__(self, features: FeatureNet, seed: int = 0):
        self.features = features
        self.rng = np.random.default_rng(seed)
        self.values: dict[str, list[float]] = {}
        self.feats: dict[str, list[np.ndarray]] = {"output": [], "input": [], "reference": []}
        self.crops: dict[str, list] = {"output": [], "reference": []}   # (features, descriptor)
        self.previous = None
        self.sequence = True     # consecutive frame numbers are consecutive frames of one shot

    def add(self, key: str, value: float) -> None:
        self.values.setdefault(key, []).append(value)

    def frame(self, number: int, inp: np.ndarray, out: np.ndarray, ref: np.ndarray | None,
              labels: np.ndarray, motion: np.ndarray | None, per_frame: np.ndarray | None = None) -> None:
        if ref is not None and per_frame is not None:
            self.add("per_frame_psnr", image_metrics.psnr(per_frame, ref))
        if ref is not None:
            self.add("psnr", image_metrics.psnr(out, ref))
            self.add("ssim", image_metrics.ssim(out, ref))
            self.add("input_psnr", image_metrics.psnr(inp, ref))
            self.add("input_ssim", image_metrics.ssim(inp, ref))
        images = {"output": out, "input": inp, "reference": ref}
        for name, image in images.items():
            if image is not None:
                self.feats[name].append(self.features([image])[0])
        for name in self.crops:
            if images[name] is not None:
                self.crops[name].append(self.crop_features(images[name], labels))
        self.temporal(number, inp, out, motion, ref, per_frame)

    def crop_features(self, image: np.ndarray, labels: np.ndarray):
        tile, desc = skvd_mod.crop(image, labels, self.rng)
        return self.features([tile])[0], desc

    def temporal(self, number, inp, out, motion, ref=None, per_frame=None) -> None:
        """Warping error of each sequence: the output, the input, the reference renders and,
        with the temporal filter, the per-frame output (key prefixes '', input_, ...)."""
        if not self.sequence:
            return
        streams = {"": out, "input_": inp, "reference_": ref, "per_frame_": per_frame}
        current = (number, motion, {k: v for k, v in streams.items() if v is not None})
        previous, self.previous = self.previous, current if motion is not None else None
        if previous is None or motion is None or previous[0] != number - 1:
            return
        motions = [previous[1], motion]   # Lai et al.'s occlusion mask needs both Vector passes
        for prefix, image in current[2].items():
            if prefix in previous[2]:
                self.add(f"{prefix}warping_error",
                         temporal.warping_error([previous[2][prefix], image], motions))

    def summary(self) -> dict:
        return {k: float(np.mean([v for v in vs if v is not None])) for k, vs in self.values.items()
                if any(v is not None for v in vs)}


def real_features(spec: str, limit: int | None, features: FeatureNet, rng) -> tuple[list, list]:
    """Whole-image features and sKVD crops of a real photo set, streamed."""
    source = open_source(spec, gbuffer_passes=[])
    whole, crops = [], []
    for index in range(min(len(source), limit or len(source))):
        try:
            item = source.load(index)
        except Exception as exc:  # noqa: BLE001 - any broken photo is skipped and named
            source.skip(source.name(index), str(exc))
            continue
        image = display(schema.decode_radiance(item["image"].transpose(1, 2, 0)))
        whole.append(features([image])[0])
        tile, desc = skvd_mod.crop(image, item["class_ids"], rng)
        crops.append((features([tile])[0], desc))
    return whole, crops


def evaluate(model: str, data: str, out: str, real: str = "", run: str = "", max_frames: int | None = None,
             features: str = DEFAULT_SPEC, vgg_weights: str = "", grids: int = 8, device: str = "cpu",
             progress: bool = True, temporal_metric: bool = True, temporal_filter: bool = False) -> dict:
    """`temporal_filter`: the output is the add-on's temporally filtered sequence
    (neural_core.temporal); the per-frame output is measured too (per_frame_*)."""
    from neural_core.runtime import Enhancer
    from neural_core.temporal import TemporalFilter
    out_dir = Path(out)
    (out_dir / "grids").mkdir(parents=True, exist_ok=True)
    enhancer = Enhancer.from_pretrained(model, device=device)
    net = FeatureNet(features, vgg_weights or None)
    if not net.vgg.pretrained:
        log.warning(net.description)
    fast, reference = open_frames(Path(data))
    frames = fast.frames[:max_frames] if max_frames else fast.frames
    measured, skipped, written = Measurements(net), [], 0
    measured.sequence = temporal_metric and not independent_scenes(fast)
    filt = TemporalFilter() if temporal_filter and measured.sequence else None
    for number in tqdm(frames, desc="evaluate", disable=not progress):
        try:
            frame = fast.read_frame(number)
            output = per_frame = enhancer.enhance(frame, engine=fast.manifest["engine"])
            if filt is not None:
                output = filt.apply(frame, per_frame, number)
            ref = reference.read_frame(number)["image"] if reference else None
            labels = schema.class_map_from_frame(frame, fast.class_source).astype(np.int64)
        except Exception as exc:  # noqa: BLE001 - a broken frame is skipped, named and counted
            log.warning("skipping frame %d of %s: %s", number, fast.directory, exc)
            skipped.append(number)
            continue
        panels = [display(frame["image"]), display(output)] + ([display(ref)] if ref is not None else [])
        measured.frame(number, panels[0], panels[1], panels[2] if ref is not None else None, labels,
                       frame.get("motion"), display(per_frame) if filt is not None else None)
        if written < grids:
            write_grid(panels, out_dir / "grids" / f"{number:06d}.png")
            written += 1
    done = len(frames) - len(skipped)
    if not done:
        raise ValueError(f"no frame of {data} could be enhanced ({len(skipped)} skipped)")
    metrics = {"model": str(model), "data": str(data), "frames": done, "skipped_frames": skipped,
               "trained_on": enhancer.metadata.trained_on, "temporal_filter": filt is not None}
    metrics.update(measured.summary())
    metrics.update(realism(measured, real, max_frames, net))
    if run:
        metrics["training_curves"] = plot_curves(Path(run), out_dir / "training_curves.png")
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    log.info("metrics written to %s", out_dir / "metrics.json")
    return metrics


def realism(measured: Measurements, real: str, limit, net: FeatureNet) -> dict:
    if real:
        real_whole, real_crops = real_features(real, limit, net, np.random.default_rng(1))
        against = f"real images {real}"
    else:
        real_whole, real_crops = measured.feats["reference"], measured.crops["reference"]
        against = "reference renders"
    out_f, in_f = np.asarray(measured.feats["output"]), np.asarray(measured.feats["input"])
    real_f = np.asarray(real_whole)
    if len(real_f) < 2 or len(out_f) < 2:
        return {"realism_note": "KID/FID/sKVD need at least 2 output and 2 real/reference images"}
    result = {"realism_against": against, "feature_net": net.spec, "feature_weights": net.description,
              "kid": distribution.kid(out_f, real_f)[0], "input_kid": distribution.kid(in_f, real_f)[0]}
    if min(len(out_f), len(real_f)) > 2:
        result["frechet"] = distribution.frechet_distance(out_f, real_f)
        result["input_frechet"] = distribution.frechet_distance(in_f, real_f)
    fake = measured.crops["output"]
    result["skvd"] = skvd_mod.skvd_from_features([f for f, _ in fake], [d for _, d in fake],
                                                 [f for f, _ in real_crops], [d for _, d in real_crops])
    return result


def write_grid(panels: list[np.ndarray], path: Path) -> None:
    """input | output | reference side by side."""
    grid = np.concatenate(panels, axis=1)
    Image.fromarray((np.clip(grid, 0, 1) * 255 + 0.5).astype(np.uint8)).save(path)


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
