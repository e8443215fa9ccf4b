"""Scene settings (`scene.photoreal`) and add-on preferences: declarations only.

The update callbacks hand over to the logic modules, imported when a setting changes, so that
no logic module is loaded by this one and none of them imports it.
"""
import bpy
from bpy.props import (BoolProperty, EnumProperty, FloatProperty, IntProperty, PointerProperty,
                       StringProperty)

MODEL_ITEMS = [
    ("RAD", "RAD", "Enhance the render from its G-buffers and class map (EPE-style)"),
    ("CRN", "CRN", "Synthesize an image from the class map alone"),
    ("CUSTOM", "Custom", "An exported ONNX model file"),
]
DEVICE_ITEMS = [
    ("AUTO", "Auto", "CUDA when the GPU runtime is installed and a GPU is present, else CPU"),
    ("CUDA", "CUDA", "NVIDIA GPU through onnxruntime-gpu (the GPU build of this add-on)"),
    ("CPU", "CPU", "Always run on the CPU"),
]


def _strength_changed(self, context):
    from . import compositor
    compositor.set_strength(context.scene, self.strength)


def _enhance_on_render_changed(self, context):
    from . import render_pass
    render_pass.enhance_on_render_changed(context.scene, context.view_layer)


def _temporal_changed(self, context):
    """Turning it on while Enhance on Render is on enables the passes the filter reads."""
    if self.temporal and self.enhance_on_render:
        _enhance_on_render_changed(self, context)


class PhotorealSettings(bpy.types.PropertyGroup):
    model: EnumProperty(name="Model", items=MODEL_ITEMS, default="RAD",
                        description="Which network enhances the render")
    custom_model: StringProperty(name="Model File", subtype="FILE_PATH",
                                 description="ONNX model exported by `python -m training export`")
    strength: FloatProperty(name="Strength", min=0.0, max=1.0, default=1.0, subtype="FACTOR",
                            update=_strength_changed,
                            description="Mix between the render (0) and the enhanced image (1)")
    device: EnumProperty(name="Device", items=DEVICE_ITEMS, default="AUTO")
    # The default is neural_core.runtime.DEFAULT_TILE_SIZE (held equal by a test: importing
    # the runtime here would load onnxruntime with the add-on's settings).
    tile_size: IntProperty(name="Tile Size", min=0, soft_max=2048, default=1024,
                           description="Tile side in pixels for large frames, to bound memory: "
                                       "frames above 2 tiles' worth of pixels run as tiles "
                                       "(1024: 1080p runs whole; 0 = never tile, as the "
                                       "command line's --tile 0; else at least 256, and "
                                       "twice the model's tile overlap: 640 for the bundled RAD)")
    enhance_on_render: BoolProperty(
        name="Enhance on Render", default=False, update=_enhance_on_render_changed,
        description="Enhance every rendered frame (F12, animations, blender -b). Cycles gets a "
                    "'Photoreal' render pass; EEVEE frames are enhanced after they are written")
    temporal: BoolProperty(
        name="Temporal Stability", default=True, update=_temporal_changed,
        description="In animation renders, blend each enhanced frame with the previous one "
                    "along the Vector pass (no flicker; history dropped where surfaces appear "
                    "or change). Off: every frame is enhanced on its own")
    temporal_lighting: BoolProperty(
        name="Follow Lighting Changes", default=True,
        description="Temporal Stability restarts the history where the light on a surface "
                    "changes (a moving lamp or shadow), so it cannot lag. Off: for shots whose "
                    "lighting is fixed, a little steadier where the render is very noisy")

    def model_spec(self) -> str:
        """What neural_core's Enhancer.from_pretrained expects: 'rad', 'crn' or a path."""
        if self.model == "CUSTOM":
            return bpy.path.abspath(self.custom_model)
        return self.model.lower()


class PhotorealPreferences(bpy.types.AddonPreferences):
    bl_idname = __package__

    threads: IntProperty(name="CPU Threads", min=0, max=256, default=0,
                         description="Threads for CPU inference (0 = onnxruntime's default)")
    temp_directory: StringProperty(
        name="Temporary Directory", subtype="DIR_PATH", default="",
        description="Where render passes are exchanged as EXR files (empty = /dev/shm, which "
                    "is memory, or the system temporary directory)")

    def draw(self, context):
        self.layout.prop(self, "threads")
        self.layout.prop(self, "temp_directory")


CLASSES = (PhotorealSettings, PhotorealPreferences)


def register():
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.Scene.photoreal = PointerProperty(type=PhotorealSettings)


def unregister():
    del bpy.types.Scene.photoreal
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
