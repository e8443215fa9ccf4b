"""Render the tiny multilayer EXRs that tests/test_exr.py reads, with real Blender.

Run once per Blender version (the file name records which):
    .venv/bin/python    scripts/make_exr_fixtures.py   # bpy 4.5 -> tests/fixtures/blender4.5_passes.exr (single part, old names)
    .venv313/bin/python scripts/make_exr_fixtures.py   # bpy 5.2 -> tests/fixtures/blender5.2_passes.exr (multi-part, new names)

The scene has known materials so the tests can assert real pass values: a grey floor
(base colour 0.5), a red diffuse cube tagged "car", and an emissive sphere tagged "traffic light".
"""
import sys
from pathlib import Path

import bpy

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from addon import blender_api  # noqa: E402
from neural_core import schema  # noqa: E402

FLOOR_COLOUR = (0.5, 0.5, 0.5)
CUBE_COLOUR = (0.8, 0.1, 0.1)
EMISSION_COLOUR = (1.0, 0.5, 0.25)
EMISSION_STRENGTH = 2.0
CUBE_ROUGHNESS = 0.3


def material(name, colour, roughness=0.5, emission=None):
    """A plain Diffuse BSDF (its Diffuse Color pass is exactly `colour`, unlike Principled,
    whose specular layer scales it) or, with `emission`, an Emission shader."""
    mat = bpy.data.materials.new(name)
    tree = blender_api.node_tree(mat)
    nodes, links = tree.nodes, tree.links
    nodes.remove(nodes["Principled BSDF"])
    if emission:
        shader = nodes.new("ShaderNodeEmission")
        shader.inputs["Color"].default_value = (*emission, 1.0)
        shader.inputs["Strength"].default_value = EMISSION_STRENGTH
    else:
        shader = nodes.new("ShaderNodeBsdfDiffuse")
        shader.inputs["Color"].default_value = (*colour, 1.0)
    links.new(shader.outputs[0], nodes["Material Output"].inputs["Surface"])
    aov = nodes.new("ShaderNodeOutputAOV")
    aov.aov_name = "roughness"
    aov.inputs["Value"].default_value = roughness
    return mat


def add(obj, mat, class_name):
    obj.data.materials.append(mat)
    obj[schema.CLASS_PROPERTY] = class_name
    obj.pass_index = schema.pass_index_for_class(class_name)


def build():
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    bpy.ops.mesh.primitive_plane_add(size=20)
    add(bpy.context.object, material("floor", FLOOR_COLOUR, 0.8), "road")
    bpy.ops.mesh.primitive_cube_add(size=1.6, location=(-1.0, 0.0, 0.8))
    add(bpy.context.object, material("cube", CUBE_COLOUR, CUBE_ROUGHNESS), "car")
    bpy.ops.mesh.primitive_uv_sphere_add(radius=0.7, location=(1.2, 0.5, 0.7), segments=16, ring_count=8)
    add(bpy.context.object, material("lamp", (0.1, 0.1, 0.1), 0.6, EMISSION_COLOUR), "traffic light")
    bpy.ops.object.light_add(type="SUN", rotation=(0.6, 0.2, 0.3))
    bpy.ops.object.camera_add(location=(0.0, -7.0, 3.0), rotation=(1.23, 0.0, 0.0))
    scene.camera = bpy.context.object
    world = bpy.data.worlds.new("sky")
    world.color = (0.05, 0.07, 0.1)
    scene.world = world
    return scene


def configure(scene, path):
    scene.render.engine = "CYCLES"
    scene.cycles.samples = 2
    scene.cycles.use_denoising = False
    scene.cycles.seed = 0
    scene.render.resolution_x, scene.render.resolution_y = 48, 32
    scene.render.resolution_percentage = 100
    scene.render.use_motion_blur = False
    layer = scene.view_layers[0]
    for spec in schema.PASSES.values():
        if spec.is_aov or not spec.rendered:
            continue
        setattr(layer, spec.setting, True)
    aov = layer.aovs.add()
    aov.name, aov.type = "roughness", "VALUE"
    blender_api.set_multilayer_exr(scene.render.image_settings, depth="32", codec="ZIP")
    scene.render.filepath = str(path)


def main():
    version = "{}.{}".format(*blender_api.VERSION)
    out = REPO / "tests" / "fixtures" / f"blender{version}_passes.exr"
    scene = build()
    configure(scene, out)
    bpy.ops.render.render(write_still=True)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
