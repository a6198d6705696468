"""The Pareto front of a multi-objective search in the run report: two plots and a section.

``report["pareto"]`` (validated by `check_pareto`) holds every trial of the
search with its metrics, whether it was rejected before training, whether it
met the constraints, and the ids of the trials on the Pareto front. The front
was computed on the search's objectives; the plots show it on fixed axes
(validation accuracy against gzip size, and against latency) and highlight the
trials listed in ``front`` without recomputing it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from keras_autoopt.report import _plots
from keras_autoopt.report._format import (
    NOT_AVAILABLE,
    fmt_hyperparameters,
    fmt_number,
    fmt_percent,
    fmt_value,
)
from keras_autoopt.report._md import md_table
from keras_autoopt.report._schema import is_missing_number
from keras_autoopt.report._summary import is_completed

GZIP_PLOT = "pareto_accuracy_vs_gzip"
LATENCY_PLOT = "pareto_accuracy_vs_latency"
PLOT_NAMES = (GZIP_PLOT, LATENCY_PLOT)
"""The plots written when a report has a ``pareto`` section; the files are ``<name>.png``."""

ACCURACY = "val_accuracy"
"""The metric on the y axis of both plots, a fraction in [0, 1]."""

# Front table: the metrics shown in their own columns, in this order.
_METRIC_COLUMNS = (
    (ACCURACY, "val accuracy (%)"),
    ("gzip_bytes", "gzip (bytes)"),
    ("size_bytes", "size (bytes)"),
    ("latency_us", "latency (µs)"),
    ("params", "params"),
)
# Front table: the compression and distillation hyperparameters shown in their
# own columns (when a front trial has them); the others share one column.
_HYPERPARAMETER_COLUMNS = (
    "sparsity",
    "clusters",
    "quantization",
    "distill_temperature",
    "distill_alpha",
)
_SECTION_KEYS = (
    "objectives",
    "oracle",
    "constraints",
    "trials",
    "front",
    "hypervolume",
    "reference",
)
_MAX_REJECTED_ROWS = 10
_REASON_CHARS = 200
_FRONT_COLOR = "#dd3322"
_INFEASIBLE_COLOR = "#999999"


@dataclass(frozen=True)
class _PlotSpec:
    """What one Pareto plot shows on its x axis."""

    metric: str
    label: str
    log: bool
    title: str


_PLOT_SPECS: dict[str, _PlotSpec] = {
    GZIP_PLOT: _PlotSpec(
        "gzip_bytes",
        "gzip size (bytes, log scale)",
        True,
        "Pareto front: validation accuracy vs gzip size",
    ),
    LATENCY_PLOT: _PlotSpec(
        "latency_us",
        "latency (µs)",
        False,
        "Pareto front: validation accuracy vs latency",
    ),
}


# --- trial groups -------------------------------------------------------------------


def _metric(trial: Mapping[str, Any], name: str) -> Any:
    """Return the trial's value of metric ``name``, or ``None`` if it is absent."""
    return trial["metrics"].get(name)


def _has_point(trial: Mapping[str, Any], x_metric: str) -> bool:
    x, y = _metric(trial, x_metric), _metric(trial, ACCURACY)
    return not is_missing_number(x) and float(x) > 0 and not is_missing_number(y)


def _is_rejected(trial: Mapping[str, Any]) -> bool:
    return bool(trial["rejected"])


def _is_infeasible(trial: Mapping[str, Any]) -> bool:
    return is_completed(trial) and trial["feasible"] is False


def _is_failed(trial: Mapping[str, Any]) -> bool:
    return not is_completed(trial) and not _is_rejected(trial)


def _objective_names(pareto: Mapping[str, Any]) -> list[str]:
    return [str(objective["name"]) for objective in pareto["objectives"]]


# --- plots --------------------------------------------------------------------------


def _scatter(axes: Any, trials: Sequence[Mapping[str, Any]], x_metric: str, **style: Any) -> None:
    axes.scatter(
        [float(_metric(trial, x_metric)) for trial in trials],
        [100.0 * float(_metric(trial, ACCURACY)) for trial in trials],
        **style,
    )


