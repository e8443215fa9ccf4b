"""neural_core: what runs a model on a Blender frame, with and without Blender.

Modules (torch only where marked: the add-on bundles the rest and never imports torch; the
build leaves the marked ones out):
- schema          the passes (keys, Blender names, channels, transforms), classes and
                  G-buffer normalisation, defined once; Frame and frame checks
- exr             OpenEXR reading and writing of Blender's multilayer files (4.x and 5.x)
- metadata        the metadata embedded in exported ONNX files
- runtime         Enhancer: onnxruntime sessions, devices, whole-frame or tiled inference
- tiling          overlapping tiles with feathered blending
- limits          argument and memory checks made before any work
- fallbacks       what happens to frames that are not quite what a model was trained on
- temporal        temporal stability: history along the Vector pass
- sequence        EXR sequences for the CLI (temporal filter, progress, resume)
- dataset_format  the dataset files the add-on exports and training reads
- display         the view transform for PNGs (the one sRGB encoder) and comparison images
- files           atomic file writes and the fast temporary folder
- buffers         arrays reused from frame to frame
- errors          the errors users see
- cli             `python -m neural_core` (enhance, info, demo)
- networks        RAD and CRN in PyTorch                                  [torch]
- export          PyTorch -> ONNX with metadata                           [torch]
"""

__version__ = "0.1.0"
