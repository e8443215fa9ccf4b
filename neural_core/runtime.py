"""Running exported models on frames: onnxruntime + numpy only (this runs inside Blender).

    enhancer = Enhancer.from_pretrained("rad", device="auto")
    rgb = enhancer.enhance(neural_core.exr.read_frame("frame.exr"))   # (H, W, 3) linear HDR
    enhancer.provider, enhancer.last_timings

Devices: "auto" takes CUDA when onnxruntime offers it and the session really starts on it,
else the CPU; `provider_reason` says why. On CUDA a `<model>.fp16.onnx` beside the model is
preferred.

The graph takes the passes as rendered and does every transform itself (see
`metadata.INPUT_FORMAT`), so a frame that runs whole is fed to onnxruntime without a copy.

Large frames: RAD is tile-safe (no per-image statistics at inference), so frames of more than
2 * tile_size**2 pixels (above 1080p with the default tile size) run as overlapping tiles of
tile_size blended with feathered weights (see `tiling`); smaller frames run whole. CRN
synthesises the whole image from the label map at once (its layer norms take statistics over
the whole image), so it is never tiled. Its activations are narrower than RAD's, so it runs at
full resolution up to (2 * tile_size)**2 pixels (1080p and 1440p with the default tile size); a
larger frame runs at the largest resolution within that budget, same aspect (labels sampled
nearest), and the output is resized bilinearly to the frame size. `tile_size=0` turns both
off: the whole frame at full resolution.
"""
from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import onnxruntime as ort

from . import fallbacks, limits, schema, tiling
from .buffers import ReusedArrays
from .errors import (CorruptFileError, ModelMetadataError, NonFiniteError, PhotorealError,
                     SizeMismatchError)
from .metadata import OUTPUT_NAME, ModelMetadata

MODELS_DIR = Path(__file__).resolve().parent / "models"
BUNDLED_MODELS = ("rad", "crn")
DEVICES = ("auto", "cpu", "cuda")
CUDA_PROVIDER = "CUDAExecutionProvider"
CPU_PROVIDER = "CPUExecutionProvider"

# Tiles of at most 1024 x 1024 px bound RAD's working memory whatever the frame size: 4K in
# 15 tiles peaked ~1.1 GB above the input frame (benchmarks/results/core-*.txt), where untiled
# working memory grows with the frame (~1.2 GB at 1080p, so ~5 GB at 4K).
DEFAULT_TILE_SIZE = 1024
# Frames of up to this many tiles' worth of pixels run whole. 1080p whole (2.07 Mpx) against 4
# overlapping tiles, measured back to back: inference 1.86 s vs 2.05-2.18 s (no overlap computed
# twice), crops and blending 24 ms vs 100 ms, for a peak RSS of ~1.3 GB instead of ~1.1 GB.
WHOLE_FRAME_TILES = 2

GPU_HELP = ("to run on an NVIDIA GPU, install the add-on's GPU package (onnxruntime-gpu, which "
            "needs an NVIDIA driver with CUDA 13 and cuDNN 9) in place of onnxruntime; "
            "or choose device 'auto' or 'cpu'")

ProgressCallback = Callable[[int, int], None]   # (tiles done, tiles in all)


def available_devices() -> list[str]:
    """Devices onnxruntime offers here, best first, e.g. ['cuda', 'cpu']. 'auto' is always valid.

    'cuda' means the CUDA provider is installed; it can still fail to start (missing CUDA
    libraries), which `Enhancer.from_pretrained` reports.
    """
    devices = ["cpu"]
    if CUDA_PROVIDER in ort.get_available_providers():
        devices.insert(0, "cuda")
    return devices


def resolve_model_path(model: str | Path) -> Path:
    """'rad' / 'crn' -> the bundled model; anything else is a path to an .onnx file."""
    if str(model) in BUNDLED_MODELS:
        path = MODELS_DIR / f"{model}.onnx"
        if not path.is_file():
            raise PhotorealError(f"the bundled {model} model is missing (expected {path}); "
                                 f"reinstall the add-on or pass the path of an exported .onnx")
        return path
    path = Path(model).expanduser()
    if not path.is_file():
        raise PhotorealError(f"no model file at {path}; give 'rad', 'crn' or the path of an "
                             f"exported .onnx file")
    return path


def fp16_sibling(path: Path) -> Path:
    """model.onnx -> model.fp16.onnx (the half-precision export used on CUDA)."""
    return path.with_name(path.stem + ".fp16.onnx")


