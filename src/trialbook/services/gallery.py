"""What the UI shows of a run's pictures, read cheaply (no artifact is opened): its image
artifacts as a gallery (the training's plots, then each evaluation's), the same plot of
several runs side by side, and whether the runs have the per-image predictions that the
"Where it got worse" section (``services.review``, loaded by the page's script) needs.

Sealed (test) evaluations' files are left out by the store, like their numbers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from typing_extensions import TypedDict

from trialbook.api import Book
from trialbook.core.entities import Artifact, Evaluation
from trialbook.services.review import find_predictions

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")

# Ultralytics' plots, most looked at first; other image names follow in name order.
PLOT_ORDER = (
    "results.png",
    "confusion_matrix.png",
    "confusion_matrix_normalized.png",
    "BoxPR_curve.png",
    "BoxF1_curve.png",
    "BoxP_curve.png",
    "BoxR_curve.png",
    "MaskPR_curve.png",
    "MaskF1_curve.png",
    "MaskP_curve.png",
    "MaskR_curve.png",
    "labels.jpg",
    "labels_correlogram.jpg",
)
TRAINING = "training"


class Plot(TypedDict):
    name: str
    digest: str
    size: int


class PlotGroup(TypedDict):
    """The plots of one source: the training (``evaluation`` null) or one evaluation."""

    title: str
    evaluation: str | None
    split: str | None
    created_at: float | None
    plots: list[Plot]


class Gallery(TypedDict):
    run: str
    project: str
    groups: list[PlotGroup]


class SidePlot(TypedDict):
    """One run's file of a plot name (``digest`` null: the run has none)."""

    run: str
    digest: str | None
    source: str | None


class SideBySide(TypedDict):
    """The compare page's plots: every image name any run has (those all runs have first)
    and, per name, each run's latest file of that name."""

    names: list[str]
    common: list[str]
    plots: dict[str, list[SidePlot]]


class PredictionsState(TypedDict):
    """Whether a run has per-image predictions for a split (its latest evaluation of the
    split that has them), and that evaluation's split digest."""

    run: str
    ready: bool
    evaluation: str | None
    split_digest: str | None


class ReviewSection(TypedDict):
    """The compare page's "Where it got worse": who is compared with whom on which split,
    and ``message`` (with the fix) when the review cannot be made."""

    split: str
    candidate: str | None
    baseline: str
    candidates: list[str]
    iou: float
    conf: float
    ready: bool
    message: str | None


class RunImagesSection(TypedDict):
    """The run page's "Images it gets most wrong": ``message`` when it has no predictions."""

    run: str
    split: str
    iou: float
    conf: float
    ready: bool
    message: str | None


def is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_SUFFIXES)


def _plot_key(name: str) -> tuple[int, str]:
    return (PLOT_ORDER.index(name) if name in PLOT_ORDER else len(PLOT_ORDER), name.lower())


def _source(ev: Evaluation | None, evaluation_id: str | None) -> str:
    if evaluation_id is None:
        return TRAINING
    if ev is None:
        return f"evaluation {evaluation_id[:8]}"
    return f"{ev.split} evaluation"


# --------------------------------------------------------------------------- gallery
def run_gallery(book: Book, ref: str, *, project: str | None = None) -> Gallery:
    """The run's image artifacts: the training's plots first, then each evaluation's,
    newest evaluation first; plots in ``PLOT_ORDER``. A name logged twice in one group
    shows its latest file."""
    run = book.run(ref, project)
    images = [a for a in book.store.list_artifacts(run.id) if is_image(a.name)]
    evaluations = {e.id: e for e in book.store.list_evaluations([run.id])}
    by_source: dict[str | None, dict[str, Artifact]] = {}
    for a in images:  # oldest first: a later file of the same name replaces the earlier
        by_source.setdefault(a.evaluation_id, {})[a.name] = a
    groups: list[PlotGroup] = []
    order = sorted(
        by_source,
        key=lambda e: (e is not None, -(evaluations[e].created_at if e in evaluations else 0.0)),
    )
    for evaluation_id in order:
        ev = evaluations.get(evaluation_id) if evaluation_id else None
        plots = sorted(by_source[evaluation_id].values(), key=lambda a: _plot_key(a.name))
        groups.append(
            {
                "title": _source(ev, evaluation_id),
                "evaluation": evaluation_id,
                "split": ev.split if ev else None,
                "created_at": ev.created_at if ev else None,
                "plots": [{"name": a.name, "digest": a.digest, "size": a.size} for a in plots],
            }
        )
    return {"run": run.name, "project": run.project, "groups": groups}


