"""The human-readable compression report (``compression.md``) and its summary in ``report.md``."""

from __future__ import annotations

import posixpath
from collections.abc import Mapping, Sequence
from typing import Any

from keras_autoopt.report._format import (
    fmt_int,
    fmt_number,
    fmt_percent,
    fmt_points,
    fmt_ratio,
    fmt_value,
)
from keras_autoopt.report._md import environment_section, md_link, md_table
from keras_autoopt.report._values import is_missing_number, is_real

_TOP_LEVEL_KEYS = ("model", "dataset", "budget", "chosen", "stages", "environment", "sensitivity")
_MODEL_KEYS = ("name", "params")
_DATASET_KEYS = ("name", "n_train", "n_val", "n_test")
_WITHIN = "✓"
_OUTSIDE = "✗"
_STAGE_HEADER = (
    "stage",
    "mode",
    "sparsity (%)",
    "unique weights",
    "accuracy (%)",
    "Δ accuracy (pt)",
    "size (bytes)",
    "gzip (bytes)",
    "latency (µs)",
    "size ratio",
    "gzip ratio",
    "within budget",
)
_STAGE_ALIGN = "llrlrrrrrrrl"
_STAGES_NOTE = (
    "Sparsity is the fraction of zero weights over all prunable kernels; unique weights "
    "counts the distinct values of each layer's kernel. Accuracy is measured with LiteRT on "
    "the test split; Δ accuracy is in percentage points against the baseline. Ratios are the "
    "float32 model's size divided by the stage's size (plain or gzip): higher is smaller."
)


def accuracy_floor(budget: Mapping[str, Any]) -> float:
    """Return the lowest accuracy within budget: the baseline minus the allowed drop.

    Args:
        budget: The ``budget`` part of a validated compression report.

    Returns:
        The accuracy floor as a fraction.

    """
    return float(budget["baseline_accuracy"]) - float(budget["max_accuracy_drop"])


def _fmt_unique_weights(unique_weights: Mapping[str, Any]) -> str:
    if not unique_weights:
        return "-"
    return " ".join(f"{layer}:{int(count)}" for layer, count in unique_weights.items())


def _delta(stage: Mapping[str, Any], budget: Mapping[str, Any]) -> float | None:
    if is_missing_number(stage["accuracy"]):
        return None
    return float(stage["accuracy"]) - float(budget["baseline_accuracy"])


def decided_on_validation(stages: Sequence[Mapping[str, Any]],
                          budget: Mapping[str, Any]) -> bool:
    """Whether "within budget" was decided on validation accuracy.

    True when the budget carries ``baseline_val_accuracy`` and every stage a
    ``val_accuracy`` (as `auto_compress` writes them): the table then shows the
    validation figures the decision used beside the test figures.

    Args:
        stages: Validated stage records.
        budget: The ``budget`` part of the report.

    Returns:
        Whether to show the validation columns.
    """
    return is_real(budget.get("baseline_val_accuracy")) and bool(stages) and all(
        is_real(stage.get("val_accuracy")) for stage in stages)


def _paired_cells(stage: Mapping[str, Any]) -> list[str]:
    """The paired decision figures: validation drop's upper bound, test change and its CI."""
    low, high = stage["test_drop_ci95"]
    return [fmt_points(-float(stage["val_drop_upper"])),
            f"{fmt_points(-float(stage['test_drop']))} "
            f"[{fmt_points(-float(high))}, {fmt_points(-float(low))}]"]


