"""Device targets (issue 13): MACs from the flatbuffer, TFLite Micro runs, Vela estimates."""

from __future__ import annotations

import numpy as np
import pytest

from keras_autoopt._backend import keras
from keras_autoopt.export import export_tflite
from keras_autoopt.measure import (
    VELA_ACCELERATORS,
    TFLMError,
    VelaError,
    check_tflm,
    count_macs,
    operator_counts,
    run_tflm,
    run_vela,
)
from keras_autoopt.measure._macs import _load

CONVNET_MACS = 8 * 8 * 8 * 9 + 4 * 4 * 8 * 9 + 128 * 3
BYTES_PER_ELEMENT = {"INT8": 1, "UINT8": 1, "INT16": 2, "FLOAT32": 4, "INT32": 4}


def _export(model, path, mode, x):
    # Logits are unbounded: allow int8 a wider gap to Keras than the default (top-1 still checked).
    return export_tflite(model, path, mode, representative_data=x, tolerance=0.5).path


@pytest.fixture(scope="module")
def files(tiny_images, tmp_path_factory):
    """Tiny models (fixed batch 1, as for a microcontroller) and their exports."""
    keras.utils.set_random_seed(0)
    x_train, y_train, _, _ = tiny_images
    folder = tmp_path_factory.mktemp("devices")
    dense = keras.Sequential([keras.Input((64,), batch_size=1), keras.layers.Dense(10)])
    conv = keras.Sequential(
        [keras.Input((8, 8, 1), batch_size=1), keras.layers.Conv2D(8, 3, padding="same")]
    )
    # No pooling and no softmax: Vela also counts pooling windows and the arithmetic of
    # an int8 softmax as MACs, which `count_macs` does not.
    convnet = keras.Sequential(
        [
            keras.Input((8, 8, 1), batch_size=1),
            keras.layers.Conv2D(8, 3, padding="same", activation="relu"),
            keras.layers.DepthwiseConv2D(3, strides=2, padding="same", activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(3),
        ]
    )
    convnet.compile(
        keras.optimizers.Adam(0.05), keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    convnet.fit(x_train, y_train, epochs=2, batch_size=16, verbose=0)
    # A Dense kernel of 1024+ weights, so that the "dynamic" export stores int8 weights.
    wide = keras.Sequential(
        [
            keras.Input((8, 8, 1), batch_size=1),
            keras.layers.Flatten(),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(3),
        ]
    )
    x_dense = np.random.default_rng(0).normal(size=(32, 64)).astype("float32")
    return {
        "dense": _export(dense, folder / "dense.tflite", "int8", x_dense),
        "conv": _export(conv, folder / "conv.tflite", "int8", x_train),
        "int8": _export(convnet, folder / "int8.tflite", "int8", x_train),
        "float32": _export(convnet, folder / "float32.tflite", "float32", x_train),
        "dynamic": _export(wide, folder / "dynamic.tflite", "dynamic", x_train),
    }


# MACs -------------------------------------------------------------------------------------------


def test_macs_of_one_layer_models_match_hand_counts(files):
    assert count_macs(files["dense"]) == 64 * 10
    assert count_macs(files["conv"]) == 8 * 8 * 8 * 3 * 3 * 1
    # ConvNet: conv 8x8x8 outputs x 3x3x1, depthwise 4x4x8 outputs x 3x3, Dense 128 -> 3.
    convnet = CONVNET_MACS
    assert count_macs(files["int8"]) == convnet
    assert count_macs(files["float32"].read_bytes()) == convnet


def test_operator_counts(files):
    assert operator_counts(files["dense"]) == {"FULLY_CONNECTED": 1}
    counts = operator_counts(files["float32"])
    assert counts == {"CONV_2D": 1, "DEPTHWISE_CONV_2D": 1, "RESHAPE": 1, "FULLY_CONNECTED": 1}


def test_macs_argument_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"Received: model='.*missing.tflite'"):
        count_macs(tmp_path / "missing.tflite")
    with pytest.raises(TypeError, match="Received: model of type int"):
        count_macs(3)
    with pytest.raises(ValueError, match="not a TFLite flatbuffer"):
        count_macs(b"not a model at all")


def test_damaged_files_are_value_errors(files, tmp_path):
    data = files["int8"].read_bytes()
    halved = tmp_path / "halved.tflite"
    halved.write_bytes(data[: len(data) // 2])
    zeroed = tmp_path / "zeroed.tflite"
    zeroed.write_bytes(data[:8] + bytes(len(data) - 8))
    for damaged in (halved, zeroed):
        with pytest.raises(ValueError, match="a damaged or empty TFLite flatbuffer"):
            count_macs(damaged)
        with pytest.raises(ValueError, match=f"Received: path='.*{damaged.name}'"):
            run_tflm(damaged, np.zeros((1, 8, 8, 1), "float32"))


# TFLite Micro -----------------------------------------------------------------------------------


def _arena_bound(path) -> int:
    """Every non-constant tensor's bytes, plus TFLM's bookkeeping: 2 KiB + 512 B per operator.

    The bookkeeping (measured: 1.3-2.4 KiB on these models) is the eval-tensor
    structs (24 B per tensor), node structs (64 B per operator), persistent
    input / output tensors and quantization data, and kernels' op data
    (per-channel multipliers: 8 B per output channel).
    """
    graph = _load(path)[0]
    activations = sum(
        int(np.prod(t.shape)) * BYTES_PER_ELEMENT[t.type_name]
        for t in graph.tensors
        if not t.constant
    )
    return activations + 2048 + 512 * len(graph.operators)


@pytest.mark.parametrize("mode", ["int8", "float32"])
def test_tflm_runs_and_matches_litert(files, tiny_images, mode):
    x_test = tiny_images[2]
    run = run_tflm(files[mode], x_test)
    assert 0 < run.arena_bytes < _arena_bound(files[mode])
    assert run.outputs.shape == (len(x_test), 3) and run.outputs.dtype == np.float32
    assert run.raw_outputs.dtype == (np.int8 if mode == "int8" else np.float32)
    assert run.wall_time_s > 0
    check = check_tflm(files[mode], x_test)
    assert check.compatible, check.reason
    assert check.reason is None and check.arena_bytes == run.arena_bytes
    assert check.top1_agreement >= 0.9
    graph = _load(files[mode])[0]
    step = graph.tensors[graph.outputs[0]].scale  # 0.0 for float outputs
    bound = 1e-4 * np.abs(run.outputs).max() if mode == "float32" else step * 1.001
    assert check.max_abs_diff <= bound


def test_check_tflm_max_steps(files, tiny_images):
    strict = check_tflm(files["int8"], tiny_images[2], max_steps=0)
    assert strict.max_abs_diff > 0  # TFLM and LiteRT round a few int8 outputs differently
    assert not strict.compatible and "max_steps=0 quantization steps" in strict.reason
    with pytest.raises(ValueError, match="Received: max_steps=-1"):
        check_tflm(files["int8"], tiny_images[2], max_steps=-1)


def test_tflm_crash_fails_one_call_not_the_caller(files, tiny_images, tmp_path, monkeypatch):
    crashing = tmp_path / "crashing_worker.py"
    crashing.write_text("import os, sys\nsys.stderr.write('boom from C++\\n')\nos.abort()\n")
    monkeypatch.setattr("keras_autoopt.measure._tflm._WORKER", crashing)
    with pytest.raises(TFLMError, match=r"int8.tflite.*exit code -6; TFLM said: boom from C\+\+"):
        run_tflm(files["int8"], tiny_images[2][:1])
    monkeypatch.undo()
    assert run_tflm(files["int8"], tiny_images[2][:1]).arena_bytes > 0


def test_tflm_int8_arena_is_smaller_than_float32(files, tiny_images):
    x = tiny_images[2][:2]
    assert run_tflm(files["int8"], x).arena_bytes < run_tflm(files["float32"], x).arena_bytes


def test_tflm_raw_int8_outputs_dequantize_to_outputs(files, tiny_images):
    graph = _load(files["int8"])[0]
    out = graph.tensors[graph.outputs[0]]
    run = run_tflm(files["int8"], tiny_images[2][:5])
    expected = (run.raw_outputs.astype("float32") - out.zero_point) * out.scale
    np.testing.assert_allclose(run.outputs, expected, rtol=1e-6)


def test_tflm_hybrid_model_is_reported_and_the_caller_survives(files, tiny_images):
    x = tiny_images[2][:3]
    with pytest.raises(TFLMError, match="Hybrid models are not supported on TFLite Micro") as info:
        run_tflm(files["dynamic"], x)
    assert str(files["dynamic"]) in str(info.value)
    assert "FULLY_CONNECTED" in info.value.reason  # TFLM's own words are kept
    check = check_tflm(files["dynamic"], x)
    assert not check.compatible and check.arena_bytes is None
    assert "Hybrid models are not supported" in check.reason
    assert run_tflm(files["int8"], x).arena_bytes > 0  # this process is unharmed


def test_tflm_argument_errors(files, tmp_path):
    with pytest.raises(ValueError, match=r"Received: inputs with shape \(2, 4\); expected shape"):
        run_tflm(files["int8"], np.zeros((2, 4), "float32"))
    with pytest.raises(ValueError, match="Received: arena_size=0"):
        run_tflm(files["int8"], np.zeros((1, 8, 8, 1), "float32"), arena_size=0)
    with pytest.raises(ValueError, match="Received: timeout=0; expected a positive number"):
        run_tflm(files["int8"], np.zeros((1, 8, 8, 1), "float32"), timeout=0)
    with pytest.raises(FileNotFoundError, match="Received: path="):
        run_tflm(tmp_path / "missing.tflite", np.zeros((1, 8, 8, 1), "float32"))


def test_tflm_too_small_arena_is_a_tflm_error(files, tiny_images):
    with pytest.raises(TFLMError, match=r"int8.tflite.*(?i:arena|allocate|buffer)"):
        run_tflm(files["int8"], tiny_images[2][:1], arena_size=256)


# Vela -------------------------------------------------------------------------------------------


def test_vela_int8_model_runs_on_the_npu(files, tmp_path):
    report = run_vela(files["int8"], "ethos-u55-128", output_dir=tmp_path)
    assert report.system_config == "Ethos_U55_High_End_Embedded"
    assert report.memory_mode == "Shared_Sram"
    assert report.npu_latency_ms > 0 and report.cycles_npu > 0
    assert report.cycles_total >= report.cycles_npu
    assert report.sram_bytes > 0 and report.flash_bytes > 0
    assert report.macs == count_macs(files["int8"]) == CONVNET_MACS
    assert report.npu_share == 1.0 and report.cpu_operators == ()
    assert report.vela_model == tmp_path / "int8_vela.tflite" and report.vela_model.is_file()


def test_vela_u65_defaults(files):
    report = run_vela(files["int8"], "ethos-u65-256")
    assert (report.system_config, report.memory_mode) == ("Ethos_U65_High_End", "Dedicated_Sram")
    assert report.npu_latency_ms > 0 and report.vela_model is None


def test_vela_float_model_stays_on_the_cpu(files):
    report = run_vela(files["float32"])
    assert report.npu_share == 0.0 and report.npu_operators == 0
    assert report.macs == 0 and report.npu_latency_ms == 0.0
    assert sorted(op.split(":")[0] for op in report.cpu_operators) == [
        "CONV_2D",
        "DEPTHWISE_CONV_2D",
        "FULLY_CONNECTED",
        "RESHAPE",
    ]


def test_vela_errors(files):
    with pytest.raises(ValueError, match="Received: accelerator='ethos-u99'; expected one of") as e:
        run_vela(files["int8"], "ethos-u99")
    assert all(name in str(e.value) for name in VELA_ACCELERATORS)
    with pytest.raises(VelaError, match="System_Config.Nowhere not found"):
        run_vela(files["int8"], system_config="Nowhere")