def _draw_front(axes: Any, front: Sequence[Mapping[str, Any]], x_metric: str) -> None:
    xs = [float(_metric(trial, x_metric)) for trial in front]
    ys = [100.0 * float(_metric(trial, ACCURACY)) for trial in front]
    axes.step(xs, ys, where="post", color=_FRONT_COLOR, linewidth=1.4, alpha=0.8, zorder=2)
    axes.scatter(
        xs,
        ys,
        s=110,
        color=_FRONT_COLOR,
        edgecolors="black",
        linewidths=0.6,
        zorder=4,
        label=f"Pareto front ({len(front)})",
    )
    for index, (trial, x, y) in enumerate(zip(front, xs, ys, strict=True)):
        # Alternate above/below so that neighbours' labels do not overlap.
        dy = 8 if index % 2 == 0 else -14
        axes.annotate(
            str(trial["trial_id"]),
            (x, y),
            xytext=(6, dy),
            textcoords="offset points",
            fontsize=9,
            ha="left",
        )


def _plot_notes(
    pareto: Mapping[str, Any], spec: _PlotSpec, completed: int, plotted: int
) -> list[str]:
    notes = []
    if completed > plotted:
        notes.append(
            f"{completed - plotted} completed trial(s) without {spec.metric} or {ACCURACY} "
            "not shown"
        )
    not_completed = len(pareto["trials"]) - completed
    if not_completed:
        notes.append(f"{not_completed} rejected or failed trial(s) not shown")
    names = _objective_names(pareto)
    if set(names) != {spec.metric, ACCURACY}:
        notes.append(
            f"The front is the search's, on its objectives ({', '.join(names)}), "
            "not recomputed on these axes"
        )
    return notes


def render_pareto_plot(pareto: Mapping[str, Any], name: str) -> bytes:
    """Draw the trials' validation accuracy against gzip size or latency, front highlighted.

    Completed trials are dots, completed trials that broke a constraint grey
    crosses; the trials listed in ``pareto["front"]`` are large red points,
    labelled with their ids and joined by a step line in x order. The front
    is drawn as given (it was computed on the search's objectives, which may
    differ from these two axes). Trials without both metrics are left out and
    counted in a footnote.

    Args:
        pareto: The validated ``pareto`` part of a run report.
        name: Which plot: `GZIP_PLOT` (x = ``gzip_bytes``, log scale) or
            `LATENCY_PLOT` (x = ``latency_us``).

    Returns:
        The PNG file's bytes. With no plottable trial, an empty chart saying so.

    Raises:
        ValueError: If ``name`` is not one of `PLOT_NAMES`.

    """
    if name not in _PLOT_SPECS:
        raise ValueError(f"Received: name={name!r}; expected one of {PLOT_NAMES}.")
    spec = _PLOT_SPECS[name]
    figure, axes = _plots._new_figure()
    if spec.log:
        axes.set_xscale("log")
    axes.set_xlabel(spec.label)
    axes.set_ylabel("validation accuracy (%)")
    axes.set_title(spec.title)

    completed = [trial for trial in pareto["trials"] if is_completed(trial)]
    points = [trial for trial in completed if _has_point(trial, spec.metric)]
    front_ids = {str(trial_id) for trial_id in pareto["front"]}
    front = sorted(
        (trial for trial in points if trial["trial_id"] in front_ids),
        key=lambda trial: float(_metric(trial, spec.metric)),
    )
    infeasible = [trial for trial in points if _is_infeasible(trial)]
    others = [
        trial
        for trial in points
        if trial["trial_id"] not in front_ids and not _is_infeasible(trial)
    ]
    if not points:
        measured = any(
            not is_missing_number(_metric(trial, spec.metric)) for trial in pareto["trials"]
        )
        _plots._empty_note(
            axes,
            f"no completed trial with {spec.metric} and {ACCURACY} to plot"
            if measured
            else f"no trial has a {spec.metric} measurement",
        )
        # The note's default limits suit a log-scale byte axis and a fraction.
        axes.set_ylim(0, 100)
        if not spec.log:
            axes.set_xlim(0, 10)
    else:
        if others:
            _scatter(
                axes,
                others,
                spec.metric,
                s=36,
                color=_plots._POINT,
                alpha=0.75,
                edgecolors="white",
                linewidths=0.5,
                zorder=3,
                label=f"other completed trials ({len(others)})",
            )
        if infeasible:
            _scatter(
                axes,
                infeasible,
                spec.metric,
                s=40,
                marker="x",
                color=_INFEASIBLE_COLOR,
                linewidths=1.2,
                zorder=3,
                label=f"infeasible trials ({len(infeasible)})",
            )
        if front:
            _draw_front(axes, front, spec.metric)
        _plots._fit_limits(
            axes,
            [float(_metric(trial, spec.metric)) for trial in points],
            [100.0 * float(_metric(trial, ACCURACY)) for trial in points],
            100.0,
        )
        axes.legend(loc="best", fontsize=9)
    _plots._footnote(axes, _plot_notes(pareto, spec, len(completed), len(points)))
    return _plots._to_png(figure)


