"""Snapshot of the public API (issue 12): every public name stays importable.

`tests/public_api.json` holds today's ``__all__`` of the package and of each subpackage, sorted
(package name -> list of names). A name added to an ``__all__`` must be added there too,
deliberately; a name removed or renamed fails here: a public name that moves keeps working where it
was for a release (see STYLE.md). Names are read with `getattr`, so a lazily imported package
(PEP 562 ``__getattr__``) passes as long as each name resolves.
"""

from __future__ import annotations

import importlib
import json
from collections import Counter
from pathlib import Path

import pytest

import keras_autoopt

SNAPSHOT_FILE = Path(__file__).with_name("public_api.json")
SNAPSHOTS: dict[str, list[str]] = json.loads(SNAPSHOT_FILE.read_text(encoding="utf-8"))


def _module(name):
    return keras_autoopt if name == "keras_autoopt" else importlib.import_module(name)


def test_snapshot_file_covers_every_package():
    assert "keras_autoopt" in SNAPSHOTS
    assert all(isinstance(names, list) and names for names in SNAPSHOTS.values())


def test_snapshots_are_sorted_and_unique():
    for module_name, names in SNAPSHOTS.items():
        message = f"{SNAPSHOT_FILE.name}[{module_name!r}] must be sorted, without repeats"
        assert names == sorted(set(names)), message


@pytest.mark.parametrize("module_name", list(SNAPSHOTS))
def test_all_has_no_duplicates(module_name):
    counts = Counter(_module(module_name).__all__)
    duplicates = sorted(name for name, count in counts.items() if count > 1)
    assert not duplicates, f"{module_name}.__all__ lists these names twice: {duplicates}"


@pytest.mark.parametrize("module_name", list(SNAPSHOTS))
def test_all_matches_snapshot(module_name):
    names = set(_module(module_name).__all__)
    snapshot = set(SNAPSHOTS[module_name])
    added, removed = sorted(names - snapshot), sorted(snapshot - names)
    assert sorted(names) == SNAPSHOTS[module_name], (
        f"{module_name}.__all__ changed: added {added}, removed {removed}. A new public name "
        f"goes into tests/public_api.json; a removed one must keep working."
    )


@pytest.mark.parametrize("module_name", list(SNAPSHOTS))
def test_every_snapshot_name_is_importable(module_name):
    module = _module(module_name)
    missing = []
    for name in SNAPSHOTS[module_name]:
        try:
            getattr(module, name)
        except Exception as error:  # report every failing name at once
            missing.append(f"{name} ({type(error).__name__}: {error})")
    assert not missing, f"{module_name} no longer provides: " + "; ".join(missing)
