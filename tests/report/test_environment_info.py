from __future__ import annotations

import ast
import platform
from importlib import metadata
from pathlib import Path

import keras_autoopt.report as report_package
from keras_autoopt.report import _environment, environment_info

EXPECTED_KEYS = {
    "python",
    "platform",
    "keras_autoopt",
    "tensorflow",
    "tf-keras",
    "keras-tuner",
    "tensorflow-model-optimization",
    "ai-edge-litert",
    "numpy",
    "scikit-learn",
}


def test_keys_and_versions():
    info = environment_info()
    assert EXPECTED_KEYS <= set(info)
    assert info["python"] == platform.python_version()
    assert info["numpy"] == metadata.version("numpy")
    assert info["keras_autoopt"] == metadata.version("keras_autoopt")
    assert all(value is None or isinstance(value, str) for value in info.values())


def test_missing_package_maps_to_none(monkeypatch):
    real_version = metadata.version

    def version(name):
        if name == "ai-edge-litert":
            raise metadata.PackageNotFoundError(name)
        return real_version(name)

    monkeypatch.setattr(_environment.metadata, "version", version)
    info = environment_info()
    assert info["ai-edge-litert"] is None
    assert info["numpy"] == real_version("numpy")


def test_report_package_never_imports_tensorflow_or_pyplot():
    # The package only formats data: no TensorFlow/Keras, and no pyplot
    # (global backend state).
    forbidden = ("tensorflow", "tf_keras", "keras", "keras_tuner", "matplotlib.pyplot")
    forbidden += ("keras_autoopt._backend",)
    for source in Path(report_package.__file__).parent.glob("*.py"):
        tree = ast.parse(source.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert not any(name == bad or name.startswith(f"{bad}.") for bad in forbidden), (
                    source.name,
                    name,
                )