# --- Markdown -----------------------------------------------------------------------


def _fmt_amount(value: Any) -> str:
    """Format a limit or a reference coordinate: ``52,000``, ``0.80``, ``1,234.5``."""
    number = float(value)
    if number.is_integer():
        return f"{int(number):,}"
    if abs(number) >= 100:
        return f"{number:,.1f}"
    if round(number, 2) == number:
        return f"{number:.2f}"
    return f"{number:.4g}"


def _fmt_count(value: Any) -> str:
    if is_missing_number(value):
        return NOT_AVAILABLE
    return f"{round(float(value)):,}"


def _fmt_hypervolume(value: Any) -> str:
    number = float(value)
    return f"{number:,.4f}" if number < 1000 else f"{number:,.1f}"


def _fmt_metric(trial: Mapping[str, Any], name: str) -> str:
    value = _metric(trial, name)
    if name == ACCURACY:
        return fmt_percent(value)
    if name == "latency_us":
        return fmt_number(value, 1)
    if name in ("gzip_bytes", "size_bytes", "params"):
        return _fmt_count(value)
    if value is None:
        return NOT_AVAILABLE
    return fmt_value(value)


def _one_line(text: Any) -> str:
    line = " ".join(str(text).split())
    if len(line) > _REASON_CHARS:
        line = line[: _REASON_CHARS - 1] + "…"
    return line


def _constraints_text(constraints: Mapping[str, Any]) -> str:
    limits = [
        f"{name} {_fmt_amount(value)}" for name, value in constraints.items() if value is not None
    ]
    return ", ".join(limits) if limits else "none set"


def _reference_text(pareto: Mapping[str, Any]) -> str:
    coordinates = zip(_objective_names(pareto), pareto["reference"], strict=True)
    return ", ".join(f"{name} {_fmt_amount(value)}" for name, value in coordinates)


def _summary_rows(pareto: Mapping[str, Any]) -> list[tuple[str, str]]:
    trials = pareto["trials"]
    completed = [trial for trial in trials if is_completed(trial)]
    objectives = ", ".join(
        f"{objective['name']} ({objective['direction']})" for objective in pareto["objectives"]
    )
    rows = [
        ("objectives", objectives),
        ("oracle", str(pareto["oracle"])),
        ("constraints", _constraints_text(pareto["constraints"])),
        ("trials", f"{len(trials):,}"),
        ("completed", f"{len(completed):,}"),
        ("rejected before training", f"{sum(_is_rejected(trial) for trial in trials):,}"),
        ("failed", f"{sum(_is_failed(trial) for trial in trials):,}"),
        ("infeasible", f"{sum(_is_infeasible(trial) for trial in trials):,}"),
    ]
    unmeasured = sum(trial["feasible"] is None for trial in completed)
    if unmeasured:
        rows.append(("feasibility not measured", f"{unmeasured:,}"))
    rows.append(("on the front", f"{len(pareto['front']):,}"))
    rows += [(key, fmt_value(value)) for key, value in pareto.items() if key not in _SECTION_KEYS]
    return rows


