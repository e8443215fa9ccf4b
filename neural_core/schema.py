"""The G-buffer schema: the one place that says which render passes exist, what Blender
calls them, how many channels they have, how they are normalised, and which semantic
classes the networks know.

Everything else (the add-on, the dataset exporter, training, the ONNX metadata and the
runtime) imports these definitions instead of repeating them.

This module needs numpy only: it runs inside Blender.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from .errors import MissingPassError, NonFiniteError, SizeMismatchError

SCHEMA_VERSION = "1"

# ---------------------------------------------------------------------------------------------
# Passes
# ---------------------------------------------------------------------------------------------

# How a pass is turned into network input. The transforms are fixed by the schema; per-channel
# mean/std standardisation on top of them comes from dataset statistics stored in the model.
TRANSFORM_HDR = "log1p"          # linear HDR colour/radiance -> log(1 + max(x, 0))
TRANSFORM_DEPTH = "log_depth"    # camera distance -> log1p(min(d, DEPTH_FAR)) / log1p(DEPTH_FAR), in [0, 1]
TRANSFORM_NONE = "none"          # already bounded: normals [-1, 1], albedo [0, 1], AOVs, ...
TRANSFORM_INDEX = "index"        # integer ids; used for class maps, never fed as a float channel

# Cycles writes 1e10 on the background and EEVEE writes the camera's clip end (1000 at most in
# practice). Clamping both at DEPTH_FAR makes "background" look the same to the network.
DEPTH_FAR = 1000.0
# Radiance above this is clamped before the log: fireflies in fast renders reach 1e4+.
MAX_RADIANCE = 1.0e3


@dataclass(frozen=True)
class PassSpec:
    """One render pass as Blender writes it and as the networks read it."""

    key: str                       # our canonical name, used in configs, metadata and file formats
    blender_names: tuple[str, ...]  # layer name in the EXR / Render Layers socket, oldest first
    channels: tuple[str, ...]      # channel suffixes in the EXR, in the order we stack them
    setting: str                   # the ViewLayer property that enables it (named in errors)
    transform: str
    eevee: bool = True             # does EEVEE produce it?
    aov_type: str | None = None    # 'VALUE' or 'COLOR' for custom AOVs written by materials

    @property
    def num_channels(self) -> int:
        return len(self.channels)

    @property
    def rendered(self) -> bool:
        """False for inputs made from the render's settings rather than read from its passes."""
        return bool(self.blender_names)

    @property
    def is_aov(self) -> bool:
        return self.aov_type is not None

    def channel_names(self) -> list[str]:
        """Flat channel names such as 'normal.x', used in metadata and dataset files."""
        return [f"{self.key}.{c.lower()}" for c in self.channels]


