"""The Pareto plots of the run report, and the trial groups they share with its section.

Each plot shows validation accuracy against one metric (gzip size, latency,
and where the search's target measured them flash and RAM, with the target's
budgets drawn as lines) and highlights the trials listed in ``front`` without
recomputing it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from keras_autoopt.report import _plots
from keras_autoopt.report._summary import is_completed
from keras_autoopt.report._values import is_missing_number

GZIP_PLOT = "pareto_accuracy_vs_gzip"
LATENCY_PLOT = "pareto_accuracy_vs_latency"
FLASH_PLOT = "pareto_accuracy_vs_flash"
RAM_PLOT = "pareto_accuracy_vs_ram"
PLOT_NAMES = (GZIP_PLOT, LATENCY_PLOT)
"""The plots written for every ``pareto`` section; the files are ``<name>.png``."""
DEVICE_PLOT_NAMES = (FLASH_PLOT, RAM_PLOT)
"""The plots written when a trial has their metric (`plot_names`)."""

ACCURACY = "val_accuracy"
"""The metric on the y axis of both plots, a fraction in [0, 1]."""

_FRONT_COLOR = "#dd3322"
_INFEASIBLE_COLOR = "#999999"
_BUDGET_COLOR = "#3366aa"


@dataclass(frozen=True)
class _PlotSpec:
    """What one Pareto plot shows on its x axis."""

    metric: str
    label: str
    log: bool
    title: str
    budget: str | None = None  # the constraint drawn as a vertical line, if set


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
    FLASH_PLOT: _PlotSpec(
        "flash_bytes",
        "flash (bytes, log scale)",
        True,
        "Pareto front: validation accuracy vs flash",
        "max_flash_bytes",
    ),
    RAM_PLOT: _PlotSpec(
        "ram_bytes",
        "peak RAM (bytes, log scale)",
        True,
        "Pareto front: validation accuracy vs peak RAM",
        "max_ram_bytes",
    ),
}


def plot_names(pareto: Mapping[str, Any]) -> tuple[str, ...]:
    """The plots of ``pareto``: `PLOT_NAMES`, and each device plot some trial has a value for.

    Args:
        pareto: The validated ``pareto`` part of a run report.

    Returns:
        The plot names, in `PLOT_NAMES` then `DEVICE_PLOT_NAMES` order.
    """
    measured = tuple(
        name for name in DEVICE_PLOT_NAMES
        if any(not is_missing_number(_metric(trial, _PLOT_SPECS[name].metric))
               for trial in pareto["trials"])
    )
    return PLOT_NAMES + measured


def _budget(pareto: Mapping[str, Any], spec: _PlotSpec) -> float | None:
    """The limit ``spec.budget`` in the search's constraints (target budgets included)."""
    if spec.budget is None:
        return None
    value = pareto["constraints"].get(spec.budget)
    return None if is_missing_number(value) else float(value)


def _draw_budget(axes: Any, pareto: Mapping[str, Any], budget: float) -> None:
    target = pareto.get("target") or {}
    where = f" ({target['name']})" if target.get("name") else ""
    axes.axvline(budget, color=_BUDGET_COLOR, linestyle="--", linewidth=1.2, zorder=1,
                 label=f"budget {budget:,.0f} bytes{where}")


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
    _plots._label_points(axes, [str(trial["trial_id"]) for trial in front], xs, ys)


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
    """Draw the trials' validation accuracy against one metric, front highlighted.

    Completed trials are dots, completed trials that broke a constraint grey
    crosses; the trials listed in ``pareto["front"]`` are large red points,
    labelled with their ids and joined by a step line in x order. The front
    is drawn as given (it was computed on the search's objectives, which may
    differ from these axes). Trials without both metrics are left out and
    counted in a footnote. On the flash and RAM plots the search's limit
    (``max_flash_bytes`` / ``max_ram_bytes`` of ``pareto["constraints"]``,
    which holds the target's budgets) is a dashed vertical line.

    Args:
        pareto: The validated ``pareto`` part of a run report.
        name: Which plot: `GZIP_PLOT` (x = ``gzip_bytes``, log scale),
            `LATENCY_PLOT` (x = ``latency_us``), `FLASH_PLOT` (x =
            ``flash_bytes``, log scale) or `RAM_PLOT` (x = ``ram_bytes``, log
            scale).

    Returns:
        The PNG file's bytes. With no plottable trial, an empty chart saying so.

    Raises:
        ValueError: If ``name`` is not one of `PLOT_NAMES`.

    """
    if name not in _PLOT_SPECS:
        raise ValueError(
            f"Received: name={name!r}; expected one of {PLOT_NAMES + DEVICE_PLOT_NAMES}.")
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
        xs = [float(_metric(trial, spec.metric)) for trial in points]
        budget = _budget(pareto, spec)
        if budget is not None:
            _draw_budget(axes, pareto, budget)
            xs.append(budget)  # the line is always in view
        _plots._fit_limits(
            axes,
            xs,
            [100.0 * float(_metric(trial, ACCURACY)) for trial in points],
            100.0,
        )
        axes.legend(loc="best", fontsize=9)
    _plots._footnote(axes, _plot_notes(pareto, spec, len(completed), len(points)))
    return _plots._to_png(figure)
