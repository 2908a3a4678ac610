"""A pure-torch ``torchvision::nms`` for installs whose compiled torchvision ops do not
load against the installed torch (seen with CPU builds of torch beside a torchvision wheel
built for another one: ``operator torchvision::nms does not exist``).

``ensure_nms()`` does nothing when torchvision's compiled library loads; otherwise it
defines ``torchvision::nms`` (and the ``qnms`` schema torchvision registers a fake for)
before torchvision is imported, then marks torchvision's ops as present, so
``torchvision.ops.nms`` (which Ultralytics' post-processing calls) works. Only the test
harness and ``trialbook demo --yolo`` call it.
"""

from __future__ import annotations

import glob
import importlib.util
import os
from typing import Any

_library: Any = None


def _compiled_ops_load() -> bool:
    import torch

    spec = importlib.util.find_spec("torchvision")
    if spec is None or spec.origin is None:
        return False
    folder = os.path.dirname(spec.origin)
    for lib in glob.glob(os.path.join(folder, "_C*.so")):
        try:
            torch.ops.load_library(lib)
            return True
        except (OSError, RuntimeError):
            return False
    return False


def nms_reference(boxes: Any, scores: Any, iou_threshold: float) -> Any:
    """Greedy non-maximum suppression in plain torch: indices kept, by falling score."""
    import torch

    if boxes.numel() == 0:
        return torch.empty((0,), dtype=torch.int64, device=boxes.device)
    order = scores.argsort(descending=True)
    x1, y1, x2, y2 = boxes.unbind(1)
    areas = (x2 - x1).clamp(min=0) * (y2 - y1).clamp(min=0)
    keep = []
    while order.numel() > 0:
        i = order[0]
        keep.append(i)
        if order.numel() == 1:
            break
        rest = order[1:]
        w = (torch.minimum(x2[i], x2[rest]) - torch.maximum(x1[i], x1[rest])).clamp(min=0)
        h = (torch.minimum(y2[i], y2[rest]) - torch.maximum(y1[i], y1[rest])).clamp(min=0)
        inter = w * h
        iou = inter / (areas[i] + areas[rest] - inter).clamp(min=1e-12)
        order = rest[iou <= iou_threshold]
    return torch.stack(keep).to(torch.int64)


def ensure_nms() -> bool:
    """Register the pure-torch op if the compiled one is missing. True if registered."""
    global _library
    if _library is not None or _compiled_ops_load():
        return False
    import torch

    lib = torch.library.Library("torchvision", "DEF")
    lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    lib.impl("nms", nms_reference, "CompositeExplicitAutograd")
    _library = lib
    # torchvision imports cleanly now; tell its Python wrappers that the op exists.
    import torchvision.extension

    torchvision.extension._has_ops = lambda: True
    return True
