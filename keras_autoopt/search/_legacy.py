"""Run folders written by older versions: what a resumed search renames."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from keras_autoopt._io import atomic_write_text
from keras_autoopt.distill import LEGACY_HYPERPARAMETERS


def rename_legacy_hyperparameters(directory: Path, project_name: str) -> list[Path]:
    """Rename the hyperparameters of a search folder written under older names.

    Run folders from before `DistillationSpace` was shared call the
    distillation hyperparameters ``distill_temperature`` and ``distill_alpha``
    (`LEGACY_HYPERPARAMETERS`). Their ``oracle.json`` (space, values, Optuna
    study) and every ``trial_*/trial.json`` are rewritten (atomically) under
    today's names, so that a resumed search goes on with the same
    hyperparameters and its report has one column per hyperparameter.

    Args:
        directory: The tuner's ``directory``.
        project_name: The tuner's ``project_name``.

    Returns:
        The files rewritten.
    """
    project = directory / project_name
    rewritten = []
    for path in [project / "oracle.json", *sorted(project.glob("trial_*/trial.json"))]:
        if not path.is_file():
            continue
        text = path.read_text()
        if not any(f'"{old}"' in text for old in LEGACY_HYPERPARAMETERS):
            continue
        atomic_write_text(path, json.dumps(_renamed(json.loads(text))))
        rewritten.append(path)
    return rewritten


def _renamed(value: Any) -> Any:
    """``value`` with every legacy name, as a key or as a ``"name"``, renamed."""
    if isinstance(value, dict):
        return {LEGACY_HYPERPARAMETERS.get(key, key): (
                    LEGACY_HYPERPARAMETERS.get(item, item) if key == "name"
                    and isinstance(item, str) else _renamed(item))
                for key, item in value.items()}
    if isinstance(value, list):
        return [_renamed(item) for item in value]
    return value
