"""The procedural scene generator and `make-scenes`, with the real bpy module (Blender 4.5 in
this venv). Blender runs in subprocesses: each process gets a fresh bpy, as a user's would.
"""
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from neural_core import dataset_format, schema

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(importlib.util.find_spec("bpy") is None,
                                reason="needs the bpy module (make .venv/.installed)")

# Builds scenes and prints, per scene, what a deterministic build must reproduce.
SUMMARY_SCRIPT = r"""
import json, sys
import bpy
from neural_core import schema
from training.scenes import build_scene, SCENE_PASSES

def summary(kind, seed):
    info = build_scene(kind, seed, (64, 36))
    scene = bpy.context.scene
    objects = []
    for obj in sorted(scene.objects, key=lambda o: o.name):
        mats = [s.material for s in obj.material_slots if s.material]
        objects.append({
            "name": obj.name, "type": obj.type,
            "class": obj.get(schema.CLASS_PROPERTY), "pass_index": obj.pass_index,
            "location": [round(v, 5) for v in obj.matrix_world.translation],
            "materials": [{"name": m.name, "pass_index": m.pass_index,
                           "aovs": sorted(n.aov_name for n in m.node_tree.nodes
                                          if n.bl_idname == "ShaderNodeOutputAOV")} for m in mats],
        })
    layer = scene.view_layers[0]
    enabled = {k: (schema.PASSES[k].blender_names[0] in layer.aovs) if schema.PASSES[k].is_aov
               else bool(getattr(layer, schema.PASSES[k].setting)) for k in SCENE_PASSES}
    materials = [m for m in bpy.data.materials if m.node_tree]
    return {"info": info, "objects": objects, "enabled": enabled, "engine": scene.render.engine,
            "motion_blur": scene.render.use_motion_blur, "camera": scene.camera is not None,
            "world_nodes": sorted({n.bl_idname for n in scene.world.node_tree.nodes}),
            "textured_materials": sum(any(n.bl_idname.startswith("ShaderNodeTex") and
                                          n.bl_idname != "ShaderNodeTexCoord" for n in m.node_tree.nodes)
                                      for m in materials),
            "aovs_match_bsdf": all(aov_matches_bsdf(m) for m in materials),
            "lobes": sorted({lobe for m in materials for lobe in lobes(m)})}

def lobes(material):
    # Principled BSDF lobes past diffuse/specular/metal that the material turns on, and volumes.
    found = [name for n in material.node_tree.nodes if n.bl_idname == "ShaderNodeBsdfPrincipled"
             for name in ("Transmission", "Subsurface", "Coat", "Sheen")
             if n.inputs[name + " Weight"].default_value > 0]
    output = next(n for n in material.node_tree.nodes if n.bl_idname == "ShaderNodeOutputMaterial")
    return found + (["Volume"] if output.inputs["Volume"].is_linked else [])

def aov_matches_bsdf(material):
    # The roughness/metallic AOVs are fed from the very sockets the Principled BSDF reads.
    nodes = material.node_tree.nodes
    bsdf = next((n for n in nodes if n.bl_idname == "ShaderNodeBsdfPrincipled"), None)
    if bsdf is None:
        return True
    for aov in (n for n in nodes if n.bl_idname == "ShaderNodeOutputAOV"):
        source = {"roughness": "Roughness", "metallic": "Metallic"}[aov.aov_name]
        if aov.inputs["Value"].links[0].from_socket != bsdf.inputs[source].links[0].from_socket:
            return False
    return True

print("SUMMARY" + json.dumps([summary(k, int(s)) for k, s in (a.split(":") for a in sys.argv[1:])]))
"""


BLENDER_5_PYTHON = REPO / ".venv313" / "bin" / "python"
KINDS = ("street", "interior", "tabletop", "closeup")
PRODUCT_SHOTS = ("tabletop", "closeup")


