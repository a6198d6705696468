"""export_tflite: the four modes end to end, verification (outputs, accuracy), argument errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from keras_autoopt._backend import keras
from keras_autoopt.export import (
    DEFAULT_MAX_ACCURACY_DROP,
    DEFAULT_MIN_TOP1_AGREEMENT,
    DEFAULT_TOLERANCES,
    EXPORT_MODES,
    ExportVerificationError,
    _tflite,
    _verification,
    export_tflite,
)
from keras_autoopt.measure import TFLiteRunner, measure_tflite

LAYERS = keras.layers


def _tiny_cnn() -> keras.Model:
    return keras.Sequential(
        [
            LAYERS.Input((8, 8, 1)),
            LAYERS.Conv2D(8, 3, padding="same", activation="relu"),
            LAYERS.MaxPooling2D(),
            LAYERS.Flatten(),
            # 128 x 32 weights: large enough (>= 1024) for dynamic-range and
            # float16 quantization to shrink the file.
            LAYERS.Dense(32, activation="relu"),
            LAYERS.Dense(3, activation="softmax"),
        ]
    )


@pytest.fixture(scope="module")
def trained(tiny_images):
    """The tiny CNN trained 3 epochs, and its Keras test accuracy."""
    keras.utils.set_random_seed(0)
    x_train, y_train, x_test, y_test = tiny_images
    model = _tiny_cnn()
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
    model.fit(x_train, y_train, epochs=3, batch_size=16, verbose=0)
    accuracy = float(np.mean(model.predict(x_test, verbose=0).argmax(axis=1) == y_test))
    return model, accuracy


@pytest.fixture(scope="module")
def exported(trained, tiny_images, tmp_path_factory):
    """Each mode exported once and measured: {mode: (ExportResult, TFLiteMetrics)}."""
    model, _ = trained
    x_train, _, x_test, y_test = tiny_images
    folder = tmp_path_factory.mktemp("export")
    results = {}
    for mode in EXPORT_MODES:
        result = export_tflite(model, folder / f"{mode}.tflite", mode, representative_data=x_train)
        results[mode] = result, measure_tflite(result.path, x_test, y_test, latency_runs=50)
    return results


@pytest.mark.parametrize("mode", EXPORT_MODES)
def test_each_mode_writes_a_verified_file(exported, trained, tiny_images, mode):
    result, metrics = exported[mode]
    assert result.mode == mode
    assert result.path.is_file()
    assert result.size_bytes == result.path.stat().st_size == metrics.size_bytes
    assert 0.0 <= result.max_abs_diff <= DEFAULT_TOLERANCES[mode]
    assert result.top1_agreement >= DEFAULT_MIN_TOP1_AGREEMENT[mode]
    # The reported figures, recomputed here from both models' outputs on the
    # first 64 representative samples.
    sample = tiny_images[0][:64]
    keras_out = trained[0].predict(sample, verbose=0)
    tflite_out = TFLiteRunner(result.path).predict(sample)
    assert result.max_abs_diff == pytest.approx(np.abs(keras_out - tflite_out).max(), abs=1e-6)
    agreement = np.mean(keras_out.argmax(axis=1) == tflite_out.argmax(axis=1))
    assert result.top1_agreement == pytest.approx(agreement)
    # Default verification: the first 64 representative samples, no labels.
    assert result.verify_samples == 64
    assert result.keras_accuracy is None and result.tflite_accuracy is None
    as_json = json.loads(json.dumps(result.to_dict()))
    assert as_json["path"] == str(result.path)
    assert as_json["verify_samples"] == 64 and as_json["keras_accuracy"] is None


def test_sizes_shrink_with_quantization(exported):
    size = {mode: exported[mode][0].size_bytes for mode in EXPORT_MODES}
    assert size["float32"] > size["float16"] > size["dynamic"]
    assert size["int8"] < size["float16"]


@pytest.mark.parametrize("mode", EXPORT_MODES)
def test_litert_accuracy_close_to_keras(exported, trained, mode):
    _, keras_accuracy = trained
    assert keras_accuracy >= 0.9
    # 30 test samples: one sample is 3.3 points.
    assert abs(exported[mode][1].accuracy - keras_accuracy) <= 0.07


@pytest.mark.parametrize("mode", EXPORT_MODES)
def test_latency_and_gzip_are_recorded(exported, mode):
    _, metrics = exported[mode]
    assert metrics.latency_us_median > 0
    assert metrics.latency_runs == 50
    assert 0 < metrics.gzip_bytes <= metrics.size_bytes + 64


def test_int8_model_has_int8_input_and_output(exported):
    runner = TFLiteRunner(exported["int8"][0].path)
    assert runner.input_details[0]["dtype"] == np.int8
    assert runner.output_details[0]["dtype"] == np.int8
    assert runner.input_details[0]["quantization"][0] > 0


def test_float_modes_keep_float_input(exported):
    for mode in ("float32", "dynamic", "float16"):
        runner = TFLiteRunner(exported[mode][0].path)
        assert runner.input_details[0]["dtype"] == np.float32


def test_functional_model(tiny_images, tmp_path):
    x_train = tiny_images[0]
    inputs = keras.Input((8, 8, 1))
    outputs = LAYERS.Dense(3, activation="softmax")(LAYERS.Flatten()(inputs))
    model = keras.Model(inputs, outputs)
    result = export_tflite(model, tmp_path / "f.tflite", verify_data=x_train[:8])
    assert result.max_abs_diff <= DEFAULT_TOLERANCES["float32"]
    assert result.top1_agreement == 1.0


class _Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.flatten = LAYERS.Flatten()
        self.dense = LAYERS.Dense(3, activation="softmax")

    def call(self, inputs):
        return self.dense(self.flatten(inputs))


def test_subclassed_model_called_on_data(tiny_images, tmp_path):
    x_train = tiny_images[0]
    model = _Subclassed()
    model(x_train[:2])
    result = export_tflite(model, tmp_path / "s.tflite", "int8", representative_data=x_train)
    assert result.path.is_file()
    assert result.max_abs_diff <= DEFAULT_TOLERANCES["int8"]


def test_subclassed_model_without_input_shape_is_refused(tmp_path):
    model = _Subclassed()
    model.build((None, 8, 8, 1))
    with pytest.raises(ValueError, match=r"input shape is unknown.*Call the model on a batch"):
        export_tflite(model, tmp_path / "s.tflite")
    assert not (tmp_path / "s.tflite").exists()


def test_no_verification_without_data(trained, tmp_path):
    result = export_tflite(trained[0], tmp_path / "m.tflite", "float16")
    assert result.max_abs_diff is None
    assert result.top1_agreement is None
    assert result.keras_accuracy is None and result.tflite_accuracy is None
    assert result.verify_samples == 0
    assert result.path.is_file()


def test_verification_failure_writes_nothing(trained, tiny_images, tmp_path):
    path = tmp_path / "m.tflite"
    with pytest.raises(ExportVerificationError) as info:
        export_tflite(trained[0], path, "int8", representative_data=tiny_images[0], tolerance=0.0)
    error = info.value
    assert isinstance(error, RuntimeError)
    assert error.mode == "int8"
    assert error.max_abs_diff > 0.0
    assert error.tolerance == 0.0
    message = str(error)
    assert message.startswith("int8 export failed verification on 64 samples")
    assert (
        f"max abs difference between the Keras and TFLite outputs is {error.max_abs_diff:.6g}"
        in message
    )
    assert "(tolerance 0)" in message
    assert f"top-1 agreement is {error.top1_agreement:.1%}" in message
    assert "Pass a larger `tolerance`, better `representative_data`, or choose another mode." in (
        message
    )
    # No labels: the accuracy was not checked.
    assert "accuracy" not in message.replace("top-1 agreement", "")
    assert error.verify_samples == 64
    assert error.keras_accuracy is error.tflite_accuracy is error.max_accuracy_drop is None
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []


def test_verification_failure_keeps_an_existing_file(trained, tiny_images, tmp_path):
    path = tmp_path / "m.tflite"
    path.write_bytes(b"previous export")
    with pytest.raises(ExportVerificationError):
        export_tflite(trained[0], path, "float16", verify_data=tiny_images[2], tolerance=0.0)
    assert path.read_bytes() == b"previous export"


def test_verify_catches_a_different_model(trained, tiny_images, exported):
    model, _ = trained
    data = exported["float32"][0].path.read_bytes()
    x_test = tiny_images[2]
    checked = dict(mode="float32", tolerance=DEFAULT_TOLERANCES["float32"], min_top1_agreement=0.98)
    # Control: the model the file came from passes.
    figures = _verification._verify(model, data, x_test, **checked)
    assert figures.max_abs_diff <= DEFAULT_TOLERANCES["float32"]
    assert figures.top1_agreement == 1.0
    assert figures.samples == len(x_test)
    # Same architecture, fresh weights: must fail.
    other = keras.models.clone_model(model)
    with pytest.raises(ExportVerificationError, match=r"^float32 export failed verification"):
        _verification._verify(other, data, x_test, **checked)


def test_low_agreement_alone_fails(trained, tiny_images, exported):
    model, _ = trained
    data = exported["float32"][0].path.read_bytes()
    other = keras.models.clone_model(model)
    with pytest.raises(ExportVerificationError, match=r"top-1 agreement is \d+\.\d%") as info:
        _verification._verify(
            other, data, tiny_images[2], mode="float32", tolerance=np.inf, min_top1_agreement=1.0
        )
    assert info.value.top1_agreement < 1.0


@pytest.fixture
def no_conversion(monkeypatch):
    """Fail the test if a conversion starts: argument errors come first."""

    def convert(*args, **kwargs):
        raise AssertionError("conversion started before the arguments were checked")

    monkeypatch.setattr(_tflite, "_convert", convert)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (
            {"mode": "int4"},
            ValueError,
            r"Received: mode='int4'; expected one of 'float32', 'dynamic', 'float16', 'int8'\.",
        ),
        (
            {"mode": "int8"},
            ValueError,
            r"Received: representative_data=None with mode='int8'; expected an array",
        ),
        (
            {
                "mode": "int8",
                "representative_data": np.zeros((4, 8, 8, 1), "float32"),
                "num_calibration_samples": 0,
            },
            ValueError,
            r"Received: num_calibration_samples=0; expected a positive integer\.",
        ),
        ({"tolerance": -0.1}, ValueError, r"Received: tolerance=-0\.1; expected a number >= 0"),
        ({"tolerance": float("nan")}, ValueError, r"Received: tolerance=nan"),
        (
            {"min_top1_agreement": 1.5},
            ValueError,
            r"Received: min_top1_agreement=1\.5; expected a number in \[0, 1\.0\]\.",
        ),
        (
            {"representative_data": np.zeros((4, 8, 8), "float32")},
            ValueError,
            r"Received: representative_data with shape \(4, 8, 8\); expected .*\(n, 8, 8, 1\)",
        ),
        (
            {"verify_data": np.zeros((0, 8, 8, 1), "float32")},
            ValueError,
            r"Received: verify_data with shape \(0, 8, 8, 1\); expected at least one sample",
        ),
    ],
)
def test_argument_errors(trained, tmp_path, no_conversion, kwargs, error, match):
    with pytest.raises(error, match=match):
        export_tflite(trained[0], tmp_path / "m.tflite", **kwargs)
    assert not (tmp_path / "m.tflite").exists()


def test_model_must_be_a_keras_model(tmp_path, no_conversion):
    with pytest.raises(TypeError, match=r"Received: model of type str; expected a tf_keras or "
                       r"Keras 3 Model"):
        export_tflite("model.h5", tmp_path / "m.tflite")


def test_two_output_model_cannot_be_verified(tiny_images, tmp_path, no_conversion):
    inputs = keras.Input((8, 8, 1))
    flat = LAYERS.Flatten()(inputs)
    model = keras.Model(inputs, [LAYERS.Dense(3)(flat), LAYERS.Dense(2)(flat)])
    with pytest.raises(ValueError, match=r"with 2 outputs; export verification expects"):
        export_tflite(model, tmp_path / "m.tflite", verify_data=tiny_images[2])


def test_int8_with_float_io(trained, tiny_images, tmp_path):
    trained, _ = trained
    x, _, _, _ = tiny_images
    result = export_tflite(trained, tmp_path / "m.tflite", mode="int8", representative_data=x,
                           int8_io=False)
    runner = TFLiteRunner(result.path)
    assert runner.input_details[0]["dtype"] == np.float32
    assert runner.output_details[0]["dtype"] == np.float32
    assert result.top1_agreement >= 0.9
    with pytest.raises(ValueError, match=r"Received: int8_io='no'; expected True or False"):
        export_tflite(trained, tmp_path / "n.tflite", mode="int8", representative_data=x,
                      int8_io="no")


# --- accuracy check (verify_labels, max_accuracy_drop) ----------------------


def _accuracy(scores: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(np.argmax(scores, axis=1) == labels))


def test_default_max_accuracy_drop_is_half_a_point():
    assert DEFAULT_MAX_ACCURACY_DROP == 0.005


@pytest.mark.parametrize("mode", ["float32", "int8"])
def test_accuracy_figures_match_a_hand_computation(trained, tiny_images, tmp_path, mode):
    model, _ = trained
    x_train, _, x_test, y_test = tiny_images
    # 30 samples: one flipped prediction is 3.3 points, over the default limit;
    # this test checks the figures, not the limit.
    result = export_tflite(
        model, tmp_path / f"{mode}.tflite", mode, representative_data=x_train,
        verify_data=x_test, verify_labels=y_test, max_accuracy_drop=0.2,
    )
    keras_accuracy = _accuracy(model.predict(x_test, verbose=0), y_test)
    tflite_accuracy = _accuracy(TFLiteRunner(result.path).predict(x_test), y_test)
    assert keras_accuracy >= 0.9
    assert result.keras_accuracy == keras_accuracy
    assert result.tflite_accuracy == tflite_accuracy
    assert result.verify_samples == 30
    as_dict = result.to_dict()
    assert as_dict["keras_accuracy"] == keras_accuracy
    assert as_dict["tflite_accuracy"] == tflite_accuracy
    assert as_dict["verify_samples"] == 30
    if mode == "float32":
        assert result.tflite_accuracy == result.keras_accuracy


def test_column_labels_are_accepted_with_the_default_limit(trained, tiny_images, tmp_path):
    model, _ = trained
    x_test, y_test = tiny_images[2], tiny_images[3]
    result = export_tflite(
        model, tmp_path / "m.tflite", verify_data=x_test, verify_labels=y_test[:, None]
    )
    assert result.keras_accuracy == result.tflite_accuracy == _accuracy(
        model.predict(x_test, verbose=0), y_test
    )


@pytest.fixture
def tflite_outputs(monkeypatch):
    """Replace the TFLite model's outputs: ``outputs.change = f(real outputs) -> outputs``."""

    class Patch:
        change = staticmethod(lambda out: out)
        returned: list[np.ndarray] = []

    real = _verification._tflite_outputs

    def patched(tflite_model, x):
        out = np.asarray(Patch.change(real(tflite_model, x)), dtype="float32")
        Patch.returned.append(out)
        return out

    monkeypatch.setattr(_verification, "_tflite_outputs", patched)
    return Patch


