"""Run Ultralytics with nothing fetched from the network (tests, ``demo --yolo``).

``prepare(config_dir)`` must run before ``ultralytics`` is imported: it points
``YOLO_CONFIG_DIR`` at a private folder, sets ``YOLO_OFFLINE=1``, places a font there so
no ``Arial.ttf`` is downloaded (matplotlib's DejaVu Sans serves), and registers a pure-torch
``torchvision::nms`` when the compiled one is missing. ``quiet_settings()`` (after import)
turns every Ultralytics integration and sync off.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def prepare(config_dir: str | os.PathLike[str]) -> Path:
    folder = Path(config_dir)
    folder.mkdir(parents=True, exist_ok=True)
    os.environ["YOLO_CONFIG_DIR"] = str(folder)
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ.setdefault("YOLO_VERBOSE", "False")
    import matplotlib

    font = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    for name in ("Arial.ttf", "Arial.Unicode.ttf"):
        if not (folder / name).exists():
            shutil.copyfile(font, folder / name)
    from trialbook.integrations._torchvision_shim import ensure_nms

    ensure_nms()
    return folder


def quiet_settings() -> None:
    from ultralytics import settings

    off = {
        k: False
        for k in (
            "sync",
            "hub",
            "clearml",
            "comet",
            "dvc",
            "mlflow",
            "neptune",
            "raytune",
            "tensorboard",
            "wandb",
            "vscode_msg",
        )
        if k in settings
    }
    settings.update(off)
