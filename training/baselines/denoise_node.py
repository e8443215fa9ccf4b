"""Blender's own Denoise compositor node (OpenImageDenoise) as a baseline for RAD.

    python -m training.baselines.denoise_node --data DIR --out OUT

How it runs: the frame's Combined, albedo (Diffuse Color) and normal passes are written as
float EXRs to a private temp folder and loaded into Image nodes of a compositing tree in a
scene of our own: Image nodes -> Denoise -> output. The tree has no Render Layers node, so
`bpy.ops.render.render` skips the render engine and only composites
(docs/blender_api.md). `write_still` saves the composite as a 32-bit
float EXR, which Blender writes scene-linear (the view transform only applies to display
formats), and it is read back with OpenEXR.

Works with Blender 4.5 and 5.x: what differs (the tree, its output, the Denoise node's options)
is in addon/blender_api.py.

Needs the `bpy` module; no torch.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import weakref
from pathlib import Path

import numpy as np

from addon import blender_api
from neural_core import exr, schema
from neural_core.files import fast_temp_base, write_text_atomic

INPUTS = ("image", "albedo", "normal")   # schema pass keys the Denoise node consumes
PREFILTERS = ("NONE", "FAST", "ACCURATE")
QUALITIES = ("FOLLOW_SCENE", "HIGH", "BALANCED", "FAST")
SCENE_NAME = "Photoreal Denoise"
SETTINGS_FILE = "denoise.json"
OUTPUT_SUBDIR = "frames"
SOURCES = ("image", "noisy")   # the pass that is denoised: Combined, or Cycles' Noisy Image


class DenoiseNode:
    """A compositing tree with Blender's Denoise node, built once and re-run for every frame.

    >>> with DenoiseNode() as node:
    ...     clean = node(frame)          # (H, W, 3) float32, linear, row 0 = top
    """

    def __init__(self, hdr: bool = True, prefilter: str = "ACCURATE", quality: str | None = None,
                 blender_log: bool = False):
        if prefilter not in PREFILTERS:
            raise ValueError(f"prefilter must be one of {PREFILTERS}, not {prefilter!r}")
        if quality is not None and quality not in QUALITIES:
            raise ValueError(f"quality must be one of {QUALITIES} or None, not {quality!r}")
        import bpy
        self.bpy = bpy
        self.settings = {"hdr": bool(hdr), "prefilter": prefilter, "quality": quality}
        self.blender_log = blender_log
        self.directory = Path(tempfile.mkdtemp(prefix="photoreal-denoise-", dir=fast_temp_base()))
        # /dev/shm is memory: free it even when the caller forgets close() or an error escapes.
        self._remove_directory = weakref.finalize(self, shutil.rmtree, self.directory, ignore_errors=True)
        self.output_path = self.directory / "denoised.exr"
        self.scene = self._make_scene()
        self.tree, self.image_nodes, self.denoise = self._build_tree()
        blender_api.configure_denoise_node(self.denoise, hdr, prefilter, quality)

    # -- set-up -------------------------------------------------------------------------------
    def _make_scene(self):
        scene = self.bpy.data.scenes.new(SCENE_NAME)
        render = scene.render
        render.engine = "CYCLES"            # never runs: the tree has no Render Layers node
        render.resolution_percentage = 100
        render.use_compositing = True
        render.compositor_device = "CPU"     # 5.x defaults to GPU
        render.compositor_precision = "FULL"
        render.filepath = str(self.output_path)
        render.use_file_extension = False
        blender_api.set_exr(render.image_settings, depth="32", codec="NONE")   # fastest on tmpfs
        render.image_settings.color_mode = "RGB"
        scene.view_settings.view_transform = "Standard"
        return scene

    def _build_tree(self):
        tree = blender_api.compositor_tree(self.scene)
        tree.nodes.clear()                   # 4.x creates Render Layers + Composite
        denoise = tree.nodes.new("CompositorNodeDenoise")
        output = blender_api.output_socket(tree)
        tree.links.new(denoise.outputs["Image"], output)
        image_nodes = {}
        for key, socket in zip(INPUTS, ("Image", "Albedo", "Normal")):  # by name: 5.x reordered them
            node = tree.nodes.new("CompositorNodeImage")
            node.name = node.label = f"Photoreal {key}"
            tree.links.new(node.outputs["Image"], denoise.inputs[socket])
            image_nodes[key] = node
        return tree, image_nodes, denoise

    # -- per frame ----------------------------------------------------------------------------
    def __call__(self, frame: schema.Frame) -> np.ndarray:
        """Denoise one frame: (H, W, 3) float32 linear, row 0 = top."""
        self.write_inputs(frame)
        self.composite()
        return self.read_output()

    def write_inputs(self, frame: schema.Frame) -> None:
        """Put the frame's passes into the Image nodes (through EXRs in the temp folder)."""
        schema.check_frame(frame, INPUTS, source="the frame to denoise")
        h, w = schema.frame_size({k: frame[k] for k in INPUTS})
        for key in INPUTS:
            path = self.directory / f"{key}.exr"
            rgb = frame[key][..., :3]
            exr.write_channels(path, {c: rgb[..., i] for i, c in enumerate("RGB")}, compression="NO")
            self._load(key, path)
        self.scene.render.resolution_x, self.scene.render.resolution_y = w, h

    def _load(self, key: str, path: Path) -> None:
        node = self.image_nodes[key]
        if node.image is None:
            image = self.bpy.data.images.load(str(path), check_existing=False)
            image.name = f"Photoreal Denoise {key}"
            # Data, not colour: no colour-space conversion of any pass on the way in.
            image.colorspace_settings.name = "Non-Color"
            node.image = image
        else:
            node.image.reload()

    def composite(self) -> None:
        """Run the compositor (no render engine) and write the result to `output_path`."""
        from training.scenes.render import quiet_stdout
        self.output_path.unlink(missing_ok=True)
        with quiet_stdout(not self.blender_log):
            self.bpy.ops.render.render(write_still=True, scene=self.scene.name)
        if not self.output_path.is_file():
            raise RuntimeError(f"Blender's compositor wrote no output at {self.output_path}; "
                               f"check the console for compositor errors")

    def read_output(self) -> np.ndarray:
        channels = exr.read_channels(self.output_path)
        return np.stack([channels[c] for c in "RGB"], axis=-1)

    # -- clean-up -----------------------------------------------------------------------------
    def close(self) -> None:
        """Remove our scene, images and tree from bpy.data, and the temp folder. Idempotent."""
        if self.scene is not None:
            data = self.bpy.data
            for node in self.image_nodes.values():
                if node.image is not None:
                    data.images.remove(node.image)
            blender_api.remove_compositor_tree(self.scene)
            self.scene, self.image_nodes = None, {}
        self._remove_directory()

    def __enter__(self) -> "DenoiseNode":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def denoise(frame: schema.Frame, hdr: bool = True, prefilter: str = "ACCURATE",
            quality: str | None = None) -> np.ndarray:
    """Blender's Denoise node on one frame's Combined with its albedo and normal passes.

    Returns (H, W, 3) float32, scene-linear HDR, row 0 = top. For many frames, keep a
    `DenoiseNode` instead (the tree is built once).
    """
    with DenoiseNode(hdr=hdr, prefilter=prefilter, quality=quality) as node:
        return node(frame)


