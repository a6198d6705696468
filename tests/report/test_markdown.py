"""The text of report.md; plots are stubbed here (test_write_report.py draws them)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.usefixtures("fast_plots")  # the text only; plots are stubbed


def test_markdown_sections_and_numbers(report, report_markdown, assert_contains):
    markdown = report_markdown(report)
    assert markdown.startswith("# keras_autoopt report: digits\n")
    for heading in ("## Dataset", "## Search", "### Best hyperparameters", "## Trials"):
        assert f"\n{heading}\n" in markdown
    assert "\n## Exported models\n" in markdown and "\n## Environment\n" in markdown
    assert_contains(
        markdown,
        # Dataset, including an extra key.
        "| train examples | 1,203 |",
        "| validation examples | 297 |",
        "| classes | 10 |",
        # Search summary.
        "| tuner | RandomSearch |",
        "| completed trials | 3 |",
        "| wall time | 3723.4 s (1 h 02 min 03 s) |",
        "| best score | trial 01: 0.9916 |",
        "| learning_rate | 0.001 |",
        "| filters | 32 |",
        # Environment: a missing package is said so.
        "| tensorflow | 2.21.0 |",
        "| ai-edge-litert | not installed |",
    )


def test_markdown_trials_table(report, report_markdown, assert_rows, assert_contains):
    markdown = report_markdown(report)
    assert "| trial | status | score (val_accuracy) | params | hyperparameters |" in markdown
    assert_rows(
        markdown,
        "| 00 | COMPLETED | 0.9562 | 12,345 | filters=8, dense=32, learning_rate=0.01 |",
        "| 01 (best) | COMPLETED | 0.9916 | 76,522 | filters=32, dense=128, learning_rate=0.001 |",
        "| 02 | FAILED | n/a | n/a | filters=64, dense=256, learning_rate=0.1 |",
    )
    assert_contains(
        markdown,
        "1 trial(s) that did not complete (failed or other status) are excluded",
        "- trial 02 (FAILED): NaN loss at epoch 1",
        "![val_accuracy vs parameters of the completed trials]",
        "(trials_accuracy_vs_params.png)",
    )


def test_markdown_models_table(report, report_markdown, assert_rows):
    markdown = report_markdown(report)
    assert "| size vs float32 |" in markdown
    assert_rows(
        markdown,
        "| [float32](models/float32.tflite) | float32 | 309,240 | 283,575 | 99.20 | 151.2"
        " | 76,522 | 1.00x |",
        "| [pcqat](models/pcqat.tflite) | int8 | 83,344 | 13,860 | 96.50 | 63.9 | 76,522 | 0.27x |",
    )
    assert "![accuracy vs gzip size of the exported models](models_accuracy_vs_gzip.png)" in (
        markdown
    )


def test_markdown_without_float32_model_has_no_ratio_column(report, table_row, report_markdown):
    report["models"] = [model for model in report["models"] if model["mode"] != "float32"]
    markdown = report_markdown(report)
    assert "size vs float32" not in markdown
    assert table_row(markdown, "[pcqat](models/pcqat.tflite)").endswith("| 76,522 |")


def test_markdown_escapes_table_cells(report, report_markdown):
    report["trials"][2]["message"] = "bad | input\nsecond line"
    report["search"]["best_hyperparameters"] = {"activation": "relu|tanh"}
    markdown = report_markdown(report)
    assert "| activation | relu\\|tanh |" in markdown
    assert "- trial 02 (FAILED): bad | input second line" in markdown


def test_long_hyperparameters_are_shortened(report, table_row, report_markdown):
    report["trials"][0]["hyperparameters"] = {f"hyperparameter_{i}": i for i in range(20)}
    markdown = report_markdown(report)
    cell = table_row(markdown, "00").split(" | ")[4]
    assert cell.startswith("hyperparameter_0=0, hyperparameter_1=1")
    assert cell.endswith("… |") and len(cell) <= 62


def test_best_trial_follows_best_hyperparameters(report, table_row, report_markdown):
    # The tuner's best (by its own rules) wins over the highest score.
    report["search"]["best_hyperparameters"] = dict(report["trials"][3]["hyperparameters"])
    markdown = report_markdown(report)
    assert "| best score | trial 03: 0.9731 |" in markdown
    assert table_row(markdown, "03 (best)")


@pytest.mark.parametrize(
    ("objective", "direction", "best"),
    [("val_loss", None, "00"), ("val_accuracy", "min", "00"), ("val_auc", None, "01")],
)
def test_best_trial_direction(report, objective, direction, best, table_row, report_markdown):
    report["search"]["objective"] = objective
    report["search"]["best_hyperparameters"] = {}  # matches no trial: compare scores
    if direction is not None:
        report["search"]["direction"] = direction
    markdown = report_markdown(report)
    assert table_row(markdown, f"{best} (best)")


def test_model_path_with_spaces_is_linked(report, report_markdown):
    report["models"][0]["path"] = "my models/float 32.tflite"
    markdown = report_markdown(report)
    assert "| [float32](<my models/float 32.tflite>) |" in markdown


def test_extra_search_keys_are_listed(report, report_markdown):
    report["search"]["max_trials"] = 10
    report["search"]["direction"] = "max"
    markdown = report_markdown(report)
    assert "| max_trials | 10 |" in markdown
    assert "| objective | val_accuracy (max) |" in markdown
    assert "| direction |" not in markdown


def test_model_name_with_brackets_is_escaped(report, report_markdown):
    report["models"][0]["name"] = "float32 [ref]"
    markdown = report_markdown(report)
    assert "| [float32 \\[ref\\]](models/float32.tflite) | float32 |" in markdown


def test_best_trial_id_wins(report, table_row, report_markdown):
    report["search"]["best_trial_id"] = "00"
    report["search"]["best_score"] = 0.9562
    markdown = report_markdown(report)
    assert "| best score | trial 00: 0.9562 |" in markdown
    assert table_row(markdown, "00 (best)")
    assert "| best_trial_id |" not in markdown and "| best_score |" not in markdown
