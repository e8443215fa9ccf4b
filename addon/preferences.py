"""Reading the add-on preferences (declared in properties.py) from the logic modules."""
import bpy


def preferences(context=None):
    """The add-on preferences, or None when the add-on is not enabled through Blender's list."""
    context = context or bpy.context
    addon = context.preferences.addons.get(__package__)
    return addon.preferences if addon else None
