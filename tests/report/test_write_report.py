from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

from keras_autoopt.report import ReportPaths, write_report
from keras_autoopt.report import _plots as plots_module

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PLOT_NAMES = {"trials_accuracy_vs_params", "models_accuracy_vs_gzip"}


def test_writes_all_files(report, tmp_path, assert_png):
    out = tmp_path / "run" / "report"  # created if missing
    paths = write_report(report, out)
    assert isinstance(paths, ReportPaths)
    assert paths.json == out / "report.json"
    assert paths.markdown == out / "report.md"
    assert set(paths.plots) == PLOT_NAMES
    for name, path in paths.plots.items():
        assert path == out / f"{name}.png"
        assert_png(path)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["report.json", "report.md", *(f"{name}.png" for name in PLOT_NAMES)]
    )  # and no temporary files left behind


def test_accepts_str_output_dir(report, tmp_path):
    paths = write_report(report, str(tmp_path))
    assert paths.json.is_file()


def test_json_round_trips(report, tmp_path, read_strict_json):
    paths = write_report(report, tmp_path)
    assert read_strict_json(paths.json) == report
    assert read_strict_json(paths.json)["run_id"] == "demo-1"  # extra keys are preserved


def test_json_nan_and_numpy_values(report, tmp_path, read_strict_json):
    report["trials"][0]["score"] = math.nan
    report["trials"][3]["score"] = np.float32(0.5)
    report["trials"][3]["params"] = np.int64(30110)
    report["models"][1]["latency_us_median"] = float("nan")
    report["models"][2]["size_bytes"] = np.int32(85880)
    report["search"]["best_hyperparameters"]["momentum"] = np.float64(np.inf)
    report["search"]["best_hyperparameters"]["layers"] = np.array([1, 2])
    report["search"]["best_hyperparameters"]["augment"] = np.bool_(True)
    paths = write_report(report, tmp_path)

    text = paths.json.read_text(encoding="utf-8")
    assert ": NaN" not in text and "Infinity" not in text
    loaded = read_strict_json(paths.json)
    json.dumps(loaded, allow_nan=False)
    assert loaded["trials"][0]["score"] is None
    assert loaded["trials"][3]["score"] == 0.5
    assert loaded["trials"][3]["params"] == 30110
    assert loaded["models"][1]["latency_us_median"] is None
    assert loaded["models"][2]["size_bytes"] == 85880
    assert loaded["search"]["best_hyperparameters"]["momentum"] is None
    assert loaded["search"]["best_hyperparameters"]["layers"] == [1, 2]
    assert loaded["search"]["best_hyperparameters"]["augment"] is True


def test_input_report_is_not_modified(report, tmp_path):
    report["trials"][0]["score"] = math.nan
    write_report(report, tmp_path)
    assert math.isnan(report["trials"][0]["score"])


def test_nan_score_trial(report, tmp_path, table_row, assert_png):
    report["trials"][3]["score"] = math.nan
    paths = write_report(report, tmp_path)
    markdown = paths.markdown.read_text(encoding="utf-8")
    assert table_row(markdown, "03").startswith("| 03 | COMPLETED | NaN | 30,110 |")
    assert "1 completed trial(s) without a finite score or a parameter count" in markdown
    assert "The plot shows the 2 completed trial(s)" in markdown
    assert_png(paths.plots["trials_accuracy_vs_params"])


def test_all_scores_nan_has_no_best(report, tmp_path, assert_png):
    for trial in report["trials"]:
        trial["score"] = math.nan if trial["status"] == "COMPLETED" else None
    paths = write_report(report, tmp_path)
    markdown = paths.markdown.read_text(encoding="utf-8")
    assert "| best score | n/a |" in markdown
    assert "(best)" not in markdown
    assert "the plot is empty" in markdown
    assert_png(paths.plots["trials_accuracy_vs_params"])


def test_zero_completed_trials(report, tmp_path, assert_png):
    report["trials"] = [trial for trial in report["trials"] if trial["status"] == "FAILED"]
    report["search"]["trials"] = 0
    paths = write_report(report, tmp_path)
    markdown = paths.markdown.read_text(encoding="utf-8")
    assert "| completed trials | 0 |" in markdown
    assert "| best score | n/a |" in markdown
    assert "No completed trial has a score and a parameter count: the plot is empty." in markdown
    assert_png(paths.plots["trials_accuracy_vs_params"])


