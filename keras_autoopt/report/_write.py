"""Validation and writing of the reports.

The run report is written as JSON, Markdown and two PNG plots (four with a
``pareto`` section); the compression report as JSON, Markdown and one PNG plot.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from keras_autoopt._io import atomic_write_bytes, atomic_write_text
from keras_autoopt.report import (
    _compression_markdown,
    _json,
    _markdown,
    _pareto_plots,
    _plots,
    _schema,
    _summary,
)

JSON_FILE = "report.json"
MARKDOWN_FILE = "report.md"
COMPRESSION_JSON_FILE = "compression.json"
COMPRESSION_MARKDOWN_FILE = "compression.md"
COMPRESSION_PLOT_FILE = f"{_plots.COMPRESSION_PLOT}.png"


@dataclass(frozen=True)
class ReportPaths:
    """Where `write_report` wrote the report.

    Attributes:
        json: The machine-readable report, ``report.json``.
        markdown: The human-readable report, ``report.md``.
        plots: The PNG plots by name: ``trials_accuracy_vs_params`` and
            ``models_accuracy_vs_gzip``, plus ``pareto_accuracy_vs_gzip`` and
            ``pareto_accuracy_vs_latency`` when the report has a ``pareto``
            section.

    """

    json: Path
    markdown: Path
    plots: dict[str, Path]


@dataclass(frozen=True)
class CompressionReportPaths:
    """Where `write_compression_report` wrote the compression report.

    Attributes:
        json: The machine-readable report, ``compression.json``.
        markdown: The human-readable report, ``compression.md``.
        plot: The accuracy vs gzip size plot, ``compression_accuracy_vs_gzip.png``.

    """

    json: Path
    markdown: Path
    plot: Path


def _report_folder(output_dir: str | os.PathLike) -> Path:
    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise ValueError(f"Received: output_dir={str(output_dir)!r}; expected a folder.")
    return output_dir


def validate_report(report: Mapping[str, Any]) -> None:
    """Check that ``report`` follows the report schema and can be written as JSON.

    The schema (extra keys are allowed everywhere and kept in ``report.json``;
    ``dataset`` and ``search`` extras are also listed in ``report.md``)::

        {
          "dataset": {"name": str, "n_train": int, "n_val": int, "n_test": int},
          "search": {"tuner": str, "trials": int (completed trials),
                     "best_hyperparameters": dict, "wall_time_s": float,
                     "objective": str, "direction": "max" | "min" (optional),
                     "best_trial_id": str (optional)},
          "trials": [{"trial_id": str, "status": str, "score": float | None,
                      "params": int | None, "hyperparameters": dict,
                      "message": str | None}, ...],
          "models": [{"name": str, "mode": str, "path": str (relative to the
                      report folder), "size_bytes": int, "gzip_bytes": int,
                      "accuracy": float in [0, 1], "latency_us_median": float,
                      "params": int,
                      (optional, the export's verification figures:)
                      "verify_samples": int | None,
                      "top1_agreement": float in [0, 1] | None,
                      "keras_accuracy": float in [0, 1] | None,
                      "tflite_accuracy": float in [0, 1] | None,
                      "max_abs_diff": float >= 0 | None}, ...],
          "environment": {name: version str | None, ...},
          "export_failures": [{"name": str, "mode": str, "reason": str,
                               (optional, as ExportVerificationError.to_dict():)
                               "verify_samples": int | None,
                               "max_abs_diff": float >= 0 | None,
                               "tolerance": float >= 0 | None,
                               "top1_agreement": float in [0, 1] | None,
                               "min_top1_agreement": float in [0, 1] | None,
                               "keras_accuracy": float in [0, 1] | None,
                               "tflite_accuracy": float in [0, 1] | None,
                               "max_accuracy_drop": float in [0, 1] | None},
                              ...] (optional),
          "compression": {"report": str (path of compression.md, relative to
                          the report folder), "chosen": stage dict | None,
                          "budget": {"max_accuracy_drop": float,
                                     "baseline_accuracy": float}}  (optional),
          "pareto": {"objectives": [{"name": str (unique),
                                     "direction": "max" | "min"}, ...] (>= 1),
                     "oracle": str,
                     "constraints": {limit name: number >= 0 | None (no
                                     limit), ...} (e.g. max_params,
                                     max_size_bytes, max_latency_ms,
                                     min_accuracy),
                     "trials": [{"trial_id": str (unique), "status": str,
                                 "rejected": bool (before training),
                                 "reason": str | None (why rejected, failed
                                 or infeasible), "feasible": bool | None
                                 (None: not measured),
                                 "metrics": {name: float | None},
                                 "hyperparameters": dict}, ...],
                     "front": [trial_id, ...] (each a COMPLETED trial with
                              feasible True and rejected False),
                     "hypervolume": float >= 0,
                     "reference": [float, ...] (one per objective, finite)}
                    (optional),
        }

    The optional ``compression`` key points to a compression report written
    by `write_compression_report` (usually into a ``compression/`` subfolder)
    and repeats what ``report.md`` shows of it: the chosen stage's record
    (with the keys of a ``stages`` item, see `validate_compression_report`;
    its ``path`` stays relative to the compression report's folder) and the
    accuracy budget. ``chosen`` is ``None`` when no stage is within budget.
    When present, ``report.md`` gains a "Compression" section with a link to
    the compression report and the chosen stage's row.

    The optional verification keys of a ``models`` record are the figures
    of `export_tflite`'s check of that export against its Keras model (see
    `ExportResult`); when any record has them, ``report.md`` gains an "Export
    fidelity" table. The optional ``export_failures`` key lists the exports
    that failed that check (nothing was written for them), each with the
    error's message as ``reason`` and its figures; when it is not empty,
    ``report.md`` opens with an "Exports that failed verification" section.

    The optional ``pareto`` key holds the result of a multi-objective search:
    every trial with its metrics (``val_accuracy`` as a fraction,
    ``gzip_bytes``, ``size_bytes``, ``latency_us``, ``params``, ... any of
    them may be missing), the ids of the trials on the Pareto front (computed
    on ``objectives``), and the front's hypervolume measured from
    ``reference``. When present, ``report.md`` gains a "Pareto front" section
    and two plots are written (see `write_report`).

    Counts and sizes are non-negative ints; NumPy scalars are accepted where
    Python numbers are. ``score``, ``accuracy``, ``latency_us_median`` and the
    verification figures may be NaN (written as ``null`` in JSON, ``n/a`` in
    Markdown); ``max_abs_diff`` and ``tolerance`` may be infinite (``null`` in
    JSON).

    Args:
        report: The report to check.

    Raises:
        ValueError: On the first problem, naming the key path (for example
            ``report['models'][1]['gzip_bytes']``), the value received and
            what was expected; also if a ``pareto`` front id names no trial,
            or a trial that is not completed and feasible.

    """
    _schema.check_structure(report)
    _json.to_jsonable(report)


def write_report(report: Mapping[str, Any], output_dir: str | os.PathLike) -> ReportPaths:
    """Validate ``report`` and write it into ``output_dir`` as JSON, Markdown and plots.

    Files written (``output_dir`` is created if needed): ``report.json``,
    ``report.md``, ``trials_accuracy_vs_params.png`` and
    ``models_accuracy_vs_gzip.png``; with a ``pareto`` section, also
    ``pareto_accuracy_vs_gzip.png`` and ``pareto_accuracy_vs_latency.png``
    (validation accuracy against gzip size and latency, every completed trial
    drawn and the front highlighted). Everything is rendered in memory first,
    then each file is written atomically, ``report.json`` last: if validation
    or rendering fails, no file is touched, and no file is ever left
    half-written.

    Args:
        report: The report dict (see `validate_report` for its schema).
        output_dir: The report folder; model ``path`` values are relative to it.

    Returns:
        The `ReportPaths` of the written files.

    Raises:
        ValueError: If ``report`` does not follow the schema.
        OSError: If a file cannot be written.

    """
    validate_report(report)
    output_dir = _report_folder(output_dir)

    json_text = _json.dumps(report)
    summary = _summary.summarize_trials(report["trials"], report["search"])
    plot_files = {name: f"{name}.png" for name in _plots.PLOT_NAMES}
    pngs = {
        _plots.TRIALS_PLOT: _plots.render_trials_plot(summary, report["search"]["objective"]),
        _plots.MODELS_PLOT: _plots.render_models_plot(report["models"]),
    }
    if "pareto" in report:
        for name in _pareto_plots.PLOT_NAMES:
            plot_files[name] = f"{name}.png"
            pngs[name] = _pareto_plots.render_pareto_plot(report["pareto"], name)
    markdown = _markdown.render_markdown(report, summary, JSON_FILE, plot_files)

    plots = {name: atomic_write_bytes(output_dir / plot_files[name], pngs[name]) for name in pngs}
    markdown_path = atomic_write_text(output_dir / MARKDOWN_FILE, markdown)
    json_path = atomic_write_text(output_dir / JSON_FILE, json_text)
    return ReportPaths(json=json_path, markdown=markdown_path, plots=plots)


def validate_compression_report(report: Mapping[str, Any]) -> None:
    """Check that ``report`` follows the compression report schema and can be written as JSON.

    The schema (extra keys are allowed everywhere and kept in
    ``compression.json``; ``model`` and ``dataset`` extras and top-level
    extras such as ``seed`` are also listed in ``compression.md``)::

        {
          "model": {"name": str, "params": int},
          "dataset": {"name": str, "n_train": int, "n_val": int, "n_test": int},
          "budget": {"max_accuracy_drop": float in [0, 1],
                     "baseline_accuracy": float in [0, 1]},
          "chosen": str | None (a stage name: the smallest gzip size within
                    budget; None when no stage is within budget),
          "stages": [{"stage": str (unique), "mode": str (TFLite export mode),
                      "path": str (relative to the report folder),
                      "sparsity": float in [0, 1] (zero weights over all
                      prunable kernels),
                      "layer_sparsity": {layer: float in [0, 1]},
                      "unique_weights": {layer: int (distinct kernel values)},
                      "accuracy": float in [0, 1] | NaN (LiteRT, test split),
                      "size_bytes": int, "gzip_bytes": int,
                      "latency_us_median": float | NaN,
                      "size_ratio": float | NaN (float32 size / size_bytes),
                      "gzip_ratio": float | NaN (float32 size / gzip_bytes),
                      "within_budget": bool, "wall_time_s": float}, ...],
          "environment": {name: version str | None, ...},
          "sensitivity": {layer: {sparsity str: accuracy drop float}} (optional),
        }

    Accuracies, the budget and sparsities are fractions, not percentages.
    NumPy scalars are accepted where Python numbers are; NaN is written as
    ``null`` in JSON and ``n/a`` in Markdown.

    Args:
        report: The compression report to check.

    Raises:
        ValueError: On the first problem, naming the key path (for example
            ``report['stages'][2]['gzip_ratio']``), the value received and
            what was expected; also if two stages share a name or ``chosen``
            names no stage.

    """
    _schema.check_compression_structure(report)
    _json.to_jsonable(report)


def write_compression_report(
    report: Mapping[str, Any], output_dir: str | os.PathLike
) -> CompressionReportPaths:
    """Validate a compression report and write it into ``output_dir``.

    Files written (``output_dir`` is created if needed): ``compression.json``,
    ``compression.md`` and ``compression_accuracy_vs_gzip.png``. As with
    `write_report`, everything is rendered in memory first and each file is
    written atomically, ``compression.json`` last: if validation or rendering
    fails, no file is touched.

    ``compression.md`` holds a summary (model, dataset, budget, chosen stage),
    a table of the stages (the chosen one in bold), the plot, a per-layer
    table (sparsity and unique weights in each stage) and, when ``report``
    has a ``sensitivity`` key, a table of accuracy drops per layer and sparsity.

    Args:
        report: The compression report (see `validate_compression_report`).
        output_dir: The report folder; stage ``path`` values are relative to it.

    Returns:
        The `CompressionReportPaths` of the written files.

    Raises:
        ValueError: If ``report`` does not follow the schema.
        OSError: If a file cannot be written.

    """
    validate_compression_report(report)
    output_dir = _report_folder(output_dir)

    json_text = _json.dumps(report)
    png = _plots.render_compression_plot(
        report["stages"],
        _compression_markdown.accuracy_floor(report["budget"]),
        report["chosen"],
    )
    markdown = _compression_markdown.render_compression_markdown(
        report, COMPRESSION_JSON_FILE, COMPRESSION_PLOT_FILE
    )

    plot_path = atomic_write_bytes(output_dir / COMPRESSION_PLOT_FILE, png)
    markdown_path = atomic_write_text(output_dir / COMPRESSION_MARKDOWN_FILE, markdown)
    json_path = atomic_write_text(output_dir / COMPRESSION_JSON_FILE, json_text)
    return CompressionReportPaths(json=json_path, markdown=markdown_path, plot=plot_path)
