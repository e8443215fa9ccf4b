"""Turning on the render passes a model needs, and tagging objects with their class.

Class tags: an object (or material) with the custom property `photoreal_class` = "car" gets
pass_index = class id + 1, which Cycles writes into its Object/Material Index pass. EEVEE has
no index passes, so there the add-on adds a 'photoreal_class' AOV and an AOV Output node in
every material that writes the object's pass index (Object Info) or the material's pass index;
the frame's class map is then read from that AOV.
"""
from __future__ import annotations

from . import blender_api
from .core import schema

AOV_NODE_PREFIX = "Photoreal AOV "
OBJECT_INFO_NODE = "Photoreal Object Info"
# Principled BSDF inputs that feed the material AOVs, and the value used without a Principled BSDF.
AOV_SOURCES = {"roughness": ("Roughness", 0.5), "metallic": ("Metallic", 0.0)}


def is_cycles(scene) -> bool:
    return scene.render.engine == "CYCLES"


def is_eevee(scene) -> bool:
    return schema.is_eevee(scene.render.engine)


def passes_to_enable(scene, required) -> list[str]:
    """The model's required passes as this engine carries them (schema.render_source)."""
    return schema.passes_to_render(required, scene.render.engine)


def is_enabled(view_layer, key: str) -> bool:
    spec = schema.pass_spec(key)
    if spec.is_aov:
        return spec.blender_names[0] in view_layer.aovs
    if key == "noisy":
        return denoiser_stores_noisy_image(view_layer)
    return bool(getattr(view_layer, spec.setting))


def light_paths(scene) -> dict[str, int]:
    """The render's light-path depth (the models' `bounces` input): Cycles' Max and Diffuse
    Bounces. EEVEE has no bounce limit to read, so its renders count as fully lit."""
    if is_cycles(scene):
        return {"max_bounces": scene.cycles.max_bounces, "diffuse_bounces": scene.cycles.diffuse_bounces}
    return {"max_bounces": schema.FULL_BOUNCE_DEPTH, "diffuse_bounces": schema.FULL_BOUNCE_DEPTH}


def denoiser_stores_noisy_image(view_layer) -> bool:
    """Cycles' denoiser is on and keeps the image it started from (the "Noisy Image" pass)."""
    scene = view_layer.id_data
    return bool(scene.cycles.use_denoising and view_layer.cycles.denoising_store_passes)


def renders_without_denoiser(scene) -> bool:
    """Cycles with its denoiser off: the Combined of its renders is the noisy image."""
    return is_cycles(scene) and not scene.cycles.use_denoising


def enable_denoiser(view_layer) -> None:
    """Models on top of Cycles' denoiser read its output and its input: turn both on."""
    view_layer.id_data.cycles.use_denoising = True
    view_layer.cycles.denoising_store_passes = True


def pass_status(scene, view_layer, required) -> list[tuple[str, bool]]:
    """[(pass key, enabled)] for the panel."""
    return [(key, is_enabled(view_layer, key)) for key in passes_to_enable(scene, required)]


def enable_passes(scene, view_layer, required, class_source: str = "object_index") -> list[str]:
    """Turn the passes on; return notes on what could not be done (empty = all fine)."""
    notes = []
    for key in passes_to_enable(scene, required):
        spec = schema.pass_spec(key)
        if spec.is_aov:
            _ensure_aov(view_layer, spec)
            notes += _ensure_material_aovs(scene, key, class_source)
        elif is_eevee(scene) and not spec.eevee:
            notes.append(f"{key}: {schema.enable_hint(key, scene.render.engine)}")
        elif key == "noisy":
            enable_denoiser(view_layer)
        else:
            setattr(view_layer, spec.setting, True)
        if key == "motion" and scene.render.use_motion_blur:
            notes.append("motion: the Vector pass is not written while motion blur is on; "
                         "turn off Render Properties > Motion Blur")
    return notes


def _ensure_aov(view_layer, spec) -> None:
    name = spec.blender_names[0]
    if name not in view_layer.aovs:
        aov = view_layer.aovs.add()
        aov.name = name
        aov.type = spec.aov_type


def scene_materials(scene):
    seen = set()
    for obj in scene.objects:
        for slot in getattr(obj, "material_slots", ()):
            mat = slot.material
            if mat is not None and mat.name not in seen:
                seen.add(mat.name)
                yield mat


def _ensure_material_aovs(scene, key: str, class_source: str) -> list[str]:
    """Add an AOV Output node for `key` to every material of the scene that lacks one."""
    aov_name = schema.pass_spec(key).blender_names[0]
    fallbacks = []
    for mat in scene_materials(scene):
        tree = blender_api.node_tree(mat)
        if any(n.bl_idname == "ShaderNodeOutputAOV" and n.aov_name == aov_name for n in tree.nodes):
            continue
        node = tree.nodes.new("ShaderNodeOutputAOV")
        node.name = node.label = AOV_NODE_PREFIX + aov_name
        node.aov_name = aov_name
        node.location = (-200, -400 - (120 * len(tree.nodes)) % 600)
        if key == "class_aov":
            _feed_class_value(tree, node, mat, class_source)
        elif not _feed_from_principled(tree, node, key):
            fallbacks.append(mat.name)
    if fallbacks:
        return [f"{key}: {len(fallbacks)} material(s) have no Principled BSDF, so the AOV is "
                f"the constant {AOV_SOURCES[key][1]} there ({', '.join(fallbacks[:5])})"]
    return []


def _feed_from_principled(tree, aov_node, key: str) -> bool:
    input_name, default = AOV_SOURCES[key]
    bsdf = next((n for n in tree.nodes if n.bl_idname == "ShaderNodeBsdfPrincipled"), None)
    value = aov_node.inputs["Value"]
    if bsdf is None:
        value.default_value = default
        return False
    source = bsdf.inputs[input_name]
    if source.is_linked:
        tree.links.new(source.links[0].from_socket, value)
    else:
        value.default_value = source.default_value
    return True


def _feed_class_value(tree, aov_node, mat, class_source: str) -> None:
    value = aov_node.inputs["Value"]
    if class_source == "material_index":
        value.default_value = mat.pass_index
        return
    info = tree.nodes.get(OBJECT_INFO_NODE) or tree.nodes.new("ShaderNodeObjectInfo")
    info.name = info.label = OBJECT_INFO_NODE
    info.location = (aov_node.location.x - 200, aov_node.location.y)
    tree.links.new(info.outputs["Object Index"], value)


def tag_classes(scene) -> tuple[int, list[str]]:
    """pass_index = class id + 1 for objects and materials with a `photoreal_class` property.

    Untagged objects keep their pass_index. Returns (number tagged, problems).
    """
    tagged, problems = 0, []
    targets = list(scene.objects) + list(scene_materials(scene))
    for item in targets:
        name = item.get(schema.CLASS_PROPERTY)
        if name is None:
            continue
        try:
            index = schema.pass_index_for_class(str(name))
        except KeyError as exc:
            problems.append(f"{item.name}: {exc.args[0]}")
            continue
        if item.pass_index != index:
            item.pass_index = index
        tagged += 1
    return tagged, problems
