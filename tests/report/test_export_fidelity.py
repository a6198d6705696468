"""Export fidelity in the run report: optional model figures and ``export_failures``."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from keras_autoopt.export import ExportResult, ExportVerificationError
from keras_autoopt.report import format_models_table, validate_report, write_report

REASON = (
    "int8 export failed verification on 270 samples: accuracy 93.0 % vs 96.3 % in Keras "
    "(drop 3.33 pt > 0.5 pt allowed); max abs difference between the Keras and TFLite outputs "
    "is 0.0841 (tolerance 0.15), top-1 agreement is 96.3% (minimum 90.0%).\n"
    "The file was not written to 'models/best_int8.tflite'."
)

pytestmark = pytest.mark.usefixtures("fast_plots")  # the text only; plots are stubbed


def _failure(**values) -> dict:
    record = {
        "name": "best_int8",
        "mode": "int8",
        "reason": REASON,
        "verify_samples": 270,
        "max_abs_diff": 0.0841,
        "tolerance": 0.15,
        "top1_agreement": 260 / 270,
        "min_top1_agreement": 0.9,
        "keras_accuracy": 260 / 270,
        "tflite_accuracy": 251 / 270,
        "max_accuracy_drop": 0.005,
    }
    record.update(values)
    return record


@pytest.fixture
def fidelity_report(report) -> dict:
    """The shared report with verification figures on three of its four models."""
    models = report["models"]
    models[0].update(
        verify_samples=297,
        top1_agreement=1.0,
        keras_accuracy=294 / 297,
        tflite_accuracy=294 / 297,
        max_abs_diff=1.4e-6,
    )
    # Verified without labels: no accuracies.
    models[1].update(
        verify_samples=64,
        top1_agreement=1.0,
        keras_accuracy=None,
        tflite_accuracy=None,
        max_abs_diff=0.033,
    )
    models[2].update(
        verify_samples=np.int64(297),
        top1_agreement=np.float32(296 / 297),
        keras_accuracy=294 / 297,
        tflite_accuracy=293 / 297,
        max_abs_diff=np.float64(0.0672),
    )
    report["export_failures"] = [_failure()]
    return report


# --- schema -----------------------------------------------------------------


def test_figures_are_optional(report):
    validate_report(report)
    report["export_failures"] = []
    validate_report(report)


def test_figures_and_failures_are_accepted(fidelity_report):
    fidelity_report["models"][3]["verify_samples"] = None
    fidelity_report["export_failures"].append(
        {"name": "best_float16", "mode": "float16", "reason": "shape mismatch",
         "max_abs_diff": math.inf, "top1_agreement": math.nan}
    )
    validate_report(fidelity_report)


@pytest.mark.parametrize(
    ("mutate", "pattern"),
    [
        (
            lambda r: r["models"][0].update(keras_accuracy=96.3),
            r"^Received: report\['models'\]\[0\]\['keras_accuracy'\]=96\.3 \(float\); "
            r"expected a float in \[0, 1\] \(a fraction, not a percentage\), NaN or None "
            r"\(optional key\)\.$",
        ),
        (
            lambda r: r["models"][2].update(verify_samples=-1),
            r"report\['models'\]\[2\]\['verify_samples'\]=-1 \(int\); expected a non-negative int "
            r"or None",
        ),
        (
            lambda r: r["models"][1].update(top1_agreement="1.0"),
            r"\['top1_agreement'\]='1\.0' \(str\); expected a float in \[0, 1\]",
        ),
        (
            lambda r: r["models"][0].update(max_abs_diff=-1e-6),
            r"\['max_abs_diff'\]=-1e-06 \(float\); expected a non-negative float \(inf allowed\)",
        ),
        (
            lambda r: r["models"][0].update(tflite_accuracy=True),
            r"\['tflite_accuracy'\]=True \(bool\); expected a float in \[0, 1\]",
        ),
        (
            lambda r: r.update(export_failures={"best_int8": "failed"}),
            r"Received: report\['export_failures'\]=\{'best_int8': 'failed'\} \(dict\); "
            r"expected a list of dicts\.",
        ),
        (
            lambda r: r["export_failures"].append("best_float16 failed"),
            r"Received: report\['export_failures'\]\[1\]='best_float16 failed' \(str\); "
            r"expected a dict\.",
        ),
        (
            lambda r: r["export_failures"][0].pop("reason"),
            r"Received: report\['export_failures'\]\[0\] without 'reason'; expected keys "
            r"\['mode', 'name', 'reason'\] \(extra keys are allowed\)\.",
        ),
        (
            lambda r: r["export_failures"][0].update(reason=""),
            r"\['export_failures'\]\[0\]\['reason'\]='' \(str\); expected a non-empty str",
        ),
        (
            lambda r: r["export_failures"][0].update(max_accuracy_drop=0.5 * 100),
            r"\['export_failures'\]\[0\]\['max_accuracy_drop'\]=50\.0 \(float\); expected a "
            r"float in \[0, 1\] \(a fraction, not a percentage\) or None \(optional key\)",
        ),
        (
            lambda r: r["export_failures"][0].update(verify_samples=2.5),
            r"\['verify_samples'\]=2\.5 \(float\); expected a non-negative int or None",
        ),
        (
            lambda r: r["export_failures"][0].update(tolerance=-0.1),
            r"\['tolerance'\]=-0\.1 \(float\); expected a non-negative float",
        ),
    ],
)
def test_wrong_figures(fidelity_report, mutate, pattern):
    mutate(fidelity_report)
    with pytest.raises(ValueError, match=pattern):
        validate_report(fidelity_report)


def test_terminal_table_checks_the_figures_and_ignores_them(report, fidelity_report):
    assert format_models_table(fidelity_report["models"]) == format_models_table(
        [
            {key: value for key, value in model.items() if key in report["models"][0]}
            for model in fidelity_report["models"]
        ]
    )
    fidelity_report["models"][0]["keras_accuracy"] = "high"
    with pytest.raises(ValueError, match=r"Received: models\[0\]\['keras_accuracy'\]='high'"):
        format_models_table(fidelity_report["models"])


def test_records_built_from_the_export_objects_pass(report):
    """The record shapes the pipeline builds from ExportResult and ExportVerificationError."""
    result = ExportResult(
        Path("/runs/a/models/best_float32.tflite"), "float32", 1000, 1e-6, 1.0,
        keras_accuracy=0.99, tflite_accuracy=0.99, verify_samples=297,
    ).to_dict()
    report["models"][0].update(
        {key: result[key] for key in
         ("verify_samples", "top1_agreement", "keras_accuracy", "tflite_accuracy", "max_abs_diff")}
    )
    error = ExportVerificationError(
        "float16 export failed verification on 297 samples: the TFLite output has shape ...",
        mode="float16", max_abs_diff=math.inf, tolerance=0.01, top1_agreement=0.0,
        min_top1_agreement=0.95, verify_samples=297,
    )
    report["export_failures"] = [{"name": "best_float16", "reason": str(error), **error.to_dict()}]
    validate_report(report)


def test_json_keeps_the_figures_and_validates_again(fidelity_report, tmp_path):
    fidelity_report["export_failures"][0]["max_abs_diff"] = math.inf
    paths = write_report(fidelity_report, tmp_path)
    written = json.loads(paths.json.read_text(encoding="utf-8"))
    assert written["models"][2]["verify_samples"] == 297
    assert written["models"][1]["keras_accuracy"] is None
    assert written["export_failures"][0]["max_abs_diff"] is None  # inf is not JSON
    assert written["export_failures"][0]["reason"] == REASON
    validate_report(written)


# --- Markdown ---------------------------------------------------------------


def test_fidelity_table(fidelity_report, report_markdown, assert_rows):
    markdown = report_markdown(fidelity_report)
    assert "\n## Export fidelity\n" in markdown
    assert markdown.index("## Exported models") < markdown.index("## Export fidelity")
    assert markdown.index("## Export fidelity") < markdown.index("## Environment")
    assert (
        "| model | samples | top-1 agreement (%) | Keras accuracy (%) | TFLite accuracy (%) "
        "| TFLite − Keras (pt) | max abs diff |"
    ) in markdown
    assert_rows(
        markdown,
        "| float32 | 297 | 100.00 | 98.99 | 98.99 | +0.00 | 1.4e-06 |",
        "| dynamic_range | 64 | 100.00 | n/a | n/a | n/a | 0.033 |",
        "| pruned_int8 | 297 | 99.66 | 98.99 | 98.65 | -0.34 | 0.0672 |",
    )
    assert "| pcqat |" not in markdown
    assert "_1 model(s) without verification figures are not listed._" in markdown


def test_no_fidelity_table_without_figures(report, report_markdown):
    markdown = report_markdown(report)
    assert "Export fidelity" not in markdown
    assert "failed verification" not in markdown


def test_failures_come_first(fidelity_report, report_markdown, assert_rows):
    fidelity_report["export_failures"].append(
        {"name": "best_float16", "mode": "float16", "reason": "the TFLite output | differs"}
    )
    markdown = report_markdown(fidelity_report)
    heading = "\n## Exports that failed verification\n"
    assert heading in markdown
    assert markdown.index(heading) < markdown.index("## Dataset")
    assert (
        "**2 export(s) failed verification against their Keras model and were not written.**"
        in markdown
    )
    assert (
        "| export | mode | samples | max abs diff / tolerance | top-1 agreement / minimum (%) "
        "| accuracy Keras → TFLite (%) | drop / allowed (pt) |"
    ) in markdown
    assert_rows(
        markdown,
        "| best_int8 | int8 | 270 | 0.0841 / 0.15 | 96.30 / 90.00 | 96.30 → 92.96 | 3.33 / 0.50 |",
        # Without figures, every one reads n/a.
        "| best_float16 | float16 | n/a | n/a / n/a | n/a / n/a | n/a → n/a | n/a / n/a |",
    )
    # The reasons in full, on one line each.
    assert f"- **best_int8** (int8): {' '.join(REASON.split())}" in markdown
    assert "- **best_float16** (float16): the TFLite output | differs" in markdown


def test_failure_with_infinite_difference(fidelity_report, table_row, report_markdown):
    fidelity_report["export_failures"][0].update(max_abs_diff=math.inf, keras_accuracy=None)
    markdown = report_markdown(fidelity_report)
    assert table_row(markdown, "best_int8") == (
        "| best_int8 | int8 | 270 | inf / 0.15 | 96.30 / 90.00 | n/a → 92.96 | n/a / 0.50 |"
    )


def test_empty_failure_list_shows_nothing(fidelity_report, report_markdown):
    fidelity_report["export_failures"] = []
    markdown = report_markdown(fidelity_report)
    assert "failed verification" not in markdown
    assert "\n## Export fidelity\n" in markdown
