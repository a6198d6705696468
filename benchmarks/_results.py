"""How the benchmarks write their figures: ``benchmarks/results/<name>.json``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from keras_autoopt._io import atomic_write_text
from keras_autoopt.report import environment_info

RESULTS_DIR = Path(__file__).parent / "results"


def write_results(path: Path, result: dict[str, Any], **dumps: Any) -> None:
    """Write ``result`` with an ``environment`` key last to ``path``, and say so.

    Args:
        path: The JSON file (its folder is created if needed); written atomically.
        result: The benchmark's figures.
        **dumps: More keyword arguments of ``json.dumps`` (e.g. ``default=float``).
    """
    text = json.dumps({**result, "environment": environment_info()}, indent=2, **dumps)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, text + "\n")
    print(f"wrote {path}")