# 4.2-4.5 names come first, 5.x names second (docs/blender_api.md); readers accept either.
PASSES: dict[str, PassSpec] = {p.key: p for p in (
    PassSpec("image", ("Combined",), ("R", "G", "B"), "use_pass_combined", TRANSFORM_HDR),
    PassSpec("alpha", ("Combined",), ("A",), "use_pass_combined", TRANSFORM_NONE),
    # Cycles' image before its denoiser ran (Render Properties > Sampling > Denoise, with
    # View Layer > Passes > Data > Denoising Data): with the denoiser on, "image" is denoised.
    PassSpec("noisy", ("Noisy Image",), ("R", "G", "B"), "cycles.denoising_store_passes",
             TRANSFORM_HDR, eevee=False),
    PassSpec("depth", ("Depth",), ("Z",), "use_pass_z", TRANSFORM_DEPTH),
    PassSpec("normal", ("Normal",), ("X", "Y", "Z"), "use_pass_normal", TRANSFORM_NONE),
    PassSpec("albedo", ("DiffCol", "Diffuse Color"), ("R", "G", "B"), "use_pass_diffuse_color",
             TRANSFORM_NONE),
    PassSpec("glossy", ("GlossCol", "Glossy Color"), ("R", "G", "B"), "use_pass_glossy_color",
             TRANSFORM_NONE),
    PassSpec("emission", ("Emit", "Emission"), ("R", "G", "B"), "use_pass_emit", TRANSFORM_HDR),
    PassSpec("object_index", ("IndexOB", "Object Index"), ("X",), "use_pass_object_index",
             TRANSFORM_INDEX, eevee=False),
    PassSpec("material_index", ("IndexMA", "Material Index"), ("X",), "use_pass_material_index",
             TRANSFORM_INDEX, eevee=False),
    PassSpec("position", ("Position",), ("X", "Y", "Z"), "use_pass_position", TRANSFORM_NONE),
    # Vector: XY = motion towards the previous frame, ZW = towards the next frame, in pixels.
    PassSpec("motion", ("Vector",), ("X", "Y", "Z", "W"), "use_pass_vector", TRANSFORM_NONE),
    # Custom AOVs, written by an AOV Output node in each material (the scene generator adds them).
    PassSpec("roughness", ("roughness",), ("X",), "aovs['roughness']", TRANSFORM_NONE,
             aov_type="VALUE"),
    PassSpec("metallic", ("metallic",), ("X",), "aovs['metallic']", TRANSFORM_NONE,
             aov_type="VALUE"),
    # Class ids for engines without index passes (EEVEE): the add-on writes the object's
    # pass_index into this AOV from every material.
    PassSpec("class_aov", ("photoreal_class",), ("X",), "aovs['photoreal_class']", TRANSFORM_INDEX,
             aov_type="VALUE"),
    # Not in any EXR: the render's light-path depth as a constant plane (with_light_paths). A
    # denoised 1-bounce render and a full one can look alike, yet only the first lacks light.
    PassSpec("bounces", (), ("X",), "scene.cycles.max_bounces", TRANSFORM_NONE),
)}

# Diffuse bounces past which more add little light: Cycles' default diffuse limit and the
# training references' setting. The bounces plane holds depth / FULL_BOUNCE_DEPTH, at most 1.
FULL_BOUNCE_DEPTH = 4

# Radiance passes a RAD model may take as its image input; the first is the one it corrects.
IMAGE_PASSES = ("image", "noisy")

# Every Blender pass name the schema knows (EXR layer names): they tell where a view layer's
# name ends.
_KNOWN_PASS_NAMES = frozenset(n for spec in PASSES.values() for n in spec.blender_names)

# G-buffer passes a model may consume, in the canonical stacking order.
GBUFFER_PASS_ORDER = ("depth", "normal", "albedo", "glossy", "emission", "position", "motion",
                      "roughness", "metallic", "bounces")
# Those a render writes (the rest are made from its settings): what datasets store and exports enable.
RENDERED_GBUFFER_PASSES = tuple(key for key in GBUFFER_PASS_ORDER if PASSES[key].rendered)
# The default set: everything both engines produce without scene-specific scale.
DEFAULT_GBUFFER_PASSES = ("depth", "normal", "albedo", "glossy", "emission", "roughness",
                          "metallic")


def pass_spec(key: str) -> PassSpec:
    try:
        return PASSES[key]
    except KeyError:
        raise KeyError(f"unknown pass {key!r}; known passes: {', '.join(PASSES)}") from None


def gbuffer_channel_names(gbuffer_passes: Sequence[str]) -> list[str]:
    """Flat channel names of a G-buffer tensor, e.g. ['depth.z', 'normal.x', ...]."""
    return [name for key in gbuffer_passes for name in pass_spec(key).channel_names()]


def num_gbuffer_channels(gbuffer_passes: Sequence[str]) -> int:
    return sum(pass_spec(k).num_channels for k in gbuffer_passes)


