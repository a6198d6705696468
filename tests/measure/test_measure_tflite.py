"""TFLiteRunner and measure_tflite: LiteRT outputs, metrics, argument errors."""

from __future__ import annotations

import dataclasses
import gzip
import json

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

from keras_autoopt._backend import keras
from keras_autoopt.export import export_tflite
from keras_autoopt.measure import (
    MIN_LATENCY_RUNS,
    TFLiteRunner,
    measure_tflite,
    top1_labels,
)
from keras_autoopt.measure._litert import _dequantize, _quantize
from keras_autoopt.measure._measure import classification_figures


@pytest.fixture(scope="module")
def files(tiny_images, make_tiny_classifier, tmp_path_factory):
    """A small trained classifier and its float32 and int8 files."""
    keras.utils.set_random_seed(0)
    x_train, y_train, _, _ = tiny_images
    model = make_tiny_classifier()
    model.compile(keras.optimizers.Adam(0.05), "sparse_categorical_crossentropy")
    model.fit(x_train, y_train, epochs=3, batch_size=16, verbose=0)
    folder = tmp_path_factory.mktemp("measure")
    files = {"model": model}
    for mode in ("float32", "int8"):
        files[mode] = export_tflite(
            model, folder / f"{mode}.tflite", mode, representative_data=x_train
        ).path
    return files


def test_runner_from_path_and_bytes_agree_with_keras(files, tiny_images):
    x_test = tiny_images[2]
    expected = files["model"].predict(x_test, verbose=0)
    from_path = TFLiteRunner(files["float32"]).predict(x_test)
    from_bytes = TFLiteRunner(files["float32"].read_bytes()).predict(x_test)
    assert from_path.dtype == np.float32
    assert from_path.shape == expected.shape == (30, 3)
    np.testing.assert_array_equal(from_path, from_bytes)
    np.testing.assert_allclose(from_path, expected, atol=1e-5)


def test_runner_batches_match_single_samples(files, tiny_images):
    x_test = tiny_images[2]
    runner = TFLiteRunner(files["float32"])
    single = runner.predict(x_test)
    np.testing.assert_allclose(runner.predict(x_test, batch_size=7), single, atol=1e-6)
    # Back to one sample after a resize.
    np.testing.assert_allclose(runner.predict(x_test[:1]), single[:1], atol=1e-6)
    assert runner.predict(x_test[:0]).shape == (0, 3)


def test_runner_quantizes_int8_inputs_and_dequantizes_outputs(files, tiny_images):
    x_test = tiny_images[2]
    runner = TFLiteRunner(files["int8"])
    assert runner.input_details[0]["dtype"] == np.int8
    out = runner.predict(x_test)
    assert out.dtype == np.float32
    assert np.all((out >= 0.0) & (out <= 1.0))
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=0.05)
    np.testing.assert_allclose(out, files["model"].predict(x_test, verbose=0), atol=0.15)


def test_quantize_rounds_clips_and_round_trips():
    detail = {"dtype": np.int8, "quantization": (0.5, -10)}
    q = _quantize(np.array([0.0, 1.0, 1.2, 1000.0, -1000.0]), detail)
    np.testing.assert_array_equal(q, np.array([-10, -8, -8, 127, -128], dtype=np.int8))
    np.testing.assert_allclose(_dequantize(q, detail), [0.0, 1.0, 1.0, 68.5, -59.0])
    float_detail = {"dtype": np.float32, "quantization": (0.0, 0)}
    assert _quantize(np.array([1.5]), float_detail).dtype == np.float32


def test_top1_labels():
    np.testing.assert_array_equal(top1_labels(np.array([[0.1, 0.7, 0.2], [0.5, 0.2, 0.3]])), [1, 0])
    np.testing.assert_array_equal(top1_labels(np.array([[0.2], [0.9]])), [0, 1])
    np.testing.assert_array_equal(top1_labels(np.array([0.2, 0.9])), [0, 1])


def _interpreter_predict(path, x):
    """The file's outputs from LiteRT's bare interpreter, one sample at a time.

    Quantizes int8 inputs and dequantizes int8 outputs by hand (real = scale *
    (q - zero_point)), as an independent reference for `TFLiteRunner`.
    """
    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
    rows = []
    for sample in x:
        value = sample[None].astype("float32")
        if inp["dtype"] == np.int8:
            scale, zero = inp["quantization"]
            value = np.clip(np.round(value / scale) + zero, -128, 127).astype(np.int8)
        interpreter.set_tensor(inp["index"], value)
        interpreter.invoke()
        result = interpreter.get_tensor(out["index"])[0]
        if out["dtype"] == np.int8:
            scale, zero = out["quantization"]
            result = scale * (result.astype("float32") - zero)
        rows.append(result)
    return np.array(rows, dtype="float32")


