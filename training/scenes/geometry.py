"""Light-weight meshes (built with bmesh, no operators) and semantically tagged objects.

Meshes are built in metres with their origin at the bottom centre, so procedural textures
that use object coordinates (building windows) get real-world scale.
"""
from __future__ import annotations

import math

import bmesh
import bpy

from neural_core import schema

from .blender_compat import shade_smooth


def tag(obj, class_name: str) -> None:
    """Give an object its semantic class: the custom property and the pass_index encoding it."""
    obj[schema.CLASS_PROPERTY] = class_name
    obj.pass_index = schema.pass_index_for_class(class_name)


def _mesh_from_bmesh(name: str, bm, smooth: bool = False):
    mesh = bpy.data.meshes.new(name)
    bm.to_mesh(mesh)
    bm.free()
    if smooth:
        shade_smooth(mesh)
    return mesh


def box_mesh(name: str, size) -> bpy.types.Mesh:
    sx, sy, sz = size
    bm = bmesh.new()
    bmesh.ops.create_cube(bm, size=1.0)
    bmesh.ops.scale(bm, vec=(sx, sy, sz), verts=bm.verts)
    bmesh.ops.translate(bm, vec=(0.0, 0.0, sz / 2), verts=bm.verts)
    return _mesh_from_bmesh(name, bm)


def cylinder_mesh(name: str, radius: float, height: float, segments: int = 10,
                  top_radius: float | None = None) -> bpy.types.Mesh:
    bm = bmesh.new()
    bmesh.ops.create_cone(bm, cap_ends=True, cap_tris=False, segments=segments, radius1=radius,
                          radius2=radius if top_radius is None else top_radius, depth=height)
    bmesh.ops.translate(bm, vec=(0.0, 0.0, height / 2), verts=bm.verts)
    return _mesh_from_bmesh(name, bm, smooth=True)


def sphere_mesh(name: str, radius: float, subdivisions: int = 2) -> bpy.types.Mesh:
    bm = bmesh.new()
    bmesh.ops.create_icosphere(bm, subdivisions=subdivisions, radius=radius)
    return _mesh_from_bmesh(name, bm, smooth=True)


def dome_mesh(name: str, radius: float, segments: int = 24, rings: int = 8) -> bpy.types.Mesh:
    """Upper hemisphere, normals pointing inwards (seen from inside)."""
    bm = bmesh.new()
    bmesh.ops.create_uvsphere(bm, u_segments=segments, v_segments=rings * 2, radius=radius)
    bmesh.ops.delete(bm, geom=[v for v in bm.verts if v.co.z < -radius * 0.25], context="VERTS")
    bmesh.ops.reverse_faces(bm, faces=bm.faces)
    return _mesh_from_bmesh(name, bm, smooth=True)


class Builder:
    """Creates tagged objects in one scene and keeps count of them, class by class."""

    def __init__(self, scene, materials, frame: int = 1):
        self.scene = scene
        self.materials = materials
        self.frame = frame  # the frame that is rendered; animated objects move through it
        self.count = 0

    def add(self, mesh, class_name: str, material, location=(0, 0, 0), rotation_z: float = 0.0,
            rotation=None):
        self.count += 1
        obj = bpy.data.objects.new(f"{class_name.replace(' ', '_')}.{self.count:04d}", mesh)
        self.scene.collection.objects.link(obj)
        obj.location = location
        obj.rotation_euler = rotation if rotation is not None else (0.0, 0.0, rotation_z)
        mesh.materials.append(material)
        tag(obj, class_name)
        return obj

    def box(self, class_name, size, location, material=None, rotation_z=0.0):
        material = material or self.materials.random(class_name)
        return self.add(box_mesh(f"box.{self.count}", size), class_name, material, location, rotation_z)

    def cylinder(self, class_name, radius, height, location, material=None, segments=10,
                 top_radius=None, rotation=None):
        material = material or self.materials.random(class_name)
        mesh = cylinder_mesh(f"cyl.{self.count}", radius, height, segments, top_radius)
        return self.add(mesh, class_name, material, location, rotation=rotation)

    def sphere(self, class_name, radius, location, material=None, subdivisions=2):
        material = material or self.materials.random(class_name)
        return self.add(sphere_mesh(f"sph.{self.count}", radius, subdivisions), class_name, material,
                        location)


def rotate2d(x: float, y: float, angle: float) -> tuple[float, float]:
    c, s = math.cos(angle), math.sin(angle)
    return x * c - y * s, x * s + y * c


def monkey_mesh(name: str, size: float) -> bpy.types.Mesh:
    """Blender's Suzanne, `size` metres across, sitting on its origin, facing -y (the camera)."""
    bm = bmesh.new()
    bmesh.ops.create_monkey(bm)
    bmesh.ops.subdivide_edges(bm, edges=bm.edges, cuts=1, use_grid_fill=True)
    bmesh.ops.scale(bm, vec=(size / 2.7,) * 3, verts=bm.verts)
    low = min(v.co.z for v in bm.verts)
    bmesh.ops.translate(bm, vec=(0.0, 0.0, -low), verts=bm.verts)
    return _mesh_from_bmesh(name, bm, smooth=True)
