"""The compression report: validation, files, Markdown, plot, and its section in report.md."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

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

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
FILES = ["compression.json", "compression.md", "compression_accuracy_vs_gzip.png"]

CHOSEN_ROW = (
    "| **[pcqat_int8](models/pcqat_int8.tflite)** (chosen) | int8 | 80.0 | "
    "conv_1:16 conv_2:16 dense:16 | 98.40 | -0.80 | 85,880 | 8,785 | 64.5 | 3.6× | 35.2× | ✓ |"
)


@pytest.fixture
def fast_plots(monkeypatch):
    """Skip drawing where only the text is checked."""
    monkeypatch.setattr(plots_module, "render_compression_plot", lambda *args: b"png")
    monkeypatch.setattr(plots_module, "render_trials_plot", lambda *args: b"png")
    monkeypatch.setattr(plots_module, "render_models_plot", lambda *args: b"png")


def _read_json(path: Path):
    def reject(constant):
        raise AssertionError(f"non-standard JSON constant {constant}")

    return json.loads(path.read_text(encoding="utf-8"), parse_constant=reject)


def _markdown(compression_report, tmp_path) -> str:
    paths = write_compression_report(compression_report, tmp_path)
    return paths.markdown.read_text(encoding="utf-8")


def _row(markdown: str, first_cell: str) -> str:
    rows = [line for line in markdown.splitlines() if line.startswith(f"| {first_cell} |")]
    assert len(rows) == 1, (first_cell, rows)
    return rows[0]


def _section(markdown: str, heading: str) -> str:
    """The text of the ``## heading`` section, up to the next section."""
    return markdown.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]


def _assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) > 10_000  # a drawn chart, not an empty image


# --- files ----------------------------------------------------------------------


def test_writes_all_files(compression_report, tmp_path):
    out = tmp_path / "run" / "compression"  # created if missing
    paths = write_compression_report(compression_report, str(out))
    assert paths == CompressionReportPaths(
        json=out / "compression.json",
        markdown=out / "compression.md",
        plot=out / "compression_accuracy_vs_gzip.png",
    )
    assert sorted(path.name for path in out.iterdir()) == sorted(FILES)  # no temporary files
    _assert_png(paths.plot)


def test_paths_are_frozen(compression_report, tmp_path):
    paths = write_compression_report(compression_report, tmp_path)
    with pytest.raises(AttributeError):
        paths.json = tmp_path


def test_json_round_trips(compression_report, tmp_path):
    paths = write_compression_report(compression_report, tmp_path)
    assert _read_json(paths.json) == compression_report  # extra keys kept


def test_nan_and_numpy_values(compression_report, tmp_path):
    stage = compression_report["stages"][4]
    stage["accuracy"] = math.nan
    stage["latency_us_median"] = np.float32("nan")
    stage["gzip_bytes"] = np.int64(7950)
    stage["within_budget"] = np.bool_(False)
    stage["unique_weights"]["conv_1"] = np.int32(16)
    compression_report["sensitivity"]["dense"]["0.9"] = math.nan
    paths = write_compression_report(compression_report, tmp_path)

    loaded = _read_json(paths.json)
    assert loaded["stages"][4]["accuracy"] is None
    assert loaded["stages"][4]["latency_us_median"] is None
    assert loaded["stages"][4]["gzip_bytes"] == 7950
    assert loaded["stages"][4]["within_budget"] is False
    assert loaded["sensitivity"]["dense"]["0.9"] is None
    assert math.isnan(compression_report["stages"][4]["accuracy"])  # input untouched

    markdown = paths.markdown.read_text(encoding="utf-8")
    row = _row(markdown, "[anchor_tfmot_guide](models/anchor_tfmot_guide.tflite)")
    assert "| n/a | n/a | 85,912 | 7,950 | n/a | 3.6× | 38.9× | ✗ |" in row
    assert _row(_section(markdown, "Sensitivity"), "dense").endswith("| 0.10 | 0.30 | n/a |")
    _assert_png(paths.plot)  # the NaN stage is left out, with a note


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