def test_runner_agrees_with_the_bare_interpreter(files, tiny_images):
    x_test = tiny_images[2]
    for mode in ("float32", "int8"):
        np.testing.assert_allclose(
            TFLiteRunner(files[mode]).predict(x_test),
            _interpreter_predict(files[mode], x_test), atol=1e-6, err_msg=mode)


@pytest.mark.parametrize("mode", ["float32", "int8"])
def test_measure_tflite(files, tiny_images, mode):
    _, _, x_test, y_test = tiny_images
    path = files[mode]
    metrics = measure_tflite(path, x_test, y_test, latency_runs=60, warmup_runs=2)
    data = path.read_bytes()
    assert metrics.size_bytes == len(data)
    assert metrics.gzip_bytes == len(gzip.compress(data, compresslevel=9, mtime=0))
    assert metrics.gzip_bytes <= metrics.size_bytes + 64
    # The accuracy of the file, run here without `TFLiteRunner`.
    expected = np.mean(_interpreter_predict(path, x_test).argmax(axis=1) == y_test)
    assert metrics.accuracy == pytest.approx(expected)
    keras_accuracy = np.mean(files["model"].predict(x_test, verbose=0).argmax(axis=1) == y_test)
    assert abs(metrics.accuracy - keras_accuracy) <= 0.07
    assert metrics.latency_us_median > 0
    assert metrics.latency_runs == 60
    record = json.loads(json.dumps(metrics.to_dict()))
    assert set(record) == {
        "size_bytes",
        "gzip_bytes",
        "accuracy",
        "latency_us_median",
        "latency_runs",
        "precision_macro",
        "recall_macro",
        "f1_macro",
        "confusion",
    }
    assert record["confusion"] == metrics.confusion
    with pytest.raises(dataclasses.FrozenInstanceError):
        metrics.accuracy = 1.0


def _macro_by_hand(confusion):
    """Macro precision, recall, F1 over the classes present, computed from the matrix alone."""
    matrix = np.asarray(confusion, dtype=float)
    true_counts, predicted_counts = matrix.sum(axis=1), matrix.sum(axis=0)
    present = (true_counts > 0) | (predicted_counts > 0)
    precision, recall, f1 = [], [], []
    for k in np.flatnonzero(present):
        hits = matrix[k, k]
        p = hits / predicted_counts[k] if predicted_counts[k] else 0.0
        r = hits / true_counts[k] if true_counts[k] else 0.0
        precision.append(p)
        recall.append(r)
        f1.append(2 * p * r / (p + r) if p + r else 0.0)
    return np.mean(precision), np.mean(recall), np.mean(f1)


@pytest.mark.parametrize("mode", ["float32", "int8"])
def test_measure_tflite_quality_figures(files, tiny_images, mode):
    _, _, x_test, y_test = tiny_images
    # Relabel every third sample so that the figures are not all 1.
    y_noisy = y_test.copy()
    y_noisy[::3] = (y_noisy[::3] + 1) % 3
    metrics = measure_tflite(files[mode], x_test, y_noisy, latency_runs=50, warmup_runs=0)
    predicted = _interpreter_predict(files[mode], x_test).argmax(axis=1)
    # The confusion matrix counted here, independently of measure_tflite.
    expected = np.zeros((3, 3), dtype=int)
    for true, guess in zip(y_noisy, predicted, strict=True):
        expected[true, guess] += 1
    assert metrics.confusion == expected.tolist()
    assert all(type(count) is int for row in metrics.confusion for count in row)
    assert sum(map(sum, metrics.confusion)) == len(y_noisy)
    diagonal = sum(metrics.confusion[k][k] for k in range(3))
    assert diagonal / len(y_noisy) == pytest.approx(metrics.accuracy)
    assert metrics.accuracy < 1.0
    precision, recall, f1 = _macro_by_hand(expected)
    assert metrics.precision_macro == pytest.approx(precision)
    assert metrics.recall_macro == pytest.approx(recall)
    assert metrics.f1_macro == pytest.approx(f1)
    assert 0.0 < metrics.f1_macro < 1.0


def test_classification_figures_by_hand():
    # Class 3 is in neither the labels nor the predictions: it has a row and a
    # column of zeros but does not enter the macro averages.
    figures = classification_figures(np.array([0, 0, 1, 1, 2, 2]),
                                     np.array([0, 1, 1, 1, 0, 2]), classes=4)
    assert figures["confusion"] == [[1, 1, 0, 0], [0, 2, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]]
    # Per class (precision, recall, F1): (1/2, 1/2, 1/2), (2/3, 1, 4/5), (1, 1/2, 2/3).
    assert figures["precision_macro"] == pytest.approx((1 / 2 + 2 / 3 + 1) / 3)
    assert figures["recall_macro"] == pytest.approx((1 / 2 + 1 + 1 / 2) / 3)
    assert figures["f1_macro"] == pytest.approx((1 / 2 + 4 / 5 + 2 / 3) / 3)


