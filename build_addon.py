"""Build the Photoreal Enhance Blender extension zip(s) into dist/.

    python build_addon.py [--out dist] [--platform linux-x64 [windows-x64 macos-arm64 ...]] [--gpu]

One zip per platform, each holding:
- the add-on (addon/) with blender_manifest.toml (platforms and wheels filled in);
- the neural_core runtime (without the torch-only networks/ and export.py) and its models;
- wheels for Python 3.11 (Blender 4.2-5.0) and 3.13 (Blender 5.1+): onnxruntime (or
  onnxruntime-gpu with --gpu: a separate package, never both in one) and its dependencies
  flatbuffers, packaging, protobuf; OpenEXR (Blender bundles no EXR reader for Python);
  Pillow (PNG files of the dataset export); numba and llvmlite (the temporal filter's compiled
  kernels; llvmlite is ~60 MB per Python version). Never numpy: Blender pins its own.
Wheels are fetched once with `pip download --only-binary=:all: --no-deps` into .whl/ and reused,
so later builds work offline.
"""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent
ADDON_ID = "photoreal_enhance"
PYTHONS = ("3.11", "3.13")
# Blender platform name -> pip platform tags (pip also accepts older manylinux/macOS tags).
PLATFORMS = {
    "linux-x64": ["manylinux_2_28_x86_64"],
    "windows-x64": ["win_amd64"],
    "macos-arm64": ["macosx_14_0_arm64"],
}
GPU_PLATFORMS = ("linux-x64", "windows-x64")    # onnxruntime-gpu exists only there
# onnxruntime's own dependencies (numpy excluded: Blender's). Pinned to what the tests use.
ORT_DEPENDENCIES = {"flatbuffers": "25.12.19", "packaging": "26.3", "protobuf": "7.36.2"}
# Packages taken with their pins from requirements/runtime.txt.
FROM_RUNTIME_REQUIREMENTS = ("onnxruntime", "OpenEXR", "Pillow", "numba", "llvmlite")
# neural_core parts that need torch: never shipped (the add-on must not import torch).
CORE_EXCLUDE = {"networks", "export.py", "__pycache__", "assets"}


def runtime_pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements" / "runtime.txt").read_text().splitlines():
        match = re.match(r"^\s*([A-Za-z0-9_.-]+)==([^\s#]+)", line)
        if match and match.group(1) in FROM_RUNTIME_REQUIREMENTS:
            pins[match.group(1)] = match.group(2)
    missing = set(FROM_RUNTIME_REQUIREMENTS) - set(pins)
    if missing:
        sys.exit(f"error: requirements/runtime.txt lacks pins for {sorted(missing)}")
    return pins


def wheel_requirements(gpu: bool) -> dict[str, str]:
    pins = runtime_pins()
    if gpu:
        pins["onnxruntime-gpu"] = pins.pop("onnxruntime")
    pins.update(ORT_DEPENDENCIES)
    return pins


def _wheel_prefix(name: str, version: str) -> str:
    return f"{re.sub(r'[-_.]+', '_', name).lower()}-{version}-"


def fetch_wheels(platform: str, python: str, requirements: dict[str, str], cache: Path) -> list[Path]:
    """Wheels for one platform and Python version, from the cache or downloaded into it."""
    folder = cache / f"{platform}-cp{python.replace('.', '')}"
    folder.mkdir(parents=True, exist_ok=True)

    def cached(name, version):
        prefix = _wheel_prefix(name, version)
        return sorted(p for p in folder.glob("*.whl") if p.name.lower().startswith(prefix))

    missing = [f"{n}=={v}" for n, v in requirements.items() if not cached(n, v)]
    if missing:
        print(f"downloading {', '.join(missing)} for {platform} / Python {python}", flush=True)
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
                   "--only-binary=:all:", "--no-deps", "--python-version", python,
                   "--implementation", "cp", "--dest", str(folder)]
        for tag in PLATFORMS[platform]:
            command += ["--platform", tag]
        if subprocess.run(command + missing).returncode != 0:
            sys.exit(f"error: could not download {', '.join(missing)} for {platform} / Python "
                     f"{python}; connect to the network once (wheels are then kept), or put "
                     f"those .whl files into {folder}")
    wheels = []
    for name, version in requirements.items():
        found = cached(name, version)
        if not found:
            sys.exit(f"error: no {name}=={version} wheel for {platform} / Python {python}")
        wheels.append(found[-1])
    return wheels


