"""The typed report records: what the writers write is what the records dump."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from pydantic import ValidationError

from keras_autoopt.report import (
    CompressionReport,
    ExportedModel,
    ExportFailure,
    RunReport,
    write_compression_report,
    write_report,
)


def _full_report(report, compression_report, pareto) -> dict:
    """The fixture report with every optional key, NumPy scalars, NaN and infinities."""
    report["dataset"]["n_train"] = np.int64(1203)
    report["search"]["wall_time_s"] = np.float32(12.5)
    report["search"]["direction"] = "max"
    report["search"]["best_trial_id"] = "01"
    report["trials"][2]["score"] = math.nan
    report["models"][0].update(
        verify_samples=64, max_abs_diff=math.inf, top1_agreement=np.float64(1.0),
        keras_accuracy=None, tflite_accuracy=0.99,
    )
    report["config"] = {"seed": 7, "export": {"modes": ["float32", "int8"]}}
    report["export_failures"] = [
        {"name": "best_float16", "mode": "float16", "reason": "shape mismatch",
         "max_abs_diff": math.inf, "top1_agreement": math.nan, "tolerance": 1e-3}
    ]
    report["compression"] = {
        "report": "compression/compression.md",
        "chosen": compression_report["stages"][3],
        "budget": compression_report["budget"],
    }
    report["pareto"] = pareto
    return report


def test_run_report_dumps_as_written(report, compression_report, pareto, tmp_path, fast_plots):
    report = _full_report(report, compression_report, pareto)
    paths = write_report(report, tmp_path)
    written = json.loads(paths.json.read_text(encoding="utf-8"))
    record = RunReport.model_validate(report)
    assert record.model_dump(mode="json") == written
    assert written["export_failures"][0]["max_abs_diff"] is None  # inf is null in JSON
    assert written["trials"][2]["score"] is None  # NaN too


def test_compression_report_dumps_as_written(compression_report, tmp_path, fast_plots):
    compression_report["stages"][0]["accuracy"] = np.float64(math.nan)
    compression_report["stages"][1]["size_bytes"] = np.int32(309240)
    paths = write_compression_report(compression_report, tmp_path)
    written = json.loads(paths.json.read_text(encoding="utf-8"))
    assert CompressionReport.model_validate(compression_report).model_dump(mode="json") == written


def test_optional_keys_stay_absent_in_a_dump(report):
    dumped = RunReport.model_validate(report).model_dump()
    assert dumped == report
    assert "pareto" not in dumped and "verify_samples" not in dumped["models"][0]


def test_records_hold_python_values(report):
    report["models"][0]["size_bytes"] = np.int64(7)
    report["models"][0]["owner"] = np.float32(0.5)
    model = RunReport.model_validate(report).models[0]
    assert type(model.size_bytes) is int and model.size_bytes == 7
    assert type(model.model_extra["owner"]) is float


def test_building_a_record_checks_its_values():
    with pytest.raises(ValidationError, match="expected a non-negative int"):
        ExportedModel(
            name="m", mode="int8", path="m.tflite", size_bytes=-1, gzip_bytes=1,
            accuracy=0.5, latency_us_median=1.0, params=1,
        )
    failure = ExportFailure(name="m", mode="int8", reason="too far", max_abs_diff=0.5)
    assert failure.model_dump() == {
        "name": "m", "mode": "int8", "reason": "too far", "max_abs_diff": 0.5,
    }
