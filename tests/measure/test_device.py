"""`measure_on_target`: the figures each target reports for one exported model."""

import numpy as np
import pytest

from keras_autoopt._backend import keras
from keras_autoopt.export import export_for_target, export_tflite
from keras_autoopt.measure import measure_on_target
from keras_autoopt.targets import TARGETS


@pytest.fixture(scope="module")
def dense_model():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(3, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    return model


def test_every_target_reports_flash_macs_and_operators(dense_model, tiny_images, tmp_path):
    x, *_ = tiny_images
    result = export_for_target(dense_model, tmp_path / "m.tflite", "tflm",
                               representative_data=x)
    size = result.path.stat().st_size
    host = measure_on_target(result.path, "host")
    assert host.flash_bytes == size and host.ram_bytes is None
    assert host.macs == 64 * 16 + 16 * 3  # the two FULLY_CONNECTED layers
    assert host.operators.get("FULLY_CONNECTED") == 2
    assert host.runs and host.metrics()["target_runs"] == 1.0

    micro = measure_on_target(result.path, TARGETS["tflm"], x)
    assert micro.tflm_compatible is True and micro.reason is None
    # The arena holds at least the largest input + output pair of one operator (int8).
    assert micro.ram_bytes >= 64 + 16
    assert micro.metrics()["ram_bytes"] == micro.ram_bytes

    npu = measure_on_target(result.path, "ethos-u55-128")
    assert npu.runs and npu.npu_share == 1.0 and npu.npu_latency_ms > 0
    assert npu.ram_bytes > 0 and npu.flash_bytes > 0


def test_a_hybrid_model_does_not_run_under_tflite_micro(dense_model, tiny_images, tmp_path):
    x, *_ = tiny_images
    path = export_tflite(dense_model, tmp_path / "hybrid.tflite", "dynamic").path
    measured = measure_on_target(path, "tflm", x)
    assert measured.tflm_compatible is False and not measured.runs
    assert "Hybrid models are not supported on TFLite Micro" in measured.reason
    assert measured.metrics()["target_runs"] == 0.0
    float_model = export_tflite(dense_model, tmp_path / "f.tflite", "float32").path
    on_npu = measure_on_target(float_model, "ethos-u55-128")
    assert not on_npu.runs and "left on the CPU" in on_npu.reason


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match=r"Received: path='.*none.tflite'; expected an existing"):
        measure_on_target(tmp_path / "none.tflite", "host")
    (tmp_path / "m.tflite").write_bytes(np.zeros(8, np.uint8).tobytes())
    with pytest.raises(ValueError, match=r"Received: target='tflmm'; expected one of host"):
        measure_on_target(tmp_path / "m.tflite", "tflmm")
