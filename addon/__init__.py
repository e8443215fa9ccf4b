"""Photoreal Enhance: a neural render pass for Blender (see README).

Everything lives in submodules; this file only registers them.
"""
from . import batch, compositor, operators, properties, render_pass, temporal, ui

_MODULES = (properties, operators, ui, render_pass, batch, compositor, temporal)


def register():
    for module in _MODULES:
        module.register()


def unregister():
    from . import enhance, readback
    for module in reversed(_MODULES):
        module.unregister()
    enhance.clear_cache()
    readback.remove_temp_directory()