def enable_hint(key: str, engine: str | None = None) -> str:
    """How to turn a pass on, for error messages."""
    spec = pass_spec(key)
    if spec.is_aov:
        return (f"add a {spec.aov_type} AOV named '{spec.blender_names[0]}' "
                f"(View Layer Properties > Shader AOV) and write it with an AOV Output node in "
                f"each material")
    if key == "noisy":
        return ("turn on Render Properties > Sampling > Render > Denoise and View Layer Properties > "
                "Passes > Data > Denoising Data (scene.cycles.use_denoising, "
                "ViewLayer.cycles.denoising_store_passes); EEVEE has no denoiser: use Cycles")
    if key == "bounces":
        return ("the add-on reads it from Render Properties > Light Paths; on the command line give "
                "--bounces N (the render's Max Bounces)")
    if not spec.eevee and is_eevee(engine):
        return (f"EEVEE has no {spec.blender_names[-1]} pass: switch the render engine to Cycles "
                f"(ViewLayer.{spec.setting}), or use a model that does not need it")
    return f"enable View Layer Properties > Passes > {spec.blender_names[-1]} (ViewLayer.{spec.setting})"


# ---------------------------------------------------------------------------------------------
# Semantic classes
# ---------------------------------------------------------------------------------------------

# Cityscapes' 19 training classes plus void, in trainId order.
CLASSES: tuple[str, ...] = (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
    "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train",
    "motorcycle", "bicycle", "void",
)
NUM_CLASSES = len(CLASSES)
VOID_CLASS = CLASSES.index("void")

# Which pass ids map to classes. A scene tags objects (or materials) with their class by the
# custom property CLASS_PROPERTY (a class name); the add-on writes pass_index = class id + 1
# before rendering, so 0 (untagged) means void.
CLASS_PROPERTY = "photoreal_class"
CLASS_SOURCES = ("object_index", "material_index", "class_aov")


def class_id(name: str) -> int:
    try:
        return CLASSES.index(name)
    except ValueError:
        raise KeyError(f"unknown class {name!r}; classes: {', '.join(CLASSES)}") from None


def pass_index_for_class(name: str) -> int:
    """The object/material pass_index that encodes a class."""
    return class_id(name) + 1


def class_map_from_index(index_pass: np.ndarray) -> np.ndarray:
    """Object/material index pass (H, W) or (H, W, 1) -> class ids (H, W) uint8, void where untagged."""
    ids = np.rint(np.asarray(index_pass, dtype=np.float32).reshape(index_pass.shape[:2])) - 1
    valid = (ids >= 0) & (ids < NUM_CLASSES - 1)
    return np.where(valid, ids, VOID_CLASS).astype(np.uint8)


