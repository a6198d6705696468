"""The report figures, rendered to PNG bytes without pyplot (no global state).

Two belong to the run report (trials, exported models), plus one confusion
matrix per exported model that has one; one to the compression report (stages).
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from keras_autoopt.report._format import fmt_percent, fmt_ratio
from keras_autoopt.report._summary import TrialSummary
from keras_autoopt.report._values import is_missing_number

TRIALS_PLOT = "trials_accuracy_vs_params"
MODELS_PLOT = "models_accuracy_vs_gzip"
PLOT_NAMES = (TRIALS_PLOT, MODELS_PLOT)
"""The plot names: keys of ``ReportPaths.plots``; the files are ``<name>.png``."""
COMPRESSION_PLOT = "compression_accuracy_vs_gzip"
"""The compression report's plot; the file is ``<name>.png``."""
CONFUSION_PREFIX = "confusion_"
"""The confusion-matrix plots are named ``confusion_<model name>`` (see `confusion_plot_names`)."""
#: Above this many classes, the cells of a confusion matrix are not labelled with counts.
_MAX_LABELLED_CLASSES = 20

_FIGSIZE = (7.5, 4.8)
_DPI = 120
_POINT = "#4c72b0"
_BEST = "#dd3322"
_OUTSIDE = "#999999"
_BUDGET = "#c44e52"