def test_classification_figures_count_never_predicted_classes_as_zero():
    # Classes 1 and 2 are never predicted: precision 0 (not undefined), recall 0.
    figures = classification_figures(np.array([0, 1, 2]), np.array([0, 0, 0]), classes=3)
    assert figures["precision_macro"] == pytest.approx((1 / 3 + 0 + 0) / 3)
    assert figures["recall_macro"] == pytest.approx((1 + 0 + 0) / 3)
    assert figures["f1_macro"] == pytest.approx((1 / 2 + 0 + 0) / 3)
    assert figures["confusion"] == [[1, 0, 0], [1, 0, 0], [1, 0, 0]]


def test_sigmoid_model_has_a_two_by_two_confusion_matrix(tmp_path):
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).normal(size=(40, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, activation="sigmoid")])
    path = export_tflite(model, tmp_path / "sigmoid.tflite", "float32").path
    metrics = measure_tflite(path, x, y, latency_runs=50, warmup_runs=0)
    scores = model.predict(x, verbose=0).reshape(-1)
    expected = np.zeros((2, 2), dtype=int)
    for true, guess in zip(y, (scores > 0.5).astype(int), strict=True):
        expected[true, guess] += 1
    assert metrics.confusion == expected.tolist()
    assert metrics.f1_macro == pytest.approx(_macro_by_hand(expected)[2])


def test_measure_defaults(files, tiny_images):
    _, _, x_test, y_test = tiny_images
    metrics = measure_tflite(files["float32"], x_test, y_test)
    assert metrics.latency_runs == 100 >= MIN_LATENCY_RUNS


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"latency_runs": 10}, r"Received: latency_runs=10; expected an integer >= 50\."),
        ({"latency_runs": 60.0}, r"Received: latency_runs=60\.0; expected an integer >= 50\."),
        ({"warmup_runs": -1}, r"Received: warmup_runs=-1; expected an integer >= 0\."),
        ({"num_threads": 0}, r"Received: num_threads=0; expected a positive integer\."),
        ({"num_threads": True}, r"Received: num_threads=True; expected a positive integer\."),
    ],
)
def test_measure_argument_errors(files, tiny_images, kwargs, match):
    _, _, x_test, y_test = tiny_images
    with pytest.raises(ValueError, match=match):
        measure_tflite(files["float32"], x_test, y_test, **kwargs)


def test_measure_missing_file(tmp_path, tiny_images):
    _, _, x_test, y_test = tiny_images
    missing = tmp_path / "nope.tflite"
    with pytest.raises(FileNotFoundError, match=r"Received: path='.*nope\.tflite'; expected"):
        measure_tflite(missing, x_test, y_test)


@pytest.mark.parametrize(
    ("x_slice", "y_transform", "match"),
    [
        (
            slice(None),
            lambda y: y[:-1],
            r"Received: x_test with 30 samples and y_test with 29 labels; expected the same",
        ),
        (
            slice(None),
            lambda y: np.eye(3)[y],
            r"Received: y_test with shape \(30, 3\) .*expected integer class labels",
        ),
        (
            slice(0, 0),
            lambda y: y[:0],
            r"Received: x_test with shape \(0, 8, 8, 1\); expected at least one sample",
        ),
    ],
)
def test_measure_test_set_errors(files, tiny_images, x_slice, y_transform, match):
    _, _, x_test, y_test = tiny_images
    with pytest.raises(ValueError, match=match):
        measure_tflite(files["float32"], x_test[x_slice], y_transform(y_test))


def test_measure_wrong_input_shape(files, tiny_images):
    _, _, x_test, y_test = tiny_images
    with pytest.raises(ValueError, match=r"Received: x with shape \(30, 8, 8\); expected shape"):
        measure_tflite(files["float32"], x_test[..., 0], y_test)


def test_runner_argument_errors(tmp_path, files):
    with pytest.raises(FileNotFoundError, match=r"Received: model='.*missing\.tflite'"):
        TFLiteRunner(tmp_path / "missing.tflite")
    with pytest.raises(TypeError, match=r"Received: model of type int; expected a path"):
        TFLiteRunner(3)
    with pytest.raises(ValueError, match=r"Received: num_threads=0; expected a positive integer"):
        TFLiteRunner(files["float32"], num_threads=0)
    with pytest.raises(ValueError, match=r"Received: batch_size=0; expected a positive integer"):
        TFLiteRunner(files["float32"]).predict(np.zeros((2, 8, 8, 1)), batch_size=0)
