"""Running exported models on frames: onnxruntime + numpy only (this runs inside Blender).

    enhancer = Enhancer.from_pretrained("rad", device="auto")
    rgb = enhancer.enhance(neural_core.exr.read_frame("frame.exr"))   # (H, W, 3) linear HDR
    enhancer.provider, enhancer.last_timings

Devices: "auto" takes CUDA when onnxruntime offers it and the session really starts on it,
else the CPU; `provider_reason` says why. On CUDA a `<model>.fp16.onnx` beside the model is
preferred.

Large frames: RAD is tile-safe (no per-image statistics at inference), so frames larger than
`tile_size` along an axis run as overlapping tiles blended with feathered weights (see
`tiling`). CRN synthesises the whole image from the label map at once (its layer norms take
statistics over the whole image), so it is never tiled. Its activations are narrower than
RAD's, so it runs at full resolution up to (2 * tile_size)**2 pixels (1080p and 1440p with the
default tile size); a larger frame runs at the largest resolution within that budget, same
aspect (labels sampled nearest), and the output is resized bilinearly, in the encoded (log1p)
domain, to the frame size. `tile_size=0` turns both off: the whole frame at full resolution.
"""
from __future__ import annotations

import math
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import onnxruntime as ort

from . import schema, tiling
from .errors import CorruptFileError, ModelMetadataError, PhotorealError
from .metadata import OUTPUT_NAME, ModelMetadata

MODELS_DIR = Path(__file__).resolve().parent / "models"
BUNDLED_MODELS = ("rad", "crn")
DEVICES = ("auto", "cpu", "cuda")
CUDA_PROVIDER = "CUDAExecutionProvider"
CPU_PROVIDER = "CPUExecutionProvider"

