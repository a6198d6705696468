"""The Pareto front of a multi-objective search in the run report: two plots and a section.

``report["pareto"]`` (validated by `check_pareto`) holds every trial of the
search with its metrics, whether it was rejected before training, whether it
met the constraints, and the ids of the trials on the Pareto front. The front
was computed on the search's objectives; the plots show it on fixed axes
(validation accuracy against gzip size, and against latency) and highlight the
trials listed in ``front`` without recomputing it. The plots are drawn in
`keras_autoopt.report._pareto_plots`; this module writes the section.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from keras_autoopt.report._format import (
    NOT_AVAILABLE,
    fmt_hyperparameters,
    fmt_number,
    fmt_percent,
    fmt_value,
)
from keras_autoopt.report._md import md_table
from keras_autoopt.report._pareto_plots import (
    ACCURACY,
    FLASH_PLOT,
    GZIP_PLOT,
    LATENCY_PLOT,
    RAM_PLOT,
    _is_failed,
    _is_infeasible,
    _is_rejected,
    _metric,
    _objective_names,
)
from keras_autoopt.report._summary import is_completed
from keras_autoopt.report._values import is_missing_number

# Front table: the metrics shown in their own columns, in this order.
_METRIC_COLUMNS = (
    (ACCURACY, "val accuracy (%)"),
    ("gzip_bytes", "gzip (bytes)"),
    ("size_bytes", "size (bytes)"),
    ("latency_us", "latency (µs)"),
    ("params", "params"),
)
# Front table: what the target measured, each in its own column when a front trial has it.
_DEVICE_COLUMNS = (
    ("flash_bytes", "flash (bytes)"),
    ("ram_bytes", "RAM (bytes)"),
    ("macs", "MACs"),
    ("npu_latency_ms", "NPU (ms)"),
)
# Front table: the compression and distillation hyperparameters shown in their
# own columns (when a front trial has them); the others share one column.
_HYPERPARAMETER_COLUMNS = (
    "sparsity",
    "clusters",
    "quantization",
    "temperature",
    "alpha",
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
    if name in ("gzip_bytes", "size_bytes", "params", "flash_bytes", "ram_bytes", "macs"):
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


def fits_target(metrics: Mapping[str, Any], target: Mapping[str, Any] | None) -> str:
    """Whether a model's measured figures fit ``target``: ``"yes"``, ``"no: ..."`` or ``"-"``.

    A model fits when it runs on the target (``target_runs`` is not 0) and
    its ``flash_bytes`` and ``ram_bytes`` are within the target's budgets;
    a budget the target does not set, or a figure not measured, is not
    checked. ``"-"`` without a target.

    Args:
        metrics: The model's metrics (a trial's, or a report row).
        target: The target's definition (`Target.get_config`), or None.

    Returns:
        The cell's text, e.g. ``"no: flash 1,200,000 > 1,048,576"``.
    """
    if not target:
        return "-"
    problems = []
    runs = metrics.get("target_runs")
    if not is_missing_number(runs) and float(runs) == 0.0:
        problems.append(f"does not run on {target.get('name', 'the target')}")
    for key, label in (("flash_bytes", "flash"), ("ram_bytes", "RAM")):
        budget, value = target.get(key), metrics.get(key)
        if budget is not None and not is_missing_number(value) and float(value) > budget:
            problems.append(f"{label} {_fmt_count(value)} > {_fmt_count(budget)}")
    return "no: " + "; ".join(problems) if problems else "yes"


def _front_table(pareto: Mapping[str, Any]) -> list[str]:
    by_id = {trial["trial_id"]: trial for trial in pareto["trials"]}
    front = [by_id[trial_id] for trial_id in pareto["front"]]
    if not front:
        return ["_No trial is on the front: no trial completed and met the constraints._"]
    metrics = list(_METRIC_COLUMNS)
    metrics += [(name, title) for name, title in _DEVICE_COLUMNS
                if any(name in trial["metrics"] for trial in front)]
    shown = {name for name, _ in metrics}
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
    target = pareto.get("target")
    fits = [f"fits {target['name']}"] if target else []
    header = ["trial", *(title for _, title in metrics), *fits, *hyperparameters]
    if with_others:
        header.append("other hyperparameters")
    rows = []
    for trial, other in zip(front, others, strict=True):
        row = [str(trial["trial_id"])]
        row += [_fmt_metric(trial, name) for name, _ in metrics]
        row += [fits_target(trial["metrics"], target)] if target else []
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


def _device_plots(plot_files: Mapping[str, str]) -> list[str]:
    lines = []
    for name, what in ((FLASH_PLOT, "flash"), (RAM_PLOT, "peak RAM")):
        if name in plot_files:
            lines += [f"![validation accuracy vs {what}, the target's budget dashed]"
                      f"({plot_files[name]})", ""]
    return lines


def pareto_section(pareto: Mapping[str, Any], plot_files: Mapping[str, str]) -> list[str]:
    """Return the "Pareto front" section of ``report.md``.

    Args:
        pareto: The validated ``pareto`` part of a run report.
        plot_files: The plots' file names relative to the report folder, by
            plot name (at least `GZIP_PLOT` and `LATENCY_PLOT`; `FLASH_PLOT`
            and `RAM_PLOT` are shown when present).

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
        *_device_plots(plot_files),
        "Front trials are red and joined in x order; grey crosses broke a constraint. The front "
        "was computed on the search's objectives and is shown as is on every plot.",
        "",
        *_rejected_section(pareto["trials"]),
    ]
    return lines
