"""Our compositor nodes: output = mix(whatever fed the output before, enhanced, strength).

The add-on owns exactly two nodes, found by name: a Mix node spliced in front of the
compositor output, and an Image node showing bpy.data.images["Photoreal Enhance"]. The Mix
node's second input comes from that Image node, or, when Cycles computes the "Photoreal"
render pass itself (enhance_on_render), from the Render Layers socket of that pass. User nodes
are never removed or relinked, except that the link into the output now goes through our Mix.
The tree and node types differ between Blender 4.x and 5.x: blender_api has them.

The strength is stored once, in scene.photoreal.strength; the node factor is derived from it
(set_strength) whenever our nodes are made or a render starts.
"""
from __future__ import annotations

import contextlib

import bpy
import numpy as np

from . import blender_api
from .core import buffers

MIX_NODE = "Photoreal Mix"
IMAGE_NODE = "Photoreal Image"
IMAGE_NAME = "Photoreal Enhance"
PASS_NAME = "Photoreal"          # the Cycles render pass / Render Layers socket
# Enhance on Render: the pass is a view-layer AOV, so its Render Layers socket exists with or
# without the add-on, and a second AOV, 1 where the add-on wrote the pass, scales the strength.
# Without the add-on (farm worker, disabled, uninstalled) nothing writes either AOV: Cycles
# renders them as 0, the factor is 0 and the composite is the plain render. A link from a
# registered pass instead becomes invalid without the add-on and the composite goes wrong
# (flat white in 4.5, grey in 5.0). See issue 13, item 3.
WEIGHT_NAME = "Photoreal Weight"
STRENGTH_NODE = "Photoreal Strength"


# ---------------------------------------------------------------------------------------------
# Tree, output and render layers
# ---------------------------------------------------------------------------------------------

def get_tree(scene, create: bool = True):
    return blender_api.compositor_tree(scene, create)


def output_socket(tree, scene):
    """The socket whose input is the final image; created (and fed the render) if missing."""
    socket = blender_api.output_socket(tree)
    if not socket.is_linked:
        tree.links.new(render_layers(tree, scene).outputs["Image"], socket)
    return socket


def render_layers(tree, scene):
    """The Render Layers node of the scene's first view layer (created if there is none)."""
    layer = scene.view_layers[0].name
    for node in tree.nodes:
        if node.bl_idname == "CompositorNodeRLayers" and node.layer == layer \
                and node.scene in (None, scene):
            return node
    node = tree.nodes.new("CompositorNodeRLayers")
    node.location = (-300, 0)
    return node


# ---------------------------------------------------------------------------------------------
# Our nodes
# ---------------------------------------------------------------------------------------------

def _new_mix(tree):
    mix = blender_api.new_mix_node(tree)
    mix.name = mix.label = MIX_NODE
    return mix


mix_sockets = blender_api.mix_sockets


def has_nodes(scene) -> bool:
    tree = get_tree(scene, create=False)
    return tree is not None and MIX_NODE in tree.nodes


def ensure_nodes(scene):
    """Create or repair our nodes. Idempotent: a second call changes nothing."""
    settings = scene.photoreal
    tree = get_tree(scene)
    out = output_socket(tree, scene)
    rl = render_layers(tree, scene)

    mix = tree.nodes.get(MIX_NODE) or _new_mix(tree)
    factor, a, b, result = mix_sockets(mix)
    if not any(link.from_node == mix for link in out.links):
        upstream = out.links[0].from_socket if out.is_linked else rl.outputs["Image"]
        tree.links.new(upstream, a)
        tree.links.new(result, out)
        mix.location = (out.node.location.x - 10, out.node.location.y - 220)
    elif not a.is_linked:
        tree.links.new(rl.outputs["Image"], a)

    image_node = tree.nodes.get(IMAGE_NODE)
    if image_node is None:
        image_node = tree.nodes.new("CompositorNodeImage")
        image_node.name = image_node.label = IMAGE_NODE
        image_node.location = (mix.location.x - 250, mix.location.y - 150)
    image = bpy.data.images.get(IMAGE_NAME)
    if image is not None and image_node.image != image:
        image_node.image = image

    source = _pass_socket(rl) if settings.enhance_on_render else None
    if settings.enhance_on_render:
        source = _pass_aov_socket(tree, scene, rl)
    _link_weight(tree, scene, rl, factor, weighted=source is not None)
    if source is None:
        # Without an enhanced image yet, mix the input with itself: the output stays the
        # render instead of fading to black.
        source = image_node.outputs["Image"] if image_node.image else a.links[0].from_socket
    if not (b.is_linked and b.links[0].from_socket == source):
        tree.links.new(source, b)
    set_strength(scene, settings.strength)
    return mix


def ensure_pass_aovs(view_layer) -> None:
    """The Photoreal pass and its weight as AOVs of the view layer (see WEIGHT_NAME)."""
    for name, kind in ((PASS_NAME, "COLOR"), (WEIGHT_NAME, "VALUE")):
        if name not in view_layer.aovs:
            aov = view_layer.aovs.add()
            aov.name, aov.type = name, kind
    view_layer.update_render_passes()


def _pass_aov_socket(tree, scene, rl):
    ensure_pass_aovs(scene.view_layers[0])
    socket = rl.outputs.get(PASS_NAME)
    return socket if socket is not None and socket.enabled else None


