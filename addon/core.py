"""The neural_core runtime this add-on uses.

build_addon.py bundles a copy of neural_core inside the extension, so the add-on imports it
relatively (extensions must not change sys.path). Running from a source checkout, where the
package sits next to addon/, falls back to the importable top-level package.
"""
import importlib

try:
    from . import neural_core
    from .neural_core import buffers, dataset_format, errors, exr, files, limits, metadata, schema
except ImportError:  # source checkout: neural_core is importable on its own
    import neural_core
    from neural_core import buffers, dataset_format, errors, exr, files, limits, metadata, schema

__all__ = ["neural_core", "buffers", "dataset_format", "errors", "exr", "files", "limits", "metadata", "schema", "runtime"]


def runtime():
    """neural_core.runtime, imported on first use: it loads onnxruntime (slow to import)."""
    return importlib.import_module(neural_core.__name__ + ".runtime")
