"""Blender's own Denoise compositor node (OpenImageDenoise) on a frame's passes.

Two users:
- the add-on, where a model works on top of Cycles' denoiser and the render was made with the
  denoiser off: the button then denoises the render with this node instead of rendering again
  (`denoised_render`);
- training.baselines.denoise_node, the evaluation's baseline: the same node, so what the
  evaluation measures is what the add-on computes.

How it runs: the frame's Combined, albedo (Diffuse Color) and normal passes are written as
float EXRs to a private temp folder and loaded into Image nodes of a compositing tree in a
scene of our own: Image nodes -> Denoise -> output. The tree has no Render Layers node, so
`bpy.ops.render.render` skips the render engine and only composites
(docs/blender_api.md); the user's scene and its render result are not touched. `write_still`
saves the composite as a 32-bit float EXR, which Blender writes scene-linear (the view
transform only applies to display formats), and it is read back with OpenEXR.

What differs between Blender 4.5 and 5.x (the tree, its output, the node's options) is in
blender_api.py.
"""
from __future__ import annotations

import contextlib
import shutil
import tempfile
import weakref
from pathlib import Path

import numpy as np

from . import blender_api
from .core import exr, files, schema

INPUTS = ("image", "albedo", "normal")   # schema pass keys the Denoise node consumes
PREFILTERS = ("NONE", "FAST", "ACCURATE")
QUALITIES = ("FOLLOW_SCENE", "HIGH", "BALANCED", "FAST")
SCENE_NAME = "Photoreal Denoise"


class DenoiseNode:
    """A compositing tree with Blender's Denoise node, built once and re-run for every frame.

    >>> with DenoiseNode() as node:
    ...     clean = node(frame)          # (H, W, 3) float32, linear, row 0 = top

    `quiet` (optional): a context manager factory wrapped around each composite, e.g. one that
    silences Blender's render log.
    """

    def __init__(self, hdr: bool = True, prefilter: str = "ACCURATE", quality: str | None = None,
                 temp_base: Path | None = None, quiet=None):
        if prefilter not in PREFILTERS:
            raise ValueError(f"prefilter must be one of {PREFILTERS}, not {prefilter!r}")
        if quality is not None and quality not in QUALITIES:
            raise ValueError(f"quality must be one of {QUALITIES} or None, not {quality!r}")
        import bpy
        self.bpy = bpy
        self.settings = {"hdr": bool(hdr), "prefilter": prefilter, "quality": quality}
        self.quiet = quiet
        self.directory = Path(tempfile.mkdtemp(prefix="photoreal-denoise-",
                                               dir=temp_base or files.fast_temp_base()))
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
        self.output_path.unlink(missing_ok=True)
        with (self.quiet() if self.quiet else contextlib.nullcontext()):
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


def denoised_render(frame: schema.Frame, temp_base: Path | None = None) -> schema.Frame:
    """A render made with Cycles' denoiser off, as a model on top of the denoiser reads it: its
    Combined denoised by the Denoise node (OIDN, albedo + normal), the Combined as the noisy
    image (schema.on_denoised)."""
    with DenoiseNode(temp_base=temp_base) as node:
        return schema.on_denoised(frame, node(frame))