def _stage_row(
    stage: Mapping[str, Any], budget: Mapping[str, Any], chosen: bool, folder: str,
    with_val: bool = False, with_f1: bool = False, with_paired: bool = False,
) -> list[str]:
    name = md_link(str(stage["stage"]), posixpath.join(folder, str(stage["path"])))
    if chosen:
        name = f"**{name}** (chosen)"
    val = [
        fmt_percent(stage["val_accuracy"]),
        fmt_points(float(stage["val_accuracy"]) - float(budget["baseline_val_accuracy"])),
    ] if with_val else []
    return [
        name,
        str(stage["mode"]),
        fmt_percent(stage["sparsity"], 1),
        _fmt_unique_weights(stage["unique_weights"]),
        fmt_percent(stage["accuracy"]),
        fmt_points(_delta(stage, budget)),
        *val,
        *(_paired_cells(stage) if with_paired else []),
        *([fmt_percent(stage.get("f1_macro"))] if with_f1 else []),
        fmt_int(stage["size_bytes"]),
        fmt_int(stage["gzip_bytes"]),
        fmt_number(stage["latency_us_median"], 1),
        fmt_ratio(stage["size_ratio"]),
        fmt_ratio(stage["gzip_ratio"]),
        _WITHIN if stage["within_budget"] else _OUTSIDE,
    ]


def stages_table(
    stages: Sequence[Mapping[str, Any]],
    budget: Mapping[str, Any],
    chosen: str | None,
    folder: str = "",
) -> list[str]:
    """Return the Markdown table of compression stages, the chosen one in bold.

    Args:
        stages: Validated stage records.
        budget: The accuracy budget (baseline and allowed drop).
        chosen: The name of the chosen stage, or ``None``.
        folder: The compression report's folder relative to the Markdown file;
            stage paths are relative to it.

    Returns:
        The table's lines.

    """
    with_val = decided_on_validation(stages, budget)
    # Macro F1 on the test split: stages measured before it existed have none.
    with_f1 = any(stage.get("f1_macro") is not None for stage in stages)
    # Paired decisions (auto_compress since structured pruning): the bound that decided.
    with_paired = bool(stages) and all(
        stage.get("val_drop_upper") is not None and stage.get("test_drop_ci95") is not None
        for stage in stages)
    rows = [_stage_row(stage, budget, stage["stage"] == chosen, folder, with_val, with_f1,
                       with_paired) for stage in stages]
    extra = [*(["val accuracy (%)", "Δ val (pt)"] if with_val else []),
             *(["Δ val, paired lower bound (pt)", "Δ test paired [95 % CI] (pt)"]
               if with_paired else []),
             *(["macro F1 (%)"] if with_f1 else [])]
    header = (*_STAGE_HEADER[:6], *extra, *_STAGE_HEADER[6:])
    return md_table(header, rows, _STAGE_ALIGN[:6] + "r" * len(extra) + _STAGE_ALIGN[6:])


#: What a report's ``budget.minimize`` means, in words.
_MINIMIZED = {"flash": "flash (file bytes)", "gzip": "gzip size", "latency": "host latency",
              "ram": "RAM", "macs": "MACs"}


def _budget_text(budget: Mapping[str, Any]) -> str:
    if is_real(budget.get("confidence")):
        return (
            f"decided on the validation split: each stage's per-sample results against the "
            f"float32 model's, and the drop's one-sided upper bound at "
            f"{fmt_number(100.0 * float(budget['confidence']), 0)} % confidence at most "
            f"{fmt_number(100.0 * float(budget['max_accuracy_drop']), 2)} pt; the test "
            "figures are reported with their paired 95 % interval, never used to decide"
        )
    if is_real(budget.get("baseline_val_accuracy")):
        floor = float(budget["baseline_val_accuracy"]) - float(budget["max_accuracy_drop"])
        return (
            f"decided on the validation split: baseline validation accuracy "
            f"{fmt_percent(budget['baseline_val_accuracy'])} %, at most "
            f"{fmt_number(100.0 * float(budget['max_accuracy_drop']), 2)} pt lower, so at "
            f"least {fmt_percent(floor)} %; the test figures are reported, never used to decide"
        )
    return (
        f"baseline accuracy {fmt_percent(budget['baseline_accuracy'])} %, at most "
        f"{fmt_number(100.0 * float(budget['max_accuracy_drop']), 2)} pt lower, so at least "
        f"{fmt_percent(accuracy_floor(budget))} %"
    )


