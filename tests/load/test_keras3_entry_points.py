"""Keras 3 models go in wherever a model goes in: export, compression, distillation, search, CLI.

Each entry point gets a small Keras 3 classifier trained a little in Keras 3;
the reference for every figure is Keras 3's own prediction of that model.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

import keras_autoopt as ka
from keras_autoopt import cli
from keras_autoopt._backend import keras
from keras_autoopt.data import load_dataset
from keras_autoopt.load import copy_weights_to_keras3
from keras_autoopt.measure import measure_tflite
from keras_autoopt.pipeline import compress_saved_model

k3 = pytest.importorskip("keras")
if not k3.version().startswith("3."):  # pragma: no cover - environment check
    pytest.skip("Keras 3 is not installed", allow_module_level=True)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", seed=0)


def _keras3_cnn(dataset, seed=0, name="k3_cnn"):
    k3.utils.set_random_seed(seed)
    model = k3.Sequential([
        k3.Input(dataset.input_shape),
        k3.layers.Conv2D(8, 3, padding="same", use_bias=False),
        k3.layers.BatchNormalization(),
        k3.layers.ReLU(),
        k3.layers.MaxPooling2D(2),
        k3.layers.Flatten(name="flatten"),
        k3.layers.Dense(dataset.num_classes, activation="softmax"),
    ], name=name)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(dataset.x_train, dataset.y_train, epochs=2, batch_size=64, verbose=0)
    return model


@pytest.fixture(scope="module")
def keras3_model(digits):
    return _keras3_cnn(digits)


@pytest.fixture(scope="module")
def keras3_file(keras3_model, tmp_path_factory):
    path = tmp_path_factory.mktemp("k3") / "k3.keras"
    keras3_model.save(path)
    return path


def test_export_tflite_of_a_keras3_model_matches_keras3(keras3_model, digits, tmp_path):
    result = ka.export_tflite(keras3_model, tmp_path / "m.tflite", mode="float32",
                              verify_data=digits.x_val[:64])
    expected = keras3_model.predict(digits.x_test, verbose=0).argmax(-1)
    metrics = measure_tflite(result.path, digits.x_test, digits.y_test)
    assert metrics.accuracy == pytest.approx(float(np.mean(expected == digits.y_test)))
    assert result.verify_samples == 64
    assert result.max_abs_diff < 1e-4


def test_compression_plan_and_auto_compress_take_keras3_models(keras3_model, digits, tmp_path):
    stages = ka.CompressionPlan([], export_mode="float32").baseline(
        keras3_model, digits, tmp_path / "plan")
    expected = float(np.mean(keras3_model.predict(digits.x_test, verbose=0).argmax(-1)
                             == digits.y_test))
    assert stages[0].metrics["accuracy"] == pytest.approx(expected)
    assert isinstance(stages[0].model, keras.Model)

    result = ka.auto_compress(keras3_model, digits, tmp_path / "auto", channel_ratios=(),
                              sparsities=(0.5,), sensitivity_epochs=1, prune_epochs=1,
                              cluster_counts=(), qat_epochs=0, max_pushes=0, batch_size=64,
                              stream=io.StringIO())
    assert result.stages[0].name == "float32"
    assert result.stages[0].metrics["accuracy"] == pytest.approx(expected)


def test_distiller_takes_keras3_teacher_and_student_and_gives_weights_back(digits):
    teacher = _keras3_cnn(digits, seed=1, name="teacher")
    student = k3.Sequential([k3.Input(digits.input_shape), k3.layers.Flatten(),
                             k3.layers.Dense(digits.num_classes, activation="softmax")],
                            name="student")
    distiller = ka.Distiller(teacher, student)
    assert isinstance(distiller.teacher, keras.Model)
    assert isinstance(distiller.student, keras.Model)
    np.testing.assert_allclose(distiller.teacher.predict(digits.x_val, verbose=0),
                               teacher.predict(digits.x_val, verbose=0), atol=1e-5)
    distiller.compile(keras.optimizers.Adam(1e-2), metrics=["accuracy"])
    distiller.fit(digits.x_train, digits.y_train, epochs=2, batch_size=64, verbose=0)

    copy_weights_to_keras3(distiller.student, student)
    np.testing.assert_allclose(student.predict(digits.x_val, verbose=0),
                               distiller.student.predict(digits.x_val, verbose=0), atol=1e-5)
    trained = float(np.mean(student.predict(digits.x_val, verbose=0).argmax(-1)
                            == digits.y_val))
    assert trained > 0.5  # the Keras 3 student now holds the distilled weights


def test_transfer_and_distillation_hypermodels_take_keras3_models(keras3_model, digits):
    base = ka.TransferHyperModel(keras3_model, digits.num_classes, feature_layer="flatten")
    assert isinstance(base.base_model, keras.Model)
    hypermodel = ka.DistillationHyperModel(keras3_model, ka.DenseHyperModel(
        input_shape=digits.input_shape, num_classes=digits.num_classes))
    assert isinstance(hypermodel.teacher, keras.Model)
    np.testing.assert_allclose(hypermodel.teacher.predict(digits.x_val[:32], verbose=0),
                               keras3_model.predict(digits.x_val[:32], verbose=0), atol=1e-5)


def test_compress_job_says_it_converted_the_keras3_file(keras3_file, keras3_model, digits,
                                                        tmp_path):
    stream = io.StringIO()
    result = compress_saved_model(keras3_file, tmp_path / "out", dataset=digits, stream=stream,
                                  channel_ratios=(), sparsities=(0.5,), sensitivity_epochs=1,
                                  prune_epochs=1, cluster_counts=(), qat_epochs=0,
                                  max_pushes=0, batch_size=64)
    first = stream.getvalue().splitlines()[0]
    assert first == (f"[compress] converted the Keras 3 model {str(keras3_file)!r} to tf_keras "
                     f"(6 layers, {keras3_model.count_params():,} parameters, weights copied "
                     "exactly; nothing in the file ran)")
    expected = float(np.mean(keras3_model.predict(digits.x_test, verbose=0).argmax(-1)
                             == digits.y_test))
    assert result.stages[0].metrics["accuracy"] == pytest.approx(expected)


def test_cli_refuses_a_keras3_file_with_a_lambda_without_running_it(tmp_path, capsys):
    marker = tmp_path / "PAYLOAD_RAN"
    inputs = k3.Input((8, 8, 1))
    x = k3.layers.Flatten()(inputs)
    x = k3.layers.Lambda(lambda t, p=str(marker): (Path(p).touch(), t)[1], name="lam")(x)
    outputs = k3.layers.Dense(10, activation="softmax")(x)
    path = tmp_path / "evil.keras"
    k3.Model(inputs, outputs).save(path)
    marker.unlink(missing_ok=True)  # building the model ran it once

    code = cli.main(["compress", "--model", str(path), "--output", str(tmp_path / "out"),
                     "--trust-model"])

    err = capsys.readouterr().err
    assert code == 2
    assert "layer 'lam' (Lambda)" in err
    assert "Traceback" not in err
    assert not marker.exists()


def test_yaml_teacher_may_be_a_keras3_file(keras3_file, keras3_model, digits, tmp_path,
                                           capsys):
    from keras_autoopt.config import load_config
    from keras_autoopt.pipeline.strategies import _load_teacher, check_teacher

    config_path = tmp_path / "run.yaml"
    config_path.write_text("objectives: [val_accuracy, gzip_bytes]\noracle: nsga2\n"
                           f"teacher: {keras3_file}\n")
    config = load_config(config_path)

    check_teacher(config, digits)

    assert capsys.readouterr().out == (
        f"converted the Keras 3 teacher {str(keras3_file)!r} to tf_keras (6 layers, "
        f"{keras3_model.count_params():,} parameters, weights copied exactly; nothing in the "
        "file ran)\n")
    teacher = _load_teacher(config.teacher)
    np.testing.assert_allclose(teacher.predict(digits.x_val, verbose=0),
                               keras3_model.predict(digits.x_val, verbose=0), atol=1e-5)