def run_python(args, python=sys.executable, hashseed="0"):
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONHASHSEED=hashseed)
    return subprocess.run([str(python), *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=240)


def build_summaries(*specs, hashseed="0", python=sys.executable):
    result = run_python(["-c", SUMMARY_SCRIPT, *specs], hashseed=hashseed, python=python)
    assert result.returncode == 0, result.stderr[-3000:]
    line = next(l for l in result.stdout.splitlines() if l.startswith("SUMMARY"))
    return json.loads(line[len("SUMMARY"):])


@pytest.fixture(scope="module")
def summaries():
    """Per kind (street, interior, tabletop, closeup): seed 3 twice and seed 4 in one process;
    seed 3 again in another process with another hash seed."""
    first = build_summaries(*(f"{kind}:{seed}" for kind in KINDS for seed in (3, 3, 4)))
    again = build_summaries(*(f"{kind}:3" for kind in KINDS), hashseed="123")
    return first, again


@pytest.mark.parametrize("kind,offset", [(kind, 3 * i) for i, kind in enumerate(KINDS)])
def test_build_is_deterministic_per_seed(summaries, kind, offset):
    first, again = summaries
    same, same_again, other = first[offset], first[offset + 1], first[offset + 2]
    assert same["objects"] == same_again["objects"]
    assert same["objects"] == again[offset // 3]["objects"]
    assert same["info"]["objects"] > (5 if kind in PRODUCT_SHOTS else 20)
    other_locations = [o["location"] for o in other["objects"]]
    assert [o["location"] for o in same["objects"]] != other_locations


@pytest.mark.skipif(not BLENDER_5_PYTHON.exists(), reason="needs .venv313 (bpy 5.x)")
def test_same_scenes_in_blender_5(summaries):
    """The generator runs unchanged on Blender 5.x and builds the very same scenes."""
    first, _ = summaries
    newer = build_summaries(*(f"{kind}:3" for kind in KINDS), python=BLENDER_5_PYTHON)
    assert newer[0]["info"]["blender"].startswith("5.")
    for old, new in zip(first[::3], newer):
        assert new["objects"] == old["objects"]
        assert all(new["enabled"].values()), new["enabled"]


@pytest.mark.parametrize("index", range(3 * len(KINDS)))
def test_every_object_and_material_is_tagged(summaries, index):
    scene = summaries[0][index]
    meshes = [o for o in scene["objects"] if o["type"] == "MESH"]
    assert meshes
    for obj in meshes:
        assert obj["class"] in schema.CLASSES and obj["class"] != "void", obj
        assert obj["pass_index"] == schema.pass_index_for_class(obj["class"]), obj
        assert obj["materials"], obj
        for mat in obj["materials"]:
            assert mat["pass_index"] == obj["pass_index"], (obj["name"], mat)
            assert mat["aovs"] == ["metallic", "roughness"], (obj["name"], mat)
    classes = {o["class"] for o in meshes}
    assert len(classes) >= (4 if scene["info"]["kind"] in PRODUCT_SHOTS else 8), classes
    assert sum(scene["info"]["classes"].values()) == len(meshes)


def test_scenes_have_fine_textures_real_hdris_and_varied_cameras(summaries):
    scenes = summaries[0]
    assert all(s["aovs_match_bsdf"] for s in scenes)
    assert all(s["textured_materials"] >= 2 for s in scenes), [s["textured_materials"] for s in scenes]
    tabletops = [s for s in scenes if s["info"]["kind"] in PRODUCT_SHOTS]
    for scene in tabletops:   # product shots are always lit by one of Blender's own HDRIs
        assert scene["info"]["hdri"] in {"city", "courtyard", "forest", "interior", "night", "studio",
                                        "sunrise", "sunset"}, scene["info"]
        assert "ShaderNodeTexEnvironment" in scene["world_nodes"]
    lenses = {s["info"]["lens"] for s in scenes}
    heights = {s["info"]["camera_height"] for s in scenes}
    assert len(lenses) >= 5 and len(heights) >= 5


def test_studio_scenes_have_what_the_other_kinds_lack():
    """The studio kind (a figure on a ground plane) draws glass, subsurface, coat, sheen and
    haze, which no other kind uses; its surfaces are tagged like every other kind's, and it is
    lit by one of Blender's HDRIs."""
    scenes = build_summaries(*(f"studio:{seed}" for seed in range(21000, 21006)))
    others = build_summaries(*(f"{kind}:3" for kind in KINDS))
    assert not any(s["lobes"] for s in others), [s["lobes"] for s in others]
    assert set().union(*(s["lobes"] for s in scenes)) == {"Transmission", "Subsurface", "Coat",
                                                         "Sheen", "Volume"}
    for scene in scenes:
        assert "Transmission" in scene["lobes"] and scene["aovs_match_bsdf"]
        assert "ShaderNodeTexEnvironment" in scene["world_nodes"]
        surfaces = [o for o in scene["objects"] if o["type"] == "MESH" and o["name"] != "Haze"]
        assert "person" in {o["class"] for o in surfaces}
        for obj in surfaces:
            assert obj["pass_index"] == schema.pass_index_for_class(obj["class"]), obj
            assert all(m["pass_index"] == obj["pass_index"] and m["aovs"] == ["metallic", "roughness"]
                       for m in obj["materials"]), obj


def test_closeups_fill_the_frame_with_a_product(summaries):
    """The frame's width at the nearest product (36 mm sensor) is at most 1 m, and that product
    is one of the close-up's glossy heroes (class car, truck or vegetation)."""
    for scene in (s for s in summaries[0] if s["info"]["kind"] == "closeup"):
        camera = np.array(next(o["location"] for o in scene["objects"] if o["type"] == "CAMERA"))
        products = [o for o in scene["objects"] if o["class"] in ("car", "truck", "vegetation", "person",
                                                                  "traffic sign")]
        nearest = min(products, key=lambda o: np.linalg.norm(np.array(o["location"]) - camera))
        width = np.linalg.norm(np.array(nearest["location"]) - camera) * 36.0 / scene["info"]["lens"]
        assert width <= 1.0 and nearest["class"] in ("car", "truck", "vegetation"), (width, nearest)


@pytest.mark.parametrize("index", [0, 3, 6])
def test_render_settings_enable_schema_passes(summaries, index):
    scene = summaries[0][index]
    assert all(scene["enabled"].values()), scene["enabled"]
    assert set(scene["enabled"]) >= {"depth", "normal", "albedo", "glossy", "emission",
                                     "object_index", "material_index", "position", "motion",
                                     "roughness", "metallic"}
    assert scene["motion_blur"] is False and scene["camera"]


# ---------------------------------------------------------------------------------------------
# make-scenes
# ---------------------------------------------------------------------------------------------

MAKE = ["-m", "training.make_scenes", "--resolution", "64x36", "--fast-samples", "2",
        "--reference-samples", "64", "--seed", "100", "--no-progress"]


def high_frequency_energy(rgb):
    """Mean |Laplacian| of the encoded image: sampling noise raises it, edges are shared."""
    x = schema.encode_radiance(rgb).mean(axis=-1)
    lap = 4 * x[1:-1, 1:-1] - x[:-2, 1:-1] - x[2:, 1:-1] - x[1:-1, :-2] - x[1:-1, 2:]
    return float(np.abs(lap).mean())


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    out = tmp_path_factory.mktemp("scenes") / "out"
    result = run_python([*MAKE, "--count", "2", "--out", str(out)])
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def test_make_scenes_writes_paired_frames(made):
    record = json.loads((made / "scenes.json").read_text())
    assert [record["scenes"][i]["kind"] for i in ("0", "1")] == ["street", "interior"]
    assert [record["scenes"][i]["seed"] for i in ("0", "1")] == [100, 101]
    fast, ref = dataset_format.DatasetReader(made / "fast"), dataset_format.DatasetReader(made / "reference")
    assert fast.frames == ref.frames == [0, 1]
    assert fast.manifest["samples"] == 2 and ref.manifest["samples"] == 64
    for number in fast.frames:
        f, r = fast.read_frame(number), ref.read_frame(number)
        required = ["image", *schema.DEFAULT_GBUFFER_PASSES, "object_index", "motion"]
        schema.check_frame(f, required)
        schema.check_frame(r, required)
        assert schema.frame_size(f) == schema.frame_size(r) == (36, 64)
        # Same scene and camera: the class maps agree except on antialiased edges.
        same_labels = (fast.read_labels(number) == ref.read_labels(number)).mean()
        assert same_labels > 0.9
        assert len(np.unique(fast.read_labels(number))) >= 4
        # The fast render is denoised by Cycles and keeps its noisy image; the reference (also
        # denoised, far more samples) is much less noisy than that noisy image.
        assert "noisy" in f and "noisy" in r
        assert high_frequency_energy(f["image"]) < 0.7 * high_frequency_energy(f["noisy"])
        assert high_frequency_energy(r["image"]) < 0.7 * high_frequency_energy(f["noisy"])
        assert np.isfinite(r["image"]).all() and r["image"].mean() > 0.01


def test_street_scene_has_motion_and_material_aovs(made):
    frame = dataset_format.DatasetReader(made / "reference").read_frame(0)
    assert np.abs(frame["motion"]).max() > 0.01           # moving cars, people and camera
    assert 0.0 <= frame["roughness"].min() and frame["roughness"].max() <= 1.0
    assert frame["roughness"].std() > 0.05 and frame["metallic"].max() > 0.1


def test_make_scenes_resumes_and_refuses_other_settings(made):
    fast_exr = made / "fast" / "frames" / "000000.exr"
    ref_exr = made / "reference" / "frames" / "000001.exr"
    stamp = fast_exr.stat().st_mtime_ns
    ref_exr.unlink()  # as if killed between the two renders of scene 1
    result = run_python([*MAKE, "--count", "3", "--out", str(made)])
    assert result.returncode == 0, result.stderr[-3000:]
    assert fast_exr.stat().st_mtime_ns == stamp           # finished scene 0 skipped
    assert ref_exr.is_file()                              # scene 1's missing reference redone
    assert dataset_format.DatasetReader(made / "reference").frames == [0, 1, 2]
    record = json.loads((made / "scenes.json").read_text())
    assert sorted(record["scenes"]) == ["0", "1", "2"]
    assert set(record["scenes"]["1"]["seconds"]) == {"fast", "reference"}

    changed = [a if a != "64" else "32" for a in MAKE]
    result = run_python([*changed, "--count", "3", "--out", str(made)])
    assert result.returncode == 2
    assert "presets.reference.samples: 64 there, 32 now" in result.stderr


def test_make_scenes_fixed_fast_settings_and_raw_reference(tmp_path):
    """Held-out sets: named fast settings (one folder each, denoised with the noisy image kept)
    and a reference without the denoiser."""
    out = tmp_path / "eval"
    args = ["-m", "training.make_scenes", "--resolution", "48x24", "--seed", "200", "--no-progress",
            "--count", "1", "--kinds", "tabletop", "--fast", "2spp-1b,4spp-3b",
            "--reference-samples", "8", "--reference-raw", "--out", str(out)]
    result = run_python(args)
    assert result.returncode == 0, result.stderr[-3000:]
    record = json.loads((out / "scenes.json").read_text())
    assert record["presets"]["fast-2spp-1b"]["max_bounces"] == 1
    assert record["presets"]["fast-4spp-3b"]["samples"] == 4
    assert record["presets"]["reference"]["denoise"] is False
    for folder in ("fast-2spp-1b", "fast-4spp-3b"):
        frame = dataset_format.DatasetReader(out / folder).read_frame(0)
        assert "noisy" in frame and not np.array_equal(frame["noisy"], frame["image"])
    assert "noisy" not in dataset_format.DatasetReader(out / "reference").read_frame(0)


DRAW_SCRIPT = r"""
import json
from training.scenes import draw_fast_preset
print("DRAWN" + json.dumps([[p.samples, p.max_bounces, p.denoise] for p in map(draw_fast_preset, range(10000, 10300))]))
print("LOW" + json.dumps([[p.samples, p.max_bounces] for p in (draw_fast_preset(s, (1, 3)) for s in range(10000, 10300))]))
"""


def test_each_corpus_scene_draws_its_fast_settings_from_its_seed():
    runs = []
    for _ in range(2):
        result = run_python(["-c", DRAW_SCRIPT])
        assert result.returncode == 0, result.stderr[-3000:]
        runs.append(json.loads(next(l for l in result.stdout.splitlines() if l.startswith("DRAWN"))[5:]))
    assert runs[0] == runs[1]                                    # resumable: the same draw
    samples, bounces, denoise = (np.array(column) for column in zip(*runs[0]))
    assert samples.min() == 1 and 48 <= samples.max() <= 64 and np.median(samples) < 16   # log-uniform
    assert bounces.min() == 1 and bounces.max() == 12 and denoise.all()
    # --fast-bounces 1-3: the same samples per seed, the bounces drawn from the narrower range.
    low = json.loads(next(l for l in result.stdout.splitlines() if l.startswith("LOW"))[3:])
    assert [row[0] for row in low] == list(samples)
    assert {row[1] for row in low} == {1, 2, 3}


def test_make_scenes_refuses_an_absurd_bounce_range(tmp_path):
    result = run_python(["-m", "training", "make-scenes", "--count", "1", "--out", str(tmp_path),
                         "--fast-bounces", "5-2"])
    assert result.returncode != 0 and "LO-HI" in result.stderr


def test_make_scenes_renders_the_fast_frames_with_eevee(tmp_path):
    """--fast-engine eevee: OUT/fast/ as an EEVEE user's frames come (class AOV, no noisy
    image, EEVEE's samples in the manifest); the reference is still Cycles'."""
    out = tmp_path / "eevee"
    args = ["-m", "training.make_scenes", "--resolution", "32x16", "--seed", "300", "--no-progress",
            "--count", "1", "--kinds", "tabletop", "--fast-engine", "eevee", "--fast-samples", "2",
            "--reference-samples", "4", "--out", str(out)]
    result = run_python(args)
    assert result.returncode == 0, result.stderr[-3000:]
    fast, ref = dataset_format.DatasetReader(out / "fast"), dataset_format.DatasetReader(out / "reference")
    assert schema.is_eevee(fast.manifest["engine"]) and fast.manifest["samples"] == 2
    assert ref.manifest["engine"] == "CYCLES"
    frame = fast.read_frame(0)
    assert "noisy" not in frame and "class_aov" in frame and "object_index" not in frame
    assert np.isfinite(frame["image"]).all() and frame["image"].mean() > 0.01
    # The same scene and camera in both engines: the class maps agree but on edges (EEVEE's
    # class AOV is filtered, its blends taken back: schema.unblended_class_values).
    assert (schema.class_map_from_frame(frame, "class_aov") == ref.read_labels(0)).mean() > 0.85
    record = json.loads((out / "scenes.json").read_text())
    assert record["presets"]["fast"]["engine"] == "eevee" and "engine" not in record["presets"]["reference"]

    refused = run_python([*args[:-2], "--fast", "4spp-1b", "--out", str(tmp_path / "other")])
    assert refused.returncode == 2 and "--fast-engine eevee renders OUT/fast/ only" in refused.stderr
