"""Photoreal Enhance: a neural render pass for Blender (see README).

Everything lives in submodules; this file only registers them. They are imported in
register(), not here, so that a single module (blender_api, for the scene generator and the
tests) can be imported without loading the add-on.
"""
import importlib

# Registration order; unregister runs it backwards.
_MODULES = ("properties", "operators", "ui", "render_pass", "batch", "compositor", "temporal")


def _module(name):
    return importlib.import_module(f"{__package__}.{name}")


def register():
    for name in _MODULES:
        _module(name).register()


def unregister():
    for name in reversed(_MODULES):
        _module(name).unregister()
    _module("enhance").clear_cache()
    _module("readback").remove_temp_directory()