class Enhancer:
    """An exported RAD or CRN model ready to run on frames."""

    def __init__(self, session: ort.InferenceSession, metadata: ModelMetadata, model_path: Path,
                 provider: str, provider_reason: str, tile_size: int, overlap: int):
        self.session = session
        self.metadata = metadata
        self.model_path = model_path
        self.provider = provider                # what actually runs, e.g. 'CPUExecutionProvider'
        self.provider_reason = provider_reason  # why that provider was chosen
        self.tile_size = tile_size              # px per side; 0 = never tile
        self.overlap = overlap
        self.last_timings: dict[str, float] = {}
        self.last_num_tiles = 0
        self.last_warnings: list[str] = []      # fallbacks used on the last frame
        self._output_name = output_name(session, str(model_path))
        self._buffers = ReusedArrays()   # tile inputs, kept from frame to frame
        self._lock = threading.Lock()   # one enhance at a time: the buffers are shared

    # -- loading ------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, model: str | Path = "rad", device: str = "auto",
                        tile_size: int | None = None, threads: int | None = None,
                        overlap: int | None = None) -> "Enhancer":
        """Load a bundled model ('rad', 'crn') or an exported .onnx, checking its metadata.

        device: 'auto' (CUDA if it starts, else CPU), 'cpu' or 'cuda' (error if unavailable).
        tile_size: tile side in px (default DEFAULT_TILE_SIZE; 0 = never tile); frames of at
            most WHOLE_FRAME_TILES tiles' worth of pixels run whole.
        threads: CPU threads for onnxruntime (default: all cores).
        overlap: px tiles overlap (default: what the model's metadata says it needs).
        """
        device = str(device).lower()
        if device not in DEVICES:
            raise PhotorealError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)}")
        if tile_size is not None and tile_size < 0:
            raise PhotorealError(f"tile size must be 0 (never tile) or a positive number of pixels, not {tile_size}")
        path = resolve_model_path(model)
        session, provider, reason, used_path = _open_on_device(path, device, threads)
        metadata = ModelMetadata.from_props(session.get_modelmeta().custom_metadata_map,
                                            source=str(used_path))
        check_graph(session, metadata, str(used_path))
        tile_size = DEFAULT_TILE_SIZE if tile_size is None else int(tile_size)
        # By default the overlap the model needs for tiles to match the whole frame.
        overlap = metadata.tile_overlap if overlap is None else int(overlap)
        if metadata.model_kind == "rad" and 0 < tile_size < 2 * overlap:
            raise PhotorealError(f"tile size {tile_size} px is too small for {used_path.name}: its tiles "
                                 f"overlap by {overlap} px, so use tiles of at least {2 * overlap} px "
                                 f"(or 0: never tile)")
        return cls(session, metadata, used_path, provider, reason, tile_size, overlap)

    # -- facts for the UI ---------------------------------------------------------------------
    @property
    def kind(self) -> str:
        return self.metadata.model_kind

    @property
    def required_passes(self) -> list[str]:
        return self.metadata.required_passes

    @property
    def is_trained(self) -> bool:
        return self.metadata.is_trained

    def plan(self, height: int, width: int) -> list[tiling.Tile]:
        """The tiles a height x width frame would run as (one tile = whole frame)."""
        whole = self.tile_size == 0 or height * width <= WHOLE_FRAME_TILES * self.tile_size ** 2
        if self.kind == "crn" or whole:
            return [tiling.Tile(0, height, 0, width, False, False, False, False)]
        tile, overlap = self._tile_geometry(height, width)
        return tiling.plan_tiles(height, width, tile, overlap, self.pad_multiple)

    # -- running ------------------------------------------------------------------------------
    def enhance(self, frame: schema.Frame, engine: str | None = None,
                progress: ProgressCallback | None = None) -> np.ndarray:
        """Frame (pass key -> (H, W, C) arrays) -> enhanced (H, W, 3) float32 linear HDR (a
        channel-first array seen as (H, W, 3); np.ascontiguousarray makes it interleaved).

        engine: the render engine that made the frame (scene.render.engine): EEVEE frames
        serve their Combined as the noisy image; otherwise only used to word errors.
        progress: called with (tiles done, tiles in all) after each tile.
        """
        with self._lock:
            return self._enhance(frame, engine, progress)

    def _enhance(self, frame: schema.Frame, engine: str | None,
                 progress: ProgressCallback | None) -> np.ndarray:
        timer = _Timer()
        with timer("preprocess"):
            frame, height, width = self._checked_frame(frame, engine)
        if self.kind == "crn":
            rgb = self._run_crn(frame, height, width, timer)
            self.last_num_tiles = 1
        else:
            rgb = self._run_rad(frame, height, width, timer, progress)
            if "image" in frame:
                with timer("postprocess"):
                    rgb = fallbacks.keep_highlights(rgb, frame["image"])
        check_output_image(rgb, str(self.model_path))
        self.last_timings = timer.ms
        # (3, H, W) -> (H, W, 3) as a view, like the frames read from EXRs: the add-on copies it
        # once into Blender's RGBA pixels, and exr.write_rgb reads its planes as they are.
        return rgb.transpose(1, 2, 0)

    def _checked_frame(self, frame: schema.Frame, engine: str | None):
        """(frame with fallbacks filled, height, width); refuses what cannot run, collects the
        warnings of what runs with a fallback into last_warnings."""
        frame = schema.with_model_sources(frame, self.metadata.class_source, engine)
        frame, self.last_warnings = fallbacks.fill_default_aovs(frame, self.required_passes)
        frame, assumed = fallbacks.fill_full_light_paths(frame, self.required_passes)
        self.last_warnings += assumed
        schema.check_frame(frame, self.required_passes, engine)
        self.last_warnings += fallbacks.foreign_ids_warning(frame, self.metadata.class_source)
        # Every pass the output is placed over, not only the model's: a half-size id pass
        # would otherwise make a half-size image for a full-size render.
        height, width = schema.frame_size(
            {k: frame[k] for k in (*self.required_passes, "image", "alpha") if k in frame})
        limits.check_memory(self.kind, self._pixels_at_once(height, width), height, width)
        return frame, height, width

    def _pixels_at_once(self, height: int, width: int) -> int:
        if self.kind == "crn":
            run_h, run_w = crn_resolution(height, width, self.tile_size, self.metadata.grid_multiple)
            return run_h * run_w
        sizes = [(r.stop - r.start) * (c.stop - c.start) for r, c in (t.slices for t in self.plan(height, width))]
        return max(sizes)

    @property
    def pad_multiple(self) -> int:
        """Tiles start at multiples of this (the graph pads each run to it)."""
        return self.metadata.grid_multiple

    def _tile_geometry(self, height: int, width: int) -> tuple[int, int]:
        multiple = self.pad_multiple
        if self.tile_size == 0:
            return -(-max(height, width) // multiple) * multiple, 0
        return tiling.aligned_tile_geometry(self.tile_size, self.overlap, multiple)

    def _run_rad(self, frame: schema.Frame, height: int, width: int, timer: "_Timer",
                 progress: ProgressCallback | None) -> np.ndarray:
        tiles = self.plan(height, width)
        _, overlap = self._tile_geometry(height, width)
        self.last_num_tiles = len(tiles)
        if len(tiles) == 1:
            with timer("preprocess"):
                feeds = {key: pass_input(frame[key]) for key in self.required_passes}
            return self._run(feeds, timer)
        with timer("postprocess"):
            blender = tiling.TileBlender(3, height, width, overlap)
        for done, tile in enumerate(tiles, 1):
            with timer("preprocess"):
                feeds = self._tile_feeds(frame, tile)
            output = self._run(feeds, timer)
            with timer("postprocess"):
                blender.add(tile, output)
            if progress is not None:
                progress(done, len(tiles))
        with timer("postprocess"):
            return blender.result()

    def _tile_feeds(self, frame: schema.Frame, tile: tiling.Tile) -> dict[str, np.ndarray]:
        """{pass key: the tile's crop as a (1, C, h, w) array}. The arrays are reused from tile
        to tile while the shape stays the same: the session has finished with them, and fresh
        arrays cost more in page faults than filling them does."""
        rows, cols = tile.slices
        feeds = {}
        for key in self.required_passes:
            crop = frame[key][rows, cols].transpose(2, 0, 1)
            feeds[key] = self._buffers.get(key, (1, *crop.shape))
            np.copyto(feeds[key][0], crop)
        return feeds

    def _run_crn(self, frame: schema.Frame, height: int, width: int, timer: "_Timer") -> np.ndarray:
        source = self.metadata.class_source
        with timer("preprocess"):
            ids = frame[source]
            run_h, run_w = crn_resolution(height, width, self.tile_size, self.metadata.grid_multiple)
            if (run_h, run_w) != (height, width):
                ids = resize_nearest(ids, run_h, run_w)
            feeds = {source: pass_input(ids)}
        rgb = self._run(feeds, timer)
        if (run_h, run_w) != (height, width):
            with timer("postprocess"):
                rgb = resize_bilinear(rgb, height, width)
        return rgb

    def _run(self, feeds: dict[str, np.ndarray], timer: "_Timer") -> np.ndarray:
        """{pass key: (1, C, H, W) float32} -> the first output image (3, H, W), linear float32."""
        with timer("inference"):
            try:
                output = self.session.run([self._output_name], feeds)[0]
            except Exception as exc:  # onnxruntime's own types; an allocation failure among them
                shape = next(iter(feeds.values())).shape[2:]
                raise PhotorealError(
                    f"the model failed on a {shape[1]}x{shape[0]} input: "
                    f"{str(exc).strip().splitlines()[0][:200]}; if memory ran out, use a smaller "
                    f"tile (--tile 512 or the Tile Size setting)") from exc
        image = first_image(output)
        check_output_channels(image, str(self.model_path))
        return image.astype(np.float32, copy=False)


def pass_input(values: np.ndarray) -> np.ndarray:
    """A pass (H, W, C) -> the graph's (1, C, H, W) float32 input. The EXR reader keeps each
    pass's planes contiguous (channel-first in memory), so this is a view, not a copy."""
    return np.ascontiguousarray(values.transpose(2, 0, 1)[None], dtype=np.float32)


# ---------------------------------------------------------------------------------------------
# Sessions and graph checks
# ---------------------------------------------------------------------------------------------

def _open_on_device(path: Path, device: str, threads: int | None
                    ) -> tuple[ort.InferenceSession, str, str, Path]:
    """(session, provider, reason, model path actually loaded) for the requested device."""
    cuda_installed = CUDA_PROVIDER in ort.get_available_providers()
    if device == "cuda" and not cuda_installed:
        raise PhotorealError(f"device 'cuda' requested, but this onnxruntime "
                             f"({ort.get_device()} build) has no CUDA support: {GPU_HELP}")
    if device in ("auto", "cuda") and cuda_installed:
        half = fp16_sibling(path)
        gpu_path = half if half.is_file() else path
        session = open_session(gpu_path, [CUDA_PROVIDER, CPU_PROVIDER], threads)
        if session.get_providers()[0] == CUDA_PROVIDER:
            precision = "fp16 model" if gpu_path == half else "fp32 model (no .fp16.onnx beside it)"
            return session, CUDA_PROVIDER, f"CUDA is available ({precision})", gpu_path
        if device == "cuda":
            raise PhotorealError(f"onnxruntime could not start CUDA (driver, CUDA or cuDNN "
                                 f"libraries missing or too old): {GPU_HELP}")
        reason = "CUDA provider installed but could not start (CUDA/cuDNN libraries?); using the CPU"
    elif device == "cpu":
        reason = "CPU requested"
    else:
        reason = "this onnxruntime has no CUDA support; using the CPU"
    return open_session(path, [CPU_PROVIDER], threads), CPU_PROVIDER, reason, path


def open_session(path: Path, providers: Sequence[str], threads: int | None = None,
                 profile_prefix: str | None = None) -> ort.InferenceSession:
    """An onnxruntime session with the runtime's settings (the benchmarks time the same);
    `profile_prefix` turns on onnxruntime's profiler (benchmarks.ort_profile)."""
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: provider fallbacks are reported by us
    # No memory pattern: onnxruntime would plan one block per input shape on the first run and
    # allocate it (fresh pages) on the second. Without it the arena reuses its chunks. Measured,
    # 1080p back to back: RAD first two runs 4.1 + 4.7 s -> 2.5 + 1.9 s, steady 1.85 s either
    # way, peak RSS 2.57 -> 1.59 GB; CRN peak 2.1 -> 1.2 GB for ~5 % slower steady runs.
    options.enable_mem_pattern = False
    # Its threads stop spinning when a run returns (they still spin between the ops of a run):
    # else they hold every core for a while after it, against whatever comes next (the temporal
    # filter, Blender's compositing). Measured on 16 cores at 1080p, alternating: inference 637
    # vs 637 ms, the temporal filter right after 37 vs 73 ms (temporal-2026-11-26-session14.txt).
    options.add_session_config_entry("session.force_spinning_stop", "1")
    if threads:
        options.intra_op_num_threads = int(threads)
    if profile_prefix:
        options.enable_profiling = True
        options.profile_file_prefix = profile_prefix
    try:
        return ort.InferenceSession(str(path), options, providers=list(providers))
    except Exception as exc:  # onnxruntime raises several private exception types
        raise CorruptFileError(f"cannot load ONNX model {path}: {exc}") from exc


def expected_input_channels(metadata: ModelMetadata) -> dict[str, int]:
    """{graph input name: channels}: one input per required pass."""
    return {key: schema.pass_spec(key).num_channels for key in metadata.input_names}


def check_graph(session: ort.InferenceSession, metadata: ModelMetadata, source: str) -> None:
    """Refuse a model whose graph inputs/outputs disagree with its metadata."""
    inputs = {i.name: i.shape for i in session.get_inputs()}
    expected = expected_input_channels(metadata)
    if set(inputs) != set(expected):
        raise ModelMetadataError(
            f"{source}: the graph's inputs {sorted(inputs)} do not match a {metadata.model_kind} "
            f"model's inputs {list(expected)} named in its metadata")
    for name, channels in expected.items():
        shape = inputs[name]
        if len(shape) != 4 or shape[1] != channels:
            raise ModelMetadataError(
                f"{source}: graph input '{name}' has shape {shape}, but the {name} pass has "
                f"{channels} channel(s): expected (batch, {channels}, height, width)")
    output_name(session, source)


def output_name(session: ort.InferenceSession, source: str) -> str:
    """The enhanced image: the output named OUTPUT_NAME, or the graph's only output.

    (An ONNX graph cannot reuse an input's name for an output, so RAD, whose input is also
    called 'image', may export its output under another name.)
    """
    outputs = [o.name for o in session.get_outputs()]
    if OUTPUT_NAME in outputs:
        return OUTPUT_NAME
    if len(outputs) == 1:
        return outputs[0]
    raise ModelMetadataError(f"{source}: the graph has outputs {outputs} and none is named "
                             f"'{OUTPUT_NAME}'; cannot tell which is the image")


def check_output_channels(image: np.ndarray, source: str) -> None:
    """Refuse a model output that is not an RGB image (custom models)."""
    if image.ndim != 3 or image.shape[0] != 3:
        raise SizeMismatchError(f"{source}: the model gives {image.shape[0] if image.ndim else 0} "
                                f"channel(s) per image, but an RGB image (3) is needed; "
                                f"re-export it with a 3-channel output")


def check_output_image(rgb: np.ndarray, source: str) -> None:
    """Refuse a model output with NaN/inf: writing it would be a silently wrong frame."""
    bad = schema.non_finite_count(rgb)
    if bad:
        raise NonFiniteError(f"{source}: the model's output has {bad} NaN/inf value(s), so "
                             f"nothing was written; the model is broken (retrain or re-export "
                             f"it)")


def first_image(output: np.ndarray) -> np.ndarray:
    """Model output -> the first image (3, H, W): batch 1, and of k images the first."""
    output = output[0]
    if output.ndim == 4:        # (k, 3, H, W)
        output = output[0]
    return output[:3]           # (3k, H, W) stacks the k images along channels


# ---------------------------------------------------------------------------------------------
# CRN at bounded resolution
# ---------------------------------------------------------------------------------------------

def crn_resolution(height: int, width: int, tile_size: int, multiple: int) -> tuple[int, int]:
    """The size CRN runs at: the frame's, or within (2 * tile_size)**2 pixels keeping the aspect."""
    budget = (2 * tile_size) ** 2
    if tile_size == 0 or height * width <= budget:
        return height, width
    scale = (budget / (height * width)) ** 0.5
    run_h = max(multiple, int(height * scale) // multiple * multiple)
    run_w = max(multiple, int(width * scale) // multiple * multiple)
    return run_h, run_w


def resize_nearest(ids: np.ndarray, height: int, width: int) -> np.ndarray:
    """(H, W, ...) ids -> (height, width, ...), sampling at pixel centres."""
    rows = ((np.arange(height) + 0.5) * ids.shape[0] / height).astype(np.intp)
    cols = ((np.arange(width) + 0.5) * ids.shape[1] / width).astype(np.intp)
    return ids[rows[:, None], cols[None, :]]


def resize_bilinear(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """(C, h, w) -> (C, height, width), bilinear with pixel-centre alignment."""
    def weights(n_out: int, n_in: int):
        pos = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
        lo = np.floor(pos).astype(np.intp)
        hi = np.minimum(lo + 1, n_in - 1)
        return lo, hi, (pos - lo).astype(np.float32)

    lo, hi, f = weights(height, image.shape[1])
    image = image[:, lo] * (1 - f)[None, :, None] + image[:, hi] * f[None, :, None]
    lo, hi, f = weights(width, image.shape[2])
    return (image[:, :, lo] * (1 - f) + image[:, :, hi] * f).astype(np.float32)


# ---------------------------------------------------------------------------------------------

class _Timer:
    """Accumulates wall time per stage, in ms."""

    def __init__(self):
        self.ms = {"preprocess": 0.0, "inference": 0.0, "postprocess": 0.0}

    @contextmanager
    def __call__(self, stage: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.ms[stage] += (time.perf_counter() - start) * 1e3
