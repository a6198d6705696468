"""The human-readable report: ``report.md``."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from keras_autoopt.report._compression_markdown import compression_section
from keras_autoopt.report._export_fidelity import failures_section, fidelity_section
from keras_autoopt.report._format import (
    NOT_AVAILABLE,
    fmt_duration,
    fmt_hyperparameters,
    fmt_int,
    fmt_number,
    fmt_percent,
    fmt_value,
)
from keras_autoopt.report._md import environment_section, md_link, md_table
from keras_autoopt.report._pareto_report import pareto_section
from keras_autoopt.report._summary import (
    FLOAT32_MODE,
    TrialSummary,
    float32_reference,
    size_ratio,
)

_DATASET_KEYS = ("name", "n_train", "n_val", "n_test")
# Shown in the search table in their own words; other keys are listed as they are.
_SEARCH_KEYS = (
    "tuner",
    "trials",
    "best_hyperparameters",
    "wall_time_s",
    "objective",
    "direction",
    "best_trial_id",
    "best_score",
)
_MESSAGE_CHARS = 200


def _fmt_score(score: Any) -> str:
    # NaN (a diverged trial) is worth telling apart from "no score".
    if score is not None and math.isnan(float(score)):
        return "NaN"
    return fmt_number(score, 4)


def _dataset_section(dataset: Mapping[str, Any]) -> list[str]:
    rows = [
        ("name", dataset["name"]),
        ("train examples", fmt_int(dataset["n_train"])),
        ("validation examples", fmt_int(dataset["n_val"])),
        ("test examples", fmt_int(dataset["n_test"])),
    ]
    rows += [(key, fmt_value(value)) for key, value in dataset.items() if key not in _DATASET_KEYS]
    return ["## Dataset", "", *md_table(("field", "value"), rows, "ll")]


def _search_section(search: Mapping[str, Any], summary: TrialSummary) -> list[str]:
    best = summary.best
    best_text = (
        f"trial {best['trial_id']}: {fmt_number(best['score'], 4)}"
        if best is not None
        else NOT_AVAILABLE
    )
    rows = [
        ("tuner", search["tuner"]),
        ("objective", f"{search['objective']} ({summary.direction})"),
        ("completed trials", fmt_int(search["trials"])),
        ("wall time", fmt_duration(search["wall_time_s"])),
        ("best score", best_text),
    ]
    rows += [(key, fmt_value(value)) for key, value in search.items() if key not in _SEARCH_KEYS]
    lines = [
        "## Search",
        "",
        *md_table(("field", "value"), rows, "ll"),
        "",
        "### Best hyperparameters",
        "",
    ]
    hyperparameters = search["best_hyperparameters"]
    if hyperparameters:
        hp_rows = [(name, fmt_value(value)) for name, value in hyperparameters.items()]
        lines += md_table(("hyperparameter", "value"), hp_rows, "ll")
    else:
        lines.append("_None recorded._")
    return lines


def _trials_section(
    trials: Sequence[Mapping[str, Any]], objective: str, summary: TrialSummary, plot: str
) -> list[str]:
    lines = ["## Trials", ""]
    if not trials:
        lines.append("_No trials were recorded._")
    else:
        rows = []
        for trial in trials:
            trial_id = str(trial["trial_id"])
            if trial is summary.best:
                trial_id += " (best)"
            rows.append(
                (
                    trial_id,
                    trial["status"],
                    _fmt_score(trial["score"]),
                    fmt_int(trial["params"]),
                    fmt_hyperparameters(trial["hyperparameters"]),
                )
            )
        header = ("trial", "status", f"score ({objective})", "params", "hyperparameters")
        lines += md_table(header, rows, "llrrl")
    lines += ["", f"![{objective} vs parameters of the completed trials]({plot})", ""]
    if summary.plotted:
        notes = [
            f"The plot shows the {len(summary.plotted)} completed trial(s) with a score and a "
            "parameter count; the best one is the red star."
        ]
    else:
        notes = ["No completed trial has a score and a parameter count: the plot is empty."]
    if summary.not_completed:
        notes.append(
            f"{len(summary.not_completed)} trial(s) that did not complete (failed or other "
            "status) are excluded from the plot."
        )
    if summary.not_plotted:
        notes.append(
            f"{len(summary.not_plotted)} completed trial(s) without a finite score or a "
            "parameter count are excluded from the plot."
        )
    lines.append(" ".join(notes))
    failed = [trial for trial in summary.not_completed if trial["message"]]
    if failed:
        lines += ["", "### Why trials did not complete", ""]
        for trial in failed:
            message = " ".join(str(trial["message"]).split())
            if len(message) > _MESSAGE_CHARS:
                message = message[: _MESSAGE_CHARS - 1] + "…"
            lines.append(f"- trial {trial['trial_id']} ({trial['status']}): {message}")
    return lines


def _models_section(models: Sequence[Mapping[str, Any]], plot: str) -> list[str]:
    lines = ["## Exported models", ""]
    if not models:
        return [*lines, "_No models were exported._"]
    reference = float32_reference(models)
    header = [
        "model",
        "mode",
        "size (bytes)",
        "gzip (bytes)",
        "accuracy (%)",
        "median latency (µs)",
        "params",
    ]
    if reference is not None:
        header.append(f"size vs {FLOAT32_MODE}")
    rows = []
    for model in models:
        row = [
            md_link(str(model["name"]), str(model["path"])),
            model["mode"],
            fmt_int(model["size_bytes"]),
            fmt_int(model["gzip_bytes"]),
            fmt_percent(model["accuracy"]),
            fmt_number(model["latency_us_median"], 1),
            fmt_int(model["params"]),
        ]
        if reference is not None:
            ratio = size_ratio(model, reference)
            row.append(fmt_number(ratio, 2) + ("x" if ratio == ratio else ""))
        rows.append(row)
    lines += md_table(header, rows, "llrrrrrr"[: len(header)])
    lines += [
        "",
        f"![accuracy vs gzip size of the exported models]({plot})",
    ]
    return lines


def render_markdown(
    report: Mapping[str, Any],
    summary: TrialSummary,
    json_file: str,
    plot_files: Mapping[str, str],
) -> str:
    """Return the text of ``report.md`` for a validated report.

    Args:
        report: The validated report.
        summary: Its trials, sorted (see `summarize_trials`).
        json_file: The JSON report's file name relative to the report folder.
        plot_files: The plots' file names relative to the report folder, by
            plot name (``trials_accuracy_vs_params``, ``models_accuracy_vs_gzip``,
            and the Pareto plots when the report has a ``pareto`` section).

    Returns:
        The Markdown text, ending with a newline.

    """
    dataset, search = report["dataset"], report["search"]
    lines = [
        f"# keras_autoopt report: {dataset['name']}",
        "",
        f"Machine-readable version: {md_link(json_file, json_file)}.",
        "",
    ]
    failures = failures_section(report.get("export_failures", ()))
    if failures:
        lines += [*failures, ""]
    lines += [
        *_dataset_section(dataset),
        "",
        *_search_section(search, summary),
        "",
        *_trials_section(
            report["trials"],
            search["objective"],
            summary,
            plot_files["trials_accuracy_vs_params"],
        ),
        "",
    ]
    if "pareto" in report:
        lines += [*pareto_section(report["pareto"], plot_files), ""]
    lines += [*_models_section(report["models"], plot_files["models_accuracy_vs_gzip"]), ""]
    fidelity = fidelity_section(report["models"])
    if fidelity:
        lines += [*fidelity, ""]
    if "compression" in report:
        lines += [*compression_section(report["compression"]), ""]
    lines += environment_section(report["environment"])
    return "\n".join(lines) + "\n"
