"""Untrusted model files never run their code: every entry point, every format.

The "evil" models hold a ``Lambda`` layer whose (marshalled) function creates
a marker file when it runs, as a real payload would call ``os.system``. Each
refused load must leave no marker; the opt-in (``trust_model=True`` /
``--trust-model``) must run it, which proves the payload is real.
"""

from __future__ import annotations

import json
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

import keras_autoopt as ka
from keras_autoopt import cli
from keras_autoopt._backend import keras
from keras_autoopt.load import (
    ModelFileError,
    TrustedModelWarning,
    UnsafeModelError,
    find_unsafe,
    inspect_model_file,
    load_model_file,
)
from keras_autoopt.pipeline import compress_saved_model

FORMATS = ("h5", "keras", "savedmodel")
REFUSAL = ("its Python code would run on load. Pass --trust-model (trust_model=True) only "
           "for files you trust.")


def _save(model, path: Path, fmt: str) -> Path:
    if fmt == "savedmodel":
        model.save(path, save_format="tf")
    else:
        model.save(path)
    return path


def _evil_model(marker: Path):
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)
    x = keras.layers.Lambda(
        lambda t, p=str(marker): (__import__("pathlib").Path(p).touch(), t)[1],
        name="lambda")(x)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(10, activation="softmax")(x)
    return keras.Model(inputs, outputs)


@pytest.fixture(scope="module")
def evil_files(tmp_path_factory):
    """One evil model per format; the marker its payload creates is removed after saving."""
    root = tmp_path_factory.mktemp("evil")
    marker = root / "PAYLOAD_RAN"
    model = _evil_model(marker)
    suffix = {"h5": ".h5", "keras": ".keras", "savedmodel": ""}
    files = {fmt: _save(model, root / f"evil{suffix[fmt]}", fmt) for fmt in FORMATS}
    return files, marker


@pytest.fixture
def marker(evil_files):
    path = evil_files[1]
    path.unlink(missing_ok=True)  # tracing at save time ran the payload once
    yield path
    path.unlink(missing_ok=True)


def _message(path: Path, arg: str = "model") -> str:
    return f"Received: {arg}={str(path)!r} holding Lambda layer 'lambda'; {REFUSAL}"


@pytest.mark.parametrize("fmt", FORMATS)
def test_python_api_refuses_every_format(evil_files, marker, fmt):
    path = evil_files[0][fmt]
    with pytest.raises(UnsafeModelError) as info:
        load_model_file(path)
    assert str(info.value) == _message(path)
    assert info.value.findings == ["Lambda layer 'lambda'"]
    assert not marker.exists()
    with pytest.raises(UnsafeModelError):
        ka.load_model_file(str(path), arg="teacher")
    assert not marker.exists()