# Only the accuracy is checked: outputs may differ and top-1 classes disagree.
_ACCURACY_ONLY = {"tolerance": math.inf, "min_top1_agreement": 0.0}


def test_accuracy_drop_fails_and_writes_nothing(trained, tiny_images, tmp_path, tflite_outputs):
    model, _ = trained
    x_test, y_test = tiny_images[2], tiny_images[3]
    # Every TFLite prediction moves to the next class.
    tflite_outputs.change = lambda out: np.roll(out, 1, axis=1)
    path = tmp_path / "m.tflite"
    with pytest.raises(ExportVerificationError) as info:
        export_tflite(model, path, verify_data=x_test, verify_labels=y_test, **_ACCURACY_ONLY)
    error = info.value
    keras_accuracy = _accuracy(model.predict(x_test, verbose=0), y_test)
    tflite_accuracy = _accuracy(tflite_outputs.returned[-1], y_test)
    assert keras_accuracy >= 0.9 and tflite_accuracy <= 0.1
    assert error.keras_accuracy == keras_accuracy
    assert error.tflite_accuracy == tflite_accuracy
    assert error.max_accuracy_drop == DEFAULT_MAX_ACCURACY_DROP
    assert error.verify_samples == 30
    assert error.top1_agreement == 0.0
    drop = f"{100 * (keras_accuracy - tflite_accuracy):.3g}"
    message = str(error)
    assert message.startswith(
        f"float32 export failed verification on 30 samples: accuracy "
        f"{100 * tflite_accuracy:.1f} % vs {100 * keras_accuracy:.1f} % in Keras "
        f"(drop {drop} pt > 0.5 pt allowed); max abs difference"
    )
    assert f"The file was not written to '{path}'." in message
    assert "Pass a larger `max_accuracy_drop`, better `representative_data`" in message
    assert "`tolerance`" not in message
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []
    figures = error.to_dict()
    assert figures == {
        "mode": "float32",
        "verify_samples": 30,
        "max_abs_diff": error.max_abs_diff,
        "tolerance": math.inf,
        "top1_agreement": 0.0,
        "min_top1_agreement": 0.0,
        "keras_accuracy": keras_accuracy,
        "tflite_accuracy": tflite_accuracy,
        "max_accuracy_drop": 0.005,
    }


