"""Validation and writing of the reports.

The run report is written as JSON, Markdown and two PNG plots (four with a
``pareto`` section), plus a confusion-matrix plot per exported model that has
a ``confusion`` matrix; the compression report as JSON, Markdown and one PNG plot.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
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
            section, and ``confusion_<model name>`` for each model with a
            ``confusion`` matrix.

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


def _validated_json(report: Mapping[str, Any], output_dir: str | os.PathLike,
                    validate: Callable[[Mapping[str, Any]], None]) -> tuple[Path, str]:
    """Validate ``report`` and check ``output_dir``; return the folder and the JSON text."""
    validate(report)
    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise ValueError(f"Received: output_dir={str(output_dir)!r}; expected a folder.")
    return output_dir, _json.dumps(report)


def validate_report(report: Mapping[str, Any]) -> None:
    """Check that ``report`` follows the run report schema and can be written as JSON.

    The schema is the record `RunReport` (and the records it holds: `Dataset`,
    `Search`, `Trial`, `ExportedModel`, `ExportFailure`, `CompressionPointer`,
    `Pareto`); extra keys are allowed everywhere and kept in ``report.json``.
    ``report.md`` gains a section for each optional key present: "Export
    fidelity" (models with verification figures), "Exports that failed
    verification", "Compression" (a link to the compression report and the
    chosen stage) and "Pareto front" (with two more plots, see `write_report`).

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
    drawn and the front highlighted); for each model with a ``confusion``
    matrix, ``confusion_<model name>.png`` (linked from ``report.md``).
    Everything is rendered in memory first, then each file is written
    atomically, ``report.json`` last: if validation
    or rendering fails, no file is touched, and no file is ever left
    half-written.

    Args:
        report: The report dict (its schema: `RunReport`).
        output_dir: The report folder; model ``path`` values are relative to it.

    Returns:
        The `ReportPaths` of the written files.

    Raises:
        ValueError: If ``report`` does not follow the schema (see `validate_report`), or
            ``output_dir`` is a file.
        OSError: If a file cannot be written.

    """
    output_dir, json_text = _validated_json(report, output_dir, validate_report)
    summary = _summary.summarize_trials(report["trials"], report["search"])
    plot_files = {name: f"{name}.png" for name in _plots.PLOT_NAMES}
    pngs = {
        _plots.TRIALS_PLOT: _plots.render_trials_plot(summary, report["search"]["objective"]),
        _plots.MODELS_PLOT: _plots.render_models_plot(report["models"]),
    }
    if "pareto" in report:
        for name in _pareto_plots.plot_names(report["pareto"]):
            plot_files[name] = f"{name}.png"
            pngs[name] = _pareto_plots.render_pareto_plot(report["pareto"], name)
    confusion_names = _plots.confusion_plot_names(report["models"])
    for name, model in zip(confusion_names, report["models"], strict=True):
        if name is not None:
            plot_files[name] = f"{name}.png"
            pngs[name] = _plots.render_confusion_plot(model)
    markdown = _markdown.render_markdown(report, summary, JSON_FILE, plot_files)

    plots = {name: atomic_write_bytes(output_dir / plot_files[name], pngs[name]) for name in pngs}
    markdown_path = atomic_write_text(output_dir / MARKDOWN_FILE, markdown)
    json_path = atomic_write_text(output_dir / JSON_FILE, json_text)
    return ReportPaths(json=json_path, markdown=markdown_path, plots=plots)


def validate_compression_report(report: Mapping[str, Any]) -> None:
    """Check that ``report`` follows the compression report schema and can be written as JSON.

    The schema is the record `CompressionReport` (with `CompressedModel`,
    `Dataset`, `Budget` and `CompressionStage`); extra keys are allowed
    everywhere and kept in ``compression.json`` (``model``, ``dataset`` and
    top-level extras such as ``seed`` are also listed in ``compression.md``).

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
        report: The compression report dict (its schema: `CompressionReport`).
        output_dir: The report folder; stage ``path`` values are relative to it.

    Returns:
        The `CompressionReportPaths` of the written files.

    Raises:
        ValueError: If ``report`` does not follow the schema (see
            `validate_compression_report`), or ``output_dir`` is a file.
        OSError: If a file cannot be written.

    """
    output_dir, json_text = _validated_json(report, output_dir, validate_compression_report)
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