# RAD's branches halve the resolution up to 5 times. Every RAD run is padded (edge-replicated,
# cropped after) to a multiple of this, and tiles start at multiples of it, so each level's
# pixel grid is an exact half of the one above in tiles and whole frames alike; that is what
# makes tiled output match whole-frame output.
RAD_GRID_ALIGNMENT = 32
# Tiles of at most 1024 x 1024 px bound RAD's working memory whatever the frame size: 4K in
# 15 tiles peaked ~1.1 GB above the input frame (benchmarks/results/core-*.txt), where untiled
# working memory grows with the frame (~1.5 GB at 1080p, so ~6 GB at 4K). At 1080p the 4 tiles
# ran as fast as the whole frame.
DEFAULT_TILE_SIZE = 1024
# Tiles overlap by 128 px; the 32 px of each tile nearest a shared edge are dropped and the
# next 64 px cross-fade. Measured on a fresh RAD (small config), tiled output then differs from
# the whole frame by ~1e-6 (1/255 is the requirement).
DEFAULT_OVERLAP = 128

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
        self._input_dtypes = {i.name: _numpy_dtype(i.type) for i in session.get_inputs()}
        self._output_name = output_name(session, str(model_path))
        # Tile input arrays kept from frame to frame: a batch render enhances frame after frame at
        # one size, and fresh ~100 MB arrays per frame cost about as much in page faults as
        # filling them (1080p preprocessing measured ~390 ms with fresh arrays, ~190 ms reused).
        self._buffers = _Buffers()
        self._lock = threading.Lock()   # one enhance at a time: the buffers are shared

    # -- loading ------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, model: str | Path = "rad", device: str = "auto",
                        tile_size: int | None = None, threads: int | None = None,
                        overlap: int | None = None) -> "Enhancer":
        """Load a bundled model ('rad', 'crn') or an exported .onnx, checking its metadata.

        device: 'auto' (CUDA if it starts, else CPU), 'cpu' or 'cuda' (error if unavailable).
        tile_size: tile side in px (default DEFAULT_TILE_SIZE; 0 = never tile).
        threads: CPU threads for onnxruntime (default: all cores).
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
        return cls(session, metadata, used_path, provider, reason,
                   DEFAULT_TILE_SIZE if tile_size is None else int(tile_size),
                   DEFAULT_OVERLAP if overlap is None else int(overlap))

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
        if self.kind == "crn":
            return [tiling.Tile(0, height, 0, width, False, False, False, False)]
        tile, overlap = self._tile_geometry(height, width)
        return tiling.plan_tiles(height, width, tile, overlap, self.pad_multiple)

    # -- running ------------------------------------------------------------------------------
    def enhance(self, frame: schema.Frame, engine: str | None = None,
                progress: ProgressCallback | None = None) -> np.ndarray:
        """Frame (pass key -> (H, W, C) arrays) -> enhanced (H, W, 3) float32 linear HDR.

        engine: the render engine that made the frame ('CYCLES', 'BLENDER_EEVEE_NEXT', ...),
        only used to word the error for a missing pass.
        progress: called with (tiles done, tiles in all) after each tile.
        """
        with self._lock:
            return self._enhance(frame, engine, progress)

    def _enhance(self, frame: schema.Frame, engine: str | None,
                 progress: ProgressCallback | None) -> np.ndarray:
        timer = _Timer()
        with timer("preprocess"):
            frame = with_class_source(frame, self.metadata.class_source)
            schema.check_frame(frame, self.required_passes, engine)
            height, width = schema.frame_size({k: frame[k] for k in self.required_passes})
        if self.kind == "crn":
            encoded = self._run_crn(frame, height, width, timer)
            self.last_num_tiles = 1
        else:
            encoded = self._run_rad(frame, height, width, timer, progress)
        with timer("postprocess"):
            # Decoded in place (the encoded array is ours: blended tiles, a resize or the
            # session's output), then one copy into the (H, W, 3) layout.
            decoded = schema.decode_radiance(encoded, out=encoded if encoded.flags.writeable else None)
            rgb = np.ascontiguousarray(decoded.transpose(1, 2, 0))
        self.last_timings = timer.ms
        return rgb

    @property
    def pad_multiple(self) -> int:
        """Inputs are padded to a multiple of this before running."""
        if self.kind == "crn":
            return self.metadata.size_multiple
        return math.lcm(self.metadata.size_multiple, RAD_GRID_ALIGNMENT)

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
        blender = None
        if len(tiles) > 1:
            with timer("postprocess"):
                blender = tiling.TileBlender(3, height, width, overlap)
        for done, (tile, feeds) in enumerate(self._rad_feeds(frame, tiles, timer), 1):
            h, w = tile.shape
            output = self._run(feeds, timer)[:, :h, :w]
            if blender is None:
                return output
            with timer("postprocess"):
                blender.add(tile, output)
            if progress is not None:
                progress(done, len(tiles))
        with timer("postprocess"):
            return blender.result()

    def _rad_feeds(self, frame: schema.Frame, tiles: Sequence[tiling.Tile], timer: "_Timer"):
        """(tile, {input name: (C, h', w') tensor padded to pad_multiple}) for each tile, in order.

        Each tensor is computed straight from the tile's crop of the passes into an array of the
        padded size, then the padding is filled by repeating the edge (this commutes with the
        per-pixel transforms, so it equals transforming padded crops). The arrays are reused
        from tile to tile while the shape stays the same: the session has finished with them,
        and fresh 100 MB arrays cost more in page faults than filling them does. (Transforming
        whole bands of rows once and copying tiles out of them was measured slower: it moves
        more memory than the ~20 % of pixels that overlapping 1080p tiles transform twice.)
        """
        meta = self.metadata
        with timer("preprocess"):
            # The class pass was checked with the frame (enhance); ids are uint8, 1 byte a pixel.
            classes = schema.class_map_from_index(frame[meta.class_source])
        buffers = self._buffers
        for tile in tiles:
            with timer("preprocess"):
                rows, cols = tile.slices
                h, w = tile.shape
                size = padded_shape((h, w), self.pad_multiple)
                region = {key: frame[key][rows, cols] for key in self.required_passes}
                feeds = {"image": buffers.get("image", (3, *size))}
                schema.image_tensor(region, out=feeds["image"][:, :h, :w])
                if "gbuffers" in meta.input_names:
                    feeds["gbuffers"] = buffers.get("gbuffers", (len(meta.gbuffer_channels), *size))
                    schema.gbuffer_tensor(region, meta.gbuffer_passes, meta.stats,
                                          out=feeds["gbuffers"][:, :h, :w])
                for tensor in feeds.values():
                    fill_edge(tensor, h, w)
                ids = pad_edge(classes[rows, cols], self.pad_multiple)
                feeds["classes"] = schema.one_hot(ids, buffers.get("classes", (schema.NUM_CLASSES, *size)))
            yield tile, feeds

    def _run_crn(self, frame: schema.Frame, height: int, width: int, timer: "_Timer") -> np.ndarray:
        with timer("preprocess"):
            classes = schema.class_map_from_frame(frame, self.metadata.class_source)
            run_h, run_w = crn_resolution(height, width, self.tile_size, self.metadata.size_multiple)
            if (run_h, run_w) != (height, width):
                classes = resize_nearest(classes, run_h, run_w)
            classes = pad_edge(classes, self.pad_multiple)
            feeds = {"classes": schema.one_hot(classes)}
        encoded = self._run(feeds, timer)[:, :run_h, :run_w]
        if (run_h, run_w) != (height, width):
            with timer("postprocess"):
                encoded = resize_bilinear(encoded, height, width)
        return encoded

    def _run(self, tensors: dict[str, np.ndarray], timer: "_Timer") -> np.ndarray:
        """(C, H, W) input tensors -> the first output image (3, H, W), float32."""
        with timer("preprocess"):
            feeds = {name: tensor[None].astype(self._input_dtypes[name], copy=False)
                     for name, tensor in tensors.items()}
        with timer("inference"):
            output = self.session.run([self._output_name], feeds)[0]
        with timer("postprocess"):
            return first_image(output).astype(np.float32, copy=False)


def with_class_source(frame: schema.Frame, class_source: str) -> schema.Frame:
    """Serve the class AOV as the model's class source when the frame lacks that pass: EEVEE has
    no index passes, so the add-on writes the same ids (class id + 1) into the AOV instead."""
    if class_source not in frame and "class_aov" in frame:
        frame = {**frame, class_source: frame["class_aov"]}
    return frame


def padded_shape(shape: Sequence[int], multiple: int) -> tuple[int, ...]:
    """(..., h, w) -> (..., h', w'), h' and w' rounded up to multiples of `multiple`."""
    *lead, h, w = shape
    return (*lead, -(-h // multiple) * multiple, -(-w // multiple) * multiple)


def pad_edge(region: np.ndarray, multiple: int) -> np.ndarray:
    """(..., h, w) -> a new C-contiguous (..., h', w') array, h' and w' the next multiples of
    `multiple`, padded at the bottom/right by repeating the edge (np.pad's 'edge' mode: class ids
    stay valid ids, radiance stays plausible; the output is cropped back after)."""
    h, w = region.shape[-2:]
    out = np.empty(padded_shape(region.shape, multiple), region.dtype)
    out[..., :h, :w] = region
    return fill_edge(out, h, w)


def fill_edge(array: np.ndarray, h: int, w: int) -> np.ndarray:
    """Fill (..., H, W) beyond its top-left h x w corner by repeating that corner's last row and
    column, in place (np.pad's 'edge' mode)."""
    array[..., h:, :w] = array[..., h - 1:h, :w]
    array[..., :, w:] = array[..., :, w - 1:w]
    return array


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
        session = _session(gpu_path, [CUDA_PROVIDER, CPU_PROVIDER], threads)
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
    return _session(path, [CPU_PROVIDER], threads), CPU_PROVIDER, reason, path


def _session(path: Path, providers: Sequence[str], threads: int | None) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: provider fallbacks are reported by us
    if threads:
        options.intra_op_num_threads = int(threads)
    try:
        return ort.InferenceSession(str(path), options, providers=list(providers))
    except Exception as exc:  # onnxruntime raises several private exception types
        raise CorruptFileError(f"cannot load ONNX model {path}: {exc}") from exc


def expected_input_channels(metadata: ModelMetadata) -> dict[str, int]:
    channels = {"image": 3, "gbuffers": len(metadata.gbuffer_channels),
                "classes": schema.NUM_CLASSES}
    return {name: channels[name] for name in metadata.input_names}


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
            what = (f" ({', '.join(metadata.gbuffer_channels)})" if name == "gbuffers" else "")
            raise ModelMetadataError(
                f"{source}: graph input '{name}' has shape {shape}, but the metadata implies "
                f"(batch, {channels}, height, width){what}")
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


def first_image(output: np.ndarray) -> np.ndarray:
    """Model output -> the first image (3, H, W): batch 1, and of k images the first."""
    output = output[0]
    if output.ndim == 4:        # (k, 3, H, W)
        output = output[0]
    return output[:3]           # (3k, H, W) stacks the k images along channels


def _numpy_dtype(onnx_type: str):
    return np.float16 if onnx_type == "tensor(float16)" else np.float32


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
    """(H, W) ids -> (height, width), sampling at pixel centres."""
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

class _Buffers:
    """Reusable arrays by name: the same array again while the shape asked for stays the same."""

    def __init__(self):
        self._arrays: dict[str, np.ndarray] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype=np.float32) -> np.ndarray:
        array = self._arrays.get(name)
        if array is None or array.shape != tuple(shape) or array.dtype != dtype:
            self._arrays[name] = None      # free the old one before allocating
            array = self._arrays[name] = np.empty(shape, dtype)
        return array


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
