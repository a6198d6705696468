"""Macro precision / recall / F1, confusion matrices and training times in the reports."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from keras_autoopt.report import (
    ExportedModel,
    validate_compression_report,
    validate_report,
    write_report,
)
from keras_autoopt.report._plots import confusion_plot_names, render_confusion_plot

CONFUSION = [[50, 2, 0], [3, 40, 7], [0, 5, 43]]


def _with_quality(report: dict) -> dict:
    """The first two models get the quality figures, the trials their F1 and training time."""
    report["models"][0].update(precision_macro=0.9, recall_macro=0.8, f1_macro=0.85,
                               confusion=CONFUSION, train_s=12.25)
    report["models"][1].update(precision_macro=0.7, recall_macro=0.6, f1_macro=0.6512,
                               confusion=np.array(CONFUSION), train_s=None)
    for trial in report["trials"]:
        trial.update(train_s=None, val_f1=None)
    report["trials"][0].update(train_s=3.5, val_f1=0.9412)
    return report


def test_quality_fields_are_accepted_and_kept(report):
    report = _with_quality(report)
    validate_report(report)
    record = ExportedModel.model_validate(report["models"][1])
    assert record.confusion == CONFUSION and record.f1_macro == 0.6512
    assert record.model_dump()["confusion"] == CONFUSION
    # Older models without the keys still dump without them.
    assert "confusion" not in ExportedModel.model_validate(report["models"][2]).model_dump()


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda r: r["models"][0].update(f1_macro=85.0),
            "Received: report['models'][0]['f1_macro']=85.0 (float); expected a float in "
            "[0, 1] (a fraction, not a percentage), NaN or None (optional key).",
        ),
        (
            lambda r: r["models"][1].update(precision_macro="0.7"),
            "Received: report['models'][1]['precision_macro']='0.7' (str); expected a float",
        ),
        (
            lambda r: r["models"][0].update(confusion=[[1, 2], [3, 4], [5, 6]]),
            "Received: report['models'][0]['confusion']=[[1, 2], [3, 4], [5, 6]] (list); "
            "expected a square, non-empty list of lists of non-negative ints (rows: true "
            "class, columns: predicted class) or None (optional key).",
        ),
        (
            lambda r: r["models"][0].update(confusion=[[1, -2], [3, 4]]),
            "['confusion']=[[1, -2], [3, 4]] (list); expected a square, non-empty list",
        ),
        (
            lambda r: r["models"][0].update(confusion=[[1.5]]),
            "['confusion']=[[1.5]] (list); expected a square, non-empty list",
        ),
        (
            lambda r: r["models"][0].update(confusion=[]),
            "['confusion']=[] (list); expected a square, non-empty list",
        ),
        (
            lambda r: r["models"][0].update(train_s=-1.0),
            "Received: report['models'][0]['train_s']=-1.0 (float); expected a finite, "
            "non-negative float (seconds) or None (not known) (optional key).",
        ),
        (
            lambda r: r["models"][0].update(train_s=math.inf),
            "['train_s']=inf (float); expected a finite, non-negative float (seconds)",
        ),
        (
            lambda r: r["trials"][0].update(train_s="3.5"),
            "Received: report['trials'][0]['train_s']='3.5' (str); expected a finite, "
            "non-negative float (seconds) or None (not known) (optional key).",
        ),
        (
            lambda r: r["trials"][1].update(val_f1=1.5),
            "Received: report['trials'][1]['val_f1']=1.5 (float); expected a float in [0, 1]",
        ),
    ],
)
def test_bad_quality_fields_are_named(report, mutate, message):
    report = _with_quality(report)
    mutate(report)
    with pytest.raises(ValueError, match=re.escape(message)):
        validate_report(report)


def test_compression_stages_take_quality_fields(compression_report):
    stage = compression_report["stages"][0]
    stage.update(precision_macro=0.9, recall_macro=0.9, f1_macro=0.9, confusion=CONFUSION)
    validate_compression_report(compression_report)
    stage.update(confusion=[[1, 2, 3]])
    with pytest.raises(ValueError, match=re.escape(
            "Received: report['stages'][0]['confusion']=[[1, 2, 3]] (list); expected a square")):
        validate_compression_report(compression_report)


def test_confusion_plot_names_are_safe_and_unique():
    models = [{"name": "best float32", "confusion": CONFUSION},
              {"name": "best/float32", "confusion": CONFUSION},
              {"name": "no_matrix"},
              {"name": "pareto_03", "confusion": None},
              {"name": "pareto_04", "confusion": CONFUSION}]
    assert confusion_plot_names(models) == [
        "confusion_best_float32", "confusion_best_float32_2", None, None,
        "confusion_pareto_04"]


def test_confusion_plot_is_drawn(assert_png, tmp_path):
    path = tmp_path / "c.png"
    path.write_bytes(render_confusion_plot({"name": "m", "accuracy": 0.9, "f1_macro": None,
                                            "confusion": CONFUSION}))
    assert_png(path)
    # Many classes: no counts in the cells, still a chart.
    big = np.eye(30, dtype=int) * 5
    path.write_bytes(render_confusion_plot({"name": "m", "accuracy": math.nan,
                                            "confusion": big.tolist()}))
    assert_png(path)


def test_report_writes_a_confusion_plot_per_model_that_has_one(report, tmp_path, assert_png,
                                                               table_row):
    report = _with_quality(report)
    paths = write_report(report, tmp_path)
    names = [m["name"] for m in report["models"]]
    for name in names[:2]:
        assert_png(paths.plots[f"confusion_{name}"])
        assert paths.plots[f"confusion_{name}"] == tmp_path / f"confusion_{name}.png"
    assert sorted(p.name for p in tmp_path.glob("confusion_*.png")) == sorted(
        f"confusion_{name}.png" for name in names[:2])
    markdown = paths.markdown.read_text(encoding="utf-8")
    # The models table has macro F1 and the training time, n/a where unknown.
    assert ("| model | mode | size (bytes) | gzip (bytes) | accuracy (%) | macro F1 (%) | "
            "median latency (µs) | params | train (s) | size vs float32 |") in markdown
    assert "| 99.20 | 85.00 | 151.2 | 76,522 | 12.2 |" in table_row(markdown, "[float32]"
                                                                    "(models/float32.tflite)")
    assert "| 65.12 |" in table_row(markdown, "[dynamic_range](models/dynamic_range.tflite)")
    assert "| 96.50 | n/a |" in table_row(markdown, "[pcqat](models/pcqat.tflite)")
    assert "\n### Confusion matrices\n" in markdown
    assert ("- [float32](confusion_float32.png): macro precision 90.00 %, macro recall "
            "80.00 %, macro F1 85.00 %") in markdown
    assert "![confusion matrix of dynamic_range](confusion_dynamic_range.png)" in markdown
    assert "confusion_pcqat" not in markdown
    # Quality figures are not export-fidelity figures.
    assert "Export fidelity" not in markdown
    # The trials table shows what the trials recorded.
    assert "| params | val macro F1 (%) | train (s) | hyperparameters |" in markdown
    assert "| 00 | COMPLETED | 0.9562 | 12,345 | 94.12 | 3.5 |" in markdown


@pytest.mark.usefixtures("fast_plots")
def test_older_report_has_no_quality_columns(report, report_markdown):
    markdown = report_markdown(report)
    assert "macro F1" not in markdown and "train (s)" not in markdown
    assert "Confusion matrices" not in markdown


@pytest.mark.usefixtures("fast_plots")
def test_compression_table_shows_macro_f1(compression_report, compression_markdown, table_row):
    assert "macro F1" not in compression_markdown(compression_report)
    for index, stage in enumerate(compression_report["stages"]):
        stage["f1_macro"] = 0.9 - index / 100
    markdown = compression_markdown(compression_report)
    assert "| accuracy (%) | Δ accuracy (pt) | macro F1 (%) | size (bytes) |" in markdown
    assert "| 87.00 |" in table_row(markdown, "**[pcqat_int8](models/pcqat_int8.tflite)** (chosen)")
