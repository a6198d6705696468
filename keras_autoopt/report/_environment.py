"""The software versions a run used, for the report."""

from __future__ import annotations

import platform
from importlib import metadata
from pathlib import Path

PACKAGES: tuple[str, ...] = (
    "keras_autoopt",
    "tensorflow",
    "tf-keras",
    "keras-tuner",
    "tensorflow-model-optimization",
    "ai-edge-litert",
    "numpy",
    "scikit-learn",
    "matplotlib",
)
"""The distributions whose versions `environment_info` reports."""


CPU_FEATURES: tuple[str, ...] = (
    "fma",
    "avx2",
    "avx512f",
    "avx512_vnni",
    "avx_vnni",
    "amx_int8",
    "asimd",
    "asimddp",
    "i8mm",
)
"""The CPU features `environment_info` names: those LiteRT's float and int8 kernels use.

Host latency, and above all the int8 speed-up over float32, depends on them
(XNNPACK's int8 kernels gain most from the VNNI and dot-product instructions).
"""

CPUINFO = Path("/proc/cpuinfo")


def _cpu() -> str | None:
    """Return the CPU model and its `CPU_FEATURES`, e.g. ``"AMD EPYC (fma avx2)"``."""
    try:
        text = CPUINFO.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return platform.processor() or None
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() not in fields:
            fields[key.strip()] = value.strip()
    model = fields.get("model name") or fields.get("Hardware") or platform.processor() or None
    flags = set((fields.get("flags") or fields.get("Features") or "").split())
    features = " ".join(name for name in CPU_FEATURES if name in flags)
    if model is None:
        return features or None
    return f"{model} ({features})" if features else model


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def environment_info() -> dict[str, str | None]:
    """Return the Python version, the platform, the CPU and the versions of the packages a run uses.

    Versions come from the installed distributions' metadata
    (``importlib.metadata``), so nothing heavy such as TensorFlow is imported.
    The CPU is its model name and the `CPU_FEATURES` it has (from
    ``/proc/cpuinfo`` on Linux): latency figures are only comparable on the same.

    Returns:
        ``{"python": ..., "platform": ..., "cpu": ..., "keras_autoopt": ..., ...}``
        with one key per name in `PACKAGES`; a package that is not installed
        maps to ``None``, and ``cpu`` is ``None`` when nothing names it.

    """
    info: dict[str, str | None] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": _cpu(),
    }
    for distribution in PACKAGES:
        info[distribution] = _version(distribution)
    return info
