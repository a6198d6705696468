from __future__ import annotations

import ast
import platform
import re
from importlib import metadata
from pathlib import Path

import pytest

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
    assert info["cpu"] is None or (isinstance(info["cpu"], str) and info["cpu"])
    machine = ("python", "platform", "cpu")
    packages = {_normalized(name): name for name in info if name not in machine}
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


_X86 = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz
flags\t\t: fpu sse4_2 avx2 fma avx512f avx512_vnni avx512bw
processor\t: 1
model name\t: another model, not read
"""
_ARM = """processor\t: 0
BogoMIPS\t: 243.75
Features\t: fp asimd evtstrm asimddp i8mm
CPU implementer\t: 0x41
"""


@pytest.mark.parametrize(
    ("cpuinfo", "expected"),
    [
        (_X86, "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz (fma avx2 avx512f avx512_vnni)"),
        (_ARM, "asimd asimddp i8mm"),
        ("model name : Plain CPU\nflags : fpu sse2\n", "Plain CPU"),
    ],
)
def test_cpu_names_its_model_and_latency_features(tmp_path, monkeypatch, cpuinfo, expected):
    path = tmp_path / "cpuinfo"
    path.write_text(cpuinfo, encoding="utf-8")
    monkeypatch.setattr(_environment, "CPUINFO", path)
    monkeypatch.setattr(_environment.platform, "processor", lambda: "")
    assert environment_info()["cpu"] == expected


def test_cpu_without_cpuinfo_falls_back_to_platform(tmp_path, monkeypatch):
    monkeypatch.setattr(_environment, "CPUINFO", tmp_path / "missing")
    monkeypatch.setattr(_environment.platform, "processor", lambda: "arm")
    assert environment_info()["cpu"] == "arm"
    monkeypatch.setattr(_environment.platform, "processor", lambda: "")
    assert environment_info()["cpu"] is None


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
