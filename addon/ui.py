"""The "Photoreal" tab in the compositor's sidebar."""
import bpy

from . import compositor, enhance, passes, render_pass
from .core import errors


class PHOTOREAL_PT_compositor(bpy.types.Panel):
    bl_label = "Photoreal Enhance"
    bl_space_type = "NODE_EDITOR"
    bl_region_type = "UI"
    bl_category = "Photoreal"

    @classmethod
    def poll(cls, context):
        space = context.space_data
        return space is not None and getattr(space, "tree_type", "") == "CompositorNodeTree"

    def draw(self, context):
        layout = self.layout
        scene = context.scene
        settings = scene.photoreal

        layout.prop(settings, "model")
        if settings.model == "CUSTOM":
            layout.prop(settings, "custom_model")
        layout.prop(settings, "strength", slider=True)
        layout.prop(settings, "device")
        layout.prop(settings, "tile_size")
        layout.prop(settings, "enhance_on_render")
        layout.prop(settings, "temporal")
        row = layout.row()
        row.enabled = settings.temporal
        row.prop(settings, "temporal_lighting")
        layout.operator("photoreal.enhance", icon="NODE_COMPOSITING")

        self.draw_passes(layout, context)
        box = layout.box()
        box.label(text=f"Device: {_device_text(settings)}")
        box.label(text=f"Last run: {enhance.describe_last_run()}")
        if enhance.LAST_RUN and not enhance.LAST_RUN.get("trained", True):
            box.label(text="Untrained model: output is not photoreal", icon="ERROR")
        if settings.enhance_on_render:
            if passes.is_cycles(scene):
                ok = render_pass.is_installed() and compositor.uses_render_pass(scene)
                box.label(text="Cycles 'Photoreal' pass " + ("in use" if ok else
                          "not wired: press Photoreal Enhance"), icon="CHECKMARK" if ok else "ERROR")
                # Farm workers without the add-on render this file un-enhanced (docs/reliability.md).
                box.label(text="Without the add-on: renders the plain render", icon="INFO")
            else:
                box.label(text="EEVEE: written frames are enhanced after saving", icon="INFO")

    @staticmethod
    def draw_passes(layout, context):
        box = layout.box()
        box.label(text="Passes the model needs")
        try:
            required = enhance.required_passes(context.scene.photoreal)
        except (errors.PhotorealError, OSError, ImportError) as exc:
            box.label(text=f"model not loaded: {exc}", icon="ERROR")
            return
        for key, enabled in passes.pass_status(context.scene, context.view_layer, required):
            label = PASS_LABELS.get(key, key)
            box.label(text=label, icon="CHECKBOX_HLT" if enabled else "CHECKBOX_DEHLT")
        if "noisy" in required and passes.is_cycles(context.scene):
            box.label(text="This model works on top of Cycles' denoiser:", icon="INFO")
            box.label(text="Enhance turns the denoiser on (and keeps its noisy image);")
            box.label(text="a render made with it off gets Blender's Denoise node first")


# The pass keys whose Blender names say more to an artist.
PASS_LABELS = {"noisy": "noisy (Cycles denoiser + Denoising Data)"}


def _device_text(settings) -> str:
    last = enhance.LAST_RUN.get("provider")
    if last:
        return last
    try:
        from .core import runtime
        devices = runtime().available_devices()
    except Exception:  # the panel must draw even if the runtime cannot load
        return settings.device
    if settings.device == "AUTO":
        return "CUDA" if "cuda" in [str(d).lower() for d in devices] else "CPU"
    return settings.device


CLASSES = (PHOTOREAL_PT_compositor,)


register, unregister = bpy.utils.register_classes_factory(CLASSES)
