"""Record each frame's light-path depth in the manifests of a corpus that `make-scenes` wrote
before frames recorded it (the `bounces` input of models on top of Cycles' denoiser).

    .venv/bin/python scripts/backfill_light_paths.py data/corpus2/train data/corpus2/eval

The settings come from ROOT/scenes.json: a scene's own drawn fast preset, else the folder's
fixed preset. Frames that already record it are left as they are; manifests are rewritten
atomically. Corpora rendered with this version need none of this.
"""
from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from neural_core.dataset_format import MANIFEST  # noqa: E402
from neural_core.files import write_text_atomic  # noqa: E402
from training.make_scenes import SCENES_FILE  # noqa: E402
from training.scenes.render import draw_fast_preset  # noqa: E402


def folder_settings(record: dict, folder: str, scene: dict) -> dict:
    preset = record["presets"][folder]
    if isinstance(preset, str):   # "drawn per scene": recorded, or drawn again from its seed
        preset = scene.get("fast_preset") or asdict(draw_fast_preset(scene["seed"]))
    return {"max_bounces": int(preset["max_bounces"]), "diffuse_bounces": int(preset["diffuse_bounces"])}


def backfill(root: Path) -> int:
    record = json.loads((root / SCENES_FILE).read_text())
    if any("frame_ids" in scene or "sequence" in scene for scene in record["scenes"].values()):
        raise SystemExit(f"{root}: sequences are not handled here; re-render them with this version")
    changed = 0
    for folder in sorted(record["presets"]):
        manifest_path = root / folder / MANIFEST
        if not manifest_path.is_file():
            continue
        manifest = json.loads(manifest_path.read_text())
        for number, entry in manifest["frames"].items():
            if "light_paths" not in entry and number in record["scenes"]:
                entry["light_paths"] = folder_settings(record, folder, record["scenes"][number])
                changed += 1
        write_text_atomic(manifest_path, json.dumps(manifest, indent=1) + "\n")
    return changed


if __name__ == "__main__":
    for root in sys.argv[1:] or ["data/corpus2/train", "data/corpus2/eval"]:
        print(f"{root}: {backfill(Path(root))} frame(s) given their light-path depth")