def _chosen_text(stages: Sequence[Mapping[str, Any]], chosen: str | None) -> str:
    if chosen is None:
        return "none: no stage is within the accuracy budget"
    stage = next(stage for stage in stages if stage["stage"] == chosen)
    return (
        f"**{chosen}** ({fmt_int(stage['size_bytes'])} bytes, "
        f"{fmt_ratio(stage['size_ratio'])} smaller than float32; "
        f"{fmt_int(stage['gzip_bytes'])} bytes gzipped, "
        f"{fmt_ratio(stage['gzip_ratio'])})"
    )


def _summary_section(report: Mapping[str, Any]) -> list[str]:
    model, dataset, budget = report["model"], report["dataset"], report["budget"]
    rows: list[tuple[str, str]] = [
        ("model", str(model["name"])),
        ("parameters", fmt_int(model["params"])),
    ]
    rows += [(key, fmt_value(value)) for key, value in model.items() if key not in _MODEL_KEYS]
    rows += [
        ("dataset", str(dataset["name"])),
        (
            "train / validation / test examples",
            f"{fmt_int(dataset['n_train'])} / {fmt_int(dataset['n_val'])} / "
            f"{fmt_int(dataset['n_test'])}",
        ),
    ]
    rows += [
        (f"dataset {key}", fmt_value(value))
        for key, value in dataset.items()
        if key not in _DATASET_KEYS
    ]
    rows += [
        ("baseline accuracy", f"{fmt_percent(budget['baseline_accuracy'])} %"),
        (
            "max accuracy drop",
            f"{fmt_number(100.0 * float(budget['max_accuracy_drop']), 2)} pt",
        ),
        ("accuracy floor", f"{fmt_percent(accuracy_floor(budget))} %"),
        ("chosen stage", _chosen_text(report["stages"], report["chosen"])),
    ]
    rows += [(key, fmt_value(value)) for key, value in report.items() if key not in _TOP_LEVEL_KEYS]
    return ["## Summary", "", *md_table(("field", "value"), rows, "ll")]


def _stages_section(report: Mapping[str, Any], plot: str) -> list[str]:
    stages, chosen = report["stages"], report["chosen"]
    lines = ["## Stages", ""]
    if not stages:
        return [*lines, "_No stages were recorded._"]
    if chosen is None:
        lead = "No stage is within the accuracy budget, so none is recommended."
    else:
        figure = _MINIMIZED.get(str(report["budget"].get("minimize", "gzip")), "gzip size")
        lead = (
            f"Recommended: **{chosen}**, the least {figure} within the accuracy budget "
            f"({_budget_text(report['budget'])})."
        )
    return [
        *lines,
        lead,
        "",
        *stages_table(stages, report["budget"], chosen),
        "",
        _STAGES_NOTE,
        "",
        f"![accuracy vs gzip size of the compression stages]({plot})",
    ]


def _layer_names(stages: Sequence[Mapping[str, Any]]) -> list[str]:
    names: dict[str, None] = {}
    for stage in stages:
        names.update(dict.fromkeys(stage["layer_sparsity"]))
        names.update(dict.fromkeys(stage["unique_weights"]))
    return list(names)


def _layer_cell(stage: Mapping[str, Any], layer: str) -> str:
    sparsity = stage["layer_sparsity"].get(layer)
    unique = stage["unique_weights"].get(layer)
    if sparsity is None and unique is None:
        return "-"
    sparsity_text = "-" if sparsity is None else f"{fmt_percent(sparsity, 1)} %"
    unique_text = "-" if unique is None else fmt_int(unique)
    return f"{sparsity_text} / {unique_text}"


