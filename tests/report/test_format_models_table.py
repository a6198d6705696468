from __future__ import annotations

import math

import pytest

from keras_autoopt.report import format_models_table


def test_aligned_table(report):
    table = format_models_table(report["models"])
    assert table == "\n".join(
        [
            "name           mode        KB  gzip KB  accuracy %  latency µs",
            "-------------  -------  -----  -------  ----------  ----------",
            "float32        float32  302.0    276.9       99.20       151.2",
            "dynamic_range  dynamic   81.3     76.7       99.20        98.0",
            "pruned_int8    int8      83.9     18.4       98.20        64.5",
            "pcqat          int8      81.4     13.5       96.50        63.9",
        ]
    )


def test_nan_values_and_large_sizes(report):
    model = dict(report["models"][0], accuracy=math.nan, latency_us_median=math.nan)
    model["size_bytes"] = 12 * 1024 * 1024
    lines = format_models_table([model]).splitlines()
    assert lines[2].split() == ["float32", "float32", "12,288.0", "276.9", "n/a", "n/a"]
    assert len({len(line) for line in lines[:2]}) == 1  # header and rule align


def test_empty_list():
    lines = format_models_table([]).splitlines()
    assert lines[0].split() == [
        "name",
        "mode",
        "KB",
        "gzip",
        "KB",
        "accuracy",
        "%",
        "latency",
        "µs",
    ]
    assert lines[2] == "(no models)"


def test_invalid_models(report):
    del report["models"][0]["latency_us_median"]
    with pytest.raises(ValueError, match=r"Received: models\[0\] without 'latency_us_median'"):
        format_models_table(report["models"])
    with pytest.raises(ValueError, match=r"Received: models=\{\} \(dict\); expected a list"):
        format_models_table({})


def test_device_columns_when_measured_for_a_target(report):
    models = [dict(m) for m in report["models"][2:]]
    models[0]["device"] = {"target": "tflm", "flash_bytes": 83_900, "ram_bytes": 10_240,
                           "reason": None}
    models[1]["device"] = {"target": "tflm", "flash_bytes": 81_400, "ram_bytes": None,
                           "reason": "TFLite Micro cannot run it"}
    lines = format_models_table(models).splitlines()
    assert lines[0].split()[-6:] == ["flash", "KB", "RAM", "KB", "runs", "on", "tflm"][-6:]
    assert lines[0].endswith("flash KB  RAM KB  runs on tflm")
    assert lines[2].split()[-3:] == ["81.9", "10.0", "yes"]  # 83,900 / 1024, 10,240 / 1024
    assert lines[3].split()[-3:] == ["79.5", "n/a", "no"]
