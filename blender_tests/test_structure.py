"""The add-on's structure (issue 14): every module imports on its own inside real bpy, there is
no import loop, properties.py loads no logic module, and the settings mean what the runtime
means."""
import ast
import json
import subprocess
import sys

import bpy

from conftest import ROOT, blender_api, build_scene, comp_tree, submodule
from neural_core import schema

ADDON_DIR = ROOT / "addon"
MODULES = sorted(p.stem for p in ADDON_DIR.glob("*.py") if p.stem != "__init__")
# Modules that hold no add-on logic: declarations, the version seam, the bundled runtime.
NOT_LOGIC = {"properties", "preferences", "blender_api", "core"}
# What only the seam may use: the version, and the names that differ between versions.
VERSION_SWITCHES = ("bpy.app.version", "compositing_node_group", "BLENDER_EEVEE", "MULTI_LAYER_IMAGE")

IMPORT_EACH_ALONE = """
import importlib, json, sys
import bpy
sys.path.insert(0, sys.argv[1])
loaded = {}
for name in sys.argv[2:]:
    for module in [m for m in sys.modules if m == "addon" or m.startswith("addon.")]:
        del sys.modules[module]
    importlib.import_module("addon." + name)
    loaded[name] = sorted(m[len("addon."):] for m in sys.modules if m.startswith("addon."))
print(json.dumps(loaded))
"""


def _relative_imports(name: str) -> list[tuple[str, bool]]:
    """[(addon module imported, at module level?)] of addon/<name>.py, from its source."""
    tree = ast.parse((ADDON_DIR / f"{name}.py").read_text())
    top = {id(node) for node in tree.body}
    for node in tree.body:   # imports inside a module-level try: still module level
        if isinstance(node, ast.Try):
            top |= {id(n) for n in ast.walk(node)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            names = [node.module.split(".")[0]] if node.module else [a.name for a in node.names]
            found += [(n, id(node) in top) for n in names if n in MODULES]
    return found


def test_every_addon_module_imports_alone_in_a_fresh_interpreter():
    done = subprocess.run([sys.executable, "-c", IMPORT_EACH_ALONE, str(ROOT), *MODULES],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert sorted(loaded) == MODULES
    # Declarations and the seam load nothing else of the add-on.
    assert loaded["properties"] == ["properties"]
    assert loaded["blender_api"] == ["blender_api"]


def test_no_import_loop_even_through_imports_inside_functions():
    graph = {name: {target for target, _ in _relative_imports(name)} for name in MODULES}
    path: list[str] = []

    def visit(name, done=set()):
        assert name not in path, f"import loop: {' -> '.join(path[path.index(name):] + [name])}"
        if name in done:
            return
        path.append(name)
        for target in sorted(graph[name]):
            visit(target)
        path.pop()
        done.add(name)

    for name in MODULES:
        visit(name)


def test_properties_imports_no_logic_module_at_module_level():
    at_top = {target for target, top in _relative_imports("properties") if top}
    assert not at_top & (set(MODULES) - NOT_LOGIC), at_top
    # ...and no logic module imports properties at all (that was the loop).
    for name in MODULES:
        assert "properties" not in {t for t, _ in _relative_imports(name)}, name


def test_blender_api_is_the_only_module_that_asks_for_the_version():
    found = []
    for path in [*ADDON_DIR.glob("*.py"), *(ROOT / "training").rglob("*.py"),
                 *(ROOT / "scripts").glob("*.py"), *(ROOT / "benchmarks").glob("*.py"),
                 ROOT / "blender_tests" / "conftest.py"]:
        if path.name != "blender_api.py":
            text = path.read_text()
            found += [f"{path.relative_to(ROOT)}: {needle}" for needle in VERSION_SWITCHES
                      if needle in text]
    assert found == []


def test_the_seam_matches_this_blender():
    scene = bpy.data.scenes.new("seam")
    try:
        assert blender_api.BLENDER_5 == hasattr(scene, "compositing_node_group")
        tree = blender_api.compositor_tree(scene)
        socket = blender_api.output_socket(tree)
        assert socket.node.bl_idname == ("NodeGroupOutput" if blender_api.BLENDER_5
                                         else "CompositorNodeComposite")
        mix = blender_api.new_mix_node(tree)
        factor, a, b, result = blender_api.mix_sockets(mix)
        assert (factor.type, a.type, b.type, result.type) == ("VALUE", "RGBA", "RGBA", "RGBA")
        settings = scene.render.image_settings
        blender_api.set_multilayer_exr(settings, depth="16", codec="NONE")
        assert (settings.file_format, settings.color_depth, settings.exr_codec) == \
            ("OPEN_EXR_MULTILAYER", "16", "NONE")
        scene.render.engine = blender_api.EEVEE      # raises if the id is wrong
        assert schema.is_eevee(scene.render.engine)
    finally:
        blender_api.remove_compositor_tree(scene)


def test_tile_size_means_what_the_runtime_means(addon):
    from neural_core import runtime
    scene = build_scene()
    settings = scene.photoreal
    assert settings.bl_rna.properties["tile_size"].default == runtime.DEFAULT_TILE_SIZE
    enhance = submodule("enhance")
    assert enhance.get_enhancer(settings).tile_size == runtime.DEFAULT_TILE_SIZE
    settings.tile_size = 0                            # never tile, as the CLI's --tile 0
    assert enhance.get_enhancer(settings).tile_size == 0


def test_a_hand_edited_mix_factor_is_derived_again_from_the_strength(addon):
    scene = build_scene(strength=0.25)
    compositor = submodule("compositor")
    compositor.ensure_nodes(scene)
    socket = compositor.strength_socket(comp_tree(scene))
    socket.default_value = 0.9                        # edited by hand in the node editor
    submodule("batch").on_render_init(scene)
    assert abs(socket.default_value - 0.25) < 1e-6