def _layers_section(stages: Sequence[Mapping[str, Any]]) -> list[str]:
    lines = ["## Layers", ""]
    layers = _layer_names(stages)
    if not layers:
        return [*lines, "_No per-layer figures were recorded._"]
    header = ["layer", *(str(stage["stage"]) for stage in stages)]
    rows = [[layer, *(_layer_cell(stage, layer) for stage in stages)] for layer in layers]
    return [
        *lines,
        "Each cell: sparsity (% of zero weights) / unique weights; `-` when not recorded.",
        "",
        *md_table(header, rows, "l" + "r" * len(stages)),
    ]


def _as_fraction(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _sparsity_columns(sensitivity: Mapping[str, Mapping[str, Any]]) -> list[str]:
    columns: dict[str, None] = {}
    for drops in sensitivity.values():
        columns.update(dict.fromkeys(drops))
    keys = list(columns)
    values = [_as_fraction(key) for key in keys]
    if all(value is not None for value in values):
        keys = [key for _, key in sorted(zip(values, keys, strict=True), key=lambda pair: pair[0])]
    return keys


def _sparsity_title(key: str) -> str:
    value = _as_fraction(key)
    if value is None or not 0 <= value <= 1:
        return key
    return f"{100.0 * value:g} %"


def _sensitivity_section(sensitivity: Mapping[str, Mapping[str, Any]]) -> list[str]:
    lines = ["## Sensitivity", ""]
    columns = _sparsity_columns(sensitivity)
    if not columns:
        return [*lines, "_No sensitivity figures were recorded._"]
    header = ["layer", *(f"{_sparsity_title(key)} sparsity" for key in columns)]
    rows = [
        [
            layer,
            *(fmt_number(100.0 * float(drops[key]), 2) if key in drops else "-" for key in columns),
        ]
        for layer, drops in sensitivity.items()
    ]
    return [
        *lines,
        "Accuracy drop (percentage points) when only that layer is pruned to that sparsity; "
        "`-` when not measured.",
        "",
        *md_table(header, rows, "l" + "r" * len(columns)),
    ]


def render_compression_markdown(report: Mapping[str, Any], json_file: str, plot_file: str) -> str:
    """Return the text of ``compression.md`` for a validated compression report.

    Args:
        report: The validated compression report.
        json_file: The JSON file's name relative to the report folder.
        plot_file: The plot's file name relative to the report folder.

    Returns:
        The Markdown text, ending with a newline.

    """
    lines = [
        f"# keras_autoopt compression report: {report['model']['name']} "
        f"on {report['dataset']['name']}",
        "",
        f"Machine-readable version: {md_link(json_file, json_file)}.",
        "",
        *_summary_section(report),
        "",
        *_stages_section(report, plot_file),
        "",
        *_layers_section(report["stages"]),
        "",
    ]
    if "sensitivity" in report:
        lines += [*_sensitivity_section(report["sensitivity"]), ""]
    lines += environment_section(report["environment"])
    return "\n".join(lines) + "\n"


def compression_section(pointer: Mapping[str, Any]) -> list[str]:
    """Return the "Compression" section of ``report.md``.

    Args:
        pointer: The validated ``compression`` part of a run report:
            ``{"report": path of compression.md, "chosen": stage dict or None,
            "budget": {...}}``.

    Returns:
        The section's lines: a link to the compression report and the
        chosen stage's row (stage paths made relative to ``report.md``).

    """
    path = str(pointer["report"])
    lines = [
        "## Compression",
        "",
        f"Full compression report: {md_link(path, path)}.",
        "",
    ]
    chosen = pointer["chosen"]
    budget = pointer["budget"]
    if chosen is None:
        return [
            *lines,
            f"No compression stage is within the accuracy budget ({_budget_text(budget)}).",
        ]
    return [
        *lines,
        f"Chosen stage: the least "
        f"{_MINIMIZED.get(str(budget.get('minimize', 'gzip')), 'gzip size')} within the "
        f"accuracy budget ({_budget_text(budget)}).",
        "",
        *stages_table([chosen], budget, str(chosen["stage"]), posixpath.dirname(path)),
    ]
