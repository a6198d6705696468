"""Bad input, one table: the Python API, the command line and the YAML config refuse it.

Every case asserts the exception type (API) or exit code 2 with one
``keras-autoopt: error:`` line and no traceback (CLI), a message naming the
argument and the value received, that nothing expensive ran (the tuners and
`auto_compress` are replaced by functions that fail loudly) and that the
refusal took well under a few seconds. A YAML case is checked twice: through
`load_config` and through ``keras-autoopt run --config``.

Cases marked ``xfail(strict=True)`` are defects in modules this test does not
own; the reason says the fix. When it is made the case passes, and strict
xfail fails the suite until the mark is removed.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import keras_autoopt as ka
from keras_autoopt import ConfigError, DatasetError, ModelFileError, cli, load_config
from keras_autoopt._backend import keras
from keras_autoopt.pipeline import compress_saved_model

#: Longest a refusal may take (the whole file runs in well under a minute).
MAX_SECONDS = 3.0
#: The output folder of every run, inside the case's tmp_path.
OUT = "out"


@pytest.fixture(autouse=True)
def _expensive_work_fails(monkeypatch):
    """Make training unreachable: a case that gets this far fails loudly."""

    def reached(*args, **kwargs):
        raise AssertionError("expensive work reached")

    monkeypatch.setattr("keras_autoopt.pipeline.strategies.make_tuner", reached)
    monkeypatch.setattr("keras_autoopt.pipeline.strategies.build_deployable_tuner", reached)
    monkeypatch.setattr("keras_autoopt.pipeline.artifacts.auto_compress", reached)
    monkeypatch.setattr("keras_autoopt.pipeline.jobs.auto_compress", reached)


@pytest.fixture(scope="module")
def tiny_tflite(tmp_path_factory) -> Path:
    """A float32 .tflite of a 4-feature, 3-class softmax model (built once)."""
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    path = tmp_path_factory.mktemp("tflite") / "tiny.tflite"
    return Path(ka.export_tflite(model, path, "float32").path)


class Files:
    """Builds the fixtures a case needs in its own tmp_path (tiny arrays only)."""

    def __init__(self, tmp_path: Path, request: pytest.FixtureRequest):
        self.dir = tmp_path
        self._request = request
        #: An unsafe YAML tag would create this file if it ever ran.
        self.marker = tmp_path / "PWNED"

    def path(self, name: str) -> str:
        return str(self.dir / name)

    def write(self, name: str, content: bytes | str) -> str:
        target = self.dir / name
        if isinstance(content, str):
            target.write_text(content, encoding="utf-8")
        else:
            target.write_bytes(content)
        return str(target)

    def random_bytes(self, name: str, size: int = 256) -> str:
        return self.write(name, np.random.default_rng(0).bytes(size))

    def npz(self, name: str = "data.npz", **arrays: np.ndarray) -> str:
        if not arrays:
            arrays = dict(zip(("x", "y"), images(), strict=True))
        np.savez(self.dir / name, **arrays)
        return str(self.dir / name)

    def yaml(self, text: str, name: str = "run.yaml") -> str:
        return self.write(name, text)

    def model(self, name: str = "m.keras", input_shape: tuple = (4,), classes: int = 3) -> str:
        model = keras.Sequential([keras.Input(input_shape), keras.layers.Flatten(),
                                  keras.layers.Dense(classes, activation="softmax")])
        model.save(self.dir / name)
        return str(self.dir / name)

    def tflite(self) -> str:
        return str(self._request.getfixturevalue("tiny_tflite"))


def images(n: int = 30, classes: int = 3, shape: tuple = (8, 8, 1)) -> tuple[np.ndarray, ...]:
    """``n`` random float32 samples of ``shape``, labels 0..classes-1 in turn."""
    x = np.random.default_rng(0).random((n, *shape), dtype=np.float32)
    return x, np.arange(n) % classes


def with_value(array: np.ndarray, index: tuple, value: Any) -> np.ndarray:
    array = array.astype(np.float64 if isinstance(value, float) else array.dtype)
    array[index] = value
    return array


def split_with(**changes: Any) -> ka.Dataset:
    """A valid split of `images`, rebuilt through the `Dataset` constructor with changes."""
    data = ka.from_arrays(*images())
    fields = {f: getattr(data, f) for f in ("name", "x_train", "y_train", "x_val", "y_val",
                                            "x_test", "y_test", "num_classes")}
    fields.update({k: v(fields[k]) if callable(v) else v for k, v in changes.items()})
    return ka.Dataset(**fields)


@dataclass(frozen=True)
class Case:
    """One bad input.

    Attributes:
        id: The test id.
        surface: ``api`` (``make`` returns the call to make), ``cli`` (it
            returns the arguments of ``main``) or ``yaml`` (it returns the file's
            text or bytes, loaded by `load_config` and by ``run --config``).
        make: Builds the case from `Files`.
        match: Regular expression the message must contain.
        error: The exception the API call raises (yaml: always `ConfigError`).
        xfail: A defect outside this test's files, with the fix to make.
    """

    id: str
    surface: str
    make: Callable[[Files], Any]
    match: str
    error: type[Exception] | None = None
    xfail: str | None = None


def api(id: str, error: type[Exception], match: str, make: Callable[[Files], Callable],
        xfail: str | None = None) -> Case:
    return Case(id, "api", make, match, error, xfail)


def cli_case(id: str, match: str, make: Callable[[Files], list[str]],
             xfail: str | None = None) -> Case:
    return Case(id, "cli", make, match, xfail=xfail)


def yaml_case(id: str, text: str | bytes | Callable[[Files], str | bytes], match: str) -> Case:
    return Case(id, "yaml", text if callable(text) else (lambda f, t=text: t), match)


def run_yaml(text: str, prepare: Callable[[Files], Any] | None = None
             ) -> Callable[[Files], list[str]]:
    """``run`` on a config that loads but names unusable things (``prepare`` makes them)."""

    def make(f: Files) -> list[str]:
        if prepare is not None:
            prepare(f)
        return ["run", "--config", f.yaml(text), "--output", f.path(OUT)]

    return make


def compress(args: Callable[[Files], list[str]]) -> Callable[[Files], list[str]]:
    """``compress`` with the arguments ``args`` makes (the output folder is set)."""
    return lambda f: ["compress", "--output", f.path(OUT), *args(f)]


X, Y = images()

def export_saved(**kwargs: Any) -> Callable[[Files], Callable]:
    """`export_tflite` of the saved test model, loaded, to ``m.tflite`` with ``kwargs``."""
    return lambda f: lambda: ka.export_tflite(keras.models.load_model(f.model()),
                                              f.path("m.tflite"), **kwargs)


CASES = [
    # --- Python API: data -----------------------------------------------------------------
    api("api-from_arrays-x-1d", DatasetError,
        r"Received: x with shape \(30,\); expected at least 2-D",
        lambda f: lambda: ka.from_arrays(np.arange(30.0), Y)),
    api("api-from_arrays-x-strings", DatasetError,
        r"Received: x with dtype <U1; expected a numeric",
        lambda f: lambda: ka.from_arrays(np.full((30, 4), "a"), Y)),
    api("api-from_arrays-x-object-array", DatasetError,
        r"Received: x with dtype object; expected a numeric",
        lambda f: lambda: ka.from_arrays(np.empty((30, 4), dtype=object), Y)),
    api("api-from_arrays-y-strings", DatasetError,
        r"Received: y with dtype <U3; expected integer class indices",
        lambda f: lambda: ka.from_arrays(X, np.array(["cat", "dog", "emu"] * 10))),
    api("api-from_arrays-y-negative", DatasetError,
        r"Received: y containing label -1; expected class indices >= 0",
        lambda f: lambda: ka.from_arrays(X, Y - 1)),
    api("api-from_arrays-y-fractional", DatasetError,
        r"Received: y with non-integer float values, the first y\[0\]=0\.5; expected integer",
        lambda f: lambda: ka.from_arrays(X, Y + 0.5)),
    api("api-from_arrays-y-nan", DatasetError,
        r"Received: y with non-integer float values, the first y\[3\]=nan",
        lambda f: lambda: ka.from_arrays(X, with_value(Y, 3, math.nan))),
    api("api-from_arrays-y-beyond-num_classes", DatasetError,
        r"Received: num_classes=2 but labels up to 2; expected num_classes >= 3",
        lambda f: lambda: ka.from_arrays(X, Y, num_classes=2)),
    api("api-from_arrays-empty", DatasetError,
        r"Received: x with 0 samples; expected at least one sample",
        lambda f: lambda: ka.from_arrays(np.zeros((0, 4)), np.zeros(0, dtype=int))),
    api("api-from_arrays-x-nan", DatasetError,
        r"Received: x with 1 NaN or infinite values \(as float32\), the first "
        r"x\[2, 1, 1, 0\]=nan; expected finite values",
        lambda f: lambda: ka.from_arrays(with_value(X, (2, 1, 1, 0), math.nan), Y)),
    api("api-from_arrays-x-inf", DatasetError,
        r"Received: x with 1 NaN or infinite values \(as float32\), the first "
        r"x\[0, 0, 0, 0\]=inf",
        lambda f: lambda: ka.from_arrays(with_value(X, (0, 0, 0, 0), math.inf), Y)),
    api("api-from_arrays-length-mismatch", DatasetError,
        r"Received: x with 30 samples and y with 29; expected the same number",
        lambda f: lambda: ka.from_arrays(X, Y[:-1])),
    api("api-from_arrays-seed-negative", DatasetError,
        r"Received: seed=-1; expected an integer in \[0, 2\*\*32\)",
        lambda f: lambda: ka.from_arrays(X, Y, seed=-1)),
    api("api-from_arrays-val_fraction-1.5", DatasetError,
        r"Received: val_fraction=1\.5; expected a float in \(0, 1\)",
        lambda f: lambda: ka.from_arrays(X, Y, val_fraction=1.5)),
    api("api-from_arrays-fractions-leave-no-training-data", DatasetError,
        r"Received: val_fraction=0\.5 and test_fraction=0\.5; expected val_fraction \+ "
        r"test_fraction < 1",
        lambda f: lambda: ka.from_arrays(X, Y, val_fraction=0.5, test_fraction=0.5)),
    api("api-Dataset-label-out-of-range", DatasetError,
        r"Received: y_train containing label 5; expected class indices in \[0, 3\)",
        lambda f: lambda: split_with(y_train=lambda y: y + 3)),
    api("api-Dataset-x-float64", DatasetError,
        r"Received: x_train with dtype float64; expected float32",
        lambda f: lambda: split_with(x_train=lambda x: x.astype(np.float64))),
    api("api-load_dataset-unknown-name", DatasetError,
        r"Received: name_or_path='mnist' \(no such file or folder\); expected a built-in",
        lambda f: lambda: ka.load_dataset("mnist")),
    api("api-load_dataset-missing-npz", DatasetError,
        r"Received: path='.*missing\.npz', which is not an existing file",
        lambda f: lambda: ka.load_dataset(f.path("missing.npz"))),
    api("api-load_dataset-npz-not-a-zip", DatasetError,
        r"Received: path='.*data\.npz', which is not a \.npz archive \(not a zip file\)",
        lambda f: lambda: ka.load_dataset(f.random_bytes("data.npz"))),
    api("api-load_dataset-npz-object-array", DatasetError,
        r"Received: path='.*data\.npz' holding arrays that cannot be read .*Object arrays are "
        r"refused",
        lambda f: lambda: ka.load_dataset(f.npz(x=np.empty((30, 4), dtype=object), y=Y))),
    # --- Python API: run_pipeline ---------------------------------------------------------
    api("api-run_pipeline-unknown-tuner", ConfigError,
        r"Received: tuner='annealing'; expected one of \('random'",
        lambda f: lambda: ka.run_pipeline("digits", f.path(OUT), tuner="annealing")),
    api("api-run_pipeline-unknown-hypermodel", ConfigError,
        r"Received: hypermodel='resnet'; expected one of \('convnet', 'dense'\)",
        lambda f: lambda: ka.run_pipeline("digits", f.path(OUT), hypermodel="resnet")),
    api("api-run_pipeline-trials-0", ConfigError,
        r"Received: trials=0; Input should be greater than or equal to 1",
        lambda f: lambda: ka.run_pipeline("digits", f.path(OUT), trials=0)),
    api("api-run_pipeline-trials-bool", ConfigError,
        r"Received: trials=True; expected an integer, not a boolean",
        lambda f: lambda: ka.run_pipeline("digits", f.path(OUT), trials=True)),
    api("api-run_pipeline-epochs-reversed", ConfigError,
        r"Received: epochs=\(5, 2\); expected 1 <= low <= high",
        lambda f: lambda: ka.run_pipeline("digits", f.path(OUT), epochs=(5, 2))),
    api("api-run_pipeline-seed-negative", ConfigError,
        r"Received: seed=-1; Input should be greater than or equal to 0",
        lambda f: lambda: ka.run_pipeline("digits", f.path(OUT), seed=-1)),
    api("api-run_pipeline-unknown-export-mode", ConfigError,
        r"Received: export_modes=\['int4'\]; expected modes among .*got 'int4'",
        lambda f: lambda: ka.run_pipeline("digits", f.path(OUT), export_modes=["int4"])),
    api("api-run_pipeline-unknown-objective", ConfigError,
        r"Received: objectives=\['val_accuracy', 'flops'\]; .*'flops' is neither",
        lambda f: lambda: ka.run_pipeline("digits", f.path(OUT),
                                          objectives=["val_accuracy", "flops"])),
    api("api-run_pipeline-unknown-oracle", ConfigError,
        r"Received: oracle='annealing'; expected one of \('random'",
        lambda f: lambda: ka.run_pipeline("digits", f.path(OUT), objectives=["val_accuracy"],
                                          oracle="annealing")),
    api("api-run_pipeline-oracle-without-objectives", ConfigError,
        r"Received: oracle='nsga2'; 'oracle' belongs to a multi-objective search",
        lambda f: lambda: ka.run_pipeline("digits", f.path(OUT), oracle="nsga2")),
    api("api-run_pipeline-max_accuracy_drop-1.5", ConfigError,
        r"Received: compress\.max_accuracy_drop=1\.5; expected a fraction in \[0, 1\)",
        lambda f: lambda: ka.run_pipeline("digits", f.path(OUT),
                                          compress={"max_accuracy_drop": 1.5})),
    api("api-run_pipeline-unknown-key", ConfigError,
        r"arguments: unknown key 'trial' \(Received: trial=3\)",
        lambda f: lambda: ka.run_pipeline("digits", f.path(OUT), trial=3)),
    api("api-run_pipeline-unknown-dataset-name", DatasetError,
        r"Received: name_or_path='mnist'",
        lambda f: lambda: ka.run_pipeline("mnist", f.path(OUT))),
    api("api-run_pipeline-teacher-missing", ConfigError,
        r"Received: teacher='.*teacher\.keras'; expected an existing model file",
        lambda f: lambda: ka.run_pipeline(ka.from_arrays(X, Y), f.path(OUT),
                                          objectives=["val_accuracy"],
                                          teacher=f.path("teacher.keras"))),
    api("api-run_pipeline-tabular-data-with-convnet", ConfigError,
        r"Received: hypermodel='convnet' with samples of shape \(4,\)",
        lambda f: lambda: ka.run_pipeline(ka.from_arrays(*images(shape=(4,))), f.path(OUT))),
    api("api-run_pipeline-output-is-a-file", ConfigError,
        r"Received: output='.*not_a_folder', an existing file; expected a folder",
        lambda f: (lambda p: lambda: ka.run_pipeline("digits", p))(
            f.write("not_a_folder", "x"))),
    api("api-run_pipeline-dataset-of-wrong-type", ConfigError,
        r"Received: dataset=42; expected a Dataset",
        lambda f: lambda: ka.run_pipeline(42, f.path(OUT))),
    # --- Python API: compress_saved_model, export_tflite, measure_tflite -------------------
    api("api-compress_saved_model-missing-model", ModelFileError,
        r"Received: model='.*missing\.keras'; expected an existing model file",
        lambda f: lambda: compress_saved_model(f.path("missing.keras"), f.path(OUT))),
    api("api-compress_saved_model-random-bytes-model", ModelFileError,
        r"Received: model='.*model\.keras', which is neither an HDF5 file nor a zip archive; "
        r"expected a tf_keras model file",
        lambda f: lambda: compress_saved_model(f.random_bytes("model.keras"), f.path(OUT))),
    api("api-compress_saved_model-empty-h5", ModelFileError,
        r"Received: model='.*empty\.h5', which is neither an HDF5 file nor a zip archive; "
        r"expected a tf_keras model file",
        lambda f: lambda: compress_saved_model(f.write("empty.h5", b""), f.path(OUT))),
    api("api-compress_saved_model-model-does-not-fit-data", ConfigError,
        r"Received: model input shape \(4,\); expected \(8, 8, 1\)",
        lambda f: lambda: compress_saved_model(f.model(), f.path(OUT),
                                               dataset=ka.from_arrays(X, Y))),
    api("api-compress_saved_model-unknown-dataset", DatasetError,
        r"Received: name_or_path='mnist'",
        lambda f: lambda: compress_saved_model(f.model(), f.path(OUT), dataset="mnist")),
    api("api-export_tflite-unknown-mode", ValueError,
        r"Received: mode='int4'; expected one of 'float32'",
        export_saved(mode="int4")),
    api("api-export_tflite-not-a-model", TypeError,
        r"Received: model of type str; expected a tf_keras or Keras 3 Model",
        lambda f: lambda: ka.export_tflite(f.model(), f.path("m.tflite"))),
    api("api-export_tflite-int8-without-data", ValueError,
        r"Received: representative_data=None with mode='int8'",
        export_saved(mode="int8")),
    api("api-export_tflite-data-of-wrong-shape", ValueError,
        r"Received: representative_data with shape \(5, 3\); expected .*shape \(n, 4\)",
        export_saved(representative_data=np.zeros((5, 3)))),
    api("api-export_tflite-string-data", ValueError,
        r"Received: representative_data with dtype <U1; expected a numeric",
        export_saved(representative_data=np.full((5, 4), "a"))),
    api("api-export_tflite-nan-data", ValueError,
        r"Received: representative_data with 1 NaN or infinite values",
        export_saved(representative_data=with_value(np.zeros((5, 4)), (0, 0), math.nan))),
    api("api-measure_tflite-missing-file", FileNotFoundError,
        r"Received: path='.*missing\.tflite'; expected the path of an existing \.tflite file",
        lambda f: lambda: ka.measure_tflite(f.path("missing.tflite"), X, Y)),
    api("api-measure_tflite-random-bytes", ValueError,
        r"Received: path='.*model\.tflite' of 256 bytes, which LiteRT cannot load",
        lambda f: lambda: ka.measure_tflite(f.random_bytes("model.tflite"), X, Y)),
    api("api-measure_tflite-empty-file", ValueError,
        r"Received: path='.*empty\.tflite' of 0 bytes; expected a \.tflite model",
        lambda f: lambda: ka.measure_tflite(f.write("empty.tflite", b""), X, Y)),
    api("api-measure_tflite-path-of-wrong-type", TypeError,
        r"Received: path of type int; expected a str or os\.PathLike",
        lambda f: lambda: ka.measure_tflite(3, X, Y)),
    api("api-measure_tflite-latency_runs-10", ValueError,
        r"Received: latency_runs=10; expected an integer >= 50",
        lambda f: lambda: ka.measure_tflite(f.tflite(), X, Y, latency_runs=10)),
    api("api-measure_tflite-one-hot-labels", ValueError,
        r"Received: y_test with shape \(4, 3\) and dtype float64; expected integer class",
        lambda f: lambda: ka.measure_tflite(f.tflite(), np.zeros((4, 4)), np.eye(3)[[0, 1, 2, 0]])),
    api("api-measure_tflite-x-strings", ValueError,
        r"Received: x_test with dtype <U1; expected a numeric",
        lambda f: lambda: ka.measure_tflite(f.tflite(), np.full((4, 4), "a"), Y[:4])),
    api("api-measure_tflite-x-nan", ValueError,
        r"Received: x_test with 1 NaN or infinite values, the first x_test\[1, 2\]=nan",
        lambda f: lambda: ka.measure_tflite(f.tflite(), with_value(np.zeros((4, 4)), (1, 2),
                                                                   math.nan), Y[:4])),
    api("api-measure_tflite-negative-label", ValueError,
        r"Received: y_test containing label -1; expected class indices >= 0",
        lambda f: lambda: ka.measure_tflite(f.tflite(), np.zeros((4, 4)), Y[:4] - 1)),
    api("api-measure_tflite-label-beyond-outputs", ValueError,
        r"Received: y_test containing label 7; expected class indices in \[0, 3\)",
        lambda f: lambda: ka.measure_tflite(f.tflite(), np.zeros((4, 4)), [0, 1, 7, 2])),
    # --- command line -----------------------------------------------------------------------
    cli_case("cli-demo-trials-0", r"Received: --trials=0; expected a positive integer",
             lambda f: ["demo", "--trials", "0", "--output", f.path(OUT)]),
    cli_case("cli-demo-trials-negative", r"Received: --trials=-3; expected a positive integer",
             lambda f: ["demo", "--trials", "-3", "--output", f.path(OUT)]),
    cli_case("cli-demo-output-is-a-file",
             r"Received: --output='.*afile', which is a file; expected a folder",
             lambda f: ["demo", "--output", f.write("afile", "x")]),
    cli_case("cli-run-missing-config",
             r"Received: config='.*missing\.yaml'; expected an existing YAML file",
             lambda f: ["run", "--config", f.path("missing.yaml")]),
    cli_case("cli-run-config-is-a-folder",
             r"Received: config='.*'; expected an existing YAML file",
             lambda f: ["run", "--config", str(f.dir)]),
    cli_case("cli-run-output-is-a-file",
             r"Received: --output='.*afile', which is a file; expected a folder",
             lambda f: ["run", "--config", f.yaml("trials: 1\n"), "--output",
                        f.write("afile", "x")]),
    cli_case("cli-run-unknown-dataset-name", r"Received: name_or_path='mnist'",
             run_yaml("dataset: mnist\n")),
    cli_case("cli-run-missing-npz", r"Received: path='.*missing\.npz', which is not an existing",
             run_yaml("dataset: missing.npz\n")),
    cli_case("cli-run-npz-not-a-zip", r"Received: path='.*data\.npz', which is not a \.npz",
             run_yaml("dataset: data.npz\n", lambda f: f.random_bytes("data.npz"))),
    cli_case("cli-run-npz-wrong-keys",
             r"Received: '.*data\.npz' with keys \['images', 'labels'\]",
             run_yaml("dataset: data.npz\n", lambda f: f.npz(images=X, labels=Y))),
    cli_case("cli-run-npz-x-nan", r"Received: x with 1 NaN or infinite values",
             run_yaml("dataset: data.npz\n",
                      lambda f: f.npz(x=with_value(X, (5, 0, 0, 0), math.nan), y=Y))),
    cli_case("cli-run-npz-string-labels", r"Received: y with dtype <U3",
             run_yaml("dataset: data.npz\n",
                      lambda f: f.npz(x=X, y=np.array(["cat", "dog", "emu"] * 10)))),
    cli_case("cli-run-npz-negative-labels", r"Received: y containing label -1",
             run_yaml("dataset: data.npz\n", lambda f: f.npz(x=X, y=Y - 1))),
    cli_case("cli-run-npz-one-class",
             r"Received: training labels with 1 distinct class \(\[0\]\); expected at least 2",
             run_yaml("dataset: data.npz\n", lambda f: f.npz(x=X, y=Y * 0))),
    cli_case("cli-run-teacher-missing", r"Received: teacher='.*teacher\.keras'",
             run_yaml("dataset: data.npz\nobjectives: [val_accuracy]\nteacher: teacher.keras\n",
                      lambda f: f.npz())),
    cli_case("cli-run-teacher-random-bytes", r"Received: teacher='.*teacher\.keras'",
             run_yaml("dataset: data.npz\nobjectives: [val_accuracy]\nteacher: teacher.keras\n",
                      lambda f: (f.npz(), f.random_bytes("teacher.keras")))),
    cli_case("cli-run-teacher-of-wrong-shape",
             r"Received: teacher='.*t\.keras' with input shape \(4,\) and 3 outputs; expected "
             r"input shape \(8, 8, 1\)",
             run_yaml("dataset: data.npz\nobjectives: [val_accuracy]\nteacher: t.keras\n",
                      lambda f: (f.npz(), f.model("t.keras")))),
    cli_case("cli-run-tabular-data-with-convnet",
             r"Received: hypermodel='convnet' with samples of shape \(4,\)",
             run_yaml("dataset: data.npz\n", lambda f: f.npz(x=images(shape=(4,))[0], y=Y))),
    cli_case("cli-compress-missing-model",
             r"Received: model='.*missing\.keras'; expected an existing model file",
             compress(lambda f: ["--model", f.path("missing.keras")])),
    cli_case("cli-compress-random-bytes-model",
             r"Received: model='.*model\.keras', which is neither an HDF5 file nor a zip",
             compress(lambda f: ["--model", f.random_bytes("model.keras")])),
    cli_case("cli-compress-empty-h5",
             r"Received: model='.*empty\.h5', which is neither an HDF5 file nor a zip",
             compress(lambda f: ["--model", f.write("empty.h5", b"")])),
    cli_case("cli-compress-model-does-not-fit-digits",
             r"Received: model input shape \(4,\); expected \(8, 8, 1\)",
             compress(lambda f: ["--model", f.model()])),
    cli_case("cli-compress-max-accuracy-drop-1.5",
             r"Received: --max-accuracy-drop=1\.5; expected a fraction in \[0, 1\)",
             compress(lambda f: ["--model", f.model(), "--max-accuracy-drop", "1.5"])),
    cli_case("cli-compress-max-accuracy-drop-nan",
             r"Received: --max-accuracy-drop=nan; expected a fraction in \[0, 1\)",
             compress(lambda f: ["--model", f.model(), "--max-accuracy-drop", "nan"])),
    cli_case("cli-compress-seed-negative", r"Received: seed=-1; expected an integer in \[0, ",
             compress(lambda f: ["--model", f.model(), "--seed", "-1"])),
    cli_case("cli-compress-unknown-dataset", r"Received: name_or_path='mnist'",
             compress(lambda f: ["--model", f.model(), "--dataset", "mnist"])),
    cli_case("cli-compress-missing-npz",
             r"Received: path='.*missing\.npz', which is not an existing file",
             compress(lambda f: ["--model", f.model(), "--dataset", f.path("missing.npz")])),
    cli_case("cli-compress-output-is-a-file",
             r"Received: --output='.*afile', which is a file; expected a folder",
             lambda f: ["compress", "--model", f.model(), "--output", f.write("afile", "x")]),
    # --- YAML config (load_config, then `run --config`) ---------------------------------------
    yaml_case("yaml-unsafe-python-object-apply",
              lambda f: f'!!python/object/apply:os.system ["touch {f.marker}"]\n',
              r"run\.yaml, line 1, column 1: Received: !!python/object/apply:os\.system "
              r"\[\"touch [^;]*; expected plain YAML values\. The file is safe-loaded: the "
              r"tag !!python/object/apply:os\.system is refused and nothing was run"),
    yaml_case("yaml-unsafe-tag-on-a-key",
              lambda f: f'tuner: !!python/object/apply:os.system ["touch {f.marker}"]\n',
              r"run\.yaml, line 1, column 8: Received: tuner=!!python/object/apply:os\.system"),
    yaml_case("yaml-unsafe-tag-nested",
              lambda f: "compress:\n  max_accuracy_drop: !!python/object/new:os.system "
                        f'["touch {f.marker}"]\n',
              r"line 2, column 22: Received: compress\.max_accuracy_drop=!!python/object/new:"),
    yaml_case("yaml-unsafe-python-name", "hypermodel: !!python/name:os.system\n",
              r"line 1, column 13: Received: hypermodel=!!python/name:os\.system; expected "
              r"plain YAML values"),
    yaml_case("yaml-malformed-unclosed-list", "tuner: random\ntrials: [1, 2\n",
              r"run\.yaml, line 3, column 1: malformed YAML: expected ',' or '\]'"),
    yaml_case("yaml-malformed-tab-indent", "tuner: random\n\ttrials: 2\n",
              r"run\.yaml, line 2, column 1: malformed YAML: found character '\\t'"),
    yaml_case("yaml-malformed-unclosed-quote", 'tuner: "random\ntrials: 2\n',
              r"run\.yaml, line 3, column 1: malformed YAML: found unexpected end of stream"),
    yaml_case("yaml-not-utf8", b"seed: 0\ntuner: caf\xe9\n",
              r"run\.yaml, line 2: Received: the byte 0xe9, which is not UTF-8 text"),
    yaml_case("yaml-nul-byte", b"seed: 0\x00\n",
              r"run\.yaml: Received: the character U\+0000 at position 7; expected printable"),
    yaml_case("yaml-duplicate-key", "trials: 1\nseed: 0\ntrials: 2\n",
              r"run\.yaml, line 3: duplicate key 'trials' \(Received: trials=1 on line 1 and "
              r"trials=2 on line 3\); expected each key once"),
    yaml_case("yaml-top-level-list", "- digits\n- convnet\n",
              r"run\.yaml: Received: a list at the top level; expected a mapping"),
    yaml_case("yaml-deeply-nested", "trials: " + "[" * 2000 + "]" * 2000 + "\n",
              r"run\.yaml: Received: YAML nested too deeply to read"),
    yaml_case("yaml-unknown-key", "tuner: random\ntrails: 5\n",
              r"run\.yaml, line 2: unknown key 'trails' \(Received: trails=5\)"),
    yaml_case("yaml-unknown-nested-key", "dataset: {source: digits, split: 0.1}\n",
              r"line 1: unknown key 'dataset\.split' \(Received: dataset\.split=0\.1\)"),
    yaml_case("yaml-unknown-tuner", "tuner: annealing\n",
              r"line 1: Received: tuner='annealing'; expected one of \('random'"),
    yaml_case("yaml-unknown-hypermodel", "hypermodel: resnet\n",
              r"line 1: Received: hypermodel='resnet'; expected one of \('convnet', 'dense'\)"),
    yaml_case("yaml-unknown-export-mode", "export_modes: [float32, int4]\n",
              r"line 1: Received: export_modes=\['float32', 'int4'\]; expected modes among "
              r".*got 'int4'"),
    yaml_case("yaml-unknown-objective", "objectives: [val_accuracy, flops]\n",
              r"line 1: Received: objectives=\['val_accuracy', 'flops'\]; .*'flops' is neither"),
    yaml_case("yaml-unknown-oracle", "objectives: [val_accuracy]\noracle: annealing\n",
              r"line 2: Received: oracle='annealing'; expected one of"),
    yaml_case("yaml-oracle-without-objectives", "seed: 0\noracle: nsga2\n",
              r"line 2: Received: oracle='nsga2'; 'oracle' belongs to a multi-objective search; "
              r"expected 'objectives' to be set too"),
    yaml_case("yaml-unknown-quantization",
              "objectives: [val_accuracy]\ncompression_space: {quantization: [int4]}\n",
              r"line 2: Received: compression_space=.*quantization=\('int4',\); expected choices"),
    yaml_case("yaml-trials-0", "trials: 0\n",
              r"line 1: Received: trials=0; Input should be greater than or equal to 1"),
    yaml_case("yaml-trials-bool", "trials: true\n",
              r"line 1: Received: trials=True; expected an integer, not a boolean"),
    yaml_case("yaml-trials-nan", "trials: .nan\n",
              r"line 1: Received: trials=nan; Input should be a finite number"),
    yaml_case("yaml-epochs-reversed", "epochs: [5, 2]\n",
              r"line 1: Received: epochs=\[5, 2\]; expected 1 <= low <= high"),
    yaml_case("yaml-epochs-0", "epochs: 0\n",
              r"line 1: Received: epochs=0; expected 1 <= low <= high"),
    yaml_case("yaml-seed-negative", "seed: -1\n",
              r"line 1: Received: seed=-1; Input should be greater than or equal to 0"),
    yaml_case("yaml-seed-too-large", "seed: 4294967296\n",
              r"line 1: Received: seed=4294967296; Input should be less than 4294967296"),
    yaml_case("yaml-max-accuracy-drop-1.5", "compress:\n  max_accuracy_drop: 1.5\n",
              r"line 2: Received: compress\.max_accuracy_drop=1\.5; expected a fraction in "
              r"\[0, 1\)"),
    yaml_case("yaml-val-fraction-1.5", "dataset: {source: digits, val_fraction: 1.5}\n",
              r"line 1: Received: dataset\.val_fraction=1\.5; Input should be less than 1"),
    yaml_case("yaml-fractions-leave-no-training-data",
              "dataset:\n  source: digits\n  val_fraction: 0.6\n  test_fraction: 0.5\n",
              r"line 4: Received: dataset\.test_fraction=0\.5; expected val_fraction \+ "
              r"test_fraction < 1 \(val_fraction=0\.6\)"),
    yaml_case("yaml-sparsities-out-of-range", "compress: {sparsities: [0.5, 1.5]}\n",
              r"line 1: Received: compress\.sparsities=\[0\.5, 1\.5\]; expected a non-empty "
              r"list of fractions in \(0, 1\)"),
    yaml_case("yaml-min-accuracy-1.5",
              "objectives: [val_accuracy]\nconstraints: {min_accuracy: 1.5}\n",
              r"line 2: Received: constraints\.min_accuracy=1\.5; Input should be less than or "
              r"equal to 1"),
    yaml_case("yaml-image-size-zero", "dataset: {source: images/, image_size: [0, 32]}\n",
              r"line 1: Received: dataset\.image_size=\[0, 32\]; expected two positive integers"),
]


def _params():
    for case in CASES:
        marks = [pytest.mark.xfail(strict=True, reason=case.xfail)] if case.xfail else []
        yield pytest.param(case, id=case.id, marks=marks)


def _cli(capsys, argv: list[str]) -> tuple[int, str, str, float]:
    start = time.perf_counter()
    code = cli.main(argv)
    elapsed = time.perf_counter() - start
    captured = capsys.readouterr()
    return code, captured.out, captured.err, elapsed


def _assert_cli_refused(code: int, out: str, err: str, match: str) -> None:
    assert code == 2, (code, out, err)
    assert err.startswith("keras-autoopt: error: "), err
    assert re.search(match, err), err
    assert "Traceback" not in out and "Traceback" not in err


@pytest.mark.parametrize("case", list(_params()))
def test_bad_input_is_refused_clearly_before_any_work(case, tmp_path, capsys, request):
    files = Files(tmp_path, request)
    subject = case.make(files)
    capsys.readouterr()
    if case.surface == "api":
        start = time.perf_counter()
        with pytest.raises(case.error, match=case.match):
            subject()
        elapsed = time.perf_counter() - start
    elif case.surface == "cli":
        code, out, err, elapsed = _cli(capsys, subject)
        _assert_cli_refused(code, out, err, case.match)
    else:
        path = files.write("run.yaml", subject)
        start = time.perf_counter()
        with pytest.raises(ConfigError, match=case.match):
            load_config(path)
        elapsed = time.perf_counter() - start
        code, out, err, cli_elapsed = _cli(
            capsys, ["run", "--config", path, "--output", files.path(OUT)])
        _assert_cli_refused(code, out, err, case.match)
        assert not (tmp_path / OUT).exists(), "the run started before the config was checked"
        elapsed = max(elapsed, cli_elapsed)
    assert not files.marker.exists(), "a YAML tag ran a command"
    assert elapsed < MAX_SECONDS, f"refused after {elapsed:.2f} s"


def test_the_table_covers_every_surface():
    surfaces = [case.surface for case in CASES]
    assert min(surfaces.count(s) for s in ("api", "cli", "yaml")) >= 8
    assert len({case.id for case in CASES}) == len(CASES)