def test_no_trials_and_no_models(report, tmp_path, assert_png):
    report["trials"] = []
    report["models"] = []
    report["search"]["trials"] = 0
    report["search"]["best_hyperparameters"] = {}
    paths = write_report(report, tmp_path)
    markdown = paths.markdown.read_text(encoding="utf-8")
    assert "_No trials were recorded._" in markdown
    assert "_No models were exported._" in markdown
    assert "_None recorded._" in markdown
    for path in paths.plots.values():
        assert_png(path)


def test_one_trial_and_one_model(report, tmp_path, table_row, assert_png):
    report["trials"] = [report["trials"][1]]
    report["models"] = [report["models"][2]]
    report["search"]["trials"] = 1
    paths = write_report(report, tmp_path)
    markdown = paths.markdown.read_text(encoding="utf-8")
    assert table_row(markdown, "01 (best)").startswith("| 01 (best) | COMPLETED | 0.9916 |")
    assert "size vs float32" not in markdown  # the only model is int8
    assert table_row(markdown, "[pruned_int8](models/pruned_int8.tflite)") == (
        "| [pruned_int8](models/pruned_int8.tflite) | int8 | 85,880 | 18,880 | 98.20 | 64.5"
        " | 76,522 |"
    )
    for path in paths.plots.values():
        assert_png(path)


def test_model_with_nan_accuracy_is_listed_not_plotted(report, tmp_path, assert_png):
    report["models"][3]["accuracy"] = math.nan
    report["models"][3]["latency_us_median"] = math.nan
    paths = write_report(report, tmp_path)
    markdown = paths.markdown.read_text(encoding="utf-8")
    assert "| int8 | 83,344 | 13,860 | n/a | n/a | 76,522 | 0.27x |" in markdown
    assert_png(paths.plots["models_accuracy_vs_gzip"])


OLD_REPORT = {  # what an earlier run left in the folder
    "report.json": b'{"old": true}\n', "report.md": b"# old report\n",
    "trials_accuracy_vs_params.png": b"old png 1", "models_accuracy_vs_gzip.png": b"old png 2",
}


def _write_old_report(out: Path) -> dict[str, bytes]:
    out.mkdir(parents=True, exist_ok=True)
    for name, data in OLD_REPORT.items():
        (out / name).write_bytes(data)
    return dict(OLD_REPORT)


def _contents(out: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in out.iterdir()}


def test_rendering_failure_leaves_old_report_intact(report, tmp_path, monkeypatch):
    old = _write_old_report(tmp_path)

    def broken(*args, **kwargs):
        raise RuntimeError("renderer crashed")

    monkeypatch.setattr(plots_module, "render_models_plot", broken)
    with pytest.raises(RuntimeError, match="renderer crashed"):
        write_report(report, tmp_path)
    assert _contents(tmp_path) == old  # nothing rewritten, no temporary file left


def test_write_failure_midway_leaves_no_partial_file(report, tmp_path, monkeypatch):
    old = _write_old_report(tmp_path)
    real_fsync = os.fsync
    calls = []

    def failing_fsync(fd):
        # The first two files (the plots) are written, the third (report.md)
        # fails after its bytes went to the temporary file.
        calls.append(fd)
        if len(calls) == 3:
            raise OSError("disk full")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="disk full"):
        write_report(report, tmp_path)
    after = _contents(tmp_path)
    assert set(after) == set(old)  # no temporary file left
    assert after["report.json"] == old["report.json"]
    assert after["report.md"] == old["report.md"]
    assert after["trials_accuracy_vs_params.png"][:8] == PNG_MAGIC


def test_invalid_report_writes_nothing(report, tmp_path):
    del report["models"][0]["gzip_bytes"]
    with pytest.raises(ValueError, match="gzip_bytes"):
        write_report(report, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_output_dir_must_be_a_folder(report, tmp_path):
    existing_file = tmp_path / "file.txt"
    existing_file.write_text("x")
    with pytest.raises(ValueError, match=r"Received: output_dir='.*file\.txt'; expected a folder"):
        write_report(report, existing_file)
