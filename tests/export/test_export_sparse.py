"""TFLite's sparse-tensor encoding of pruned weights (issue 13): sparse=False, True, "auto"."""

from __future__ import annotations

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

from keras_autoopt._backend import keras, tf, tfmot
from keras_autoopt.export import (
    SPARSE_MIN_SPEEDUP,
    _sparse,
    _tflite,
    export_for_target,
    export_tflite,
)
from keras_autoopt.measure import operator_counts
from keras_autoopt.targets import TARGETS

LAYERS = keras.layers
# int8 exports of a model with 90 % of its weights zeroed at random: only the sparse
# encoding is under test, not how well such a model survives quantization.
LENIENT = {"tolerance": 1.0, "min_top1_agreement": 0.0, "max_accuracy_drop": 0.99}


def _cnn() -> keras.Model:
    return keras.Sequential([
        LAYERS.Input((8, 8, 1)),
        LAYERS.Conv2D(8, 3, activation="relu"),
        LAYERS.Flatten(),
        LAYERS.Dense(32, activation="relu"),
        LAYERS.Dense(3, activation="softmax"),
    ])


@pytest.fixture(scope="module")
def dense_model(tiny_images):
    """The small CNN trained 3 epochs on the tiny images: no zero weights."""
    keras.utils.set_random_seed(0)
    x_train, y_train, _, _ = tiny_images
    model = _cnn()
    model.compile(keras.optimizers.Adam(0.02), "sparse_categorical_crossentropy")
    model.fit(x_train, y_train, epochs=3, batch_size=16, verbose=0)
    return model


@pytest.fixture(scope="module")
def pruned_model(dense_model):
    """A copy of the trained CNN with 90 % of every kernel set to zero (a fixed random mask)."""
    model = _cnn()
    rng = np.random.default_rng(0)
    model.set_weights([w * (rng.random(w.shape) >= 0.9) if w.ndim > 1 else w
                       for w in dense_model.get_weights()])
    return model


