"""The compression report: validation, files, Markdown, plot, and its section in report.md."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest

from keras_autoopt.report import (
    CompressionReportPaths,
    validate_compression_report,
    validate_report,
    write_compression_report,
    write_report,
)
from keras_autoopt.report import _plots as plots_module

FILES = ["compression.json", "compression.md", "compression_accuracy_vs_gzip.png"]

CHOSEN_ROW = (
    "| **[pcqat_int8](models/pcqat_int8.tflite)** (chosen) | int8 | 80.0 | "
    "conv_1:16 conv_2:16 dense:16 | 98.40 | -0.80 | 85,880 | 8,785 | 64.5 | 3.6× | 35.2× | ✓ |"
)


# --- files ----------------------------------------------------------------------


def test_writes_all_files(compression_report, tmp_path, assert_png):
    out = tmp_path / "run" / "compression"  # created if missing
    paths = write_compression_report(compression_report, str(out))
    assert paths == CompressionReportPaths(
        json=out / "compression.json",
        markdown=out / "compression.md",
        plot=out / "compression_accuracy_vs_gzip.png",
    )
    assert sorted(path.name for path in out.iterdir()) == sorted(FILES)  # no temporary files
    assert_png(paths.plot)


def test_paths_are_frozen(compression_report, tmp_path):
    paths = write_compression_report(compression_report, tmp_path)
    with pytest.raises(AttributeError):
        paths.json = tmp_path


def test_json_round_trips(compression_report, tmp_path, read_strict_json):
    paths = write_compression_report(compression_report, tmp_path)
    assert read_strict_json(paths.json) == compression_report  # extra keys kept


def test_nan_and_numpy_values(
    compression_report, tmp_path, table_row, markdown_section, read_strict_json, assert_png
):
    stage = compression_report["stages"][4]
    stage["accuracy"] = math.nan
    stage["latency_us_median"] = np.float32("nan")
    stage["gzip_bytes"] = np.int64(7950)
    stage["within_budget"] = np.bool_(False)
    stage["unique_weights"]["conv_1"] = np.int32(16)
    compression_report["sensitivity"]["dense"]["0.9"] = math.nan
    paths = write_compression_report(compression_report, tmp_path)

    loaded = read_strict_json(paths.json)
    assert loaded["stages"][4]["accuracy"] is None
    assert loaded["stages"][4]["latency_us_median"] is None
    assert loaded["stages"][4]["gzip_bytes"] == 7950
    assert loaded["stages"][4]["within_budget"] is False
    assert loaded["sensitivity"]["dense"]["0.9"] is None
    assert math.isnan(compression_report["stages"][4]["accuracy"])  # input untouched

    markdown = paths.markdown.read_text(encoding="utf-8")
    row = table_row(markdown, "[anchor_tfmot_guide](models/anchor_tfmot_guide.tflite)")
    assert "| n/a | n/a | 85,912 | 7,950 | n/a | 3.6× | 38.9× | ✗ |" in row
    sensitivity = markdown_section(markdown, "Sensitivity")
    assert table_row(sensitivity, "dense").endswith("| 0.10 | 0.30 | n/a |")
    assert_png(paths.plot)  # the NaN stage is left out, with a note


def test_invalid_report_writes_nothing(compression_report, tmp_path):
    compression_report["chosen"] = "pcqat"
    with pytest.raises(ValueError, match="report\\['chosen'\\]"):
        write_compression_report(compression_report, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_rendering_failure_leaves_old_files(compression_report, tmp_path, monkeypatch):
    (tmp_path / "compression.json").write_text("old")

    def broken(*args, **kwargs):
        raise RuntimeError("renderer crashed")

    monkeypatch.setattr(plots_module, "render_compression_plot", broken)
    with pytest.raises(RuntimeError, match="renderer crashed"):
        write_compression_report(compression_report, tmp_path)
    assert [path.name for path in tmp_path.iterdir()] == ["compression.json"]
    assert (tmp_path / "compression.json").read_text() == "old"


def test_output_dir_must_be_a_folder(compression_report, tmp_path):
    existing_file = tmp_path / "file.txt"
    existing_file.write_text("x")
    with pytest.raises(ValueError, match=r"Received: output_dir='.*file\.txt'; expected a folder"):
        write_compression_report(compression_report, existing_file)


# --- Markdown -------------------------------------------------------------------


def test_markdown_summary(compression_report, fast_plots, compression_markdown):
    markdown = compression_markdown(compression_report)
    assert markdown.startswith("# keras_autoopt compression report: cnn_small on digits\n")
    assert "Machine-readable version: [compression.json](compression.json)." in markdown
    for line in (
        "| parameters | 76,522 |",
        "| source | search best trial 01 |",  # a model extra
        "| train / validation / test examples | 1,203 / 297 / 297 |",
        "| baseline accuracy | 99.20 % |",
        "| max accuracy drop | 1.00 pt |",
        "| accuracy floor | 98.20 % |",
        "| chosen stage | **pcqat_int8** (85,880 bytes, 3.6× smaller than float32; 8,785 bytes "
        "gzipped, 35.2×) |",
        "| seed | 7 |",  # top-level extras
        "| epochs | 2 |",
        "| ai-edge-litert | not installed |",
    ):
        assert line in markdown
    assert "| sensitivity |" not in markdown  # has its own section


def test_markdown_stages_table(compression_report, fast_plots, table_row, compression_markdown):
    markdown = compression_markdown(compression_report)
    assert (
        "| stage | mode | sparsity (%) | unique weights | accuracy (%) | Δ accuracy (pt) | "
        "size (bytes) | gzip (bytes) | latency (µs) | size ratio | gzip ratio | within budget |"
    ) in markdown
    assert "Recommended: **pcqat_int8**, the least gzip size within the accuracy budget" in (
        markdown
    )
    assert table_row(markdown, "**[pcqat_int8](models/pcqat_int8.tflite)** (chosen)") == CHOSEN_ROW
    assert table_row(markdown, "[float32](models/float32.tflite)") == (
        "| [float32](models/float32.tflite) | float32 | 0.0 | conv_1:288 conv_2:9216 dense:65536"
        " | 99.20 | +0.00 | 309,240 | 283,575 | 151.2 | 1.0× | 1.1× | ✓ |"
    )
    assert table_row(markdown, "[anchor_tfmot_guide](models/anchor_tfmot_guide.tflite)").endswith(
        "| 97.50 | -1.70 | 85,912 | 7,950 | 63.9 | 3.6× | 38.9× | ✗ |"
    )
    assert markdown.count("(chosen)") == 1
    assert "![accuracy vs gzip size of the compression stages]" in markdown
    assert "(compression_accuracy_vs_gzip.png)" in markdown


def test_markdown_layers_table(
    compression_report, fast_plots, table_row, markdown_section, compression_markdown
):
    markdown = compression_markdown(compression_report)
    assert "| layer | float32 | pruned | clustered | pcqat_int8 | anchor_tfmot_guide |" in (
        markdown
    )
    assert table_row(markdown_section(markdown, "Layers"), "conv_2") == (
        "| conv_2 | 0.0 % / 9,216 | 80.0 % / 1,844 | 80.0 % / 16 | 80.0 % / 16 | 50.0 % / 16 |"
    )


def test_layer_missing_in_a_stage(
    compression_report, fast_plots, table_row, markdown_section, compression_markdown
):
    compression_report["stages"][0]["layer_sparsity"] = {"conv_1": 0.0}
    compression_report["stages"][0]["unique_weights"] = {"extra_layer": 3}
    layers = markdown_section(compression_markdown(compression_report), "Layers")
    assert table_row(layers, "conv_2").startswith("| conv_2 | - | 80.0 % / 1,844 |")
    assert table_row(layers, "conv_1").startswith("| conv_1 | 0.0 % / - | 50.0 % / 145 |")
    assert table_row(layers, "extra_layer") == "| extra_layer | - / 3 | - | - | - | - |"


def test_markdown_sensitivity_table(
    compression_report, fast_plots, markdown_section, compression_markdown
):
    markdown = compression_markdown(compression_report)
    assert "\n## Sensitivity\n" in markdown
    # Columns in numeric order, whatever order the layers listed them in.
    assert "| layer | 50 % sparsity | 80 % sparsity | 90 % sparsity |" in markdown
    sensitivity = markdown_section(markdown, "Sensitivity")
    assert "| conv_1 | 0.20 | 1.10 | - |" in sensitivity
    assert "| dense | 0.10 | 0.30 | -0.10 |" in sensitivity


def test_no_sensitivity_section_without_the_key(
    compression_report, fast_plots, compression_markdown
):
    del compression_report["sensitivity"]
    markdown = compression_markdown(compression_report)
    assert "Sensitivity" not in markdown
    assert "\n## Environment\n" in markdown


def test_nothing_chosen(compression_report, tmp_path, assert_png):
    compression_report["chosen"] = None
    for stage in compression_report["stages"][1:]:
        stage["within_budget"] = False
    paths = write_compression_report(compression_report, tmp_path)
    markdown = paths.markdown.read_text(encoding="utf-8")
    assert "| chosen stage | none: no stage is within the accuracy budget |" in markdown
    assert "No stage is within the accuracy budget, so none is recommended." in markdown
    assert "(chosen)" not in markdown
    assert_png(paths.plot)


def test_no_stages(compression_report, tmp_path, assert_png):
    compression_report["stages"] = []
    compression_report["chosen"] = None
    paths = write_compression_report(compression_report, tmp_path)
    markdown = paths.markdown.read_text(encoding="utf-8")
    assert "_No stages were recorded._" in markdown
    assert "_No per-layer figures were recorded._" in markdown
    assert_png(paths.plot)


# --- validation -----------------------------------------------------------------


def test_valid_report_passes(compression_report):
    assert validate_compression_report(compression_report) is None


@pytest.mark.parametrize("key", ["model", "dataset", "budget", "chosen", "stages", "environment"])
def test_missing_top_level_key(compression_report, key):
    del compression_report[key]
    with pytest.raises(ValueError, match=rf"Received: report without '{key}'; expected keys"):
        validate_compression_report(compression_report)


def test_missing_stage_key_names_its_index(compression_report):
    del compression_report["stages"][2]["gzip_ratio"]
    with pytest.raises(
        ValueError,
        match=r"Received: report\['stages'\]\[2\] without 'gzip_ratio'; expected keys \[",
    ):
        validate_compression_report(compression_report)


def test_missing_budget_key(compression_report):
    del compression_report["budget"]["baseline_accuracy"]
    with pytest.raises(ValueError, match=r"report\['budget'\] without 'baseline_accuracy'"):
        validate_compression_report(compression_report)


FRACTION = "expected a float in [0, 1] (a fraction, not a percentage)"
CHOSEN = "expected None (no stage within budget) or one of the stage names"
STAGE_NAMES = "['float32', 'pruned', 'clustered', 'pcqat_int8', 'anchor_tfmot_guide']"
RELATIVE = "expected a non-empty path relative to the report folder"
LAYER_FRACTION = "expected a float in [0, 1] (the fraction of zero weights"
UNIQUE_STAGE = "expected a unique stage name (report['stages'][1]['stage'] has it already)."


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("stages/1/gzip_ratio", "4.3", "expected a non-negative float (NaN when not available)."),
        ("stages/0/sparsity", 80.0, FRACTION),
        ("stages/0/sparsity", math.nan, "expected a float in [0, 1]"),
        ("stages/3/within_budget", "yes", "expected a bool."),
        ("stages/3/accuracy", 98.4, f"{FRACTION} or NaN"),
        ("stages/3/size_bytes", 85880.0, "expected a non-negative int"),
        ("stages/3/wall_time_s", math.nan, "expected a finite, non-negative float"),
        ("stages/3/path", "/tmp/pcqat.tflite", RELATIVE),
        ("stages/2/layer_sparsity", [0.5, 0.8], "expected a dict."),
        ("stages/2/layer_sparsity/dense", 1.5, LAYER_FRACTION),
        ("stages/2/unique_weights/dense", 16.0, "expected a non-negative int."),
        ("stages/3/stage", "pruned", UNIQUE_STAGE),
        ("stages", "float32", "expected a list of dicts."),
        ("chosen", 3, CHOSEN),
        ("chosen", "pcqat", f"{CHOSEN} {STAGE_NAMES}."),
        ("budget/max_accuracy_drop", 1.0 + 0.5, f"{FRACTION}."),
        ("budget/baseline_accuracy", math.nan, "expected a float in"),
        ("model/params", "76k", "expected a non-negative int."),
        ("dataset/n_test", -1, "expected a non-negative int."),
        ("environment/numpy", 2.4, "expected a version str or None"),
        ("sensitivity", [0.1], "expected a dict {layer: {sparsity: accuracy drop}}."),
        ("sensitivity/dense", 0.5, "expected a dict {sparsity: accuracy drop}."),
        ("sensitivity/dense/0.5", "small", "expected an accuracy drop as a float"),
    ],
)
def test_wrong_values(compression_report, path, value, expected):
    """Set report[k1][k2]...[kn] = value (path "k1/k2/.../kn"); the message names all three."""
    keys = [int(key) if key.isdigit() else key for key in path.split("/")]
    target = compression_report
    for key in keys[:-1]:
        target = target[key]
    target[keys[-1]] = value
    where = "".join(f"[{key!r}]" for key in keys)
    message = f"Received: report{where}={value!r} ({type(value).__name__}); {expected}"
    with pytest.raises(ValueError, match=re.escape(message)):
        validate_compression_report(compression_report)


@pytest.mark.parametrize(
    ("mutate", "pattern"),
    [
        (
            lambda report: report["stages"][2]["unique_weights"].update({0: 16}),
            r"Received: a key 0 \(int\) in report\['stages'\]\[2\]\['unique_weights'\]; "
            r"expected layer names as str\.",
        ),
        (
            lambda report: report["sensitivity"]["dense"].update({0.5: 0.01}),
            r"Received: a key 0\.5 \(float\) in report\['sensitivity'\]\['dense'\]; "
            r"expected sparsities as str",
        ),
        (
            lambda report: report["stages"][1].update(optimizer=object()),
            r"Received: report\['stages'\]\[1\]\['optimizer'\]=<object object at .*> "
            r"\(object\); expected JSON-compatible values",
        ),
    ],
)
def test_wrong_keys_and_values_without_json_form(compression_report, mutate, pattern):
    mutate(compression_report)
    with pytest.raises(ValueError, match=pattern):
        validate_compression_report(compression_report)


def test_not_a_dict():
    with pytest.raises(ValueError, match=r"Received: report=None \(NoneType\); expected a dict\."):
        validate_compression_report(None)


# --- the Compression section of report.md -----------------------------------------


def _pointer(compression_report, chosen_index=3) -> dict:
    """What the compression pipeline puts under report["compression"]."""
    chosen = None if chosen_index is None else compression_report["stages"][chosen_index]
    return {
        "report": "compression/compression.md",
        "chosen": chosen,
        "budget": compression_report["budget"],
    }


def test_report_md_compression_section(
    report, compression_report, tmp_path, fast_plots, markdown_section, read_strict_json
):
    report["compression"] = _pointer(compression_report)
    paths = write_report(report, tmp_path)
    markdown = paths.markdown.read_text(encoding="utf-8")
    section = markdown_section(markdown, "Compression")
    assert "Full compression report: [compression/compression.md](compression/compression.md)." in (
        section
    )
    assert (
        "Chosen stage: the least gzip size within the accuracy budget (baseline accuracy "
        "99.20 %, at most 1.00 pt lower, so at least 98.20 %)."
    ) in section
    # Same row as in compression.md, its link made relative to report.md.
    assert CHOSEN_ROW.replace("(models/", "(compression/models/") in section
    assert read_strict_json(paths.json)["compression"]["chosen"]["stage"] == "pcqat_int8"


def test_report_md_compression_nothing_chosen(report, compression_report, tmp_path, fast_plots):
    report["compression"] = _pointer(compression_report, chosen_index=None)
    markdown = write_report(report, tmp_path).markdown.read_text(encoding="utf-8")
    assert "No compression stage is within the accuracy budget (baseline accuracy 99.20 %" in (
        markdown
    )
    assert "(chosen)" not in markdown


def test_report_md_without_compression_key(report, tmp_path, fast_plots):
    markdown = write_report(report, tmp_path).markdown.read_text(encoding="utf-8")
    assert "Compression" not in markdown


@pytest.mark.parametrize(
    ("mutate", "pattern"),
    [
        (
            lambda p: p.pop("report"),
            r"Received: report\['compression'\] without 'report'; expected keys "
            r"\['budget', 'chosen', 'report'\]",
        ),
        (
            lambda p: p.update(report="/abs/compression.md"),
            r"report\['compression'\]\['report'\]='/abs/compression\.md' \(str\); "
            r"expected a non-empty path relative to the report folder",
        ),
        (
            lambda p: p.update(chosen="pcqat_int8"),
            r"report\['compression'\]\['chosen'\]='pcqat_int8' \(str\); expected a dict or None",
        ),
        (
            lambda p: p["chosen"].pop("gzip_ratio"),
            r"Received: report\['compression'\]\['chosen'\] without 'gzip_ratio'",
        ),
        (
            lambda p: p["budget"].update(max_accuracy_drop=1.0 + 1),
            r"report\['compression'\]\['budget'\]\['max_accuracy_drop'\]=2\.0 \(float\)",
        ),
    ],
)
def test_report_compression_key_is_validated(report, compression_report, mutate, pattern):
    pointer = json.loads(json.dumps(_pointer(compression_report)))  # a deep copy
    mutate(pointer)
    report["compression"] = pointer
    with pytest.raises(ValueError, match=pattern):
        validate_report(report)


def test_validation_columns_when_the_budget_was_decided_on_validation(compression_report,
                                                                     tmp_path, table_row):
    report = compression_report
    report["budget"]["baseline_val_accuracy"] = 0.99
    for stage, val in zip(report["stages"], (0.99, 0.985, 0.98, 0.975, 0.97), strict=False):
        stage["val_accuracy"] = val
    paths = write_compression_report(report, tmp_path)
    markdown = paths.markdown.read_text()
    assert ("| accuracy (%) | Δ accuracy (pt) | val accuracy (%) | Δ val (pt) | size (bytes) |"
            in markdown)
    assert "decided on the validation split: baseline validation accuracy 99.00 %" in markdown
    float32_row = table_row(markdown, "[float32](models/float32.tflite)")
    assert "| 99.20 | +0.00 | 99.00 | +0.00 | 309,240 |" in float32_row