def test_more_accurate_tflite_passes(trained, tiny_images, tmp_path, tflite_outputs):
    model, _ = trained
    x_test, labels = tiny_images[2], tiny_images[3].copy()
    labels[:5] = (labels[:5] + 1) % 3  # Keras gets these 5 wrong
    tflite_outputs.change = lambda out: np.eye(3, dtype="float32")[labels]
    result = export_tflite(
        model, tmp_path / "m.tflite", verify_data=x_test, verify_labels=labels,
        max_accuracy_drop=0.0, **_ACCURACY_ONLY,
    )
    assert result.tflite_accuracy == 1.0
    assert result.keras_accuracy == _accuracy(model.predict(x_test, verbose=0), labels) <= 25 / 30
    assert result.path.is_file()


@pytest.mark.parametrize(("flipped", "fails"), [(3, False), (4, True)])
def test_a_drop_of_exactly_the_limit_passes(
    trained, tiny_images, tmp_path, tflite_outputs, flipped, fails
):
    model, _ = trained
    x_test, y_test = tiny_images[2], tiny_images[3]
    right = np.flatnonzero(model.predict(x_test, verbose=0).argmax(axis=1) == y_test)

    def flip(out):
        out = out.copy()
        out[right[:flipped]] = np.roll(out[right[:flipped]], 1, axis=1)
        return out

    tflite_outputs.change = flip
    # 3 samples in 30 is exactly 0.1: counted, not subtracted as floats.
    kwargs = dict(verify_data=x_test, verify_labels=y_test, max_accuracy_drop=0.1)
    if fails:
        with pytest.raises(ExportVerificationError, match=r"\(drop 13\.3 pt > 10 pt allowed\)"):
            export_tflite(model, tmp_path / "m.tflite", **kwargs, **_ACCURACY_ONLY)
    else:
        result = export_tflite(model, tmp_path / "m.tflite", **kwargs, **_ACCURACY_ONLY)
        assert result.keras_accuracy - result.tflite_accuracy == pytest.approx(0.1)