def stage_sources(stage: Path) -> None:
    shutil.copytree(ROOT / "addon", stage, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    core = stage / "neural_core"
    shutil.copytree(ROOT / "neural_core", core,
                    ignore=lambda _dir, names: [n for n in names if n in CORE_EXCLUDE or n.endswith(".pyc")])
    models = sorted((core / "models").glob("*.onnx")) if (core / "models").is_dir() else []
    if not models:
        print("warning: neural_core/models/ has no .onnx models; the bundled RAD/CRN will be "
              "missing from the package", file=sys.stderr)
    for source in core.rglob("*.py"):
        if re.search(r"^\s*(import|from)\s+torch\b", source.read_text(), re.MULTILINE):
            sys.exit(f"error: {source.relative_to(stage)} imports torch; the add-on runtime must not")


def write_manifest(stage: Path, platform: str, wheels: list[str]) -> None:
    manifest = (ROOT / "addon" / "blender_manifest.toml").read_text()
    generated = [f'platforms = ["{platform}"]', "wheels = ["]
    generated += [f'  "./wheels/{name}",' for name in wheels] + ["]", ""]
    # Top-level keys must come before the first [table] of the TOML file.
    head, table, tail = manifest.partition("\n[")
    (stage / "blender_manifest.toml").write_text(head.rstrip() + "\n" + "\n".join(generated)
                                                 + table + tail)


def manifest_version() -> str:
    text = (ROOT / "addon" / "blender_manifest.toml").read_text()
    return re.search(r'^version\s*=\s*"([^"]+)"', text, re.MULTILINE).group(1)


def build(platform: str, gpu: bool, out: Path, cache: Path) -> Path:
    flavour = f"{platform.replace('-', '_')}{'-gpu' if gpu else ''}"
    stage = out / "build" / flavour / ADDON_ID
    shutil.rmtree(stage.parent, ignore_errors=True)
    stage_sources(stage)
    wheel_dir = stage / "wheels"
    wheel_dir.mkdir()
    names = []
    for python in PYTHONS:
        for wheel in fetch_wheels(platform, python, wheel_requirements(gpu), cache):
            if wheel.name not in names:         # py3-none-any / abi3 wheels serve both Pythons
                shutil.copy2(wheel, wheel_dir / wheel.name)
                names.append(wheel.name)
    write_manifest(stage, platform, names)

    zip_path = out / f"{ADDON_ID}-{manifest_version()}-{flavour}.zip"
    tmp = zip_path.with_suffix(".zip.tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(stage.rglob("*")):
            if path.is_file():
                compress = zipfile.ZIP_STORED if path.suffix == ".whl" else zipfile.ZIP_DEFLATED
                archive.write(path, path.relative_to(stage).as_posix(), compress_type=compress)
    tmp.replace(zip_path)
    shutil.rmtree(stage.parent, ignore_errors=True)
    return zip_path


def validate(zip_path: Path) -> None:
    """Run Blender's own extension validator when the bpy module is importable here."""
    try:
        import importlib.util
        spec = importlib.util.find_spec("bpy")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        return
    tools = list(Path(next(iter(spec.submodule_search_locations))).glob(
        "*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
    if tools:
        subprocess.run([sys.executable, str(tools[0]), "validate", str(zip_path)], check=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "dist")
    parser.add_argument("--platform", nargs="+", default=["linux-x64"], choices=sorted(PLATFORMS))
    parser.add_argument("--gpu", action="store_true",
                        help="bundle onnxruntime-gpu (CUDA 13, cuDNN 9) instead of onnxruntime")
    parser.add_argument("--wheel-cache", type=Path, default=ROOT / ".whl")
    args = parser.parse_args(argv)
    if args.gpu and (bad := [p for p in args.platform if p not in GPU_PLATFORMS]):
        parser.error(f"no onnxruntime-gpu for {', '.join(bad)}; GPU packages: {', '.join(GPU_PLATFORMS)}")
    args.out.mkdir(parents=True, exist_ok=True)
    for platform in args.platform:
        zip_path = build(platform, args.gpu, args.out, args.wheel_cache)
        validate(zip_path)
        print(f"built {zip_path} ({zip_path.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
