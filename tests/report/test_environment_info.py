from __future__ import annotations

import ast
import platform
import re
from importlib import metadata
from pathlib import Path

import keras_autoopt.report as report_package
from keras_autoopt.report import _environment, environment_info

# What a result depends on: these must be in every report (others are welcome).
CORE = {"keras_autoopt", "tensorflow", "tf-keras", "keras-tuner", "ai-edge-litert", "numpy"}
CORE |= {"tensorflow-model-optimization", "scikit-learn"}


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()  # PEP 503


def _declared_dependencies() -> set[str]:
    """The distributions keras_autoopt's metadata requires (extras left out)."""
    requirements = metadata.requires("keras_autoopt") or []
    return {
        _normalized(re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0])
        for requirement in requirements
        if "extra ==" not in requirement
    }


def _installed_versions() -> dict[str, str]:
    """Every installed distribution's version, by scanning them all (first on the path wins)."""
    versions: dict[str, str] = {}
    for distribution in metadata.distributions():
        versions.setdefault(_normalized(distribution.metadata["Name"]), distribution.version)
    return versions


def test_keys_and_versions():
    info = environment_info()
    assert info["python"] == platform.python_version()
    assert isinstance(info["platform"], str) and info["platform"]
    packages = {_normalized(name): name for name in info if name not in ("python", "platform")}
    assert {_normalized(name) for name in CORE} <= set(packages)
    assert set(packages) <= _declared_dependencies() | {"keras-autoopt"}  # only what it uses
    installed = _installed_versions()
    for normalized, name in packages.items():
        assert info[name] == installed.get(normalized), name  # None: not installed


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
