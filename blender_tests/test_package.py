"""The extension zip from build_addon.py: manifest, wheels, bundled runtime and models."""
import re
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT


@pytest.fixture(scope="module")
def package(addon_zip):
    with zipfile.ZipFile(addon_zip) as archive:
        names = archive.namelist()
        manifest = tomllib.loads(archive.read("blender_manifest.toml").decode())
    return names, manifest


def test_manifest(package):
    _, manifest = package
    assert manifest["id"] == "photoreal_enhance" and manifest["type"] == "add-on"
    assert re.fullmatch(r"\d+\.\d+\.\d+", manifest["version"])
    assert manifest["blender_version_min"] == "4.2.0"
    assert set(manifest["permissions"]) == {"files"}          # no network
    assert manifest["platforms"] == ["linux-x64"]


def test_wheels_cover_both_pythons_and_never_numpy(package):
    names, manifest = package
    wheels = [Path(w).name for w in manifest["wheels"]]
    assert all(f"wheels/{w}" in names for w in wheels)
    for tag in ("cp311", "cp313"):
        assert any(w.startswith("onnxruntime-") and f"-{tag}-" in w for w in wheels), tag
        assert any(w.startswith("openexr-") and f"-{tag}-" in w for w in wheels), tag
    for dependency in ("flatbuffers-", "packaging-", "protobuf-"):
        assert any(w.startswith(dependency) for w in wheels), dependency
    assert not any(w.startswith(("numpy-", "onnxruntime_gpu-", "torch-")) for w in wheels)


def test_runtime_and_models_bundled_without_torch_code(package):
    names, _ = package
    assert {"__init__.py", "neural_core/runtime.py", "neural_core/schema.py",
            "neural_core/dataset_format.py"} <= set(names)
    assert {"neural_core/models/rad.onnx", "neural_core/models/crn.onnx"} <= set(names)
    assert not any(n.startswith("neural_core/networks/") or n == "neural_core/export.py" for n in names)


def test_installed_addon_never_imports_torch(addon):
    folder = Path(addon.__file__).parent
    for source in folder.rglob("*.py"):
        assert not re.search(r"^\s*(import|from)\s+torch\b", source.read_text(), re.MULTILINE), source
    assert "torch" not in sys.modules


def test_gpu_package_refuses_platforms_without_onnxruntime_gpu():
    sys.path.insert(0, str(ROOT))
    try:
        import build_addon
    finally:
        sys.path.remove(str(ROOT))
    with pytest.raises(SystemExit) as exit_info:
        build_addon.main(["--gpu", "--platform", "macos-arm64", "--out", str(ROOT / "dist")])
    assert exit_info.value.code == 2
