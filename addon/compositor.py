"""Our compositor nodes: output = mix(whatever fed the output before, enhanced, strength).

The add-on owns exactly two nodes, found by name: a Mix node spliced in front of the
compositor output, and an Image node showing bpy.data.images["Photoreal Enhance"]. The Mix
node's second input comes from that Image node, or, when Cycles computes the "Photoreal"
render pass itself (enhance_on_render), from the Render Layers socket of that pass. User nodes
are never removed or relinked, except that the link into the output now goes through our Mix.

Blender 4.x: scene.node_tree, CompositorNodeComposite, CompositorNodeMixRGB.
Blender 5.x: scene.compositing_node_group, NodeGroupOutput, ShaderNodeMix.
"""
from __future__ import annotations

import contextlib

import bpy
import numpy as np

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


def is_group_tree_api(scene) -> bool:
    """Blender 5.x: the compositor is a node group assigned to the scene."""
    return hasattr(scene, "compositing_node_group")


# ---------------------------------------------------------------------------------------------
# Tree, output and render layers
# ---------------------------------------------------------------------------------------------

def get_tree(scene, create: bool = True):
    if is_group_tree_api(scene):
        tree = scene.compositing_node_group
        if tree is None and create:
            tree = bpy.data.node_groups.new("Compositing", "CompositorNodeTree")
            scene.compositing_node_group = tree
        return tree
    if not scene.use_nodes and create:
        scene.use_nodes = True      # 4.x creates the tree with Render Layers + Composite
    return scene.node_tree


def output_socket(tree, scene):
    """The socket whose input is the final image; created (and fed the render) if missing."""
    if is_group_tree_api(scene):
        if not any(item.item_type == "SOCKET" and item.in_out == "OUTPUT"
                   and item.socket_type == "NodeSocketColor" for item in tree.interface.items_tree):
            tree.interface.new_socket(name="Image", in_out="OUTPUT", socket_type="NodeSocketColor")
        outputs = [n for n in tree.nodes if n.bl_idname == "NodeGroupOutput"]
        node = next((n for n in outputs if n.is_active_output), outputs[0] if outputs else None)
        if node is None:
            node = tree.nodes.new("NodeGroupOutput")
            node.location = (400, 0)
        socket = next(s for s in node.inputs if s.type == "RGBA")
    else:
        node = next((n for n in tree.nodes if n.bl_idname == "CompositorNodeComposite"), None)
        if node is None:
            node = tree.nodes.new("CompositorNodeComposite")
            node.location = (400, 0)
        socket = node.inputs["Image"]
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

def _new_mix(tree, scene):
    if is_group_tree_api(scene):
        mix = tree.nodes.new("ShaderNodeMix")
        mix.data_type = "RGBA"
        mix.blend_type = "MIX"
    else:
        mix = tree.nodes.new("CompositorNodeMixRGB")
        mix.blend_type = "MIX"
    mix.name = mix.label = MIX_NODE
    return mix


def mix_sockets(mix):
    """(factor, a, b, result) of our Mix node in either API."""
    if mix.bl_idname == "ShaderNodeMix":     # several sockets share names: use identifiers
        ins = {s.identifier: s for s in mix.inputs}
        outs = {s.identifier: s for s in mix.outputs}
        return ins["Factor_Float"], ins["A_Color"], ins["B_Color"], outs["Result_Color"]
    return mix.inputs[0], mix.inputs[1], mix.inputs[2], mix.outputs[0]


def has_nodes(scene) -> bool:
    tree = get_tree(scene, create=False)
    return tree is not None and MIX_NODE in tree.nodes


def ensure_nodes(scene, strength: float | None = None):
    """Create or repair our nodes. Idempotent: a second call changes nothing."""
    settings = scene.photoreal
    tree = get_tree(scene)
    out = output_socket(tree, scene)
    rl = render_layers(tree, scene)

    mix = tree.nodes.get(MIX_NODE) or _new_mix(tree, scene)
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
    set_strength(scene, settings.strength if strength is None else strength)
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
        node = tree.nodes.new("ShaderNodeMath" if is_group_tree_api(scene) else "CompositorNodeMath")
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


@contextlib.contextmanager
def mix_factor(scene, value: float):
    """Temporarily set our Mix factor (EEVEE batch renders composite in numpy instead)."""
    tree = get_tree(scene, create=False)
    mix = tree.nodes.get(MIX_NODE) if tree else None
    if mix is None:
        yield
        return
    socket = strength_socket(tree)
    saved = socket.default_value
    socket.default_value = value
    try:
        yield
    finally:
        socket.default_value = saved


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
