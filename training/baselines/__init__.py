"""Baselines the trained models are compared against (see training/README.md).

denoise_node: Blender's own Denoise compositor node (OpenImageDenoise) through bpy.
"""