def side_by_side(book: Book, runs: Sequence[tuple[str, str]]) -> SideBySide:
    """The plots of ``runs`` (``(name, id)`` pairs, in the page's order) by name: each
    run's latest image artifact of each name (the training's or an evaluation's)."""
    latest: dict[str, dict[str, Artifact]] = {}
    sources: dict[str, Evaluation] = {}
    for name, run_id in runs:
        found = [a for a in book.store.list_artifacts(run_id) if is_image(a.name)]
        latest[name] = {a.name: a for a in found}  # oldest first: the latest wins
    wanted = {a.evaluation_id for files in latest.values() for a in files.values() if a.evaluation_id}
    if wanted:
        sources = {e.id: e for e in book.store.list_evaluations([i for _, i in runs]) if e.id in wanted}
    counts: dict[str, int] = {}
    for files in latest.values():
        for plot in files:
            counts[plot] = counts.get(plot, 0) + 1
    names = sorted(counts, key=lambda n: (-counts[n], *_plot_key(n)))
    plots: dict[str, list[SidePlot]] = {}
    for plot in names:
        row: list[SidePlot] = []
        for name, _ in runs:
            a = latest[name].get(plot)
            source = _source(sources.get(a.evaluation_id or ""), a.evaluation_id) if a else None
            row.append({"run": name, "digest": a.digest if a else None, "source": source})
        plots[plot] = row
    return {"names": names, "common": [n for n in names if counts[n] == len(runs)], "plots": plots}


# --------------------------------------------------------------------------- predictions
def predictions_state(
    book: Book, runs: Sequence[tuple[str, str]], split: str = "val"
) -> dict[str, PredictionsState]:
    """Per run (``(name, id)`` pairs): whether its latest evaluation of ``split`` that has
    a predictions file exists, and that evaluation's split digest. Reads the run's
    artifact and evaluation lists only."""
    out: dict[str, PredictionsState] = {}
    for name, run_id in runs:
        found = find_predictions(book, book.store.get_run_by_id(run_id), split)
        ev = found[0] if found else None
        out[name] = {
            "run": name,
            "ready": ev is not None,
            "evaluation": ev.id if ev else None,
            "split_digest": ev.split_digest if ev else None,
        }
    return out


def missing_message(run: str, split: str) -> str:
    return (
        f"{run} has no per-image predictions on its {split} split: record them with "
        f"`trialbook yolo val {run} --split {split}`"
    )


def review_section(
    book: Book,
    runs: Sequence[tuple[str, str]],
    baseline: str,
    *,
    candidate: str | None = None,
    split: str = "val",
    iou: float = 0.5,
    conf: float = 0.25,
) -> ReviewSection:
    """The compare page's review of ``candidate`` (default: the first of ``runs`` that
    is not ``baseline``) against ``baseline``; ``message`` says why it cannot be made and
    how to fix it (no predictions, different splits, a sealed split)."""
    names = [n for n, _ in runs]
    candidates = [n for n in names if n != baseline]
    chosen = candidate if candidate in candidates else (candidates[0] if candidates else None)
    section: ReviewSection = {
        "split": split,
        "candidate": chosen,
        "baseline": baseline,
        "candidates": candidates,
        "iou": iou,
        "conf": conf,
        "ready": False,
        "message": None,
    }
    if chosen is None:
        section["message"] = "compare two or more runs to see where one does worse than the other"
        return section
    if split == "test":
        section["message"] = "test predictions are sealed; only a decision reveals the test split"
        return section
    pair = [(n, i) for n, i in runs if n in (chosen, baseline)]
    states = predictions_state(book, pair, split)
    section["message"] = _problem(states, [chosen, baseline], split)
    section["ready"] = section["message"] is None
    return section


def _problem(states: Mapping[str, PredictionsState], pair: Sequence[str], split: str) -> str | None:
    missing = [n for n in pair if not states[n]["ready"]]
    if missing:
        return "; ".join(missing_message(n, split) for n in missing)
    a, b = (states[n] for n in pair)
    if a["split_digest"] and b["split_digest"] and a["split_digest"] != b["split_digest"]:
        return (
            f"{a['run']} and {b['run']} were evaluated on different {split} splits "
            f"({a['split_digest'][:12]} and {b['split_digest'][:12]}): evaluate both on one split "
            f"(`trialbook yolo val RUN --split {split}`)"
        )
    return None


def run_images_section(
    book: Book, name: str, run_id: str, *, split: str = "val", iou: float = 0.5, conf: float = 0.25
) -> RunImagesSection:
    """The run page's "Images it gets most wrong" (``services.review.run_images``, loaded
    by the page's script): ``message`` with the fix when the run has no predictions."""
    ready = predictions_state(book, [(name, run_id)], split)[name]["ready"]
    return {
        "run": name,
        "split": split,
        "iou": iou,
        "conf": conf,
        "ready": ready,
        "message": None if ready else missing_message(name, split),
    }
