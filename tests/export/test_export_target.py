"""Export for a device target (issue 13): batch 1, the target's modes and IO types, the C array."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

from keras_autoopt._backend import keras
from keras_autoopt.export import (
    ExportResult,
    _tflite,
    convert_for_target,
    export_for_target,
    export_tflite,
    write_c_source,
)
from keras_autoopt.measure import TFLiteRunner
from keras_autoopt.targets import TARGETS

LAYERS = keras.layers
COMPILER = shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")
VELA = shutil.which("vela", path=str(Path(sys.executable).parent)) or shutil.which("vela")


@pytest.fixture(scope="module")
def model(tiny_images):
    """A small CNN trained 3 epochs on the tiny images (accurate enough for int8 checks)."""
    keras.utils.set_random_seed(0)
    x_train, y_train, _, _ = tiny_images
    model = keras.Sequential([
        LAYERS.Input((8, 8, 1)),
        LAYERS.Conv2D(4, 3, activation="relu"),
        LAYERS.Flatten(),
        LAYERS.Dense(3, activation="softmax"),
    ])
    model.compile(keras.optimizers.Adam(0.02), "sparse_categorical_crossentropy")
    model.fit(x_train, y_train, epochs=3, batch_size=16, verbose=0)
    return model


def _io(path):
    interpreter = Interpreter(model_path=str(path))
    return interpreter.get_input_details(), interpreter.get_output_details()


@pytest.mark.parametrize("mode", ["float32", "int8"])
def test_batch_one_fixes_the_input_shape_and_computes_the_same(model, tiny_images, tmp_path,
                                                               mode):
    x_train, _, x_test, y_test = tiny_images
    dynamic = export_tflite(model, tmp_path / "dynamic.tflite", mode,
                            representative_data=x_train)
    fixed = export_tflite(model, tmp_path / "fixed.tflite", mode, representative_data=x_train,
                          verify_data=x_test, verify_labels=y_test, batch_size=1)
    assert (dynamic.batch_size, fixed.batch_size) == (None, 1)
    assert fixed.verify_samples == len(x_test)  # verification ran on the batch-1 model
    inputs, outputs = _io(fixed.path)
    assert len(inputs) == 1 and len(outputs) == 1
    assert inputs[0]["shape"].tolist() == [1, 8, 8, 1]
    assert inputs[0]["shape_signature"].tolist() == [1, 8, 8, 1]
    assert outputs[0]["shape_signature"].tolist() == [1, 3]
    assert _io(dynamic.path)[0][0]["shape_signature"].tolist() == [-1, 8, 8, 1]
    assert _signatures(fixed.path) == _signatures(dynamic.path)  # same names
    expected = TFLiteRunner(dynamic.path).predict(x_test)
    got = TFLiteRunner(fixed.path).predict(x_test)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    if mode == "int8":  # calibrated alike: the same quantization parameters
        assert inputs[0]["dtype"] == np.int8
        assert inputs[0]["quantization"] == _io(dynamic.path)[0][0]["quantization"]


def _signatures(path):
    return Interpreter(model_path=str(path)).get_signature_list()


class _Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.dense = LAYERS.Dense(2, activation="softmax")

    def call(self, inputs):
        return self.dense(inputs)


def test_batch_one_for_a_subclassed_model(tmp_path):
    model = _Subclassed()
    x = np.random.default_rng(0).random((16, 5)).astype("float32")
    model(x[:2])
    dynamic = export_tflite(model, tmp_path / "dynamic.tflite", verify_data=x)
    fixed = export_tflite(model, tmp_path / "fixed.tflite", verify_data=x, batch_size=1)
    assert _io(fixed.path)[0][0]["shape_signature"].tolist() == [1, 5]
    assert _signatures(fixed.path) == _signatures(dynamic.path)
    np.testing.assert_allclose(TFLiteRunner(fixed.path).predict(x),
                               TFLiteRunner(dynamic.path).predict(x), atol=1e-6)


def test_batch_one_for_a_model_with_two_inputs(tmp_path):
    first, second = LAYERS.Input((4,), name="a"), LAYERS.Input((3,), name="b")
    output = LAYERS.Dense(2)(LAYERS.Concatenate()([first, second]))
    result = export_tflite(keras.Model([first, second], output), tmp_path / "two.tflite",
                           batch_size=1)
    inputs, _ = _io(result.path)
    assert sorted(d["shape_signature"].tolist() for d in inputs) == [[1, 3], [1, 4]]


@pytest.mark.parametrize("batch_size", [0, 2, True, 1.0, "1"])
def test_other_batch_sizes_are_refused(model, tmp_path, batch_size):
    with pytest.raises(ValueError, match=re.escape(
            f"Received: batch_size={batch_size!r}; expected None (a dynamic batch) or 1")):
        export_tflite(model, tmp_path / "m.tflite", batch_size=batch_size)
    assert not list(tmp_path.iterdir())


def test_tflm_export_is_int8_batch_one_int8_io_with_c_source(model, tiny_images, tmp_path):
    x_train, _, x_test, _ = tiny_images
    result = export_for_target(model, tmp_path / "m.tflite", "tflm", representative_data=x_train,
                               verify_data=x_test)
    assert isinstance(result, ExportResult)
    assert (result.mode, result.batch_size) == ("int8", 1)  # the target's smallest mode
    inputs, outputs = _io(result.path)
    assert inputs[0]["shape_signature"].tolist() == [1, 8, 8, 1]
    assert (inputs[0]["dtype"], outputs[0]["dtype"]) == (np.int8, np.int8)
    assert result.c_files == (tmp_path / "model_data.h", tmp_path / "model_data.cc")
    assert _array_bytes(result.c_files[1]) == result.path.read_bytes()
    assert result.to_dict()["c_files"] == [str(p) for p in result.c_files]


def test_tflite_micro_runs_the_tflm_export(model, tiny_images, tmp_path):
    runtime = pytest.importorskip("tflite_micro.python.tflite_micro.runtime",
                                  reason="tflite-micro is not installed")
    x_train, _, x_test, _ = tiny_images
    result = export_for_target(model, tmp_path / "m.tflite", "tflm", representative_data=x_train)
    inputs, outputs = _io(result.path)
    scale, zero_point = inputs[0]["quantization"]
    micro = runtime.Interpreter.from_file(str(result.path), arena_size=TARGETS["tflm"].ram_bytes)
    litert = Interpreter(model_path=str(result.path))
    litert.allocate_tensors()
    for sample in x_test[:5]:
        q = np.clip(np.round(sample[np.newaxis] / scale + zero_point), -128, 127).astype(np.int8)
        micro.set_input(q, 0)
        micro.invoke()
        litert.set_tensor(inputs[0]["index"], q)
        litert.invoke()
        np.testing.assert_array_equal(micro.get_output(0),
                                      litert.get_tensor(outputs[0]["index"]))


def test_target_int8_io_false_keeps_float_io(model, tiny_images, tmp_path):
    x_train = tiny_images[0]
    target = TARGETS["ethos-u55-128"].replace(int8_io=False)
    result = export_for_target(model, tmp_path / "m.tflite", target, representative_data=x_train)
    inputs, outputs = _io(result.path)
    assert (inputs[0]["dtype"], outputs[0]["dtype"]) == (np.float32, np.float32)
    assert inputs[0]["shape_signature"].tolist() == [1, 8, 8, 1]
    assert result.c_files == ()  # Vela targets write no C array by default


@pytest.mark.skipif(VELA is None, reason="ethos-u-vela is not installed (no vela command)")
@pytest.mark.parametrize("name", ["ethos-u55-128", "ethos-u65-256"])
def test_vela_compiles_the_export_with_the_targets_configuration(model, tiny_images, tmp_path,
                                                                  name):
    target = TARGETS[name]
    result = export_for_target(model, tmp_path / "m.tflite", target,
                               representative_data=tiny_images[0])
    run = subprocess.run(
        [VELA, str(result.path), "--accelerator-config", target.accelerator,
         "--system-config", target.system_config, "--memory-mode", target.memory_mode,
         "--output-dir", str(tmp_path / "vela")],
        capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert (tmp_path / "vela" / "m_vela.tflite").is_file()
    output = run.stdout + run.stderr
    # A dynamic batch would be reported: "Tensor ... has a dynamic signature in axis 0".
    assert "dynamic signature" not in output
    assert re.search(r"CPU operators = 0 ", output), output  # every operator on the NPU
    assert f"System configuration {target.system_config}" in " ".join(output.split())


def test_host_keeps_todays_export(model, tmp_path):
    result = export_for_target(model, tmp_path / "m.tflite", "host", "float32")
    assert result.batch_size is None and result.c_files == ()
    assert _io(result.path)[0][0]["shape_signature"].tolist() == [-1, 8, 8, 1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.tflite"]


def test_a_mode_the_target_cannot_run_fails_before_converting(model, tmp_path, monkeypatch):
    def no_conversion(*args, **kwargs):
        raise AssertionError("converted")

    monkeypatch.setattr(_tflite, "_convert", no_conversion)
    with pytest.raises(ValueError) as error:
        export_for_target(model, tmp_path / "m.tflite", TARGETS["tflm"], "dynamic")
    assert str(error.value).startswith(
        "Received: mode='dynamic' for target 'tflm'; expected one of ('int8',): TFLite Micro "
        "runs no hybrid")
    with pytest.raises(ValueError, match=r"Received: target='tflmm'; expected one of host, "):
        export_for_target(model, tmp_path / "m.tflite", "tflmm")
    for argument, field in (("batch_size", "fixed_batch"), ("int8_io", "int8_io")):
        with pytest.raises(ValueError, match=rf"Received: {argument}=.* for target 'tflm'; "
                                             rf"expected no {argument}: the target sets it "
                                             rf"\(change the target's '{field}'"):
            export_for_target(model, tmp_path / "m.tflite", "tflm", **{argument: None})
    with pytest.raises(ValueError, match=r"Received: name='model-data'; expected a C identifier"):
        export_for_target(model, tmp_path / "m.tflite", "tflm", c_name="model-data")
    assert not list(tmp_path.iterdir())


def test_convert_for_target_gives_the_exported_layout_unverified(model, tiny_images, tmp_path):
    x_train, *_ = tiny_images
    exported = export_for_target(model, tmp_path / "m.tflite", "tflm",
                                 representative_data=x_train).path.read_bytes()
    converted = convert_for_target(model, "tflm", representative_data=x_train[:3],
                                   num_calibration_samples=2)
    assert len(converted) == len(exported)  # other scales, same layout
    path = tmp_path / "c.tflite"
    path.write_bytes(converted)
    inputs, outputs = _io(path)
    assert inputs[0]["shape_signature"].tolist() == [1, 8, 8, 1]
    assert (inputs[0]["dtype"], outputs[0]["dtype"]) == (np.int8, np.int8)
    # An untrained model converts as well: nothing is verified.
    untrained = keras.models.clone_model(model)
    assert len(convert_for_target(untrained, "tflm", representative_data=x_train)) > 0
    with pytest.raises(ValueError, match=r"Received: mode='dynamic' for target 'tflm'"):
        convert_for_target(model, "tflm", "dynamic")
    with pytest.raises(ValueError, match=r"Received: representative_data=None with mode='int8'"):
        convert_for_target(model, "tflm")
    with pytest.raises(ValueError, match=r"Received: num_calibration_samples=0"):
        convert_for_target(model, "tflm", representative_data=x_train, num_calibration_samples=0)
    with pytest.raises(TypeError, match=r"Received: model of type str"):
        convert_for_target("model", "tflm", representative_data=x_train)


# ---- the C array -------------------------------------------------------------------------


def _array_bytes(source) -> bytes:
    """The bytes of the array in ``source``, read back from its hex literals."""
    text = source.read_text(encoding="utf-8")
    body = text[text.index("= {") + 3 : text.index("};")]
    return bytes(int(token, 16) for token in re.findall(r"0x[0-9a-f]{2}", body))


@pytest.fixture
def fake_tflite(tmp_path):
    """Every byte value, and a length that is not a multiple of 12."""
    path = tmp_path / "model.tflite"
    path.write_bytes(bytes(range(256)) * 3 + b"\x00\xff\x10")
    return path


def test_c_source_holds_the_exact_bytes(fake_tflite, tmp_path):
    header, source = write_c_source(fake_tflite, tmp_path / "c")
    assert (header.name, source.name) == ("model_data.h", "model_data.cc")
    data = fake_tflite.read_bytes()
    assert _array_bytes(source) == data
    text = source.read_text(encoding="utf-8")
    assert "alignas(16) const unsigned char model_data[] = {" in text
    assert f"const unsigned int model_data_len = {len(data)};" in text
    rows = [line for line in text.splitlines() if line.startswith("    0x")]
    assert [line.count("0x") for line in rows] == [12] * (len(data) // 12) + [len(data) % 12]
    assert header.read_text(encoding="utf-8").splitlines()[1:] == [
        "#ifndef MODEL_DATA_H_", "#define MODEL_DATA_H_", "",
        "extern const unsigned char model_data[];",
        "extern const unsigned int model_data_len;", "",
        "#endif  // MODEL_DATA_H_",
    ]


@pytest.mark.parametrize("name", ["", "1model", "model-data", "int", "alignas", None, "a b"])
def test_c_source_name_must_be_a_c_identifier(fake_tflite, tmp_path, name):
    with pytest.raises(ValueError, match=re.escape(f"Received: name={name!r}; expected a C "
                                                   "identifier")):
        write_c_source(fake_tflite, tmp_path, name=name)


@pytest.mark.skipif(COMPILER is None, reason="no C++ compiler (c++, g++ or clang++) on PATH")
def test_c_source_compiles_links_and_holds_the_bytes(fake_tflite, tmp_path):
    _, source = write_c_source(fake_tflite, tmp_path, name="my_model")
    main = tmp_path / "main.cc"
    main.write_text(
        '#include <cstdio>\n#include <cstdint>\n#include "my_model.h"\n'
        "int main() {\n"
        "  unsigned long sum = 0;\n"
        "  for (unsigned int i = 0; i < my_model_len; ++i) sum = sum * 31 + my_model[i];\n"
        '  std::printf("%u %lu %d\\n", my_model_len, sum,\n'
        "              (int)(reinterpret_cast<std::uintptr_t>(my_model) % 16));\n"
        "  return 0;\n}\n", encoding="utf-8")
    compile_only = subprocess.run([COMPILER, "-c", "-x", "c++", "-std=c++11", "-Wall", "-Werror",
                                   str(source), "-o", str(tmp_path / "my_model.o")],
                                  capture_output=True, text=True, timeout=120)
    assert compile_only.returncode == 0, compile_only.stderr
    binary = tmp_path / "main"
    build = subprocess.run([COMPILER, "-std=c++11", str(main), str(source), "-o", str(binary)],
                           capture_output=True, text=True, timeout=120)
    assert build.returncode == 0, build.stderr
    run = subprocess.run([str(binary)], capture_output=True, text=True, timeout=60)
    data = fake_tflite.read_bytes()
    expected = 0
    for byte in data:
        expected = (expected * 31 + byte) % 2**64
    assert run.stdout.split() == [str(len(data)), str(expected), "0"]