def _front_table(pareto: Mapping[str, Any]) -> list[str]:
    by_id = {trial["trial_id"]: trial for trial in pareto["trials"]}
    front = [by_id[trial_id] for trial_id in pareto["front"]]
    if not front:
        return ["_No trial is on the front: no trial completed and met the constraints._"]
    shown = {name for name, _ in _METRIC_COLUMNS}
    metrics = list(_METRIC_COLUMNS)
    # Objectives without a column of their own get one, under their name.
    metrics += [(name, name) for name in _objective_names(pareto) if name not in shown]
    hyperparameters = [
        name
        for name in _HYPERPARAMETER_COLUMNS
        if any(name in trial["hyperparameters"] for trial in front)
    ]
    others = [
        {
            name: value
            for name, value in trial["hyperparameters"].items()
            if name not in _HYPERPARAMETER_COLUMNS
        }
        for trial in front
    ]
    with_others = any(others)
    header = ["trial", *(title for _, title in metrics), *hyperparameters]
    if with_others:
        header.append("other hyperparameters")
    rows = []
    for trial, other in zip(front, others, strict=True):
        row = [str(trial["trial_id"])]
        row += [_fmt_metric(trial, name) for name, _ in metrics]
        row += [
            fmt_value(trial["hyperparameters"][name]) if name in trial["hyperparameters"] else "-"
            for name in hyperparameters
        ]
        if with_others:
            row.append(fmt_hyperparameters(other))
        rows.append(row)
    align = "l" + "r" * len(metrics) + "l" * (len(header) - 1 - len(metrics))
    return md_table(header, rows, align)


def _outcome(trial: Mapping[str, Any]) -> str:
    if _is_rejected(trial):
        return "rejected before training"
    if _is_infeasible(trial):
        return "infeasible"
    return "failed"


def _rejected_section(trials: Sequence[Mapping[str, Any]]) -> list[str]:
    lines = ["### Rejected and failed trials", ""]
    left_out = [
        trial
        for trial in trials
        if _is_rejected(trial) or _is_infeasible(trial) or _is_failed(trial)
    ]
    if not left_out:
        return [*lines, "_Every trial completed and met the constraints._"]
    rows = [
        (
            str(trial["trial_id"]),
            str(trial["status"]),
            _outcome(trial),
            _one_line(trial["reason"]) if trial["reason"] else "-",
        )
        for trial in left_out[:_MAX_REJECTED_ROWS]
    ]
    lines += md_table(("trial", "status", "outcome", "reason"), rows, "llll")
    if len(left_out) > _MAX_REJECTED_ROWS:
        lines += ["", f"... and {len(left_out) - _MAX_REJECTED_ROWS} more."]
    return lines


def pareto_section(pareto: Mapping[str, Any], plot_files: Mapping[str, str]) -> list[str]:
    """Return the "Pareto front" section of ``report.md``.

    Args:
        pareto: The validated ``pareto`` part of a run report.
        plot_files: The plots' file names relative to the report folder, by
            plot name (at least `GZIP_PLOT` and `LATENCY_PLOT`).

    Returns:
        The section's lines: a summary (objectives, oracle, constraints that
        are set, trial counts), the hypervolume and its reference point, the
        front's table (in ``front`` order), the two plots, and up to
        10 rejected, infeasible or failed trials with their reasons.

    """
    hypervolume = _fmt_hypervolume(pareto["hypervolume"])
    lines = [
        "## Pareto front",
        "",
        "The front holds the completed trials that met the constraints and that no other such "
        "trial beats on every objective.",
        "",
        *md_table(("field", "value"), _summary_rows(pareto), "ll"),
        "",
        f"Hypervolume: {hypervolume}, measured from the reference point "
        f"({_reference_text(pareto)}): the size of the region of objective space that the "
        "front dominates, bounded by that point, in the objectives' own units (larger is "
        "better).",
        "",
        "### Front",
        "",
        *_front_table(pareto),
        "",
        f"![validation accuracy vs gzip size, Pareto front highlighted]({plot_files[GZIP_PLOT]})",
        "",
        f"![validation accuracy vs latency, Pareto front highlighted]({plot_files[LATENCY_PLOT]})",
        "",
        "Front trials are red and joined in x order; grey crosses broke a constraint. The front "
        "was computed on the search's objectives and is shown as is on both plots.",
        "",
        *_rejected_section(pareto["trials"]),
    ]
    return lines