@pytest.mark.parametrize("fmt", FORMATS)
def test_compress_api_refuses_before_loading_the_data(evil_files, marker, fmt, tmp_path,
                                                      monkeypatch):
    monkeypatch.setattr("keras_autoopt.pipeline.jobs.load_dataset",
                        lambda *a, **k: pytest.fail("data loaded for an unsafe model"))
    path = evil_files[0][fmt]
    with pytest.raises(UnsafeModelError, match="holding Lambda layer 'lambda'"):
        compress_saved_model(path, tmp_path / "out")
    assert not marker.exists()
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("fmt", FORMATS)
def test_cli_compress_refuses_with_exit_2(evil_files, marker, fmt, tmp_path, capsys):
    path = evil_files[0][fmt]
    code = cli.main(["compress", "--model", str(path), "--output", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip().splitlines()[-1] == f"keras-autoopt: error: {_message(path)}"
    assert "Traceback" not in err
    assert not marker.exists()


def _teacher_config(tmp_path: Path, teacher: Path) -> Path:
    config = tmp_path / "c.yaml"
    config.write_text(
        "dataset: digits\nhypermodel: dense\ntrials: 1\nepochs: [1, 1]\n"
        "objectives: [val_accuracy, gzip_bytes]\n"
        f"teacher: {teacher}\n")
    return config


@pytest.mark.parametrize("fmt", FORMATS)
def test_yaml_teacher_refused_over_cli_and_api(evil_files, marker, fmt, tmp_path, capsys,
                                               monkeypatch):
    monkeypatch.setattr("keras_autoopt.search.DeployableTuner.search",
                        lambda *a, **k: pytest.fail("searched with an unsafe teacher"))
    path = evil_files[0][fmt]
    config = _teacher_config(tmp_path, path)
    code = cli.main(["run", "--config", str(config), "--output", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2
    assert f"keras-autoopt: error: {_message(path.resolve(), 'teacher')}" in err
    assert "Traceback" not in err
    assert not marker.exists()
    with pytest.raises(ka.ConfigError, match="holding Lambda layer 'lambda'"):
        ka.run_pipeline(output_dir=tmp_path / "o2", config=ka.load_config(config))
    assert not marker.exists()


@pytest.mark.parametrize("fmt", ["h5", "keras"])
def test_transfer_hypermodel_refuses_an_unsafe_base(evil_files, marker, fmt):
    path = evil_files[0][fmt]
    with pytest.raises(UnsafeModelError, match=r"Received: base_model=.* holding Lambda"):
        ka.TransferHyperModel(str(path), 3)
    assert not marker.exists()


@pytest.mark.parametrize("fmt", FORMATS)
def test_trust_model_runs_the_payload_with_a_warning(evil_files, marker, fmt):
    path = evil_files[0][fmt]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = load_model_file(path, trust_model=True)
    ours = [w for w in caught if issubclass(w.category, TrustedModelWarning)]
    assert len(ours) == 1 and "Lambda layer 'lambda'" in str(ours[0].message)
    model(np.zeros((1, 8, 8, 1), "float32"))
    assert marker.exists()  # the opt-in really runs the file's code


def test_cli_trust_model_warns_in_one_line(evil_files, marker, tmp_path, capsys, monkeypatch):
    ran = {}

    def fake_auto_compress(model, dataset, output_dir, **kwargs):
        ran["layers"] = [layer.name for layer in model.layers]
        raise RuntimeError("Layer lambda:<class 'Lambda'> is not supported. You can quantize "
                           "this layer by passing a `tfmot.quantization.keras.QuantizeConfig`")

    monkeypatch.setattr("keras_autoopt.pipeline.jobs.auto_compress", fake_auto_compress)
    code = cli.main(["compress", "--model", str(evil_files[0]["h5"]), "--trust-model",
                     "--output", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 1 and "lambda" in ran["layers"]
    lines = err.strip().splitlines()
    assert any(line.startswith("keras-autoopt: warning: model=") and "trust_model=True" in line
               for line in lines)
    assert lines[-1].startswith("keras-autoopt: compress: compression failed: RuntimeError: "
                                "Layer lambda:")
    assert "TF-MOT cannot compress the layer the message names" in lines[-1]
    assert "Traceback" not in err


@pytest.mark.parametrize("fmt", FORMATS)
def test_safe_files_load_with_their_weights(tmp_path, fmt):
    model = keras.Sequential([
        keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3, activation="swish"),
        keras.layers.BatchNormalization(), keras.layers.Flatten(),
        keras.layers.Dropout(0.1), keras.layers.Dense(10, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    model.fit(np.random.rand(8, 8, 8, 1), np.arange(8) % 10, verbose=0)
    path = _save(model, tmp_path / {"h5": "m.h5", "keras": "m.keras", "savedmodel": "m"}[fmt],
                 fmt)
    info = inspect_model_file(path)
    assert info.safe and info.format == fmt
    loaded = load_model_file(path)
    for got, want in zip(loaded.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)


def test_pruned_model_files_load(tmp_path):
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4),
                              keras.layers.Dense(3, activation="softmax")])
    pruned = ka.PruningStep(0.5, schedule="constant").apply(model)
    pruned.save(tmp_path / "p.h5")
    loaded = load_model_file(tmp_path / "p.h5")
    assert [type(layer).__name__ for layer in loaded.layers] == ["PruneLowMagnitude"] * 2


def test_custom_layer_is_refused_and_named(tmp_path):
    @keras.utils.register_keras_serializable(package="Evil")
    class Doubler(keras.layers.Layer):
        def call(self, x):
            return 2 * x

    model = keras.Sequential([keras.Input((3,)), Doubler(name="doubler"),
                              keras.layers.Dense(2)])
    model.save(tmp_path / "c.keras")
    with pytest.raises(UnsafeModelError, match=r"class 'Doubler' in layer 'doubler', which is "
                                               r"not a known tf_keras / TF-MOT / keras_autoopt"):
        load_model_file(tmp_path / "c.keras")


# --- the checker on hand-written configurations (independent of any saver) --------------
@pytest.mark.parametrize(("config", "expected"), [
    ({"class_name": "Dense", "config": {"name": "d", "activation": "relu"}}, []),
    ({"class_name": "Lambda", "config": {"name": "l", "function": "x"}}, ["Lambda layer 'l'"]),
    ({"class_name": "Dense", "config": {"name": "d", "activation": {
        "module": "os", "class_name": "function", "config": "system"}}},
     ["a serialized Python function in layer 'd'"]),
    ({"class_name": "Dense", "config": {"name": "d", "activation": {
        "module": "keras.activations", "class_name": "function", "config": "relu"}}}, []),
    ({"class_name": "Dense", "config": {"name": "d", "activation": {
        "class_name": "__lambda__", "config": {"code": "..."}}}},
     ["a serialized Python function in layer 'd'"]),
    ({"class_name": "Sequential", "config": {"name": "s", "layers": [
        {"class_name": "Custom>Evil", "config": {"name": "e"}}]}},
     ["class 'Evil' in layer 'e', which is not a known tf_keras / TF-MOT / keras_autoopt "
      "class"]),
    ({"module": "evil_pkg.layers", "class_name": "Dense", "config": {"name": "d"}},
     ["class 'Dense' in layer 'd' from module 'evil_pkg.layers'"]),
    ({"class_name": "PruneLowMagnitude", "config": {"name": "p", "pruning_schedule": {
        "class_name": "ConstantSparsity", "config": {}}}}, []),
])
def test_find_unsafe_on_hand_written_configs(config, expected):
    assert find_unsafe(config) == expected


def _zip(path: Path, members: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in members.items():
            archive.writestr(name, text)
    return path


@pytest.mark.parametrize(("make", "message"), [
    (lambda p: p.with_suffix(".txt").write_bytes(b"hello") and p.with_suffix(".txt"),
     "which is neither an HDF5 file nor a zip archive"),
    (lambda p: _zip(p / "a.keras", {"x.txt": "1"}), "a zip archive without config.json"),
    (lambda p: _zip(p / "b.keras", {"config.json": "{not json"}),
     "whose config.json is not valid JSON"),
    (lambda p: _zip(p / "k3.keras", {
        "config.json": json.dumps({"class_name": "Sequential", "config": {"layers": []}}),
        "metadata.json": json.dumps({"keras_version": "3.15.0"})}),
     "a zip archive without model.weights.h5; expected a Keras 3 .keras file"),
])
def test_unreadable_files_get_a_clear_error(tmp_path, make, message):
    path = make(tmp_path)
    with pytest.raises(ModelFileError, match=message):
        load_model_file(path)


def test_weights_only_h5_and_bare_savedmodel(tmp_path):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.save_weights(tmp_path / "w.h5")
    with pytest.raises(ModelFileError, match="an HDF5 file without a model configuration"):
        load_model_file(tmp_path / "w.h5")
    (tmp_path / "sm").mkdir()
    with pytest.raises(ModelFileError, match="a folder without saved_model.pb"):
        load_model_file(tmp_path / "sm")
    with pytest.raises(ModelFileError, match=r"Received: trust_model=1; expected True or"):
        load_model_file(tmp_path / "w.h5", trust_model=1)