def _new_figure() -> tuple[Figure, Any]:
    figure = Figure(figsize=_FIGSIZE, dpi=_DPI, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.grid(True, which="major", alpha=0.4)
    axes.grid(True, which="minor", alpha=0.15)
    return figure, axes


def _empty_note(axes: Any, text: str) -> None:
    axes.set_xlim(1e3, 1e6)
    axes.set_ylim(0, 1)
    axes.text(
        0.5,
        0.5,
        text,
        transform=axes.transAxes,
        ha="center",
        va="center",
        fontsize=13,
        color="0.4",
    )


def _footnote(axes: Any, lines: Sequence[str]) -> None:
    # Below the x label, outside the data area, so it never hides a point;
    # the constrained layout makes room for it.
    if lines:
        axes.annotate(
            "\n".join(lines),
            xy=(0, 0),
            xycoords="axes fraction",
            xytext=(0, -34),
            textcoords="offset points",
            ha="left",
            va="top",
            fontsize=8,
            color="0.35",
        )


def _star(axes: Any, x: float, y: float, *, size: float, zorder: int, label: str) -> None:
    """Mark the best (or chosen) point with a large star."""
    axes.scatter([x], [y], s=size, marker="*", color=_BEST, edgecolors="black", linewidths=0.6,
                 zorder=zorder, label=label)


def _label_points(axes: Any, labels: Sequence[str], xs: Sequence[float],
                  ys: Sequence[float]) -> None:
    """Write each label beside its point, alternately above and below.

    Alternating keeps neighbours' labels from overlapping.
    """
    for index, (label, x, y) in enumerate(zip(labels, xs, ys, strict=True)):
        dy = 8 if index % 2 == 0 else -14
        axes.annotate(label, (x, y), xytext=(6, dy), textcoords="offset points", fontsize=9,
                      ha="left")


def _fit_limits(axes: Any, xs: Sequence[float], ys: Sequence[float], y_cap: float) -> None:
    """Leave room around the points, centre a lone x value, keep y below ``y_cap``."""
    axes.margins(x=0.1, y=0.15)
    if min(xs) == max(xs):
        axes.set_xlim(min(xs) / 3, max(xs) * 3)
    if max(ys) <= y_cap:
        low, high = axes.get_ylim()
        axes.set_ylim(low, min(high, y_cap + 0.02 * (high - low)))


def _to_png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def render_trials_plot(summary: TrialSummary, objective: str) -> bytes:
    """Draw every completed trial's score against its parameter count.

    Args:
        summary: The trials, sorted (see `summarize_trials`).
        objective: The name of the score, for the y label.

    Returns:
        The PNG file's bytes. With no plottable trial, an empty chart saying so.

    """
    figure, axes = _new_figure()
    axes.set_xscale("log")
    axes.set_xlabel("parameters (log scale)")
    axes.set_ylabel(objective)
    axes.set_title(f"Search trials: {objective} vs parameters")
    best = summary.best
    others = [trial for trial in summary.plotted if trial is not best]
    if others:
        axes.scatter(
            [trial["params"] for trial in others],
            [float(trial["score"]) for trial in others],
            s=36,
            color=_POINT,
            alpha=0.75,
            edgecolors="white",
            linewidths=0.5,
            label=f"completed trials ({len(summary.plotted)})",
        )
    if best is not None and any(trial is best for trial in summary.plotted):
        _star(axes, best["params"], float(best["score"]), size=180, zorder=3,
              label=f"best: trial {best['trial_id']} ({float(best['score']):.4f})")
    if not summary.plotted:
        _empty_note(axes, "no completed trials to plot")
    else:
        scores = [float(trial["score"]) for trial in summary.plotted]
        # Scores in [0, 1] are fractions (accuracy, AUC...): no axis above 1.
        _fit_limits(axes, [trial["params"] for trial in summary.plotted], scores, 1.0)
        axes.legend(loc="best", fontsize=9)
    notes = []
    if summary.not_completed:
        notes.append(f"{len(summary.not_completed)} failed/unfinished trial(s) not shown")
    if summary.not_plotted:
        notes.append(f"{len(summary.not_plotted)} completed trial(s) without score or params")
    _footnote(axes, notes)
    return _to_png(figure)


def _plottable(model: Mapping[str, Any]) -> bool:
    return not is_missing_number(model["accuracy"]) and model["gzip_bytes"] > 0


def render_models_plot(models: Sequence[Mapping[str, Any]]) -> bytes:
    """Draw each exported model's accuracy against its gzip size, labelled by name.

    Args:
        models: Validated model records.

    Returns:
        The PNG file's bytes. With no plottable model, an empty chart saying so.

    """
    figure, axes = _accuracy_vs_gzip_axes("Exported models: accuracy vs gzip size")
    points = sorted((model for model in models if _plottable(model)), key=_gzip_key)
    if points:
        xs = [int(model["gzip_bytes"]) for model in points]
        ys = [100.0 * float(model["accuracy"]) for model in points]
        axes.scatter(xs, ys, s=48, color=_POINT, edgecolors="black", linewidths=0.5, zorder=3)
        _label_points(axes, [str(model["name"]) for model in points], xs, ys)
        _fit_limits(axes, xs, ys, 100.0)
    return _finish_accuracy_vs_gzip(figure, axes, len(points), len(models), "model",
                                    "no exported models to plot")


def _accuracy_vs_gzip_axes(title: str):
    """A new figure whose axes show accuracy (%) against gzip bytes on a log scale."""
    figure, axes = _new_figure()
    axes.set_xscale("log")
    axes.set_xlabel("gzip size (bytes, log scale)")
    axes.set_ylabel("accuracy (%)")
    axes.set_title(title)
    return figure, axes


def _finish_accuracy_vs_gzip(figure: Figure, axes: Any, shown: int, total: int, what: str,
                             empty: str) -> bytes:
    """Say ``empty`` on a chart without points, count the records not shown; return the PNG."""
    if not shown:
        _empty_note(axes, empty)
    left_out = total - shown
    if left_out:
        _footnote(axes, [f"{left_out} {what}(s) without accuracy or gzip size not shown"])
    return _to_png(figure)


def _gzip_key(model: Mapping[str, Any]) -> int:
    return int(model["gzip_bytes"])


def render_compression_plot(
    stages: Sequence[Mapping[str, Any]], accuracy_floor: float, chosen: str | None
) -> bytes:
    """Draw each compression stage's accuracy against its gzip size, labelled by stage.

    Each point is labelled with the stage name. Stages within budget are
    blue, the others grey; the chosen stage is a red star (its gzip ratio in
    the legend);
    the accuracy floor (baseline minus the allowed drop) is a dashed
    horizontal line.

    Args:
        stages: Validated stage records.
        accuracy_floor: The lowest accuracy within budget, as a fraction.
        chosen: The name of the chosen stage, or ``None``.

    Returns:
        The PNG file's bytes. With no plottable stage, an empty chart saying so.

    """
    figure, axes = _accuracy_vs_gzip_axes("Compression stages: accuracy vs gzip size")
    points = sorted((stage for stage in stages if _plottable(stage)), key=_gzip_key)
    if points:
        floor = 100.0 * accuracy_floor
        axes.axhline(
            floor,
            color=_BUDGET,
            linestyle="--",
            linewidth=1.2,
            zorder=1,
            label=f"accuracy budget: ≥ {floor:.2f} %",
        )
        groups = ((True, _POINT, "within budget"), (False, _OUTSIDE, "outside budget"))
        for within, color, label in groups:
            group = [stage for stage in points if bool(stage["within_budget"]) == within]
            if group:
                axes.scatter(
                    [int(stage["gzip_bytes"]) for stage in group],
                    [100.0 * float(stage["accuracy"]) for stage in group],
                    s=48,
                    color=color,
                    edgecolors="black",
                    linewidths=0.5,
                    zorder=3,
                    label=label,
                )
        best = [stage for stage in points if stage["stage"] == chosen]
        if best:
            _star(axes, int(best[0]["gzip_bytes"]), 100.0 * float(best[0]["accuracy"]),
                  size=240, zorder=4,
                  label=f"chosen: {chosen} ({fmt_ratio(best[0]['gzip_ratio'])} smaller gzipped)")
        xs = [int(stage["gzip_bytes"]) for stage in points]
        ys = [100.0 * float(stage["accuracy"]) for stage in points]
        _label_points(axes, [str(stage["stage"]) for stage in points], xs, ys)
        _fit_limits(axes, xs, [*ys, floor], 100.0)
        axes.legend(loc="best", fontsize=9)
    return _finish_accuracy_vs_gzip(figure, axes, len(points), len(stages), "stage",
                                    "no compression stages to plot")


def confusion_plot_names(models: Sequence[Mapping[str, Any]]) -> list[str | None]:
    """The name of each model's confusion-matrix plot, None for a model without ``confusion``.

    A name is ``confusion_<model name>`` with every character other than a
    letter, digit, ``.``, ``-`` or ``_`` replaced by ``_``, so that it is a safe
    file name; a name already taken gets ``_2``, ``_3``, ... appended.

    Args:
        models: Validated model records.

    Returns:
        One entry per model, in order.

    """
    names: list[str | None] = []
    taken: set[str] = set()
    for model in models:
        if model.get("confusion") is None:
            names.append(None)
            continue
        base = CONFUSION_PREFIX + (re.sub(r"[^A-Za-z0-9._-]", "_", str(model["name"])) or "model")
        name, number = base, 1
        while name in taken:
            number += 1
            name = f"{base}_{number}"
        taken.add(name)
        names.append(name)
    return names


def render_confusion_plot(model: Mapping[str, Any]) -> bytes:
    """Draw a model's confusion matrix: true class down, predicted class across.

    Each cell is coloured by the fraction of its true class (its row) it
    holds, so a small class shows its errors as clearly as a large one, and
    labelled with its count (up to 20 classes). The title gives the model's
    accuracy and, when known, its macro F1.

    Args:
        model: A validated model record with a ``confusion`` matrix.

    Returns:
        The PNG file's bytes.

    """
    counts = [[int(count) for count in row] for row in model["confusion"]]
    classes = len(counts)
    shares = [[count / max(sum(row), 1) for count in row] for row in counts]
    side = min(4.0 + 0.35 * classes, 12.0)
    figure = Figure(figsize=(side + 1.2, side), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    image = axes.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
    figure.colorbar(image, ax=axes, label="share of the true class")
    ticks = list(range(classes))
    axes.set_xticks(ticks)
    axes.set_yticks(ticks)
    if classes > _MAX_LABELLED_CLASSES:
        axes.tick_params(labelsize=6)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    quality = [f"{label} {fmt_percent(model.get(key))} %" for key, label in
               (("accuracy", "accuracy"), ("f1_macro", "macro F1"))
               if not is_missing_number(model.get(key))]
    title = f"{model['name']}: confusion matrix (test split)"
    axes.set_title("\n".join([title, ", ".join(quality)]) if quality else title, fontsize=10)
    if classes <= _MAX_LABELLED_CLASSES:
        for true, row in enumerate(counts):
            for predicted, count in enumerate(row):
                dark = shares[true][predicted] > 0.5
                axes.text(predicted, true, str(count), ha="center", va="center",
                          fontsize=9 if classes <= 10 else 7,
                          color="white" if dark else "black")
    return _to_png(figure)
