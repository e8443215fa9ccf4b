"""Every difference between the Blender versions we support (4.2-4.5 and 5.x), in one place.

The add-on, the scene generator (training/scenes), the Denoise-node baseline, scripts/ and the
Blender tests all go through this module, so supporting another Blender version means editing
this file only. The version is detected one way, from bpy.app.version; the facts behind each
switch are in docs/blender_api.md. It imports nothing but bpy, so it can be imported on its own
(`from addon import blender_api`) by code that does not load the add-on.
"""
from __future__ import annotations

import bpy

VERSION = tuple(bpy.app.version)
VERSION_STRING = bpy.app.version_string
BLENDER_5 = VERSION >= (5, 0, 0)

# The EEVEE engine id (4.2-4.5 called the rewritten EEVEE "Next"); schema.is_eevee knows both.
EEVEE = "BLENDER_EEVEE" if BLENDER_5 else "BLENDER_EEVEE_NEXT"


# ---------------------------------------------------------------------------------------------
# The compositor: 4.x scene.node_tree + Composite node; 5.x a node group assigned to the scene,
# whose output is the group's output node
# ---------------------------------------------------------------------------------------------

def compositor_tree(scene, create: bool = True):
    """The scene's compositing node tree (created when `create`; else None if it has none)."""
    if BLENDER_5:
        tree = scene.compositing_node_group
        if tree is None and create:
            tree = bpy.data.node_groups.new("Compositing", "CompositorNodeTree")
            scene.compositing_node_group = tree
        return tree
    if not scene.use_nodes and create:
        scene.use_nodes = True      # 4.x creates the tree with Render Layers + Composite
    return scene.node_tree


def remove_compositor_tree(scene) -> None:
    """Remove the scene's tree with the scene (5.x: the tree is a data-block of its own)."""
    tree = scene.compositing_node_group if BLENDER_5 else None
    bpy.data.scenes.remove(scene)
    if tree is not None:
        bpy.data.node_groups.remove(tree)


def output_socket(tree):
    """The input socket whose image is the compositor's result (node created if missing)."""
    if BLENDER_5:
        if not any(item.item_type == "SOCKET" and item.in_out == "OUTPUT"
                   and item.socket_type == "NodeSocketColor" for item in tree.interface.items_tree):
            tree.interface.new_socket(name="Image", in_out="OUTPUT", socket_type="NodeSocketColor")
        outputs = [n for n in tree.nodes if n.bl_idname == "NodeGroupOutput"]
        node = next((n for n in outputs if n.is_active_output), outputs[0] if outputs else None)
        if node is None:
            node = tree.nodes.new("NodeGroupOutput")
            node.location = (400, 0)
        return next(s for s in node.inputs if s.type == "RGBA")
    node = next((n for n in tree.nodes if n.bl_idname == "CompositorNodeComposite"), None)
    if node is None:
        node = tree.nodes.new("CompositorNodeComposite")
        node.location = (400, 0)
    return node.inputs["Image"]


def new_mix_node(tree):
    """A colour Mix node (4.x CompositorNodeMixRGB, 5.x ShaderNodeMix in RGBA mode)."""
    if BLENDER_5:
        mix = tree.nodes.new("ShaderNodeMix")
        mix.data_type = "RGBA"
    else:
        mix = tree.nodes.new("CompositorNodeMixRGB")
    mix.blend_type = "MIX"
    return mix


def mix_sockets(mix):
    """(factor, a, b, result) of a node made by new_mix_node."""
    if mix.bl_idname == "ShaderNodeMix":     # several sockets share names: use identifiers
        ins = {s.identifier: s for s in mix.inputs}
        outs = {s.identifier: s for s in mix.outputs}
        return ins["Factor_Float"], ins["A_Color"], ins["B_Color"], outs["Result_Color"]
    return mix.inputs[0], mix.inputs[1], mix.inputs[2], mix.outputs[0]


def new_math_node(tree):
    return tree.nodes.new("ShaderNodeMath" if BLENDER_5 else "CompositorNodeMath")


def socket(sockets, identifier: str):
    """Node sockets by identifier: ShaderNodeMix repeats the names 'A'/'B' for each data type."""
    return next(s for s in sockets if s.identifier == identifier)


def configure_denoise_node(node, hdr: bool, prefilter: str, quality: str | None) -> None:
    """Options of a CompositorNodeDenoise; prefilter and quality as 4.x enum ids ('ACCURATE')."""
    if BLENDER_5:   # options are input sockets; menus take display names ('Follow Scene')
        node.inputs["HDR"].default_value = hdr
        node.inputs["Prefilter"].default_value = prefilter.replace("_", " ").title()
        if quality is not None:
            node.inputs["Quality"].default_value = quality.replace("_", " ").title()
        return
    node.use_hdr = hdr                    # 4.5: node properties (4.5 also mirrors HDR as a socket)
    if "HDR" in node.inputs:
        node.inputs["HDR"].default_value = hdr
    node.prefilter = prefilter
    if quality is not None:
        node.quality = quality


# ---------------------------------------------------------------------------------------------
# Output file formats: 5.x chooses a media type first and the format enum depends on it
# ---------------------------------------------------------------------------------------------

# What set_multilayer_exr / set_exr may change, for callers that restore the user's settings.
IMAGE_SETTINGS = ("media_type", "file_format", "color_depth", "exr_codec", "use_exr_interleave")


def set_multilayer_exr(image_settings, depth: str = "32", codec: str = "ZIP",
                       interleave: bool | None = None) -> None:
    """Make `image_settings` write one multilayer EXR holding every pass.

    interleave (5.x only): True writes one part for all passes, readable by single-part
    readers and faster; False one part per pass; None leaves the setting as it is.
    """
    if BLENDER_5:
        # media_type must come first: file_format='OPEN_EXR_MULTILAYER' raises while it is 'IMAGE'.
        image_settings.media_type = "MULTI_LAYER_IMAGE"
        if interleave is not None:
            image_settings.use_exr_interleave = interleave
    image_settings.file_format = "OPEN_EXR_MULTILAYER"
    image_settings.color_depth = depth
    image_settings.exr_codec = codec


def set_exr(image_settings, depth: str = "32", codec: str = "ZIP") -> None:
    """Make `image_settings` write a plain (single-layer) EXR of the composite."""
    if BLENDER_5:
        image_settings.media_type = "IMAGE"
    image_settings.file_format = "OPEN_EXR"
    image_settings.color_depth = depth
    image_settings.exr_codec = codec


def is_video(image_settings) -> bool:
    if BLENDER_5 and image_settings.media_type == "VIDEO":
        return True
    return image_settings.file_format in ("FFMPEG", "AVI_JPEG", "AVI_RAW")


# ---------------------------------------------------------------------------------------------
# Shader nodes and animation data
# ---------------------------------------------------------------------------------------------

def node_tree(id_block):
    """The node tree of a material or world, switched on first: in 4.x a new material or world
    has no nodes until use_nodes is set; in 5.x they always have them (use_nodes is deprecated)."""
    if not BLENDER_5 or id_block.node_tree is None:
        id_block.use_nodes = True
    return id_block.node_tree


def fcurves(id_block):
    """The F-curves of an ID's action (4.4+: slotted actions; 5.x has no action.fcurves)."""
    animation = id_block.animation_data
    if animation is None or animation.action is None:
        return []
    action = animation.action
    if hasattr(animation, "action_slot"):
        from bpy_extras import anim_utils
        channelbag = anim_utils.action_get_channelbag_for_slot(action, animation.action_slot)
        return list(channelbag.fcurves) if channelbag else []
    return list(action.fcurves)