def test_output_failure_message_also_gives_the_accuracy(trained, tiny_images, tmp_path):
    model, _ = trained
    x_test, y_test = tiny_images[2], tiny_images[3]
    with pytest.raises(ExportVerificationError) as info:
        export_tflite(
            model, tmp_path / "m.tflite", "float16", verify_data=x_test, verify_labels=y_test,
            tolerance=0.0,
        )
    error = info.value
    assert error.keras_accuracy == error.tflite_accuracy  # float16 flips no prediction here
    message = str(error)
    assert "; accuracy " in message and " in Keras (no drop, limit 0.5 pt)" in message
    assert "`max_accuracy_drop`" not in message


def test_error_keeps_its_old_constructor():
    error = ExportVerificationError(
        "int8 export failed verification (test)", mode="int8", max_abs_diff=0.9,
        tolerance=0.15, top1_agreement=0.1, min_top1_agreement=0.9,
    )
    assert error.keras_accuracy is None and error.verify_samples is None
    assert error.to_dict()["max_abs_diff"] == 0.9
    assert json.loads(json.dumps(error.to_dict()))["max_accuracy_drop"] is None


_DATA = np.zeros((64, 8, 8, 1), "float32")
_LABELS = np.arange(64) % 3


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"verify_labels": _LABELS},
            r"Received: verify_labels with verify_data=None; expected verify_data too",
        ),
        (
            {"verify_labels": _LABELS, "representative_data": _DATA},
            r"Received: verify_labels with verify_data=None",
        ),
        (
            {"verify_data": _DATA, "verify_labels": _LABELS[:10]},
            r"^Received: verify_labels with 10 labels; expected 64, one per verify_data "
            r"sample\.$",
        ),
        (
            {"verify_data": _DATA, "verify_labels": _LABELS.astype("float32")},
            r"Received: verify_labels with shape \(64,\) and dtype float32; expected integer "
            r"class labels of shape \(n,\)",
        ),
        (
            {"verify_data": _DATA, "verify_labels": np.eye(3, dtype="int64")[_LABELS]},
            r"with shape \(64, 3\) and dtype int64; .*one-hot labels, pass "
            r"labels\.argmax\(axis=1\)",
        ),
        (
            {"verify_data": _DATA, "verify_labels": _LABELS == 1},
            r"dtype bool; expected integer class labels",
        ),
        (
            {"verify_data": _DATA, "verify_labels": _LABELS - 1},
            r"Received: verify_labels with the label -1; expected class indices in \[0, 2\] "
            r"for a model with 3 classes\.",
        ),
        (
            {"verify_data": _DATA, "verify_labels": _LABELS + 1},
            r"Received: verify_labels with the label 3; expected class indices in \[0, 2\]",
        ),
        (
            {"max_accuracy_drop": 1.0},
            r"Received: max_accuracy_drop=1\.0; expected a fraction in \[0, 1\) \(0\.005 allows "
            r"half a percentage point\)\.",
        ),
        ({"max_accuracy_drop": -0.01}, r"Received: max_accuracy_drop=-0\.01; expected a fraction"),
        ({"max_accuracy_drop": "0.5%"}, r"Received: max_accuracy_drop='0\.5%'; expected"),
        ({"max_accuracy_drop": True}, r"Received: max_accuracy_drop=True; expected"),
        ({"max_accuracy_drop": float("nan")}, r"Received: max_accuracy_drop=nan; expected"),
    ],
)
def test_label_and_drop_errors(trained, tmp_path, no_conversion, kwargs, match):
    with pytest.raises(ValueError, match=match):
        export_tflite(trained[0], tmp_path / "m.tflite", **kwargs)
    assert not (tmp_path / "m.tflite").exists()


