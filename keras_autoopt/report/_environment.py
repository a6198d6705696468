"""The software versions a run used, for the report."""

from __future__ import annotations

import platform
from importlib import metadata

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


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def environment_info() -> dict[str, str | None]:
    """Return the Python version, the platform and the versions of the packages a run uses.

    Versions come from the installed distributions' metadata
    (``importlib.metadata``), so nothing heavy such as TensorFlow is imported.

    Returns:
        ``{"python": ..., "platform": ..., "keras_autoopt": ..., "tensorflow": ..., ...}``
        with one key per name in `PACKAGES`; a package that is not installed
        maps to ``None``.

    """
    info: dict[str, str | None] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    for distribution in PACKAGES:
        info[distribution] = _version(distribution)
    return info
