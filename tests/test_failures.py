"""No command ends in a traceback: one line naming the stage, the cause and what to do.

``demo``, ``run``, ``compress`` and ``worker`` are fed a model with an
unsupported layer, or a stage is made to fail the way TF-MOT, the converter
or the memory allocator fail; each ends with one ``keras-autoopt:`` line and
a non-zero exit code, and ``--debug`` shows the traceback.
"""

from __future__ import annotations

import pytest

from keras_autoopt import cli
from keras_autoopt._backend import keras, tf
from keras_autoopt._failure import describe_failure, stage


def _custom_layer_model(path):
    @keras.utils.register_keras_serializable(package="Mine")
    class Scale(keras.layers.Layer):
        def call(self, x):
            return 0.5 * x

    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                              Scale(name="scale"), keras.layers.Dense(10, activation="softmax")])
    model.save(path)
    # A user's class exists in the user's process only: not in the one that loads the file.
    keras.utils.get_custom_objects().pop("Mine>Scale")
    return path


def _last_line(capsys):
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    return captured.err.strip().splitlines()[-1]


@pytest.mark.parametrize("trust", [False, True])
def test_compress_a_custom_layer_model(tmp_path, capsys, trust):
    path = _custom_layer_model(tmp_path / "custom.keras")
    argv = ["compress", "--model", str(path), "--output", str(tmp_path / "o")]
    code = cli.main(argv + (["--trust-model"] if trust else []))
    line = _last_line(capsys)
    assert code == 2
    if trust:  # trusted, but the class is not importable here: tf_keras cannot build it
        assert line.startswith(f"keras-autoopt: error: Received: model={str(path)!r}; "
                               "expected a tf_keras model file, but loading failed: ")
        assert "Scale" in line
    else:
        assert line == (f"keras-autoopt: error: Received: model={str(path)!r} holding class "
                        "'Scale' in layer 'scale', which is not a known tf_keras / TF-MOT / "
                        "keras_autoopt class; its Python code would run on load. Pass "
                        "--trust-model (trust_model=True) only for files you trust.")


def _teacher_yaml(tmp_path, teacher):
    config = tmp_path / "c.yaml"
    config.write_text("dataset: digits\nhypermodel: dense\ntrials: 1\nepochs: [1, 1]\n"
                      f"objectives: [val_accuracy, gzip_bytes]\nteacher: {teacher}\n")
    return config


@pytest.mark.parametrize("command", ["run", "worker"])
def test_run_and_worker_with_a_custom_layer_teacher(tmp_path, capsys, command):
    teacher = _custom_layer_model(tmp_path / "t.keras")
    config = _teacher_yaml(tmp_path, teacher)
    argv = [command, "--config", str(config), "--output", str(tmp_path / "o")]
    if command == "worker":
        argv += ["--chief", "127.0.0.1:8471", "--id", "w0"]
    assert cli.main(argv) == 2
    line = _last_line(capsys)
    assert line.startswith(f"keras-autoopt: error: Received: teacher={str(teacher)!r} "
                           "holding class 'Scale' in layer 'scale'")


def _fail_with(monkeypatch, target, exc):
    def boom(*args, **kwargs):
        raise exc

    monkeypatch.setattr(target, boom)


@pytest.mark.parametrize(("exc", "expected"), [
    (RuntimeError("Layer lambda:<class 'Lambda'> is not supported. You can quantize this "
                  "layer by passing a `tfmot.quantization.keras.QuantizeConfig` instance"),
     "keras-autoopt: compress: compression failed: RuntimeError: Layer lambda:<class "
     "'Lambda'> is not supported. You can quantize this layer by passing a "
     "`tfmot.quantization.keras.QuantizeConfig` instance (TF-MOT cannot compress the layer "
     "the message names: leave it out (skip_layers=[...], or skip_unsupported=True) or "
     "replace it with a standard layer)."),
    (MemoryError(), "keras-autoopt: compress: compression failed: MemoryError (out of memory: "
                    "lower the batch size, the model's width (filters / units) or the amount "
                    "of data)."),
])
def test_compress_stage_failure_is_one_line(tmp_path, capsys, monkeypatch, exc, expected):
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(10, activation="softmax")])
    model.save(tmp_path / "m.keras")
    _fail_with(monkeypatch, "keras_autoopt.pipeline.jobs.auto_compress", exc)
    argv = ["compress", "--model", str(tmp_path / "m.keras"), "--output", str(tmp_path / "o")]
    assert cli.main(argv) == 1
    assert _last_line(capsys) == expected
    assert cli.main(argv + ["--debug"]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and err.strip().endswith(expected)


def test_demo_out_of_memory_in_the_search_setup(tmp_path, capsys, monkeypatch):
    oom = tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor")
    for strategy in ("SingleObjectiveSearch", "DeployableSearch"):  # whichever the demo runs
        _fail_with(monkeypatch, f"keras_autoopt.pipeline.strategies.{strategy}.build_tuner", oom)
    assert cli.main(["demo", "--trials", "1", "--output", str(tmp_path / "d")]) == 1
    assert _last_line(capsys) == (
        "keras-autoopt: demo: setting up the search failed: ResourceExhaustedError: OOM when "
        "allocating tensor (out of memory: lower the batch size, the model's width (filters / "
        "units) or the amount of data).")


def test_run_converter_error_in_the_export(tmp_path, capsys, monkeypatch):
    from tensorflow.lite.python.convert_phase import ConverterError

    config = tmp_path / "c.yaml"
    config.write_text("dataset: digits\nhypermodel: dense\ntrials: 1\nepochs: [1, 1]\n"
                      "refit: false\n")
    _fail_with(monkeypatch, "keras_autoopt.pipeline.artifacts.export_tflite",
               ConverterError("'tfl.custom' op is neither a custom op nor a flex op"))
    assert cli.main(["run", "--config", str(config), "--output", str(tmp_path / "o")]) == 1
    assert _last_line(capsys) == (
        "keras-autoopt: run: export failed: ConverterError: 'tfl.custom' op is neither a "
        "custom op nor a flex op (the TFLite converter rejected the model: try another "
        "export mode, or replace the layer or operation the message names).")


def test_stage_marks_the_innermost_stage_and_keeps_the_exception():
    with pytest.raises(ValueError) as info, stage("outer"), stage("inner"):
        raise ValueError("x")
    assert describe_failure(info.value) == (
        "inner failed: ValueError: x (this may be a bug of keras_autoopt: run the same "
        "command with --debug for the traceback and report it).")