# --- verify="sanity": only a broken export fails -------------------------------------------


def _flip_right(model, x_test, y_test, count):
    """A `tflite_outputs.change` moving the first ``count`` right predictions to a wrong class."""
    right = np.flatnonzero(model.predict(x_test, verbose=0).argmax(axis=1) == y_test)
    assert len(right) >= count

    def flip(out):
        out = out.copy()
        out[right[:count]] = np.roll(out[right[:count]], 1, axis=1)
        return out

    return flip


def test_sanity_passes_a_lossy_export_that_strict_refuses(
    trained, tiny_images, tmp_path, tflite_outputs
):
    model, _ = trained
    x_test, y_test = tiny_images[2], tiny_images[3]
    # 2 of 30 predictions lost: 93.3 % agreement, a 6.7-point drop, outputs 0.5+ apart.
    tflite_outputs.change = _flip_right(model, x_test, y_test, 2)
    kwargs = dict(verify_data=x_test, verify_labels=y_test)
    with pytest.raises(ExportVerificationError, match=r"^float32 export failed verification"):
        export_tflite(model, tmp_path / "strict.tflite", **kwargs)
    assert not (tmp_path / "strict.tflite").exists()

    result = export_tflite(model, tmp_path / "m.tflite", verify="sanity", **kwargs)
    keras_accuracy = _accuracy(model.predict(x_test, verbose=0), y_test)
    assert result.path.is_file()
    assert result.verify == "sanity"
    assert result.top1_agreement == pytest.approx(28 / 30)
    assert result.keras_accuracy == keras_accuracy
    assert result.tflite_accuracy == pytest.approx(keras_accuracy - 2 / 30)
    assert result.max_abs_diff > DEFAULT_TOLERANCES["float32"]
    assert result.to_dict()["verify"] == "sanity"