# ---------------------------------------------------------------------------------------------
# Whole datasets
# ---------------------------------------------------------------------------------------------

def output_path(out_dir: str | os.PathLike, number: int) -> Path:
    """Where denoise_dataset writes frame `number`: OUT/frames/000001.exr (RGB, linear)."""
    from neural_core.dataset_format import frame_stem
    return Path(out_dir) / OUTPUT_SUBDIR / f"{frame_stem(number)}.exr"


def _check_settings(out_dir: Path, settings: dict) -> None:
    """OUT records the Denoise settings; resuming with other settings would mix results."""
    path = out_dir / SETTINGS_FILE
    if path.is_file():
        existing = json.loads(path.read_text(encoding="utf-8"))
        if existing.get("settings") != settings:
            raise ValueError(f"{out_dir} holds frames denoised with {existing.get('settings')}, not "
                             f"{settings}; use another --out or the same settings")
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    record = {"denoiser": "Blender Denoise node (OpenImageDenoise)",
              "blender_version": blender_api.VERSION_STRING, "settings": settings}
    write_text_atomic(path, json.dumps(record, indent=1) + "\n")


def denoise_dataset(data_dir: str | os.PathLike, out_dir: str | os.PathLike, hdr: bool = True,
                    prefilter: str = "ACCURATE", quality: str | None = None,
                    progress: bool = True, source: str = "image") -> list[Path]:
    """Denoise every complete frame of an exported dataset into OUT/frames/<frame>.exr.

    `data_dir` is a dataset directory (neural_core.dataset_format), or a make-scenes ROOT,
    whose fast/ renders are then denoised. Frames already in OUT are skipped, so a killed run
    resumes; each file is written atomically. Returns the paths of all frames' results.
    `source` 'noisy' denoises the Noisy Image pass instead of Combined: what a user who rendered
    with Cycles' denoiser off would have denoised in the compositor.
    """
    from tqdm import tqdm

    from neural_core.dataset_format import DatasetReader

    data_dir, out_dir = Path(data_dir), Path(out_dir)
    if (data_dir / "fast" / "manifest.json").is_file():
        data_dir = data_dir / "fast"
    reader = DatasetReader(data_dir)
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, not {source!r}")
    settings = {"hdr": hdr, "prefilter": prefilter, "quality": quality}
    _check_settings(out_dir, {**settings, "source": source} if source != "image" else settings)
    todo = [n for n in reader.frames if not output_path(out_dir, n).is_file()]
    if todo:
        with DenoiseNode(**settings) as node:
            for number in tqdm(todo, desc="Denoise node", unit="frame", disable=not progress):
                frame = reader.read_frame(number)
                if source != "image":
                    schema.check_frame(frame, [source], source=str(reader.path(number, "exr")))
                    frame = {**frame, "image": frame[source]}
                exr.write_rgb(output_path(out_dir, number), node(frame))
    return [output_path(out_dir, n) for n in reader.frames]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.baselines.denoise_node",
        description="Denoise every frame of an exported dataset with Blender's Denoise node "
                    "(OpenImageDenoise, Combined + albedo + normal). Resumes: finished frames "
                    "in OUT are skipped.")
    parser.add_argument("--data", required=True,
                        help="dataset directory, or a make-scenes ROOT (its fast/ is denoised)")
    parser.add_argument("--out", required=True, help="writes OUT/frames/<frame>.exr (linear RGB)")
    parser.add_argument("--no-hdr", action="store_true", help="treat the input as LDR [0, 1]")
    parser.add_argument("--prefilter", choices=PREFILTERS, default="ACCURATE")
    parser.add_argument("--input", choices=SOURCES, default="image",
                        help="pass to denoise: image (Combined) or noisy (Cycles' Noisy Image: the "
                             "render as it was before Cycles' own denoiser)")
    parser.add_argument("--quality", choices=QUALITIES, default=None,
                        help="Blender 4.4+: OIDN quality (default: the node's own, Follow Scene)")
    args = parser.parse_args(argv)
    from neural_core.errors import PhotorealError
    try:
        paths = denoise_dataset(args.data, args.out, hdr=not args.no_hdr,
                                prefilter=args.prefilter, quality=args.quality, source=args.input)
    except (PhotorealError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{len(paths)} denoised frames in {Path(args.out) / OUTPUT_SUBDIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
