from __future__ import annotations

import math
import re

import numpy as np
import pytest

from keras_autoopt.report import validate_report


def test_valid_report_passes(report):
    assert validate_report(report) is None


def test_numpy_scalars_and_extra_keys_are_accepted(report):
    report["dataset"]["n_train"] = np.int64(1203)
    report["search"]["wall_time_s"] = np.float32(12.5)
    report["trials"][0]["score"] = np.float64(math.nan)
    report["models"][0]["accuracy"] = np.float32(0.9)
    report["models"][0]["owner"] = "someone"
    report["search"]["direction"] = "max"
    report["notes"] = ["free", "form"]
    validate_report(report)


def test_not_a_dict():
    with pytest.raises(ValueError, match=r"Received: report=\[\] \(list\); expected a dict\."):
        validate_report([])


@pytest.mark.parametrize("key", ["dataset", "search", "trials", "models", "environment"])
def test_missing_top_level_key(report, key):
    del report[key]
    with pytest.raises(ValueError, match=rf"Received: report without '{key}'; expected keys"):
        validate_report(report)


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ("dataset", "name"),
        ("dataset", "n_test"),
        ("search", "tuner"),
        ("search", "best_hyperparameters"),
        ("search", "objective"),
    ],
)
def test_missing_section_key(report, section, key):
    del report[section][key]
    pattern = rf"Received: report\['{section}'\] without '{key}'; expected keys \["
    with pytest.raises(ValueError, match=pattern):
        validate_report(report)


def test_missing_model_key_names_its_index(report):
    del report["models"][1]["gzip_bytes"]
    message = (
        "Received: report['models'][1] without 'gzip_bytes'; expected keys ['accuracy', "
        "'gzip_bytes', 'latency_us_median', 'mode', 'name', 'params', 'path', 'size_bytes'] "
        "(extra keys are allowed)."
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        validate_report(report)


def test_missing_trial_key_names_its_index(report):
    del report["trials"][2]["message"]
    with pytest.raises(ValueError, match=r"report\['trials'\]\[2\] without 'message'"):
        validate_report(report)


@pytest.mark.parametrize(
    ("mutate", "pattern"),
    [
        (
            lambda r: r["models"][1].update(gzip_bytes="12"),
            r"Received: report\['models'\]\[1\]\['gzip_bytes'\]='12' \(str\); "
            r"expected a non-negative int\.",
        ),
        (
            lambda r: r["models"][0].update(size_bytes=-1),
            r"\['size_bytes'\]=-1 \(int\); expected a non-negative int",
        ),
        (
            lambda r: r["models"][0].update(params=True),
            r"\['params'\]=True \(bool\); expected a non-negative int",
        ),
        (
            lambda r: r["models"][0].update(accuracy=99.2),
            r"\['accuracy'\]=99\.2 \(float\); expected a float in \[0, 1\] \(a fraction, "
            r"not a percentage\)",
        ),
        (
            lambda r: r["models"][0].update(path="/abs/model.tflite"),
            r"\['path'\]='/abs/model\.tflite' \(str\); expected a non-empty path relative to "
            r"the report folder",
        ),
        (
            lambda r: r["models"][0].update(path="C:\\models\\m.tflite"),
            r"expected a non-empty path relative to the report folder",
        ),
        (
            lambda r: r["models"][0].update(latency_us_median=-3.0),
            r"\['latency_us_median'\]=-3\.0 \(float\); expected a non-negative float",
        ),
        (
            lambda r: r["trials"][0].update(score="0.9"),
            r"report\['trials'\]\[0\]\['score'\]='0\.9' \(str\); expected a float or None",
        ),
        (
            lambda r: r["trials"][1].update(params=1.5),
            r"report\['trials'\]\[1\]\['params'\]=1\.5 \(float\); expected a non-negative int "
            r"or None",
        ),
        (
            lambda r: r["trials"][1].update(hyperparameters=None),
            r"\['hyperparameters'\]=None \(NoneType\); expected a dict",
        ),
        (
            lambda r: r["trials"][1].update(trial_id=""),
            r"\['trial_id'\]='' \(str\); expected a non-empty str",
        ),
        (
            lambda r: r["search"].update(wall_time_s=math.inf),
            r"report\['search'\]\['wall_time_s'\]=inf \(float\); expected a finite, "
            r"non-negative float",
        ),
        (
            lambda r: r["search"].update(trials="3"),
            r"report\['search'\]\['trials'\]='3' \(str\); expected a non-negative int",
        ),
        (
            lambda r: r["search"].update(direction="maximize"),
            r"report\['search'\]\['direction'\]='maximize' \(str\); expected one of "
            r"\('max', 'min'\)",
        ),
        (
            lambda r: r["dataset"].update(n_val=29.7),
            r"report\['dataset'\]\['n_val'\]=29\.7 \(float\); expected a non-negative int",
        ),
        (
            lambda r: r.update(trials={"00": {}}),
            r"Received: report\['trials'\]=\{'00': \{\}\} \(dict\); expected a list of dicts",
        ),
        (
            lambda r: r["models"].append("float32.tflite"),
            r"Received: report\['models'\]\[4\]='float32\.tflite' \(str\); expected a dict",
        ),
        (
            lambda r: r["environment"].update(numpy=2.4),
            r"report\['environment'\]\['numpy'\]=2\.4 \(float\); expected a version str or None",
        ),
        (
            lambda r: r.update(environment="linux"),
            r"report\['environment'\]='linux' \(str\); expected a dict",
        ),
        (
            lambda r: r["search"]["best_hyperparameters"].update(optimizer=object()),
            r"Received: report\['search'\]\['best_hyperparameters'\]\['optimizer'\]="
            r"<object object at .*> \(object\); expected JSON-compatible values",
        ),
        (
            lambda r: r["trials"][0].update(hyperparameters={1: "a"}),
            r"Received: a key 1 \(int\) in report\['trials'\]\[0\]\['hyperparameters'\]; "
            r"expected str keys",
        ),
        (
            # The old fixture had mode "dynamic_range", which no export produces.
            lambda r: r["models"][1].update(mode="dynamic_range"),
            r"^Received: report\['models'\]\[1\]\['mode'\]='dynamic_range' \(str\); expected "
            r"one of \('float32', 'dynamic', 'float16', 'int8'\)\.$",
        ),
        (
            lambda r: r["trials"][0].update(status="DONE"),  # keras-tuner's statuses only
            r"\['status'\]='DONE' \(str\); expected one of \(",
        ),
    ],
)
def test_wrong_values(report, mutate, pattern):
    mutate(report)
    with pytest.raises(ValueError, match=pattern):
        validate_report(report)


def test_long_values_are_shortened_in_messages(report):
    report["dataset"]["name"] = ["x" * 500]
    with pytest.raises(ValueError) as info:
        validate_report(report)
    assert str(info.value).endswith("xxx... (list); expected a non-empty str.")
    assert len(str(info.value)) < 200