def test_sanity_fails_under_90_percent_agreement(trained, tiny_images, tmp_path, tflite_outputs):
    model, _ = trained
    x_test, y_test = tiny_images[2], tiny_images[3]
    tflite_outputs.change = _flip_right(model, x_test, y_test, 4)  # 26/30 = 86.7 % agreement
    path = tmp_path / "m.tflite"
    with pytest.raises(ExportVerificationError) as info:
        export_tflite(model, path, "dynamic", verify_data=x_test, verify_labels=y_test,
                      verify="sanity")
    error = info.value
    assert error.verify == "sanity"
    assert error.top1_agreement == pytest.approx(26 / 30)
    assert error.min_top1_agreement == _verification.SANITY_MIN_TOP1_AGREEMENT == 0.9
    assert error.tolerance == math.inf and error.max_accuracy_drop is None
    keras_accuracy = _accuracy(model.predict(x_test, verbose=0), y_test)
    message = str(error)
    assert message.startswith(
        "dynamic export failed its sanity check on 30 samples: top-1 agreement is 86.7% "
        f"(minimum 90.0%); accuracy {100 * (keras_accuracy - 4 / 30):.1f} % vs "
        f"{100 * keras_accuracy:.1f} % in Keras; max abs difference "
    )
    assert "\n" not in message
    assert "Pass a lower `min_top1_agreement`, better `representative_data`" in message
    assert "`tolerance`" not in message and "`max_accuracy_drop`" not in message
    assert not path.exists()
    # An explicit minimum replaces the 90 %.
    result = export_tflite(model, path, "dynamic", verify_data=x_test, verify="sanity",
                           min_top1_agreement=0.8)
    assert result.top1_agreement == pytest.approx(26 / 30)


