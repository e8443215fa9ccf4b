"""Dataset export: render a frame range and write it in neural_core.dataset_format.

The operator (photoreal.export_dataset) and the scene generator both call `export_frames`.
Finished frames are skipped, so an interrupted export resumes where it stopped.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import bpy

from . import blender_api, passes, readback
from .core import dataset_format, errors, schema


@dataclass
class ExportSummary:
    directory: str
    written: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def exported_passes(scene) -> tuple[list[str], str]:
    """(passes to render, class source) for this engine: every G-buffer pass it can write."""
    class_source = schema.render_source("object_index", scene.render.engine)
    gbuffers = [key for key in schema.RENDERED_GBUFFER_PASSES
                if not (key == "motion" and scene.render.use_motion_blur)
                and (schema.pass_spec(key).eevee or not passes.is_eevee(scene))]
    return ["image", *gbuffers, class_source], class_source


def render_samples(scene) -> int:
    if passes.is_cycles(scene):
        return int(scene.cycles.samples)
    eevee = getattr(scene, "eevee", None)
    return int(getattr(eevee, "taa_render_samples", 0))


def export_frames(scene, directory: str, frame_start: int | None = None,
                  frame_end: int | None = None,
                  progress: Callable[[int, int, int], None] | None = None,
                  extra: dict | None = None, samples: int | None = None) -> ExportSummary:
    """Render frames [frame_start, frame_end] (scene range by default) into `directory`.

    `progress(done, total, frame)` is called after each frame. `samples` is what the manifest
    records (default: the scene's; the scene generator records 0 for renders whose samples
    vary from frame to frame). Raises neural_core errors
    (PhotorealError) with a message for the user, e.g. when resuming with other settings.
    """
    frame_start = scene.frame_start if frame_start is None else frame_start
    frame_end = scene.frame_end if frame_end is None else frame_end
    if frame_end < frame_start:
        raise ValueError(f"frame_end ({frame_end}) is before frame_start ({frame_start})")
    dataset_format.relative_paths(frame_start)   # refuses negative frames before any render
    if scene.camera is None:
        raise errors.PhotorealError(
            "the scene has no camera to render from: add one (Add > Camera) and set it as "
            "the scene camera (Scene Properties > Camera)")
    view_layer = scene.view_layers[0]
    wanted, class_source = exported_passes(scene)
    summary = ExportSummary(directory=bpy.path.abspath(directory))
    _, summary.notes = passes.tag_classes(scene)
    summary.notes += passes.enable_passes(scene, view_layer, wanted, "object_index")
    writer = dataset_format.DatasetWriter(
        summary.directory, engine=scene.render.engine,
        samples=render_samples(scene) if samples is None else samples,
        resolution=readback.render_size(scene), blender_version=blender_api.VERSION_STRING,
        class_source=class_source, extra=extra)

    frames = range(frame_start, frame_end + 1)
    original_frame = scene.frame_current
    try:
        for done, number in enumerate(frames, 1):
            if writer.is_complete(number):
                summary.skipped.append(number)
            else:
                _export_one(scene, writer, number)
                summary.written.append(number)
            if progress:
                progress(done, len(frames), number)
    finally:
        scene.frame_set(original_frame)
    return summary


def _export_one(scene, writer, number: int) -> None:
    scene.frame_set(number)
    bpy.ops.render.render()
    path = readback.temp_directory() / f"export-{number:06d}.exr"
    try:
        readback.save_render_passes(scene, path)
        writer.write_frame(number, path, light_paths=passes.light_paths(scene))
    finally:
        path.unlink(missing_ok=True)