def test_markdown_summary(compression_report, tmp_path, fast_plots):
    markdown = _markdown(compression_report, tmp_path)
    assert markdown.startswith("# keras_autoopt compression report: cnn_small on digits\n")
    assert "Machine-readable version: [compression.json](compression.json)." in markdown
    for line in (
        "| parameters | 76,522 |",
        "| source | search best trial 01 |",  # a model extra
        "| train / validation / test examples | 1,203 / 297 / 297 |",
        "| baseline accuracy | 99.20 % |",
        "| max accuracy drop | 1.00 pt |",
        "| accuracy floor | 98.20 % |",
        "| chosen stage | **pcqat_int8** (8,785 bytes gzipped, 35.2× smaller than float32) |",
        "| seed | 7 |",  # top-level extras
        "| epochs | 2 |",
        "| ai-edge-litert | not installed |",
    ):
        assert line in markdown
    assert "| sensitivity |" not in markdown  # has its own section


def test_markdown_stages_table(compression_report, tmp_path, fast_plots):
    markdown = _markdown(compression_report, tmp_path)
    assert (
        "| stage | mode | sparsity (%) | unique weights | accuracy (%) | Δ accuracy (pt) | "
        "size (bytes) | gzip (bytes) | latency (µs) | size ratio | gzip ratio | within budget |"
    ) in markdown
    assert "Recommended: **pcqat_int8**, the smallest gzip size within the accuracy budget" in (
        markdown
    )
    assert _row(markdown, "**[pcqat_int8](models/pcqat_int8.tflite)** (chosen)") == CHOSEN_ROW
    assert _row(markdown, "[float32](models/float32.tflite)") == (
        "| [float32](models/float32.tflite) | float32 | 0.0 | conv_1:288 conv_2:9216 dense:65536"
        " | 99.20 | +0.00 | 309,240 | 283,575 | 151.2 | 1.0× | 1.1× | ✓ |"
    )
    assert _row(markdown, "[anchor_tfmot_guide](models/anchor_tfmot_guide.tflite)").endswith(
        "| 97.50 | -1.70 | 85,912 | 7,950 | 63.9 | 3.6× | 38.9× | ✗ |"
    )
    assert markdown.count("(chosen)") == 1
    assert "![accuracy vs gzip size of the compression stages]" in markdown
    assert "(compression_accuracy_vs_gzip.png)" in markdown


def test_markdown_layers_table(compression_report, tmp_path, fast_plots):
    markdown = _markdown(compression_report, tmp_path)
    assert "| layer | float32 | pruned | clustered | pcqat_int8 | anchor_tfmot_guide |" in (
        markdown
    )
    assert _row(_section(markdown, "Layers"), "conv_2") == (
        "| conv_2 | 0.0 % / 9,216 | 80.0 % / 1,844 | 80.0 % / 16 | 80.0 % / 16 | 50.0 % / 16 |"
    )


def test_layer_missing_in_a_stage(compression_report, tmp_path, fast_plots):
    compression_report["stages"][0]["layer_sparsity"] = {"conv_1": 0.0}
    compression_report["stages"][0]["unique_weights"] = {"extra_layer": 3}
    layers = _section(_markdown(compression_report, tmp_path), "Layers")
    assert _row(layers, "conv_2").startswith("| conv_2 | - | 80.0 % / 1,844 |")
    assert _row(layers, "conv_1").startswith("| conv_1 | 0.0 % / - | 50.0 % / 145 |")
    assert _row(layers, "extra_layer") == "| extra_layer | - / 3 | - | - | - | - |"


def test_markdown_sensitivity_table(compression_report, tmp_path, fast_plots):
    markdown = _markdown(compression_report, tmp_path)
    assert "\n## Sensitivity\n" in markdown
    # Columns in numeric order, whatever order the layers listed them in.
    assert "| layer | 50 % sparsity | 80 % sparsity | 90 % sparsity |" in markdown
    sensitivity = _section(markdown, "Sensitivity")
    assert "| conv_1 | 0.20 | 1.10 | - |" in sensitivity
    assert "| dense | 0.10 | 0.30 | -0.10 |" in sensitivity


def test_no_sensitivity_section_without_the_key(compression_report, tmp_path, fast_plots):
    del compression_report["sensitivity"]
    markdown = _markdown(compression_report, tmp_path)
    assert "Sensitivity" not in markdown
    assert "\n## Environment\n" in markdown