def one_hot(class_map: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Class ids (H, W) -> float32 one-hot (NUM_CLASSES, H, W), into `out` when given."""
    class_map = np.asarray(class_map)
    if class_map.max(initial=0) >= NUM_CLASSES:
        raise ValueError(f"class map has id {int(class_map.max())}, but there are only {NUM_CLASSES} classes")
    # The comparison written straight into float32: no (NUM_CLASSES, H, W) boolean temporary.
    if out is None:
        out = np.empty((NUM_CLASSES, *class_map.shape), np.float32)
    return np.equal(np.arange(NUM_CLASSES, dtype=np.uint8)[:, None, None], class_map[None],
                    out=out, casting="unsafe")


# ---------------------------------------------------------------------------------------------
# Frames: named pass arrays
# ---------------------------------------------------------------------------------------------

Frame = dict  # pass key -> (H, W, C) float32 array, row 0 = top of the image


def frame_from_exr_channels(channels: Mapping[str, np.ndarray], view_layer: str | None = None) -> Frame:
    """Flat EXR channels {'ViewLayer.Normal.X': (H, W)} from any Blender version -> Frame.

    Passes that are not in the file are simply absent; `check_frame` reports them.
    A file written by the compositor also has a 'Composite' layer; the render's own passes are
    taken from the view layer (the first one unless `view_layer` is given).
    """
    layers = _layers(channels)
    if view_layer is None:
        candidates = [name for name in layers if name not in ("Composite", "")]
        view_layer = candidates[0] if candidates else ""
    if view_layer not in layers:
        raise MissingPassError(f"the EXR has no view layer {view_layer!r}; layers: {sorted(layers)}")
    return frame_from_passes(layers[view_layer])


def frame_from_passes(passes: Mapping[str, Mapping[str, np.ndarray]]) -> Frame:
    """One view layer's passes by Blender name, {'Diffuse Color': {'R': (H, W), ...}}, from any
    Blender version -> Frame. What a render engine's result gives directly; passes we do not
    know are ignored, missing ones are absent (`check_frame` reports them)."""
    frame: Frame = {}
    for spec in PASSES.values():
        for blender_name in spec.blender_names:
            chans = passes.get(blender_name)
            if chans is not None and all(c in chans for c in spec.channels):
                frame[spec.key] = _hwc_from_planes([chans[c] for c in spec.channels])
                break
    if "class_aov" in frame:
        frame["class_aov"] = unblended_class_values(frame["class_aov"])
    return frame


# A class AOV value within this of a whole number holds one class (half floats: 1/128 at 16-32).
WHOLE_CLASS_TOLERANCE = 0.02


def unblended_class_values(values: np.ndarray) -> np.ndarray:
    """EEVEE filters AOVs as it filters colour, so at an edge the class AOV holds a blend of the
    class values on both sides, which rounds to a third class (a car's edge on the road reads as
    a building). Each pixel that is not whole-numbered takes the nearest whole-numbered value
    among its 3x3 neighbours: the class that covers most of it. On the 32 frames of an EEVEE
    development set (128x64), 91.5 % of the class map then agrees with Cycles' Object Index of
    the same frame, against 87.9 %."""
    plane = np.asarray(values, np.float32).reshape(values.shape[:2])
    rows, cols = np.nonzero(np.abs(plane - np.rint(plane)) > WHOLE_CLASS_TOLERANCE)
    if rows.size == 0:
        return values
    # Only the blended pixels (edges: a few %) are looked at: at 1080p with 2 % of them, 23 ms
    # against 147 ms for every pixel's 3x3 neighbourhood.
    height, width = plane.shape
    blended = plane[rows, cols]
    chosen, nearest = blended.copy(), np.full(rows.size, np.inf, np.float32)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            candidate = plane[np.clip(rows + dy, 0, height - 1), np.clip(cols + dx, 0, width - 1)]
            whole = np.abs(candidate - np.rint(candidate)) <= WHOLE_CLASS_TOLERANCE
            distance = np.where(whole, np.abs(candidate - blended), np.inf)
            closer = distance < nearest
            chosen[closer] = candidate[closer]
            np.minimum(nearest, distance, out=nearest)
    result = plane.copy()
    result[rows, cols] = chosen
    return result.reshape(values.shape)


def _hwc_from_planes(planes: Sequence[np.ndarray]) -> np.ndarray:
    """(H, W) channel planes -> an (H, W, C) float32 array that is channel-first in memory.

    Stacking planes contiguously is ~3x faster than interleaving them, and the network tensors
    (C, H, W) are then made from contiguous planes. One plane is used as it is (no copy).
    """
    if len(planes) == 1:
        return np.asarray(planes[0], np.float32)[..., None]
    return np.stack(planes).astype(np.float32, copy=False).transpose(1, 2, 0)


def _layers(channels: Mapping[str, np.ndarray]) -> dict[str, dict[str, dict[str, np.ndarray]]]:
    """{'ViewLayer.Diffuse Color.R': a} -> {'ViewLayer': {'Diffuse Color': {'R': a}}}.

    The last dot starts the channel. View layer names may hold dots too ("ViewLayer.001" is
    Blender's name for a second layer), so the layer ends where a known pass name begins; a
    channel of a pass we do not know goes to the longest such layer it starts with.
    """
    split = {name: _split_channel(name) for name in channels}
    known = {layer for layer, pass_name, _ in split.values() if pass_name in _KNOWN_PASS_NAMES}
    layers: dict[str, dict[str, dict[str, np.ndarray]]] = {}
    for full_name, data in channels.items():
        layer, pass_name, chan = split[full_name]
        if pass_name not in _KNOWN_PASS_NAMES:
            owner = max((k for k in known if full_name.startswith(k + ".")), key=len, default=None)
            if owner is not None:
                layer, pass_name = owner, full_name[len(owner) + 1:].rsplit(".", 1)[0]
        layers.setdefault(layer, {}).setdefault(pass_name, {})[chan] = data
    return layers


def _split_channel(full_name: str) -> tuple[str, str, str]:
    """'Layer.With.Dots.Pass.C' -> (layer, pass, channel), splitting before a known pass name
    when there is one, else at the first dot."""
    if full_name.count(".") < 2:
        # A plain single-layer EXR (R, G, B, A): treat as the Combined pass of layer "".
        return "", "Combined", full_name.rsplit(".", 1)[-1]
    rest, chan = full_name.rsplit(".", 1)
    dots = [i for i, c in enumerate(rest) if c == "."]
    for i in reversed(dots):
        if rest[i + 1:] in _KNOWN_PASS_NAMES:
            return rest[:i], rest[i + 1:], chan
    layer, pass_name = rest.split(".", 1)
    return layer, pass_name, chan


def frame_size(frame: Frame) -> tuple[int, int]:
    """(height, width) shared by every pass; raises SizeMismatchError if they differ."""
    sizes = {key: arr.shape[:2] for key, arr in frame.items()}
    if not sizes:
        raise MissingPassError("the frame holds no passes at all")
    distinct = set(sizes.values())
    if len(distinct) > 1:
        listing = ", ".join(f"{k} {h}x{w}" for k, (h, w) in sizes.items())
        raise SizeMismatchError(f"passes differ in size (height x width): {listing}")
    return next(iter(distinct))


def non_finite_count(values: np.ndarray) -> int:
    """How many values are NaN or inf. A NaN or inf anywhere makes the sum NaN or inf, so a
    finite sum proves every value finite at a fraction of the cost of a per-value mask; a sum
    that overflows (finite values near the float32 limit) only means the precise count runs."""
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(values.sum()):
            return 0
    return int((~np.isfinite(values)).sum())


def check_frame(frame: Frame, required: Sequence[str], engine: str | None = None,
                source: str = "frame") -> None:
    """Raise a clear error if a required pass is missing, sizes differ or values are not finite."""
    missing = [key for key in required if key not in frame]
    if missing:
        hints = "; ".join(f"{key}: {enable_hint(key, engine)}" for key in missing)
        raise MissingPassError(f"{source} lacks pass(es) {', '.join(missing)}. To fix: {hints}",
                               missing=missing)
    frame_size({k: frame[k] for k in required})
    for key in required:
        arr = frame[key]
        if key == "depth":
            continue  # depth is clamped at DEPTH_FAR, so inf on the background is legitimate
        count = non_finite_count(arr)
        if count:
            ys, xs = np.nonzero((~np.isfinite(arr)).any(axis=-1))
            raise NonFiniteError(
                f"{source}: pass {key!r} has {count} NaN/inf values "
                f"(first at row {int(ys[0])}, column {int(xs[0])}); re-render the frame or "
                f"clamp the offending material/light before enhancing")


# ---------------------------------------------------------------------------------------------
# Network tensors
# ---------------------------------------------------------------------------------------------

def apply_transform(key: str, values: np.ndarray) -> np.ndarray:
    """The schema's fixed per-pass transform (before dataset standardisation)."""
    transform = pass_spec(key).transform
    values = values.astype(np.float32, copy=False)
    if transform == TRANSFORM_HDR:
        return encode_radiance(values)
    if transform == TRANSFORM_DEPTH:
        return _encode_depth(np.nan_to_num(values, nan=DEPTH_FAR, posinf=DEPTH_FAR))
    if transform == TRANSFORM_INDEX:
        raise ValueError(f"pass {key!r} holds ids; turn it into a class map, not a G-buffer channel")
    return values


def rescale_encoded_depth(encoded: np.ndarray, factor: float) -> np.ndarray:
    """Encoded depth (TRANSFORM_DEPTH) of the same view of a scene `factor` times larger. A
    uniformly scaled scene renders the same image, so training with it teaches an enhancement
    that does not depend on the scene's absolute size; the background stays at DEPTH_FAR."""
    depth = np.expm1(encoded.astype(np.float64) * np.log1p(DEPTH_FAR)) * factor
    return np.where(encoded >= 1.0, 1.0, _encode_depth(depth)).astype(np.float32)   # the sky stays at infinity


def _encode_depth(depth: np.ndarray) -> np.ndarray:
    """TRANSFORM_DEPTH of camera distances."""
    return (np.log1p(np.clip(depth, 0.0, DEPTH_FAR)) / np.log1p(DEPTH_FAR)).astype(np.float32)


def encode_radiance(rgb: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Linear HDR radiance -> the networks' image domain (log1p, clamped at MAX_RADIANCE); into
    `out` when given (may be `rgb`)."""
    clipped = np.clip(rgb, 0.0, MAX_RADIANCE, out=out)
    return np.log1p(clipped, out=clipped).astype(np.float32, copy=False)  # in place: one array


def decode_radiance(encoded: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Inverse of encode_radiance, back to linear HDR; into `out` when given (may be `encoded`)."""
    clipped = np.clip(encoded, 0.0, np.log1p(MAX_RADIANCE), out=out)
    return np.expm1(clipped, out=clipped).astype(np.float32, copy=False)


@dataclass(frozen=True)
class GBufferStats:
    """Per-channel standardisation of the transformed G-buffers, computed once per dataset."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    @classmethod
    def identity(cls, num_channels: int) -> "GBufferStats":
        return cls((0.0,) * num_channels, (1.0,) * num_channels)

    def to_dict(self) -> dict:
        return {"mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, d: Mapping) -> "GBufferStats":
        return cls(tuple(float(v) for v in d["mean"]), tuple(float(v) for v in d["std"]))


def gbuffer_tensor(frame: Frame, gbuffer_passes: Sequence[str], stats: GBufferStats | None = None,
                   out: np.ndarray | None = None) -> np.ndarray:
    """Frame -> (C, H, W) float32 G-buffer tensor in the order of `gbuffer_passes` (into `out`,
    which may be a view such as a tile buffer's top-left corner, when given)."""
    channels = num_gbuffer_channels(gbuffer_passes)
    if stats is not None and len(stats.mean) != channels:
        raise SizeMismatchError(f"normalisation has {len(stats.mean)} channels, the G-buffers "
                                f"{channels} ({', '.join(gbuffer_passes)})")
    h, w = frame_size({key: frame[key] for key in gbuffer_passes}) if gbuffer_passes else frame_size(frame)
    # Channel-first, filled plane by plane: arithmetic on a transposed (H, W, C) view is several
    # times slower, and one output array avoids a temporary per pass.
    # The standardisation is applied as each plane is copied in (one pass less over the tensor).
    stacked = np.empty((channels, h, w), np.float32) if out is None else out
    if stacked.shape != (channels, h, w):
        raise ValueError(f"G-buffer output array is {stacked.shape}, expected {(channels, h, w)}")
    if stats is not None:
        mean = np.asarray(stats.mean, np.float32)
        std = np.maximum(np.asarray(stats.std, np.float32), 1e-6)
    i = 0
    for key in gbuffer_passes:
        plane = apply_transform(key, frame[key])
        for c in range(plane.shape[-1]):
            if stats is None:
                stacked[i] = plane[..., c]
            else:
                np.subtract(plane[..., c], mean[i], out=stacked[i])
                stacked[i] /= std[i]
            i += 1
    return stacked


def image_tensor(frame: Frame, out: np.ndarray | None = None) -> np.ndarray:
    """Frame -> (3, H, W) float32 encoded image (into `out` when given)."""
    channels_first = frame["image"].transpose(2, 0, 1)
    if out is None:
        out = np.empty(channels_first.shape, np.float32)
    return encode_radiance(channels_first, out=out)


# ---------------------------------------------------------------------------------------------
# Inputs that an engine carries in another pass. The one rule, both ways: what to render for a
# model (render_source, passes_to_render) and how the rendered frame then serves the model's
# inputs (with_model_sources).
# ---------------------------------------------------------------------------------------------

def is_eevee(engine: str | None) -> bool:
    """Any EEVEE engine id (they differ between Blender versions)."""
    return bool(engine) and "EEVEE" in engine


def render_source(key: str, engine: str | None) -> str | None:
    """The pass that carries model input `key` in a render by `engine` (None: no pass to turn
    on). EEVEE has no index passes: the add-on writes the class ids (class id + 1) into the
    class AOV. EEVEE has no denoiser: its Combined is also the noisy image. Inputs that are no
    render pass (the bounces plane) have none."""
    if not pass_spec(key).rendered:
        return None
    if is_eevee(engine):
        if key in CLASS_SOURCES and not pass_spec(key).eevee:
            return "class_aov"
        if key == "noisy":
            return None
    return key


def passes_to_render(required: Sequence[str], engine: str | None) -> list[str]:
    """The passes to turn on in a render by `engine` for a model that reads `required`."""
    keys: list[str] = []
    for key in required:
        source = render_source(key, engine)
        if source is not None and source not in keys:
            keys.append(source)
    return keys


def with_model_sources(frame: Frame, class_source: str | None, engine: str | None) -> Frame:
    """The frame with the inputs it carries in other passes served under the model's keys: the
    class AOV as the class source when the frame lacks that pass (whatever the engine: an EXR
    from EEVEE read by the CLI has no engine), Combined as the noisy image of EEVEE frames."""
    eevee = is_eevee(engine) or (engine is None and rendered_by_eevee(frame))
    if class_source is not None and class_source not in frame and "class_aov" in frame:
        frame = {**frame, class_source: frame["class_aov"]}
    if "noisy" not in frame and "image" in frame and eevee:
        frame = {**frame, "noisy": frame["image"]}
    return frame


def rendered_by_eevee(frame: Frame) -> bool:
    """A frame whose engine is not known (an EXR read by the CLI) came from EEVEE if it carries
    its class ids in the class AOV and no index pass: `render_source` asks EEVEE alone for that."""
    return "class_aov" in frame and not any(key in frame for key in CLASS_SOURCES if key != "class_aov")


def on_denoised(frame: Frame, denoised: np.ndarray) -> Frame:
    """A Cycles render made with the denoiser off, as a model on top of the denoiser reads it:
    its Combined is the noisy image and `denoised` (Blender's Denoise node on it: the add-on's
    addon/denoise_node.py) the denoised one."""
    return {**frame, "noisy": frame["image"], "image": np.asarray(denoised[..., :3], np.float32)}


def bounce_depth(max_bounces: int, diffuse_bounces: int | None = None) -> float:
    """The bounces plane's value: the render's diffuse light-path depth over FULL_BOUNCE_DEPTH,
    in [0, 1] (1 = full light transport, as the training references)."""
    depth = max_bounces if diffuse_bounces is None else min(max_bounces, diffuse_bounces)
    return min(max(int(depth), 0), FULL_BOUNCE_DEPTH) / FULL_BOUNCE_DEPTH


def with_light_paths(frame: Frame, max_bounces: int, diffuse_bounces: int | None = None) -> Frame:
    """The frame with its `bounces` plane: a read-only broadcast view, no memory per pixel."""
    height, width = frame_size(frame)
    value = np.float32(bounce_depth(max_bounces, diffuse_bounces))
    return {**frame, "bounces": np.broadcast_to(value, (height, width, 1))}


def class_map_from_frame(frame: Frame, source: str = "object_index") -> np.ndarray:
    """Frame -> class ids (H, W) from the id pass named by `source`."""
    if source not in CLASS_SOURCES:
        raise ValueError(f"class source must be one of {CLASS_SOURCES}, not {source!r}")
    check_frame(frame, [source])
    return class_map_from_index(frame[source])
