"""Validation and writing of the run report: JSON, Markdown and two PNG plots."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from keras_autoopt._io import atomic_write_bytes, atomic_write_text
from keras_autoopt.report import _json, _markdown, _plots, _schema, _summary

JSON_FILE = "report.json"
MARKDOWN_FILE = "report.md"


@dataclass(frozen=True)
class ReportPaths:
    """Where `write_report` wrote the report.

    Attributes:
        json: The machine-readable report, ``report.json``.
        markdown: The human-readable report, ``report.md``.
        plots: The PNG plots by name: ``trials_accuracy_vs_params`` and
            ``models_accuracy_vs_gzip``.

    """

    json: Path
    markdown: Path
    plots: dict[str, Path]


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
                      "params": int}, ...],
          "environment": {name: version str | None, ...},
        }

    Counts and sizes are non-negative ints; NumPy scalars are accepted where
    Python numbers are. ``score``, ``accuracy`` and ``latency_us_median`` may be
    NaN (written as ``null`` in JSON, ``n/a`` in Markdown).

    Args:
        report: The report to check.

    Raises:
        ValueError: On the first problem, naming the key path (for example
            ``report['models'][1]['gzip_bytes']``), the value received and
            what was expected.

    """
    _schema.check_structure(report)
    _json.to_jsonable(report)


def write_report(report: Mapping[str, Any], output_dir: str | os.PathLike) -> ReportPaths:
    """Validate ``report`` and write it into ``output_dir`` as JSON, Markdown and plots.

    Files written (``output_dir`` is created if needed): ``report.json``,
    ``report.md``, ``trials_accuracy_vs_params.png`` and
    ``models_accuracy_vs_gzip.png``. Everything is rendered in memory first,
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
    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise ValueError(f"Received: output_dir={str(output_dir)!r}; expected a folder.")

    json_text = _json.dumps(report)
    summary = _summary.summarize_trials(report["trials"], report["search"])
    plot_files = {name: f"{name}.png" for name in _plots.PLOT_NAMES}
    pngs = {
        _plots.TRIALS_PLOT: _plots.render_trials_plot(summary, report["search"]["objective"]),
        _plots.MODELS_PLOT: _plots.render_models_plot(report["models"]),
    }
    markdown = _markdown.render_markdown(report, summary, JSON_FILE, plot_files)

    plots = {name: atomic_write_bytes(output_dir / plot_files[name], pngs[name]) for name in pngs}
    markdown_path = atomic_write_text(output_dir / MARKDOWN_FILE, markdown)
    json_path = atomic_write_text(output_dir / JSON_FILE, json_text)
    return ReportPaths(json=json_path, markdown=markdown_path, plots=plots)
