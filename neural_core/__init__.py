"""neural_core: the G-buffer schema, the RAD and CRN networks, ONNX export and the runtime.

Import map (torch is only needed by the marked modules; the add-on never imports them):
- schema      passes, Blender names, classes, normalisation, frame -> tensors
- exr         OpenEXR reading/writing (multi-part aware)
- metadata    the metadata embedded in exported ONNX files
- runtime     onnxruntime sessions, providers, tiled inference
- networks    RAD and CRN in PyTorch                      [torch]
- export      PyTorch -> ONNX with metadata               [torch]
"""

__version__ = "0.1.0"
