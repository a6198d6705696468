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
from keras_autoopt.report._pareto_report import fits_target, pareto_section
from keras_autoopt.report._plots import confusion_plot_names
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
        # Shown only when some trial recorded them (multi-objective searches).
        extra = [(key, title, fmt) for key, title, fmt in _TRIAL_EXTRA_COLUMNS
                 if any(trial.get(key) is not None for trial in trials)]
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
                    *(fmt(trial.get(key)) for key, _, fmt in extra),
                    fmt_hyperparameters(trial["hyperparameters"]),
                )
            )
        header = ("trial", "status", f"score ({objective})", "params",
                  *(title for _, title, _ in extra), "hyperparameters")
        lines += md_table(header, rows, "llrr" + "r" * len(extra) + "l")
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


def _fmt_seconds(seconds: Any) -> str:
    return fmt_number(seconds, 1)


#: Trials table: optional columns (key, title, format), shown when a trial has the key.
_TRIAL_EXTRA_COLUMNS = (
    ("val_f1", "val macro F1 (%)", fmt_percent),
    ("train_s", "train (s)", _fmt_seconds),
)


def _confusion_lines(models: Sequence[Mapping[str, Any]],
                     plot_files: Mapping[str, str]) -> list[str]:
    """The "Confusion matrices" subsection: one linked plot per model that has one."""
    plots = [(model, plot_files[name]) for model, name
             in zip(models, confusion_plot_names(models), strict=True)
             if name is not None and name in plot_files]
    if not plots:
        return []
    lines = [
        "",
        "### Confusion matrices",
        "",
        "On the test split: rows are the true classes, columns the predicted ones; each cell "
        "holds a count and is shaded by its share of the true class. Macro precision, recall "
        "and F1 average the per-class figures over the classes in the labels or the predictions, "
        "so a neglected class "
        "pulls them down more than it does accuracy.",
        "",
    ]
    for model, file in plots:
        figures = ", ".join(
            f"{label} {fmt_percent(model.get(key))} %" for key, label in
            (("precision_macro", "macro precision"), ("recall_macro", "macro recall"),
             ("f1_macro", "macro F1")) if model.get(key) is not None)
        name = str(model["name"])
        lines.append(f"- {md_link(name, file)}" + (f": {figures}" if figures else ""))
    for model, file in plots:
        lines += ["", f"![confusion matrix of {model['name']}]({file})"]
    return lines


def _sparse_lines(models: Sequence[Mapping[str, Any]]) -> list[str]:
    """What each export decided about TFLite's sparse encoding of pruned weights, if it tried."""
    decided = [model for model in models if model.get("sparse_reason")]
    if not decided:
        return []
    lines = ["", "Sparse encoding of pruned weights (kept only where the file is smaller or the "
                 "model faster under LiteRT):", ""]
    lines += [f"- {model['name']}: {'sparse' if model.get('sparse_encoding') else 'dense'} "
              f"file; {model['sparse_reason']}" for model in decided]
    return lines


def _device_lines(models: Sequence[Mapping[str, Any]],
                  target: Mapping[str, Any] | None) -> list[str]:
    """The "On the target" subsection: each model's file as the search's target measured it."""
    measured = [model for model in models if model.get("device")]
    if not measured:
        return []
    name = str((target or {}).get("name") or measured[0]["device"].get("target", "target"))
    rows = []
    for model in measured:
        device = model["device"]
        runs = device.get("reason") is None
        figures = {"flash_bytes": device.get("flash_bytes"), "ram_bytes": device.get("ram_bytes"),
                   "target_runs": 1.0 if runs else 0.0}
        rows.append([
            md_link(str(model["name"]), str(model["path"])),
            fmt_int(device.get("flash_bytes")),
            fmt_int(device.get("ram_bytes")) if device.get("ram_bytes") is not None else "-",
            fmt_int(device.get("macs")),
            "yes" if runs else f"no: {device['reason']}",
            fits_target(figures, target),
        ])
    budgets = [f"{label} {fmt_int(target[key])} bytes" for key, label in
               (("flash_bytes", "flash"), ("ram_bytes", "RAM"))
               if target and target.get(key) is not None]
    return [
        "",
        f"### On the target: {name}",
        "",
        "Each file as the target runs it: flash is what the device stores, RAM the peak "
        "working memory (the TFLite Micro arena, or Vela's SRAM), MACs the multiply-accumulates "
        "of one inference." + (f" Budgets: {', '.join(budgets)}." if budgets else ""),
        "",
        *md_table(("model", "flash (bytes)", "RAM (bytes)", "MACs", f"runs on {name}",
                   f"fits {name}"), rows, "lrrrll"),
    ]


def _models_section(models: Sequence[Mapping[str, Any]], plot: str,
                    plot_files: Mapping[str, str],
                    target: Mapping[str, Any] | None = None) -> list[str]:
    lines = ["## Exported models", ""]
    if not models:
        return [*lines, "_No models were exported._"]
    reference = float32_reference(models)
    has_f1 = any("f1_macro" in model for model in models)
    has_train = any(model.get("train_s") is not None for model in models)
    header = [
        "model",
        "mode",
        "size (bytes)",
        "gzip (bytes)",
        "accuracy (%)",
        *(["macro F1 (%)"] if has_f1 else []),
        "median latency (µs)",
        "params",
        *(["train (s)"] if has_train else []),
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
            *([fmt_percent(model.get("f1_macro"))] if has_f1 else []),
            fmt_number(model["latency_us_median"], 1),
            fmt_int(model["params"]),
            *([_fmt_seconds(model.get("train_s"))] if has_train else []),
        ]
        if reference is not None:
            ratio = size_ratio(model, reference)
            row.append(fmt_number(ratio, 2) + ("x" if ratio == ratio else ""))
        rows.append(row)
    lines += md_table(header, rows, "ll" + "r" * (len(header) - 2))
    lines += [
        "",
        f"![accuracy vs gzip size of the exported models]({plot})",
    ]
    if has_train:
        lines += [
            "",
            "train (s): wall time of the training and compression of the search trial the "
            "model comes from (n/a when not timed, e.g. a refit model).",
        ]
    return [*lines, *_sparse_lines(models), *_device_lines(models, target),
            *_confusion_lines(models, plot_files)]


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
            the Pareto plots when the report has a ``pareto`` section, and the
            confusion matrices named by `confusion_plot_names`).

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
    lines += [
        *_models_section(report["models"], plot_files["models_accuracy_vs_gzip"], plot_files,
                         (report.get("pareto") or {}).get("target")),
        "",
    ]
    fidelity = fidelity_section(report["models"])
    if fidelity:
        lines += [*fidelity, ""]
    if "compression" in report:
        lines += [*compression_section(report["compression"]), ""]
    lines += environment_section(report["environment"])
    return "\n".join(lines) + "\n"