def test_sanity_passes_disagreement_that_costs_no_accuracy(trained, tiny_images, tmp_path,
                                                           tflite_outputs):
    # A weak model: 4 of 30 top-1 classes differ (86.7 % agreement), but on samples both the
    # model and its file get wrong, so the file is no worse: a lossy copy, not a broken one.
    model, _ = trained
    x_test, y_test = tiny_images[2], tiny_images[3].copy()
    tflite_outputs.change = _flip_right(model, x_test, y_test, 4)
    right = np.flatnonzero(model.predict(x_test, verbose=0).argmax(axis=1) == y_test)[:4]
    y_test[right] = (y_test[right] + 2) % 3  # neither the model's class nor the file's
    result = export_tflite(model, tmp_path / "m.tflite", "dynamic", verify_data=x_test,
                           verify_labels=y_test, verify="sanity")
    assert result.top1_agreement == pytest.approx(26 / 30)
    assert result.tflite_accuracy == result.keras_accuracy
    assert _verification.SANITY_MAX_ACCURACY_DROP == 0.05
    # Without labels nothing says the file is no worse: the agreement rule stands.
    with pytest.raises(ExportVerificationError, match=r"top-1 agreement is 86.7%"):
        export_tflite(model, tmp_path / "n.tflite", "dynamic", verify_data=x_test,
                      verify="sanity")


@pytest.mark.parametrize("verify", ["strict", "sanity"])
def test_non_finite_outputs_fail_every_policy(
    trained, tiny_images, tmp_path, tflite_outputs, verify
):
    def poison(out):
        out = out.copy()
        out[3, 1] = np.nan
        return out

    tflite_outputs.change = poison
    with pytest.raises(ExportVerificationError,
                       match=r"on 30 samples: 1 of the 90 TFLite output values are NaN or "
                             r"infinite; ") as info:
        export_tflite(trained[0], tmp_path / "m.tflite", verify_data=tiny_images[2],
                      verify=verify)
    assert "`tolerance`" not in str(info.value)
    assert not (tmp_path / "m.tflite").exists()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"verify": "lenient"}, r"^Received: verify='lenient'; expected 'strict' \(outputs "
                                r"within `tolerance`, .*\) or 'sanity' \(only a broken export"),
        ({"verify": None}, r"^Received: verify=None; expected 'strict'"),
        ({"verify": "sanity", "tolerance": 0.1},
         r"^Received: tolerance=0\.1 with verify='sanity'; expected tolerance=None: a sanity "
         r"check measures the figure tolerance limits but does not check it \(pass "
         r"verify='strict' to check it\)\.$"),
        ({"verify": "sanity", "max_accuracy_drop": 0.01},
         r"^Received: max_accuracy_drop=0\.01 with verify='sanity'; expected "
         r"max_accuracy_drop=None"),
        ({"verify": "sanity", "min_top1_agreement": 1.5},
         r"^Received: min_top1_agreement=1\.5; expected a number in \[0, 1\.0\]\."),
    ],
)
def test_verify_errors(trained, tmp_path, no_conversion, kwargs, match):
    with pytest.raises(ValueError, match=match):
        export_tflite(trained[0], tmp_path / "m.tflite", **kwargs)
    assert not (tmp_path / "m.tflite").exists()