@pytest.fixture(scope="module")
def block_pruned_model():
    """An MLP whose Dense kernels keep 10 % of their 4x1 blocks (4 inputs of one unit).

    TFLite stores a Dense kernel transposed (units, inputs): these are its 1x4 blocks, which
    LiteRT's FULLY_CONNECTED runs with sparse kernels instead of densifying them.
    """
    keras.utils.set_random_seed(0)
    model = keras.Sequential([LAYERS.Input((8, 8, 1)), LAYERS.Flatten(),
                              LAYERS.Dense(32, activation="relu"),
                              LAYERS.Dense(3, activation="softmax")])
    rng = np.random.default_rng(0)
    model.set_weights([
        w * np.repeat(rng.random((w.shape[0] // 4, w.shape[1])) >= 0.9, 4, axis=0)
        if w.ndim > 1 else w for w in model.get_weights()])
    return model


def _run_litert(path, x) -> np.ndarray:
    """The file's outputs on ``x``, one sample at a time, straight from the LiteRT interpreter."""
    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
    outputs = []
    for sample in x:
        interpreter.set_tensor(inp["index"], sample[np.newaxis].astype(np.float32))
        interpreter.invoke()
        outputs.append(interpreter.get_tensor(out["index"]).copy())
    return np.concatenate(outputs)


def _no_conversion(*args, **kwargs):
    raise AssertionError("converted")


@pytest.mark.parametrize("mode", ["float32", "float16"])
def test_sparse_file_is_smaller_and_computes_the_dense_files_outputs(pruned_model, tiny_images,
                                                                     tmp_path, mode):
    x_train, _, x_test, _ = tiny_images
    dense = export_tflite(pruned_model, tmp_path / "dense.tflite", mode, verify_data=x_test)
    sparse = export_tflite(pruned_model, tmp_path / "sparse.tflite", mode, verify_data=x_test,
                           sparse=True)
    assert sparse.path.stat().st_size < dense.path.stat().st_size / 2
    assert (dense.sparse_encoding, sparse.sparse_encoding) == (False, True)
    assert dense.sparse_reason is None
    assert sparse.sparse_reason == "forced: 3 tensor(s) stored sparse (sparse=True)"
    # The converter decodes unstructured sparse weights at load, before each consumer.
    assert operator_counts(sparse.path).get("DENSIFY") == 3
    assert "DENSIFY" not in operator_counts(dense.path)
    np.testing.assert_allclose(_run_litert(sparse.path, x_test), _run_litert(dense.path, x_test),
                               atol=1e-6)
    # And both compute what the Keras model computes.
    np.testing.assert_allclose(_run_litert(sparse.path, x_test),
                               pruned_model.predict(x_test, verbose=0),
                               atol=1e-5 if mode == "float32" else 1e-2)


def test_sparse_false_keeps_todays_bytes(pruned_model, tmp_path):
    result = export_tflite(pruned_model, tmp_path / "m.tflite")
    assert result.path.read_bytes() == tf.lite.TFLiteConverter.from_keras_model(
        pruned_model).convert()
    assert (result.sparse_encoding, result.dense_size_bytes, result.sparse_reason) == (
        False, None, None)


def test_auto_keeps_the_smaller_sparse_file_and_says_why(pruned_model, tiny_images, tmp_path):
    _, _, x_test, _ = tiny_images
    dense_bytes = export_tflite(pruned_model, tmp_path / "dense.tflite").size_bytes
    result = export_tflite(pruned_model, tmp_path / "auto.tflite", verify_data=x_test,
                           sparse="auto")
    assert result.sparse_encoding is True
    assert result.dense_size_bytes == dense_bytes
    assert result.size_bytes == result.path.stat().st_size < dense_bytes
    saved = 1 - result.size_bytes / dense_bytes
    assert result.sparse_reason.startswith(
        f"kept: {100 * saved:.0f} % smaller ({result.size_bytes:,} vs {dense_bytes:,} bytes); "
        "latency ")
    assert "medians of 200 runs each" in result.sparse_reason
    assert result.top1_agreement == 1.0  # verified as always
    record = result.to_dict()
    assert (record["sparse_encoding"], record["dense_size_bytes"]) == (True, dense_bytes)
    assert record["sparse_reason"] == result.sparse_reason


def test_auto_on_an_unpruned_model_converts_once_and_says_not_tried(dense_model, tmp_path,
                                                                    monkeypatch):
    calls = []
    convert = _tflite._convert
    monkeypatch.setattr(_tflite, "_convert",
                        lambda *args, **kwargs: calls.append(kwargs) or convert(*args, **kwargs))
    result = export_tflite(dense_model, tmp_path / "m.tflite", sparse="auto")
    assert calls == [{}]  # one dense conversion, no sparse one
    assert result.sparse_encoding is False and result.dense_size_bytes is None
    assert result.sparse_reason.startswith("not tried: no weight tensor is sparse (at most 0 % ")
    assert result.path.read_bytes() == tf.lite.TFLiteConverter.from_keras_model(
        dense_model).convert()


def test_int8_is_not_tried_by_auto_and_a_sparse_file_litert_cannot_load_is_refused(
        pruned_model, tiny_images, tmp_path, monkeypatch):
    x_train, *_ = tiny_images
    calls = []
    convert = _tflite._convert
    with monkeypatch.context() as patch:
        patch.setattr(_tflite, "_convert",
                      lambda *args, **kwargs: calls.append(kwargs) or convert(*args, **kwargs))
        auto = export_tflite(pruned_model, tmp_path / "auto.tflite", "int8",
                             representative_data=x_train, sparse="auto", **LENIENT)
    assert calls == [{}]
    assert auto.sparse_encoding is False and auto.dense_size_bytes is None
    assert auto.sparse_reason.startswith("not tried: LiteRT's XNNPACK delegate refuses int8 "
                                         "models whose sparse weights are densified at load")
    # Why: XNNPACK refuses the DENSIFY of int8 weights, and "auto" would reject the file.
    with pytest.raises(ValueError, match=r"Received: sparse=True with mode='int8'; the sparse "
                                         r"file does not work under LiteRT \(failed to delegate"):
        export_tflite(pruned_model, tmp_path / "forced.tflite", "int8",
                      representative_data=x_train, sparse=True, **LENIENT)
    assert not (tmp_path / "forced.tflite").exists()
    calibration = x_train[:20]
    sparse = convert(pruned_model, "int8", calibration, sparse=True)
    dense = convert(pruned_model, "int8", calibration)
    assert operator_counts(sparse)["DENSIFY"] == 3
    keep, reason = _sparse._choose(dense, sparse, x_train[:4], 0.15)
    assert not keep
    assert reason.startswith("rejected: LiteRT cannot load the sparse file (failed to delegate ")


def test_dynamic_mode_is_never_encoded(pruned_model, tmp_path, monkeypatch):
    result = export_tflite(pruned_model, tmp_path / "m.tflite", "dynamic", sparse="auto")
    assert result.sparse_encoding is False and result.dense_size_bytes is None
    assert result.sparse_reason.startswith("not tried: a dynamic-range (hybrid) model")
    monkeypatch.setattr(_tflite, "_convert", _no_conversion)
    with pytest.raises(ValueError, match=r"Received: sparse=True with mode='dynamic'; expected "
                                         r"sparse=False or 'auto'"):
        export_tflite(pruned_model, tmp_path / "other.tflite", "dynamic", sparse=True)


@pytest.mark.parametrize("value", ["yes", "Auto", 1, 0, None, 0.5])
def test_bad_sparse_values_fail_before_converting(pruned_model, tmp_path, monkeypatch, value):
    monkeypatch.setattr(_tflite, "_convert", _no_conversion)
    expected = (rf"Received: sparse={value!r}; expected False \(dense weights\), True "
                r"\(sparse-encoded weights\) or 'auto'")
    with pytest.raises(ValueError, match=expected):
        export_tflite(pruned_model, tmp_path / "m.tflite", sparse=value)
    if value is not None:  # None is export_for_target's default: the target decides
        with pytest.raises(ValueError, match=expected):
            export_for_target(pruned_model, tmp_path / "m.tflite", "host", "float32",
                              sparse=value)
    assert not list(tmp_path.iterdir())


def test_tflm_and_vela_targets_refuse_sparse_and_never_encode(pruned_model, tiny_images,
                                                             tmp_path, monkeypatch):
    x_train, *_ = tiny_images
    for target, why in (("tflm", "TFLite Micro has no sparse kernels"),
                        ("ethos-u55-128", "Vela (Arm Ethos-U) does not compile sparse tensors")):
        result = export_for_target(pruned_model, tmp_path / f"{target}.tflite", target,
                                   representative_data=x_train, sparse="auto", **LENIENT)
        runtime = TARGETS[target].runtime
        assert result.sparse_encoding is False and result.dense_size_bytes is None
        assert result.sparse_reason == f"not tried: target runtime {runtime!r}: {why}"
        assert "DENSIFY" not in operator_counts(result.path)
        with monkeypatch.context() as patch:
            patch.setattr(_tflite, "_convert", _no_conversion)
            with pytest.raises(ValueError) as error:
                export_for_target(pruned_model, tmp_path / "forced.tflite", target,
                                  representative_data=x_train, sparse=True)
        assert str(error.value) == (
            f"Received: sparse=True for target {target!r}; expected False or 'auto': {why}.")
    assert not (tmp_path / "forced.tflite").exists()


@pytest.mark.parametrize("target", ["host", "mobile-cpu"])
def test_litert_targets_encode_pruned_weights_by_default(pruned_model, tmp_path, target):
    result = export_for_target(pruned_model, tmp_path / "m.tflite", target, "float32")
    assert result.sparse_encoding is True
    assert result.sparse_reason.startswith("kept: ")
    assert result.size_bytes < result.dense_size_bytes
    dense = export_for_target(pruned_model, tmp_path / "d.tflite", target, "float32",
                              sparse=False)
    assert dense.sparse_encoding is False and dense.sparse_reason is None
    assert dense.size_bytes == result.dense_size_bytes


@pytest.mark.parametrize(("rounds", "kept"), [
    ([80, 85, 88, 84, 86], True),   # >= 10 % faster in every round
    ([80, 85, 95, 84, 86], False),  # 15 % faster on median, but not in the third round
    ([95, 95, 95, 95, 95], False),
])
def test_auto_keeps_a_file_of_the_same_size_only_if_faster_in_every_round(
        pruned_model, monkeypatch, rounds, kept):
    data = tf.lite.TFLiteConverter.from_keras_model(pruned_model).convert()
    median = float(np.median(rounds))
    timings = ([100.0, median], [[100.0] * 5, [float(r) for r in rounds]])
    monkeypatch.setattr(_sparse, "_median_latencies_us", lambda runners, sample: timings)
    keep, reason = _sparse._choose(data, data, np.zeros((1, 8, 8, 1), np.float32), 1e-4)
    assert keep is kept
    assert (max(rounds) / 100 <= 1 - SPARSE_MIN_SPEEDUP) is kept
    sizes = f"not smaller ({len(data):,} vs {len(data):,} bytes)"
    latency = f"latency {median / 100:.2f}x the dense file's ({median:.1f} vs 100.0 us, "
    if kept:
        assert reason.startswith(f"kept: {100 - median:.0f} % faster, {latency}")
        assert reason.endswith(sizes)
    else:
        assert reason.startswith(f"rejected: {sizes} and not 10 % faster in every timing round "
                                 f"({latency}")


def test_tfmot_pruned_model_is_stripped_and_encoded(tiny_images, tmp_path):
    x_train, y_train, x_test, _ = tiny_images
    keras.utils.set_random_seed(0)
    schedule = tfmot.sparsity.keras.ConstantSparsity(0.9, begin_step=0, frequency=1)
    wrapped = tfmot.sparsity.keras.prune_low_magnitude(_cnn(), pruning_schedule=schedule)
    wrapped.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
    wrapped.fit(x_train, y_train, epochs=2, batch_size=30, verbose=0,
                callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
    stripped = tfmot.sparsity.keras.strip_pruning(wrapped)
    kernel = stripped.layers[-2].get_weights()[0]
    assert np.mean(kernel == 0) == pytest.approx(0.9, abs=0.01)
    # The wrapped model is exported as the stripped one: no variables, no masks.
    dense = export_tflite(wrapped, tmp_path / "dense.tflite", verify_data=x_test)
    assert dense.path.read_bytes() == tf.lite.TFLiteConverter.from_keras_model(
        stripped).convert()
    result = export_tflite(wrapped, tmp_path / "auto.tflite", verify_data=x_test, sparse="auto")
    assert result.sparse_encoding is True
    assert result.size_bytes < 0.5 * dense.size_bytes
    assert result.dense_size_bytes == dense.size_bytes
    np.testing.assert_allclose(_run_litert(result.path, x_test), _run_litert(dense.path, x_test),
                               atol=1e-6)


def test_block_sparse_fully_connected_runs_sparse_kernels(block_pruned_model, tiny_images,
                                                          tmp_path):
    _, _, x_test, _ = tiny_images
    dense = export_tflite(block_pruned_model, tmp_path / "dense.tflite", verify_data=x_test)
    sparse = export_tflite(block_pruned_model, tmp_path / "sparse.tflite", verify_data=x_test,
                           sparse=True)
    assert sparse.sparse_encoding and sparse.size_bytes < dense.size_bytes / 2
    assert operator_counts(sparse.path) == operator_counts(dense.path)  # no DENSIFY
    np.testing.assert_allclose(_run_litert(sparse.path, x_test), _run_litert(dense.path, x_test),
                               atol=1e-6)


def test_float16_sparse_kernels_giving_nan_are_refused(block_pruned_model, tiny_images,
                                                       tmp_path):
    _, _, x_test, _ = tiny_images
    # LiteRT's float16 sparse FULLY_CONNECTED returns NaN (ai-edge-litert, TF 2.21):
    # "auto" compares the sparse file's outputs with the dense file's and keeps the dense one.
    auto = export_tflite(block_pruned_model, tmp_path / "auto.tflite", "float16",
                         verify_data=x_test, sparse="auto")
    dense = export_tflite(block_pruned_model, tmp_path / "dense.tflite", "float16",
                          verify_data=x_test)
    assert auto.sparse_encoding is False
    assert auto.sparse_reason == ("rejected: the sparse file's outputs are NaN or infinite on "
                                  "16 samples (the dense file's are not)")
    assert auto.path.read_bytes() == dense.path.read_bytes()
    with pytest.raises(ValueError, match=r"Received: sparse=True with mode='float16'; the sparse "
                                         r"file does not work under LiteRT \(its outputs are NaN"):
        export_tflite(block_pruned_model, tmp_path / "forced.tflite", "float16", sparse=True)
    assert not (tmp_path / "forced.tflite").exists()