def _link_weight(tree, scene, rl, factor, weighted: bool) -> None:
    """factor = strength x the weight AOV (Enhance on Render), else the plain strength."""
    node = tree.nodes.get(STRENGTH_NODE)
    weight = rl.outputs.get(WEIGHT_NAME)
    if not weighted or weight is None or not weight.enabled:
        if node is not None:
            tree.nodes.remove(node)
        return
    if node is None:
        node = blender_api.new_math_node(tree)
        node.name = node.label = STRENGTH_NODE
        node.operation = "MULTIPLY"
        node.location = (factor.node.location.x - 200, factor.node.location.y + 120)
    if not (node.inputs[0].is_linked and node.inputs[0].links[0].from_socket == weight):
        tree.links.new(weight, node.inputs[0])
    if not (factor.is_linked and factor.links[0].from_node == node):
        tree.links.new(node.outputs[0], factor)


def _pass_socket(rl):
    socket = rl.outputs.get(PASS_NAME)
    return socket if socket is not None and socket.enabled else None


def uses_render_pass(scene) -> bool:
    tree = get_tree(scene, create=False)
    mix = tree.nodes.get(MIX_NODE) if tree else None
    if mix is None:
        return False
    b = mix_sockets(mix)[2]
    return b.is_linked and b.links[0].from_socket.name == PASS_NAME


def strength_socket(tree):
    """The input that holds the strength: the weight multiplier's, else our Mix factor."""
    node = tree.nodes.get(STRENGTH_NODE)
    if node is not None:
        return node.inputs[1]
    mix = tree.nodes.get(MIX_NODE)
    return mix_sockets(mix)[0] if mix is not None else None


def set_strength(scene, strength: float) -> None:
    tree = get_tree(scene, create=False)
    mix = tree.nodes.get(MIX_NODE) if tree else None
    if mix is not None:
        mix_sockets(mix)[0].default_value = strength
        strength_socket(tree).default_value = strength


# ---------------------------------------------------------------------------------------------
# The enhanced image
# ---------------------------------------------------------------------------------------------

# RGBA buffers kept from frame to frame, one per user (the render thread and the operator may
# run at once): a fresh 33 MB (1080p) array a frame costs its page faults again.
_RGBA_BUFFERS = buffers.ReusedArrays()


def blender_rgba(rgb: np.ndarray, alpha: np.ndarray | None, user: str) -> np.ndarray:
    """Linear (H, W, 3) image (row 0 = top) and optional alpha -> the flat float32 RGBA pixels
    Blender takes (bottom row first), in `user`'s buffer, valid until its next call."""
    h, w = rgb.shape[:2]
    rgba = _RGBA_BUFFERS.get(user, (h, w, 4))
    # Built bottom row first in one array (Blender rows go up): no flipped copy.
    rgba[..., :3] = rgb[::-1]
    rgba[..., 3] = 1.0 if alpha is None else alpha.reshape(h, w)[::-1]
    return rgba.ravel()


def store_image(rgb: np.ndarray, alpha: np.ndarray | None = None):
    """Put a linear (H, W, 3) image (row 0 = top) into bpy.data.images[IMAGE_NAME]."""
    h, w = rgb.shape[:2]
    image = bpy.data.images.get(IMAGE_NAME)
    if image is not None and (not image.is_float or tuple(image.size) != (w, h)):
        bpy.data.images.remove(image)
        image = None
    if image is None:
        image = bpy.data.images.new(IMAGE_NAME, w, h, alpha=True, float_buffer=True)
        with contextlib.suppress(TypeError):
            image.colorspace_settings.name = "Linear Rec.709"
    image.pixels.foreach_set(blender_rgba(rgb, alpha, "image"))
    image.update()
    # Saved in the .blend as a packed float EXR (a generated image would come back blank, and
    # the compositor would mix black into the next render). Packing encodes the EXR, 40-80 ms
    # at 1080p, so it is done once when the file is saved (pack_before_save), not every frame.
    image.file_format = "OPEN_EXR"
    return image


@bpy.app.handlers.persistent
def pack_before_save(*_args) -> None:
    """save_pre handler: pack the enhanced image so the .blend keeps its current pixels."""
    image = bpy.data.images.get(IMAGE_NAME)
    if image is not None and image.has_data:
        image.pack()


@bpy.app.handlers.persistent
def upgrade_on_load(*_args) -> None:
    """load_post handler: a file set up for Enhance on Render by an older version links a
    registered pass, which composites flat without the add-on; rewire it to the AOVs, so that
    once saved again it renders the plain render on a machine without the add-on."""
    for scene in bpy.data.scenes:
        settings = getattr(scene, "photoreal", None)
        if (settings is not None and settings.enhance_on_render and has_nodes(scene)
                and PASS_NAME not in scene.view_layers[0].aovs):
            ensure_nodes(scene)


_HANDLERS = (("save_pre", pack_before_save), ("load_post", upgrade_on_load))


def register() -> None:
    for name, handler in _HANDLERS:
        handlers = getattr(bpy.app.handlers, name)
        if handler not in handlers:
            handlers.append(handler)


def unregister() -> None:
    for name, handler in _HANDLERS:
        handlers = getattr(bpy.app.handlers, name)
        while handler in handlers:
            handlers.remove(handler)


def image_pixels(image) -> np.ndarray:
    """(H, W, 4) float32 pixels of a Blender image, row 0 = top."""
    w, h = image.size
    buf = np.empty(w * h * 4, np.float32)
    image.pixels.foreach_get(buf)
    return buf.reshape(h, w, 4)[::-1].copy()
