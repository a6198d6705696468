"""The text of report.md; plots are stubbed here (test_write_report.py draws them)."""

from __future__ import annotations

import pytest

from keras_autoopt.report import _plots as plots_module
from keras_autoopt.report import write_report


@pytest.fixture(autouse=True)
def _fast_plots(monkeypatch):
    monkeypatch.setattr(plots_module, "render_trials_plot", lambda *args: b"png")
    monkeypatch.setattr(plots_module, "render_models_plot", lambda *args: b"png")


def _markdown(report, tmp_path) -> str:
    return write_report(report, tmp_path).markdown.read_text(encoding="utf-8")


def _markdown_row(markdown: str, first_cell: str) -> str:
    rows = [line for line in markdown.splitlines() if line.startswith(f"| {first_cell} |")]
    assert len(rows) == 1, (first_cell, rows)
    return rows[0]


def test_markdown_sections_and_numbers(report, tmp_path):
    markdown = _markdown(report, tmp_path)
    assert markdown.startswith("# keras_autoopt report: digits\n")
    for heading in ("## Dataset", "## Search", "### Best hyperparameters", "## Trials"):
        assert f"\n{heading}\n" in markdown
    assert "\n## Exported models\n" in markdown and "\n## Environment\n" in markdown

    # Dataset, including an extra key.
    assert "| train examples | 1,203 |" in markdown
    assert "| validation examples | 297 |" in markdown
    assert "| classes | 10 |" in markdown
    # Search summary.
    assert "| tuner | RandomSearch |" in markdown
    assert "| completed trials | 3 |" in markdown
    assert "| wall time | 3723.4 s (1 h 02 min 03 s) |" in markdown
    assert "| best score | trial 01: 0.9916 |" in markdown
    assert "| learning_rate | 0.001 |" in markdown
    assert "| filters | 32 |" in markdown
    # Environment: a missing package is said so.
    assert "| tensorflow | 2.21.0 |" in markdown
    assert "| ai-edge-litert | not installed |" in markdown


def test_markdown_trials_table(report, tmp_path):
    markdown = _markdown(report, tmp_path)
    assert "| trial | status | score (val_accuracy) | params | hyperparameters |" in markdown
    assert _markdown_row(markdown, "00") == (
        "| 00 | COMPLETED | 0.9562 | 12,345 | filters=8, dense=32, learning_rate=0.01 |"
    )
    assert _markdown_row(markdown, "01 (best)") == (
        "| 01 (best) | COMPLETED | 0.9916 | 76,522 | filters=32, dense=128, learning_rate=0.001 |"
    )
    assert _markdown_row(markdown, "02") == (
        "| 02 | FAILED | n/a | n/a | filters=64, dense=256, learning_rate=0.1 |"
    )
    assert "1 trial(s) that did not complete (failed or other status) are excluded" in markdown
    assert "- trial 02 (FAILED): NaN loss at epoch 1" in markdown
    assert "![val_accuracy vs parameters of the completed trials]" in markdown
    assert "(trials_accuracy_vs_params.png)" in markdown


def test_markdown_models_table(report, tmp_path):
    markdown = _markdown(report, tmp_path)
    assert "| size vs float32 |" in markdown
    assert _markdown_row(markdown, "[float32](models/float32.tflite)") == (
        "| [float32](models/float32.tflite) | float32 | 309,240 | 283,575 | 99.20 | 151.2"
        " | 76,522 | 1.00x |"
    )
    assert _markdown_row(markdown, "[pcqat](models/pcqat.tflite)") == (
        "| [pcqat](models/pcqat.tflite) | int8 | 83,344 | 13,860 | 96.50 | 63.9 | 76,522 | 0.27x |"
    )
    assert "![accuracy vs gzip size of the exported models](models_accuracy_vs_gzip.png)" in (
        markdown
    )


def test_markdown_without_float32_model_has_no_ratio_column(report, tmp_path):
    report["models"] = [model for model in report["models"] if model["mode"] != "float32"]
    markdown = _markdown(report, tmp_path)
    assert "size vs float32" not in markdown
    assert _markdown_row(markdown, "[pcqat](models/pcqat.tflite)").endswith("| 76,522 |")


def test_markdown_escapes_table_cells(report, tmp_path):
    report["trials"][2]["message"] = "bad | input\nsecond line"
    report["search"]["best_hyperparameters"] = {"activation": "relu|tanh"}
    markdown = _markdown(report, tmp_path)
    assert "| activation | relu\\|tanh |" in markdown
    assert "- trial 02 (FAILED): bad | input second line" in markdown


def test_long_hyperparameters_are_shortened(report, tmp_path):
    report["trials"][0]["hyperparameters"] = {f"hyperparameter_{i}": i for i in range(20)}
    markdown = _markdown(report, tmp_path)
    cell = _markdown_row(markdown, "00").split(" | ")[4]
    assert cell.startswith("hyperparameter_0=0, hyperparameter_1=1")
    assert cell.endswith("… |") and len(cell) <= 62


def test_best_trial_follows_best_hyperparameters(report, tmp_path):
    # The tuner's best (by its own rules) wins over the highest score.
    report["search"]["best_hyperparameters"] = dict(report["trials"][3]["hyperparameters"])
    markdown = _markdown(report, tmp_path)
    assert "| best score | trial 03: 0.9731 |" in markdown
    assert _markdown_row(markdown, "03 (best)")


@pytest.mark.parametrize(
    ("objective", "direction", "best"),
    [("val_loss", None, "00"), ("val_accuracy", "min", "00"), ("val_auc", None, "01")],
)
def test_best_trial_direction(report, tmp_path, objective, direction, best):
    report["search"]["objective"] = objective
    report["search"]["best_hyperparameters"] = {}  # matches no trial: compare scores
    if direction is not None:
        report["search"]["direction"] = direction
    markdown = _markdown(report, tmp_path)
    assert _markdown_row(markdown, f"{best} (best)")


def test_model_path_with_spaces_is_linked(report, tmp_path):
    report["models"][0]["path"] = "my models/float 32.tflite"
    markdown = _markdown(report, tmp_path)
    assert "| [float32](<my models/float 32.tflite>) |" in markdown


def test_extra_search_keys_are_listed(report, tmp_path):
    report["search"]["max_trials"] = 10
    report["search"]["direction"] = "max"
    markdown = _markdown(report, tmp_path)
    assert "| max_trials | 10 |" in markdown
    assert "| objective | val_accuracy (max) |" in markdown
    assert "| direction |" not in markdown


def test_model_name_with_brackets_is_escaped(report, tmp_path):
    report["models"][0]["name"] = "float32 [ref]"
    markdown = _markdown(report, tmp_path)
    assert "| [float32 \\[ref\\]](models/float32.tflite) | float32 |" in markdown


def test_best_trial_id_wins(report, tmp_path):
    report["search"]["best_trial_id"] = "00"
    report["search"]["best_score"] = 0.9562
    markdown = _markdown(report, tmp_path)
    assert "| best score | trial 00: 0.9562 |" in markdown
    assert _markdown_row(markdown, "00 (best)")
    assert "| best_trial_id |" not in markdown and "| best_score |" not in markdown