def test_nothing_chosen(compression_report, tmp_path):
    compression_report["chosen"] = None
    for stage in compression_report["stages"][1:]:
        stage["within_budget"] = False
    paths = write_compression_report(compression_report, tmp_path)
    markdown = paths.markdown.read_text(encoding="utf-8")
    assert "| chosen stage | none: no stage is within the accuracy budget |" in markdown
    assert "No stage is within the accuracy budget, so none is recommended." in markdown
    assert "(chosen)" not in markdown
    _assert_png(paths.plot)


def test_no_stages(compression_report, tmp_path):
    compression_report["stages"] = []
    compression_report["chosen"] = None
    paths = write_compression_report(compression_report, tmp_path)
    markdown = paths.markdown.read_text(encoding="utf-8")
    assert "_No stages were recorded._" in markdown
    assert "_No per-layer figures were recorded._" in markdown
    _assert_png(paths.plot)


# --- validation -----------------------------------------------------------------


def test_valid_report_passes(compression_report):
    assert validate_compression_report(compression_report) is None


def test_chosen_must_name_a_stage(compression_report):
    compression_report["chosen"] = "pcqat"
    message = (
        "Received: report['chosen']='pcqat' (str); expected None (no stage within budget) or "
        "one of the stage names ['float32', 'pruned', 'clustered', 'pcqat_int8', "
        "'anchor_tfmot_guide']."
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        validate_compression_report(compression_report)


def test_duplicate_stage_names(compression_report):
    compression_report["stages"][3]["stage"] = "pruned"
    message = (
        "Received: report['stages'][3]['stage']='pruned' (str); expected a unique stage name "
        "(report['stages'][1]['stage'] has it already)."
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        validate_compression_report(compression_report)


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


def _set(*keys_and_value):
    """Return a mutation that sets report[k1][k2]...[kn] = value."""
    *keys, value = keys_and_value

    def mutate(report):
        target = report
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value

    return mutate


@pytest.mark.parametrize(
    ("mutate", "pattern"),
    [
        (
            _set("stages", 1, "gzip_ratio", "4.3"),
            r"Received: report\['stages'\]\[1\]\['gzip_ratio'\]='4\.3' \(str\); "
            r"expected a non-negative float \(NaN when not available\)\.",
        ),
        (
            _set("stages", 0, "sparsity", 80.0),
            r"report\['stages'\]\[0\]\['sparsity'\]=80\.0 \(float\); expected a float in "
            r"\[0, 1\] \(a fraction, not a percentage\)",
        ),
        (
            _set("stages", 0, "sparsity", math.nan),
            r"report\['stages'\]\[0\]\['sparsity'\]=nan \(float\); expected a float in \[0, 1\]",
        ),
        (
            _set("stages", 3, "within_budget", "yes"),
            r"report\['stages'\]\[3\]\['within_budget'\]='yes' \(str\); expected a bool\.",
        ),
        (
            _set("stages", 3, "accuracy", 98.4),
            r"report\['stages'\]\[3\]\['accuracy'\]=98\.4 \(float\); expected a float in "
            r"\[0, 1\] \(a fraction, not a percentage\) or NaN",
        ),
        (
            _set("stages", 3, "size_bytes", 85880.0),
            r"report\['stages'\]\[3\]\['size_bytes'\]=85880\.0 \(float\); "
            r"expected a non-negative int",
        ),
        (
            _set("stages", 3, "wall_time_s", math.nan),
            r"report\['stages'\]\[3\]\['wall_time_s'\]=nan \(float\); "
            r"expected a finite, non-negative float",
        ),
        (
            _set("stages", 3, "path", "/tmp/pcqat.tflite"),
            r"report\['stages'\]\[3\]\['path'\]='/tmp/pcqat\.tflite' \(str\); "
            r"expected a non-empty path relative to the report folder",
        ),
        (
            _set("stages", 2, "layer_sparsity", [0.5, 0.8]),
            r"report\['stages'\]\[2\]\['layer_sparsity'\]=\[0\.5, 0\.8\] \(list\); "
            r"expected a dict\.",
        ),
        (
            _set("stages", 2, "layer_sparsity", "dense", 1.5),
            r"Received: report\['stages'\]\[2\]\['layer_sparsity'\]\['dense'\]=1\.5 \(float\); "
            r"expected a float in \[0, 1\] \(the fraction of zero weights",
        ),
        (
            _set("stages", 2, "unique_weights", "dense", 16.0),
            r"Received: report\['stages'\]\[2\]\['unique_weights'\]\['dense'\]=16\.0 \(float\); "
            r"expected a non-negative int\.",
        ),
        (
            _set("stages", 2, "unique_weights", 0, 16),
            r"Received: a key 0 \(int\) in report\['stages'\]\[2\]\['unique_weights'\]; "
            r"expected layer names as str\.",
        ),
        (
            _set("stages", "float32"),
            r"Received: report\['stages'\]='float32' \(str\); expected a list of dicts\.",
        ),
        (
            _set("chosen", 3),
            r"Received: report\['chosen'\]=3 \(int\); expected None .* or one of the stage names",
        ),
        (
            _set("budget", "max_accuracy_drop", 1.0 + 0.5),
            r"report\['budget'\]\['max_accuracy_drop'\]=1\.5 \(float\); expected a float in "
            r"\[0, 1\] \(a fraction, not a percentage\)\.",
        ),
        (
            _set("budget", "baseline_accuracy", math.nan),
            r"report\['budget'\]\['baseline_accuracy'\]=nan \(float\); expected a float in",
        ),
        (
            _set("model", "params", "76k"),
            r"report\['model'\]\['params'\]='76k' \(str\); expected a non-negative int\.",
        ),
        (
            _set("dataset", "n_test", -1),
            r"report\['dataset'\]\['n_test'\]=-1 \(int\); expected a non-negative int\.",
        ),
        (
            _set("environment", "numpy", 2.4),
            r"report\['environment'\]\['numpy'\]=2\.4 \(float\); expected a version str or None",
        ),
        (
            _set("sensitivity", [0.1]),
            r"Received: report\['sensitivity'\]=\[0\.1\] \(list\); expected a dict "
            r"\{layer: \{sparsity: accuracy drop\}\}\.",
        ),
        (
            _set("sensitivity", "dense", 0.5),
            r"Received: report\['sensitivity'\]\['dense'\]=0\.5 \(float\); expected a dict "
            r"\{sparsity: accuracy drop\}\.",
        ),
        (
            _set("sensitivity", "dense", 0.5, 0.01),
            r"Received: a key 0\.5 \(float\) in report\['sensitivity'\]\['dense'\]; "
            r"expected sparsities as str",
        ),
        (
            _set("sensitivity", "dense", "0.5", "small"),
            r"Received: report\['sensitivity'\]\['dense'\]\['0\.5'\]='small' \(str\); "
            r"expected an accuracy drop as a float",
        ),
        (
            _set("stages", 1, "optimizer", object()),
            r"Received: report\['stages'\]\[1\]\['optimizer'\]=<object object at .*> "
            r"\(object\); expected JSON-compatible values",
        ),
    ],
)
def test_wrong_values(compression_report, mutate, pattern):
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


def test_report_md_compression_section(report, compression_report, tmp_path, fast_plots):
    report["compression"] = _pointer(compression_report)
    paths = write_report(report, tmp_path)
    markdown = paths.markdown.read_text(encoding="utf-8")
    section = _section(markdown, "Compression")
    assert "Full compression report: [compression/compression.md](compression/compression.md)." in (
        section
    )
    assert (
        "Chosen stage: the smallest gzip size within the accuracy budget (baseline accuracy "
        "99.20 %, at most 1.00 pt lower, so at least 98.20 %)."
    ) in section
    # Same row as in compression.md, its link made relative to report.md.
    assert CHOSEN_ROW.replace("(models/", "(compression/models/") in section
    assert _read_json(paths.json)["compression"]["chosen"]["stage"] == "pcqat_int8"


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
                                                                     tmp_path):
    report = compression_report
    report["budget"]["baseline_val_accuracy"] = 0.99
    for stage, val in zip(report["stages"], (0.99, 0.985, 0.98, 0.975, 0.97), strict=False):
        stage["val_accuracy"] = val
    paths = write_compression_report(report, tmp_path)
    markdown = paths.markdown.read_text()
    assert ("| accuracy (%) | Δ accuracy (pt) | val accuracy (%) | Δ val (pt) | size (bytes) |"
            in markdown)
    assert "decided on the validation split: baseline validation accuracy 99.00 %" in markdown
    float32_row = _row(markdown, "[float32](models/float32.tflite)")
    assert "| 99.20 | +0.00 | 99.00 | +0.00 | 309,240 |" in float32_row
