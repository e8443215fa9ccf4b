"""Operators: photoreal.enhance (the "Photoreal Enhance" button) and photoreal.export_dataset."""
from __future__ import annotations

import traceback

import bpy
from bpy.props import BoolProperty, IntProperty, StringProperty

from . import compositor, dataset_export, denoise_node, enhance, passes, readback
from .core import errors, metadata, schema



class _Reporting:
    """Shared error handling: users get a report, not a traceback."""

    def run_reporting(self, context, work):
        wm = context.window_manager
        try:
            return work()
        except (errors.PhotorealError, ValueError, FileNotFoundError) as exc:
            self.report({"ERROR"}, str(exc))
        except Exception as exc:  # onnxruntime and OS errors: still a report, with the trace in the console
            traceback.print_exc()
            self.report({"ERROR"}, f"Photoreal Enhance failed: {type(exc).__name__}: {exc}")
        finally:
            wm.progress_end()
        return {"CANCELLED"}


class PHOTOREAL_OT_enhance(_Reporting, bpy.types.Operator):
    """Enable the passes the model needs, render if needed, enhance, and mix the result in the compositor"""

    bl_idname = "photoreal.enhance"
    bl_label = "Photoreal Enhance"
    bl_options = {"REGISTER"}

    rerender: BoolProperty(name="Render Again", default=False,
                           description="Render even if a render with the needed passes exists")

    @classmethod
    def poll(cls, context):
        return context.scene is not None

    def execute(self, context):
        return self.run_reporting(context, lambda: self._enhance(context))

    def _enhance(self, context):
        scene = context.scene
        view_layer = _view_layer(context)
        wm = context.window_manager
        wm.progress_begin(0, 4)

        made_without_denoiser = passes.renders_without_denoiser(scene)   # before prepare turns it on
        required, notes = enhance.prepare_scene(scene, view_layer)
        for note in notes:
            self.report({"WARNING"}, note)
        wm.progress_update(1)

        frame = None if self.rerender else readback.read_render_passes(scene, view_layer.name)
        if made_without_denoiser and _usable_but_for_noisy(scene, frame, required):
            frame = denoise_node.denoised_render(frame, readback.temp_directory())
            self.report({"INFO"}, "the render was made with Cycles' denoiser off: Blender's Denoise "
                                  "node denoised it first (no new render)")
        if frame is None or not _usable(scene, frame, required):
            if scene.camera is None:   # else render() fails with a message wrapped twice
                raise errors.PhotorealError(
                    "the scene has no camera to render from: add one (Add > Camera) and set "
                    "it as the scene camera (Scene Properties > Camera)")
            bpy.ops.render.render()
            frame = readback.read_render_passes(scene, view_layer.name)
            if frame is None:
                self.report({"ERROR"}, "the render produced no readable result; check the "
                                       "console for render errors")
                return {"CANCELLED"}
        wm.progress_update(2)

        rgb = enhance.enhance_frame(scene, frame)
        wm.progress_update(3)
        compositor.store_image(rgb, frame.get("alpha"))
        compositor.ensure_nodes(scene)
        wm.progress_update(4)

        self.report({"INFO"}, f"Photoreal Enhance: {enhance.describe_last_run()}")
        if not enhance.LAST_RUN.get("trained", True):
            self.report({"WARNING"}, metadata.UNTRAINED_WARNING)
        return {"FINISHED"}


def _view_layer(context):
    scene = context.scene
    layer = getattr(context, "view_layer", None)
    return layer if layer is not None and layer.name in scene.view_layers else scene.view_layers[0]


def _usable_but_for_noisy(scene, frame, required) -> bool:
    """Is this a usable render for a model on top of Cycles' denoiser but for its noisy image?
    Made with the denoiser off, its Combined is the noisy image: Blender's Denoise node then
    gives the denoised one (addon/denoise_node.py), no new render needed."""
    if frame is None or "noisy" not in required or "noisy" in frame:
        return False
    return all(key in frame for key in denoise_node.INPUTS) and _usable(
        scene, frame, [key for key in required if key != "noisy"])


def _usable(scene, frame, required) -> bool:
    """Does a previous render have every needed pass at the current resolution?"""
    class_source = next((k for k in required if k in schema.CLASS_SOURCES), None)
    frame = schema.with_model_sources(frame, class_source, scene.render.engine)
    frame = enhance.with_render_settings(scene, frame)
    if any(key not in frame for key in required):
        return False
    h, w = schema.frame_size(frame)
    return (w, h) == readback.render_size(scene)


class PHOTOREAL_OT_export_dataset(_Reporting, bpy.types.Operator):
    """Render a frame range and write images, G-buffers and class labels for training"""

    bl_idname = "photoreal.export_dataset"
    bl_label = "Export Photoreal Dataset"
    bl_options = {"REGISTER"}

    directory: StringProperty(name="Directory", subtype="DIR_PATH")
    frame_start: IntProperty(name="Start", default=-1, description="First frame (unset: the scene's start frame)")
    frame_end: IntProperty(name="End", default=-1, description="Last frame (unset: the scene's end frame)")

    def invoke(self, context, event):
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context):
        if not self.directory:
            self.report({"ERROR"}, "choose a directory to export into")
            return {"CANCELLED"}
        return self.run_reporting(context, lambda: self._export(context))

    def _export(self, context):
        scene = context.scene
        # Unset means the scene's range; any value given is used as it is (frames may be
        # negative: -3..-2 once silently became the scene's range).
        start = self.frame_start if self.properties.is_property_set("frame_start") else scene.frame_start
        end = self.frame_end if self.properties.is_property_set("frame_end") else scene.frame_end
        wm = context.window_manager
        wm.progress_begin(0, max(1, end - start + 1))

        def progress(done, total, number):
            wm.progress_update(done)
            print(f"Photoreal export: frame {number} ({done}/{total})", flush=True)

        summary = dataset_export.export_frames(scene, self.directory, start, end, progress)
        for note in summary.notes:
            self.report({"WARNING"}, note)
        self.report({"INFO"}, f"exported {len(summary.written)} frame(s), skipped "
                              f"{len(summary.skipped)} already finished, into {summary.directory}")
        return {"FINISHED"}


CLASSES = (PHOTOREAL_OT_enhance, PHOTOREAL_OT_export_dataset)


register, unregister = bpy.utils.register_classes_factory(CLASSES)
