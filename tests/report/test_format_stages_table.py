from __future__ import annotations

import math

import pytest

from keras_autoopt.report import format_stages_table


def test_aligned_table(compression_report):
    table = format_stages_table(compression_report["stages"])
    assert table == "\n".join(
        [
            "stage               mode     sparsity %  accuracy %  gzip KB  gzip ratio  latency µs"
            "  within budget",
            "------------------  -------  ----------  ----------  -------  ----------  ----------"
            "  -------------",
            "float32             float32         0.0       99.20    276.9        1.1×       151.2"
            "  yes",
            "pruned              float32        80.0       98.80     69.5        4.3×       150.0"
            "  yes",
            "clustered           float32        80.0       98.60     37.5        8.1×       149.5"
            "  yes",
            "pcqat_int8          int8           80.0       98.40      8.6       35.2×        64.5"
            "  yes",
            "anchor_tfmot_guide  int8           50.0       97.50      7.8       38.9×        63.9"
            "  no",
        ]
    )


def test_nan_values(compression_report):
    stage = dict(
        compression_report["stages"][4],
        accuracy=math.nan,
        latency_us_median=math.nan,
        gzip_ratio=math.nan,
    )
    lines = format_stages_table([stage]).splitlines()
    assert lines[2].split() == [
        "anchor_tfmot_guide",
        "int8",
        "50.0",
        "n/a",
        "7.8",
        "n/a",
        "n/a",
        "no",
    ]


def test_empty_list():
    lines = format_stages_table([]).splitlines()
    assert lines[0].startswith("stage  mode  sparsity %")
    assert lines[2] == "(no stages)"


def test_invalid_stages(compression_report):
    stages = compression_report["stages"]
    del stages[0]["within_budget"]
    with pytest.raises(ValueError, match=r"Received: stages\[0\] without 'within_budget'"):
        format_stages_table(stages)
    with pytest.raises(ValueError, match=r"Received: stages=\{\} \(dict\); expected a list"):
        format_stages_table({})
    duplicate = [compression_report["stages"][1], compression_report["stages"][1]]
    with pytest.raises(
        ValueError, match=r"stages\[1\]\['stage'\]='pruned' \(str\); expected a unique"
    ):
        format_stages_table(duplicate)
